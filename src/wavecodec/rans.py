"""Range asymmetric numeral systems (rANS) with 16-bit words, compiled with Numba, for the interlaced coder.

The coder keeps :data:`LANES` interleaved 32-bit states in ``[2^16, 2^32)`` (format versions 3 and 4;
version 2's streams have two): symbol ``t`` uses state ``t % lanes``, so a decoder's dependency
chains overlap in the processor. Coding a symbol whose frequency
is ``f`` and cumulative frequency ``c`` (out of ``2^16``) maps ``x`` to
``(x // f) * 2^16 + x % f + c``, first writing out the low 16 bits while ``x`` is too large;
decoding inverts it and reads 16-bit words back in. Words are written last symbol first, so
the decoder reads them in order. Everything is integer arithmetic: the same bytes decode to
the same symbols on every machine.

Why compiled: after each symbol the decoder's state changes, so a symbol loop is inherent to
entropy decoding. Compiling that loop together with the context arithmetic of
:mod:`wavecodec.interlaced` makes a sample of latents decode in under a millisecond. The
context arithmetic lives here once (:func:`_value_features`, :func:`_residual_feature`,
:func:`_prediction`, :func:`_magnitude` and :func:`_table_indices` or :func:`_log_index`): the decoder computes it
step by step and channel by channel (:func:`decode_interlaced`), the encoder, which knows
every value at once, in two passes that also fit the weights (:func:`encoder_values`,
:func:`encoder_residuals`) and one coding pass (:func:`code_interlaced`), so the two cannot
drift apart; both work on the same planes, one per step (:func:`plane_table`), read with unit stride.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

PRECISION = 16
LOWER = 1 << 16  # the state's lower bound
#: decoder status codes and what they mean
PROBLEMS = {
    1: "the ANS payload ends before the latents it declares",
    2: "the ANS payload decodes to out-of-range latents",
    3: "the ANS payload has trailing data or a wrong final state (corrupted)",
    4: "the ANS payload starts with an invalid state (corrupted)",
}


@njit(cache=True, nogil=True, inline="always")
def _at(buf: np.ndarray, i: int) -> int:  # pragma: no cover - compiled
    """``buf[i]`` through an unsigned index (``i >= 0`` by construction): no negative-index wraparound,
    which would keep the compiler from vectorising the loop."""
    return buf[np.uint64(i)]


@njit(cache=True, nogil=True, error_model="numpy")
def encode_symbols(starts: np.ndarray, freqs: np.ndarray, raw: np.ndarray, spliced: np.ndarray, out: np.ndarray,
                   lanes: int) -> int:  # pragma: no cover - compiled
    """Write into ``out`` the 16-bit words coding symbol ``u``'s interval ``(starts[u], freqs[u])`` and,
    where ``raw[u] >= 0`` (an escape), then ``raw[u]`` at frequency 1; returns their count ``n``.
    ``out[:n][::-1]`` is what :func:`decode_interlaced` reads, in order.

    The escapes' raw values are first spliced in as intervals of their own (``spliced``:
    ``(2, 2 * symbols)`` scratch); the ``t``-th interval uses state ``t % lanes`` (``lanes``: 2 or
    :data:`LANES`), and the words are made last interval first. ``out`` holds ``4 * symbols + 2 * lanes`` words.
    """
    escapes = 0
    for u in range(raw.size):
        escapes += raw[u] >= 0
    if escapes:
        t = 0
        for u in range(starts.size):
            spliced[0, t], spliced[1, t] = starts[u], freqs[u]
            t += 1
            if raw[u] >= 0:
                spliced[0, t], spliced[1, t] = raw[u], 1
                t += 1
        starts, freqs = spliced[0, :t], spliced[1, :t]
    n = 0
    states = np.full(lanes, np.uint64(LOWER), dtype=np.uint64)
    for t in range(starts.size - 1, -1, -1):  # last interval first; interval t uses state t % lanes
        lane = t % lanes
        x, f = states[lane], np.uint64(_at(freqs, t))
        if x >= (f << np.uint64(16)):
            out[np.uint64(n)] = np.uint16(x & np.uint64(0xFFFF))
            n += 1
            x >>= np.uint64(16)
        x32, f32 = np.uint32(x), np.uint32(f)  # x < 2^32: a 32-bit division is quicker
        states[lane] = (np.uint64(x32 // f32) << np.uint64(16)) + np.uint64(x32 % f32) + np.uint64(_at(starts, t))
    for lane in range(lanes - 1, -1, -1):  # reversed, the decoder reads state 0 first, high word first
        out[n] = np.uint16(states[lane] & np.uint64(0xFFFF))
        out[n + 1] = np.uint16(states[lane] >> np.uint64(16))
        n += 2
    return n


LANES = 4  # interleaved rANS states of format versions 3 and 4 (version 2's streams have 2)
LATTICE = 8  # the first step's spacing: the decoder's planes are laid out for spacings 8, 4, 2
COARSE = 6  # the slot lookup table has one entry per 2^COARSE slots
CELL_LIMIT = 1 << 48  # magnitudes from here on take the last table


def edge_cells(edges: np.ndarray) -> np.ndarray:
    """For magnitudes ``1 <= m < 2^48``: the number of ``edges`` at or below the start of ``m``'s cell.

    A cell is a float64 exponent and the top six mantissa bits (1/64 of an octave); the
    ladder's edges are a quarter octave apart, so a cell holds at most one edge and one
    comparison finishes the count.
    """
    index = np.arange(48 << 6)
    starts = (2.0 ** (index >> 6)) * (1 + (index & 63) / 64)  # exact: powers of two times k/64
    assert np.all(np.diff(edges) > 0) and np.all(edges[1:] / edges[:-1] > 1 + 2 / 64)
    return np.searchsorted(edges, starts, side="right").astype(np.int64)


def decoder_tables(tables: np.ndarray, cum: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`decode_interlaced` looks symbols up in: ``(lookup, intervals, ends)``.

    ``intervals`` (uint32) holds every table's intervals back to back, each ``cumulative
    frequency | frequency << 16``; ``lookup`` (uint16, ``2^(16 - COARSE)`` entries a table) the
    index in ``intervals`` of the first interval reaching into each coarse slot range (decoding
    steps on in the rare range that holds more than one); ``ends`` ``(K, 2)`` (int64) each
    table's ``(index of symbol 0 less its radius, index of its escape)``, so an index gives the
    decoded offset without the table's own numbers on the state's dependency chain. Small
    tables: a sample's read starts with the caches full of other work (a training step, an
    image decode), and every line of table it touches comes from memory.
    """
    sizes = 2 * radii.astype(np.int64) + 2
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    intervals = np.concatenate([cum[k, :size] | (tables[k, :size].astype(np.int64) << 16) for k, size in enumerate(sizes)])
    assert intervals.size < 1 << 16 and np.all(tables < 1 << 16)  # indices fit the lookup, frequencies their 16 bits
    starts = np.arange(0, 1 << PRECISION, 1 << COARSE)
    lookup = np.concatenate([first[k] + np.searchsorted(cum[k, 1 : size + 1], starts, side="right") for k, size in enumerate(sizes)])
    ends = np.stack([first + radii, first + sizes - 1], axis=1).astype(np.int64)
    return lookup.astype(np.uint16), intervals.astype(np.uint32), ends


@njit(cache=True, nogil=True, inline="always")
def _row_count(size: int, start: int, s: int) -> int:  # pragma: no cover - compiled
    """Positions ``start, start + s, ...`` below ``size``."""
    return (size - start + s - 1) // s


@njit(cache=True, nogil=True, inline="always")
def _value_features(n0: int, n1: int, n2: int, n3: int, act: int, others_flag: int) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """The context of a position from its four neighbours' values ``n0..n3`` (pairs 0-3 and 1-2): the two
    pair sums, their spread ``V`` and the other channels' activity ``X`` there (``act``, the four
    neighbours' summed activity, less the channel's own magnitudes when ``others_flag``)."""
    n0, n1, n2, n3 = np.int64(n0), np.int64(n1), np.int64(n2), np.int64(n3)
    p1 = n0 + n3
    p2 = n1 + n2
    total = p1 + p2
    spread = (abs(4 * n0 - total) + abs(4 * n1 - total) + abs(4 * n2 - total) + abs(4 * n3 - total)) >> 2
    others = np.int64(act) - others_flag * (abs(n0) + abs(n1) + abs(n2) + abs(n3))
    return p1, p2, spread, others


@njit(cache=True, nogil=True, inline="always")
def _residual_feature(r0: int, r1: int, r2: int, r3: int) -> int:  # pragma: no cover - compiled
    """The rest of the context: the four neighbours' own residual magnitudes ``R``."""
    return abs(np.int64(r0)) + abs(np.int64(r1)) + abs(np.int64(r2)) + abs(np.int64(r3))


@njit(cache=True, nogil=True, inline="always")
def _prediction(p1: int, p2: int, alpha1: int, alpha2: int, alpha_shift: int, max_symbol: int) -> int:  # pragma: no cover - compiled
    """``mu = alpha1 * p1 / 2 + alpha2 * p2 / 2`` in fixed point, rounded, within the symbol range."""
    mu = (p1 * alpha1 + p2 * alpha2 + (np.int64(1) << alpha_shift)) >> (alpha_shift + 1)
    return min(max(mu, -max_symbol), max_symbol)


@njit(cache=True, nogil=True, inline="always")
def _magnitude(a: int, wv: int, wx: int, wr: int, spread: int, others: int, own: int) -> int:  # pragma: no cover - compiled
    """The predicted magnitude ``m = a + wV V + wX X + wR R`` (weights already in units of ``2^-16``)."""
    return a + spread * wv + others * wx + own * wr


@njit(cache=True, nogil=True, inline="always")
def _magnitude_weights(wc: np.ndarray, kind: int) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """A channel's magnitude weights for a step kind, scaled to units of ``2^-16`` (all zero but ``a`` for the first step)."""
    if kind == 0:
        return np.int64(wc[0]) << 6, np.int64(0), np.int64(0), np.int64(0)
    base = 1 + 6 * (kind - 1)
    return np.int64(wc[base + 2]) << 6, np.int64(wc[base + 3]) << 2, np.int64(wc[base + 4]), np.int64(wc[base + 5]) << 2


#: format version 4's log-linear magnitudes: features enter as :func:`_log_of`, ``2^LOG_UNIT log2(1 + f)``;
#: slopes are in units of ``2^-SLOPE_SHIFT``, intercepts of ``2^-INTERCEPT_SHIFT`` (of log2): as coarse as costs
#: no bits, so that the weights stay short in the payload's variable-length header
LOG_UNIT, SLOPE_SHIFT, INTERCEPT_SHIFT = 8, 8, 6
_B_SHIFT = LOG_UNIT + SLOPE_SHIFT - INTERCEPT_SHIFT  # an intercept into the sums' units
LOG_WEIGHTS = 16  # per channel: b0, wY0 (the first step) | alpha1, alpha2, b, wV, wR, wA, wY (centres) | the same (edges)


@intrinsic
def _leading_zeros(typingctx, x):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """The count of leading zero bits of a uint64 (nonzero): the processor's own instruction, which vectorises."""
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.uint64(types.uint64), codegen


@njit(cache=True, nogil=True, inline="always")
def _log_of(f: int) -> int:  # pragma: no cover - compiled
    """``2^8 log2(1 + f)`` for a feature ``f >= 0``, piecewise linear between powers of two (Mitchell's
    logarithm, within 0.09 of log2): the bit length of ``1 + f`` and the 8 bits below its top one. Integer
    arithmetic, so every machine computes the same, and no table: a table lookup per feature made the
    decoder's context loop 1.6x slower."""
    v = np.uint64(f) + np.uint64(1)
    zeros = _leading_zeros(v)
    return np.int64(np.uint64(63) - zeros) * 256 + np.int64(((v << zeros) >> np.uint64(55)) & np.uint64(255))


@njit(cache=True, nogil=True)
def log_features(f: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`_log_of` of every entry of ``f`` (int64, ``>= 0``): what the tests compare with exact arithmetic."""
    out = np.empty_like(f)
    for i in range(f.size):
        out[i] = _log_of(f[i])
    return out


@njit(cache=True, nogil=True, inline="always")
def _log_index(b: int, wv: int, wr: int, wa: int, wy: int, lv: int, lr: int, la: int, ly: int, k0: int, top: int) -> int:  # pragma: no cover - compiled
    """The ladder table of the magnitude ``log2 m = b + wV lV + wR lR + wA lA + wY lY`` (``b`` already in units of
    ``2^-(LOG_UNIT + SLOPE_SHIFT)``): tables are a quarter octave apart, so the index is ``4 log2 m`` less the
    first table's, rounded (``k0`` holds both), within ``[0, top]``. No search: one shift."""
    return _ladder_index(b + wv * lv + wr * lr + wa * la + wy * ly, k0, top)


@njit(cache=True, nogil=True, inline="always")
def _ladder_index(acc: int, k0: int, top: int) -> int:  # pragma: no cover - compiled
    """The ladder table of ``log2 m = acc`` (in units of ``2^-(LOG_UNIT + SLOPE_SHIFT)``): see :func:`_log_index`."""
    return min(max((4 * acc + k0) >> (LOG_UNIT + SLOPE_SHIFT), 0), top)


@njit(cache=True, nogil=True, inline="always")
def _log_weights(wc: np.ndarray, kind: int) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """A channel's log-linear magnitude weights for a step kind: ``(b, wV, wR, wA, wY)``, ``b`` scaled for :func:`_log_index`."""
    if kind == 0:
        return np.int64(wc[0]) << _B_SHIFT, np.int64(0), np.int64(0), np.int64(0), np.int64(wc[1])
    base = 2 + 7 * (kind - 1)
    return (np.int64(wc[base + 2]) << _B_SHIFT, np.int64(wc[base + 3]), np.int64(wc[base + 4]), np.int64(wc[base + 5]),
            np.int64(wc[base + 6]))


@njit(cache=True, nogil=True, inline="always")
def _alphas(wc: np.ndarray, kind: int, log_model: bool) -> tuple[int, int]:  # pragma: no cover - compiled
    """A channel's prediction weights for a step kind (1 or 2), in either weight layout."""
    base = 2 + 7 * (kind - 1) if log_model else 1 + 6 * (kind - 1)
    return np.int64(wc[base]), np.int64(wc[base + 1])


@njit(cache=True, nogil=True)
def _table_indices(magnitudes: np.ndarray, floats: np.ndarray, ks: np.ndarray, edges: np.ndarray, cells: np.ndarray) -> None:  # pragma: no cover - compiled
    """``ks[u]`` = the number of ladder ``edges`` at or below ``magnitudes[u]``, for every ``u`` of ``ks``.

    A float's exponent and top mantissa bits pick a cell holding at most one edge (cells are
    1/64 of an octave, edges 1/4 apart), one exact integer comparison decides; ``edges``
    ends with a sentinel above every magnitude, so the comparison needs no bounds test.
    Two branch-free passes, the first vectorised.
    """
    t = ks.size
    f = floats[:t]
    for u in range(t):
        f[u] = np.float64(min(max(magnitudes[u], 1), CELL_LIMIT - 1))
    bits = floats.view(np.int64)
    for u in range(t):
        k = _at(cells, (bits[u] >> 46) - (1023 << 6))
        ks[u] = k + (_at(edges, k) <= magnitudes[u])


@njit(cache=True, nogil=True)
def code_interlaced(features: np.ndarray, weights: np.ndarray, table: np.ndarray, max_symbol: int,
                    radii: np.ndarray, edges: np.ndarray, tables: np.ndarray, cum: np.ndarray, cells: np.ndarray,
                    starts: np.ndarray, freqs: np.ndarray, raw: np.ndarray, log_model: bool,
                    k0: int) -> None:  # pragma: no cover - compiled
    """The encoder's side of :func:`decode_interlaced`, from the features ``(B, FEATURES, symbols)`` and the
    weights ``(B, C, 13)`` (the log-linear model: ``(B, C, LOG_WEIGHTS)``, tables chosen by :func:`_log_index`
    with ``k0``): fills every symbol's cumulative frequency ``starts``, frequency ``freqs`` and
    ``raw`` value (``value + max_symbol`` after an escape, else -1), in coding order
    (:func:`encode_symbols`' input; each ``B * symbols`` long). ``table``: the planes' :func:`plane_table`.
    """
    batch = features.shape[0]
    channels = weights.shape[1]
    steps = step_kinds_and_sizes(table)
    most = most_per_step(table)
    top = tables.shape[0] - 1
    magnitudes, ks, floats = np.empty(most, dtype=np.int64), np.empty(most, dtype=np.int64), np.empty(most, dtype=np.float64)
    n = 0
    for b in range(batch):
        values, spreads, others, mus, owns, same = (features[b, 0], features[b, 3], features[b, 4], features[b, 5], features[b, 6],
                                                    features[b, 7])
        u = 0
        for st in range(steps.shape[0]):
            m = steps[st, 1]
            for c in range(channels):
                so, xo, ro, yo = spreads[u : u + m], others[u : u + m], owns[u : u + m], same[u : u + m]
                if log_model:  # the features' own columns, not features[:, e]: contiguous loads vectorise
                    lb, lv, lr, la, ly = _log_weights(weights[b, c], steps[st, 0])
                    for e in range(m):
                        ks[e] = _log_index(lb, lv, lr, la, ly, _log_of(so[e]), _log_of(ro[e]), _log_of(xo[e]), _log_of(yo[e]), k0, top)
                else:
                    a, wv, wx, wr = _magnitude_weights(weights[b, c], steps[st, 0])
                    for e in range(m):
                        magnitudes[e] = _magnitude(a, wv, wx, wr, so[e], xo[e], ro[e])
                    _table_indices(magnitudes, floats, ks[:m], edges, cells)
                vo, uo = values[u : u + m], mus[u : u + m]
                so, fo, wo = starts[n : n + m], freqs[n : n + m], raw[n : n + m]
                for e in range(m):  # branch-free: an escape takes the table's last entry and keeps the raw value
                    k = ks[e]
                    window = _at(radii, k)
                    r = np.int64(vo[e]) - np.int64(uo[e])
                    escape = abs(r) > window
                    i = 2 * window + 1 if escape else r + window
                    so[e], fo[e] = cum[np.uint64(k), np.uint64(i)], tables[np.uint64(k), np.uint64(i)]
                    wo[e] = np.int64(vo[e]) + max_symbol if escape else -1
                u += m
                n += m


@njit(cache=True, nogil=True)
def _shifted_cost(accs: np.ndarray, offsets: np.ndarray, shift: int, costs: np.ndarray, firsts: np.ndarray, radii: np.ndarray,
                  k0: int, top: int) -> float:  # pragma: no cover - compiled
    """The bits of a group's sampled symbols (``accs``: :func:`_log_index`'s sums, ``offsets``: residuals) with every
    magnitude moved ``shift`` ladder steps."""
    total = 0.0
    step = np.int64(1) << (LOG_UNIT + SLOPE_SHIFT - 2)  # a quarter octave
    for i in range(accs.size):
        k = _ladder_index(accs[i] + shift * step, k0, top)
        window = _at(radii, k)
        r = offsets[i]
        total += costs[firsts[k] + (2 * window + 1 if abs(r) > window else r + window)]
    return total


@njit(cache=True, nogil=True)
def intercept_moves(features: np.ndarray, weights: np.ndarray, table: np.ndarray, costs: np.ndarray, firsts: np.ndarray,
                    radii: np.ndarray, k0: int, stride: int, span: int) -> np.ndarray:  # pragma: no cover - compiled
    """Per kind (0, 1, 2) and channel, how far to move the intercept (in its units, ``2^-INTERCEPT_SHIFT``) for every
    ``stride``-th symbol of each step of one item (features ``(FEATURES, symbols)``, weights ``(C, LOG_WEIGHTS)``).

    Two moves on one sample. First to the maximum-likelihood scale of a continuous Laplace for the slopes (``log2``
    of the mean of ``|residual| / m``): least squares on ``log2 |residual|`` finds good slopes but a biased
    intercept. Then by whole ladder steps (within ``span``) to the fewest bits, ``costs[firsts[k] + i]`` being the
    bits of entry ``i`` of table ``k``: where most residuals are 0 (a quiet channel), the discrete tables want a
    larger scale than the continuous one (up to 3 octaves on the storage model's low rates). A walk from there
    while the bits fall: they are unimodal in the shift."""
    channels = weights.shape[0]
    steps = step_kinds_and_sizes(table)
    top = radii.size - 1
    counts = np.zeros(3 * channels + 1, np.int64)
    for st in range(steps.shape[0]):
        for c in range(channels):
            counts[steps[st, 0] * channels + c + 1] += len(range(0, steps[st, 1], stride))
    starts = np.cumsum(counts)
    accs, offsets, fill = np.empty(starts[-1], np.int64), np.empty(starts[-1], np.int64), starts[:-1].copy()
    u = 0
    for st in range(steps.shape[0]):
        kind, m = steps[st, 0], steps[st, 1]
        for c in range(channels):
            g = kind * channels + c
            lb, lv, lr, la, ly = _log_weights(weights[c], kind)
            for e in range(u, u + m, stride):
                accs[fill[g]] = (lb + lv * _log_of(features[3, e]) + lr * _log_of(features[6, e]) + la * _log_of(features[4, e])
                                 + ly * _log_of(features[7, e]))
                offsets[fill[g]] = np.int64(features[0, e]) - np.int64(features[5, e])
                fill[g] += 1
            u += m
    moves = np.zeros((3, channels), np.int64)
    scale = 2.0 ** -(LOG_UNIT + SLOPE_SHIFT)
    unit = 1 << INTERCEPT_SHIFT
    for g in range(3 * channels):
        a, o = accs[starts[g] : starts[g + 1]], offsets[starts[g] : starts[g + 1]]
        if a.size:  # a kind without symbols keeps its intercept
            total = 0.0
            for i in range(a.size):
                total += abs(np.float64(o[i])) * np.exp2(-a[i] * scale)
            move = np.int64(np.rint(np.log2(max(total, 1e-9) / a.size) * unit))
            a = a + (move << _B_SHIFT)
            best, shift = _shifted_cost(a, o, 0, costs, firsts, radii, k0, top), 0
            for direction in (1, -1):
                while abs(shift + direction) <= span:
                    bits = _shifted_cost(a, o, shift + direction, costs, firsts, radii, k0, top)
                    if bits >= best:
                        break
                    best, shift = bits, shift + direction
                if shift != 0:
                    break  # it moved up: no need to try down
            moves[g // channels, g % channels] = move + shift * (unit // 4)  # a ladder step is a quarter octave
    return moves


# -- planes per step ---------------------------------------------------------------------------------
# Both sides keep each step's positions as a plane of their own, zero-padded by one, so that
# every loop over a step reads its neighbours and writes its symbols with unit stride (strided
# views of the full planes keep a compiler from vectorising the context arithmetic, which then
# took longer than the entropy coding). At spacing ``s`` the positions ``(0, 0) mod s`` (``E``,
# decoded before) neighbour the centres ``(h, h)`` (``OO``) and edges ``(0, h)`` (``EO``) and
# ``(h, 0)`` (``OE``), ``h = s / 2``; the four interleave into the next spacing's ``E``, and at
# spacing 2 into the output.
#: per step, its four neighbours (plane: 0 for E, 1 for OO; row offset; column offset), pairs 0-3 and 1-2:
#: for the centres the diagonals (-, -), (-, +), (+, -), (+, +); for the edges left, up, down, right
_CENTRE = ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1))
_EDGE_0H = ((0, 0, 0), (1, -1, 0), (1, 0, 0), (0, 0, 1))
_EDGE_H0 = ((1, 0, -1), (0, 0, 0), (0, 1, 0), (1, 0, 0))
#: a spacing's three steps after its E (its planes 1-3 in :func:`plane_table`): centres, then the two edges
_KINDS, _SPECS = (1, 2, 2), (_CENTRE, _EDGE_0H, _EDGE_H0)


@njit(cache=True, nogil=True)
def plane_sizes(rows: int, cols: int) -> np.ndarray:  # pragma: no cover - compiled
    """``(3, 4, 2)``: per spacing 8, 4, 2 (from :data:`LATTICE` down) the unpadded sizes of its ``E``, ``OO``, ``EO``, ``OE`` planes."""
    out = np.empty((3, 4, 2), dtype=np.int64)
    s = LATTICE
    for level in range(3):
        h = s // 2
        re, ce = _row_count(rows, 0, s), _row_count(cols, 0, s)
        rh, ch = _row_count(rows, h, s), _row_count(cols, h, s)
        out[level, 0, 0], out[level, 0, 1] = re, ce
        out[level, 1, 0], out[level, 1, 1] = rh, ch
        out[level, 2, 0], out[level, 2, 1] = re, ch
        out[level, 3, 0], out[level, 3, 1] = rh, ce
        s = h
    return out


@njit(cache=True, nogil=True)
def plane_table(rows: int, cols: int) -> np.ndarray:  # pragma: no cover - compiled
    """``(3, 5, 3)``: per spacing 8, 4, 2 its planes ``E``, ``OO``, ``EO``, ``OE`` and the next spacing's ``E`` as
    ``(offset, rows, cols)`` in a flat buffer of one channel (offsets per channel; ``-1`` for spacing 2's
    next ``E``, which is the output). :func:`plane_buffer_size` entries hold them all."""
    sizes = plane_sizes(rows, cols)
    out = np.empty((3, 5, 3), dtype=np.int64)
    out[0, 0, 0], out[0, 0, 1], out[0, 0, 2] = 0, sizes[0, 0, 0], sizes[0, 0, 1]
    o = (sizes[0, 0, 0] + 2) * (sizes[0, 0, 1] + 2)
    for level in range(3):
        if level:
            out[level, 0] = out[level - 1, 4]
        for p in range(1, 4):
            out[level, p, 0], out[level, p, 1], out[level, p, 2] = o, sizes[level, p, 0], sizes[level, p, 1]
            o += (sizes[level, p, 0] + 2) * (sizes[level, p, 1] + 2)
        if level < 2:
            out[level, 4, 0], out[level, 4, 1], out[level, 4, 2] = o, sizes[level + 1, 0, 0], sizes[level + 1, 0, 1]
            o += (sizes[level + 1, 0, 0] + 2) * (sizes[level + 1, 0, 1] + 2)
        else:
            out[level, 4, 0], out[level, 4, 1], out[level, 4, 2] = -1, rows, cols
    return out


@njit(cache=True, nogil=True)
def plane_buffer_size(rows: int, cols: int) -> int:  # pragma: no cover - compiled
    """Entries of one channel's planes, padded, over all spacings: where :func:`plane_table`'s last plane ends."""
    last = plane_table(rows, cols)[2, 3]
    return last[0] + (last[1] + 2) * (last[2] + 2)


@njit(cache=True, nogil=True)
def most_per_step(table: np.ndarray) -> int:  # pragma: no cover - compiled
    """The most positions a step of :func:`plane_table` ``table`` has: spacing 2's ``E`` is at least as large as any step's plane."""
    return table[2, 0, 1] * table[2, 0, 2]


@njit(cache=True, nogil=True)
def step_kinds_and_sizes(table: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``(10, 2)``: the coding order's steps, each its kind (0 the first, 1 centres, 2 edges) and its positions."""
    out = np.empty((10, 2), dtype=np.int64)
    out[0, 0], out[0, 1] = 0, table[0, 0, 1] * table[0, 0, 2]
    planes = np.empty((3, 3), dtype=np.int64)
    for st in range(9):
        kind, _ = _step(table, st, planes)
        out[st + 1, 0], out[st + 1, 1] = kind, planes[2, 1] * planes[2, 2]
    return out


@njit(cache=True, nogil=True, inline="always")
def _carve(buf: np.ndarray, o: int, lead: int, r: int, c: int) -> np.ndarray:  # pragma: no cover - compiled
    """The padded plane(s) ``(lead, r + 2, c + 2)`` at offset ``o`` of a flat buffer."""
    return buf[o : o + lead * (r + 2) * (c + 2)].reshape((lead, r + 2, c + 2))


@njit(cache=True, nogil=True, inline="always")
def _row_start(lead: int, o: int, r: int, c: int, ch: int, a: int) -> int:  # pragma: no cover - compiled
    """Where row ``a`` of channel ``ch`` of the padded plane ``(o, r, c)`` (offset, rows, cols) starts in a flat buffer of
    ``lead`` channels: row ``a`` may be -1 or ``r`` (the padding), and column -1 is one entry before."""
    return lead * o + ch * (r + 2) * (c + 2) + (a + 1) * (c + 2) + 1


@njit(cache=True, nogil=True, inline="always")
def _start(planes: np.ndarray, spec: tuple[int, int, int], lead: int, ch: int, a: int) -> int:  # pragma: no cover - compiled
    """Where row ``a`` of a step's neighbour ``spec`` ``(plane, row offset, column offset)`` starts; ``planes``:
    ``(offset, rows, cols)`` of ``E`` (row 0) and ``OO`` (row 1)."""
    p, di, dj = spec
    return _row_start(lead, planes[p, 0], planes[p, 1], planes[p, 2], ch, a + di) + dj


@njit(cache=True, nogil=True)
def _neighbour_activity(activity: np.ndarray, planes: np.ndarray, specs: tuple, act: np.ndarray) -> None:  # pragma: no cover - compiled
    """``act``: the four neighbours' summed activity at every position of the step's plane (``planes[2]``), in
    raster order; shared by all channels."""
    rows, cols = planes[2, 1], planes[2, 2]
    for a in range(rows):
        b0, b1, b2, b3 = _bases(planes, specs, 1, 0, a)
        ax = act[a * cols : (a + 1) * cols]
        for u in range(cols):
            ax[u] = (np.int64(_at(activity, b0 + u)) + np.int64(_at(activity, b1 + u)) + np.int64(_at(activity, b2 + u))
                     + np.int64(_at(activity, b3 + u)))


@njit(cache=True, nogil=True)
def _plane_activity(buf: np.ndarray, activity: np.ndarray, channels: int, first: int, o: int, r: int, c: int) -> None:  # pragma: no cover - compiled
    """The activity of the plane ``(o, r, c)``: the sum of ``|buf|`` over channels ``first..`` (the linear model
    sums the values of channels 1.., the log-linear one the residuals of all)."""
    for a in range(r):
        row = _row_start(1, o, r, c, 0, a)
        out = activity[row : row + c]
        for u in range(c):
            out[u] = 0
        for ch in range(first, channels):
            start = _row_start(channels, o, r, c, ch, a)
            for u in range(c):
                out[u] += abs(_at(buf, start + u))


@njit(cache=True, nogil=True, inline="always")
def _step(table: np.ndarray, st: int, planes: np.ndarray) -> tuple[int, tuple]:  # pragma: no cover - compiled
    """Step ``st`` (0-8) after the first: fills ``planes`` with its ``E``, ``OO`` and own plane; returns its kind and neighbours."""
    level, k = st // 3, st % 3
    planes[0], planes[1], planes[2] = table[level, 0], table[level, 1], table[level, 1 + k]
    return _KINDS[k], _SPECS[k]


@njit(cache=True, nogil=True, inline="always")
def _bases(planes: np.ndarray, specs: tuple, lead: int, ch: int, a: int) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """:func:`_start` of a step's four neighbours."""
    return (_start(planes, specs[0], lead, ch, a), _start(planes, specs[1], lead, ch, a), _start(planes, specs[2], lead, ch, a),
            _start(planes, specs[3], lead, ch, a))


# -- the encoder's passes, on the decoder's planes ------------------------------------------------
_PHASE = ((0, 0), (1, 1), (0, 1), (1, 0))  # the phases of E, OO, EO, OE, in units of half the spacing


@njit(cache=True, nogil=True)
def encoder_planes(q: np.ndarray, values: np.ndarray, activity: np.ndarray, table: np.ndarray, log_model: bool) -> None:  # pragma: no cover - compiled
    """Lay one item's latents ``q`` ``(C, rows, cols)`` out as the decoder's planes (every ``E`` too: the encoder
    knows every value at once) in the flat buffers ``values`` (``C`` channels) and, for the linear model,
    ``activity`` (the sum of ``|values|`` of channels 1.., as the decoder keeps it)."""
    channels = q.shape[0]
    values[:] = 0
    activity[:] = 0
    s = LATTICE
    for level in range(3):
        h = s // 2
        for p in range(0 if level == 0 else 1, 5 if level < 2 else 4):  # a later spacing's E is the last one's next
            o, r, c = table[level, p, 0], table[level, p, 1], table[level, p, 2]
            i0, j0, step = (0, 0, h) if p == 4 else (_PHASE[p][0] * h, _PHASE[p][1] * h, s)
            for ch in range(channels):
                for a in range(r):
                    src = q[ch, i0 + a * step, j0 :: step]
                    dst = values[_row_start(channels, o, r, c, ch, a) :]
                    for u in range(c):
                        dst[u] = src[u]
            if not log_model:  # the log-linear model's activity is of residuals: encoder_residuals lays it out
                _plane_activity(values, activity, channels, 1, o, r, c)
        s = h


FEATURES = 8  # per symbol, as the encoder's passes leave them: value, p1, p2, V, X (the log-linear model: A), prediction, R, Y


@njit(cache=True, nogil=True)
def encoder_values(values: np.ndarray, activity: np.ndarray, table: np.ndarray, channels: int,
                   features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The encoder's first pass over :func:`encoder_planes`' planes: every symbol's value and the context
    features that need no prediction (the pair sums ``p1``, ``p2``, the spread ``V``, the activity ``X``),
    into ``features`` ``(FEATURES, symbols)`` in coding order; returns the normal equations of the
    predictions per step kind (1, 2) and channel: ``(2, C, 2, 2)`` and ``(2, C, 2)`` (features
    ``p1 / 2, p2 / 2``, target the value). The sums are exact integers (in quarters), so their order does not matter.
    """
    gram = np.zeros((2, channels, 2, 2))
    rhs = np.zeros((2, channels, 2))
    o, r, c = table[0, 0, 0], table[0, 0, 1], table[0, 0, 2]
    n = r * c
    for ch in range(channels):  # the first step: values only
        f = features[:, ch * n : (ch + 1) * n]
        for a in range(r):
            row = values[_row_start(channels, o, r, c, ch, a) :]
            for u in range(c):
                f[0, a * c + u], f[1, a * c + u], f[2, a * c + u], f[3, a * c + u], f[4, a * c + u] = row[u], 0, 0, 0, 0
    start = channels * n
    planes = np.zeros((3, 3), dtype=np.int64)
    act = np.empty(most_per_step(table), np.int64)
    for st in range(9):
        kind, specs = _step(table, st, planes)
        o, r, c = planes[2, 0], planes[2, 1], planes[2, 2]
        n = r * c
        _neighbour_activity(activity, planes, specs, act)
        for ch in range(channels):
            others_flag = 0 if ch == 0 else 1
            u0 = start + ch * n
            f0, f1, f2, f3, f4 = features[0, u0 : u0 + n], features[1, u0 : u0 + n], features[2, u0 : u0 + n], features[3, u0 : u0 + n], features[4, u0 : u0 + n]
            for a in range(r):
                own = _row_start(channels, o, r, c, ch, a)
                b0, b1, b2, b3 = _bases(planes, specs, channels, ch, a)
                for u in range(c):
                    e = a * c + u
                    f0[e] = _at(values, own + u)
                    f1[e], f2[e], f3[e], f4[e] = _value_features(_at(values, b0 + u), _at(values, b1 + u), _at(values, b2 + u),
                                                                 _at(values, b3 + u), act[e], others_flag)
            s11, s12, s22, r1, r2 = 0, 0, 0, 0, 0
            for e in range(n):  # a second loop: plain contiguous sums vectorise
                x1, x2, y = np.int64(f1[e]), np.int64(f2[e]), np.int64(f0[e])
                s11 += x1 * x1
                s12 += x1 * x2
                s22 += x2 * x2
                r1 += x1 * y
                r2 += x2 * y
            G = gram[kind - 1, ch]
            G[0, 0] += 0.25 * s11
            G[0, 1] += 0.25 * s12
            G[1, 0] += 0.25 * s12
            G[1, 1] += 0.25 * s22
            rhs[kind - 1, ch, 0] += 0.5 * r1
            rhs[kind - 1, ch, 1] += 0.5 * r2
        start += channels * n
    return gram, rhs


@njit(cache=True, nogil=True)
def _normal_equations(gram: np.ndarray, rhs: np.ndarray, values: np.ndarray, mus: np.ndarray, f1: np.ndarray, f2: np.ndarray,
                      f3: np.ndarray, f4: np.ndarray, n: int, stride: int, log_model: bool,
                      targets: np.ndarray) -> None:  # pragma: no cover - compiled
    """Add to ``gram`` ``(5, 5)`` (upper triangle) and ``rhs`` ``(5,)`` the normal equations of a magnitude model over
    every ``stride``-th of a step's ``n`` symbols: the linear one's ``|residual| ~ 1, f1, f2, f3, f4`` (exact: integer
    sums stay below 2^53), or the log-linear one's ``targets[|residual|] ~ 1, l(f1), .., l(f4)`` (:func:`_log_of`).
    Sums in locals: accumulating into the arrays themselves chained every sample through memory (five times slower)."""
    g00 = g01 = g02 = g03 = g04 = g11 = g12 = g13 = g14 = g22 = g23 = g24 = g33 = g34 = g44 = 0.0
    h0 = h1 = h2 = h3 = h4 = 0.0
    for e in range(0, n, stride):
        r = abs(np.int64(values[e]) - np.int64(mus[e]))
        if log_model:
            x1, x2 = np.float64(_log_of(f1[e])), np.float64(_log_of(f2[e]))
            x3, x4 = np.float64(_log_of(f3[e])), np.float64(_log_of(f4[e]))
            y = targets[r]
        else:
            x1, x2, x3, x4, y = np.float64(f1[e]), np.float64(f2[e]), np.float64(f3[e]), np.float64(f4[e]), np.float64(r)
        g00 += 1.0
        g01 += x1
        g02 += x2
        g03 += x3
        g04 += x4
        g11 += x1 * x1
        g12 += x1 * x2
        g13 += x1 * x3
        g14 += x1 * x4
        g22 += x2 * x2
        g23 += x2 * x3
        g24 += x2 * x4
        g33 += x3 * x3
        g34 += x3 * x4
        g44 += x4 * x4
        h0 += y
        h1 += x1 * y
        h2 += x2 * y
        h3 += x3 * y
        h4 += x4 * y
    for i, j, v in ((0, 0, g00), (0, 1, g01), (0, 2, g02), (0, 3, g03), (0, 4, g04), (1, 1, g11), (1, 2, g12), (1, 3, g13), (1, 4, g14),
                    (2, 2, g22), (2, 3, g23), (2, 4, g24), (3, 3, g33), (3, 4, g34), (4, 4, g44)):
        gram[i, j] += v
    for i, v in ((0, h0), (1, h1), (2, h2), (3, h3), (4, h4)):
        rhs[i] += v


@njit(cache=True, nogil=True)
def encoder_residuals(values: np.ndarray, resid: np.ndarray, activity: np.ndarray, table: np.ndarray, w: np.ndarray, max_symbol: int,
                      alpha_shift: int, features: np.ndarray, log_model: bool, targets: np.ndarray,
                      stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The encoder's second pass, with the predictions of ``w`` fixed: every symbol's prediction and the
    neighbours' residual magnitudes ``R`` (and for the log-linear model the neighbours' residual activity ``A``
    and the earlier channels' residual magnitudes ``Y`` at the same position), into ``features`` (left by
    :func:`encoder_values`), residuals into the planes of ``resid``. Returns the mean ``|residual|`` of the first
    step ``(C,)`` and, per kind (0, 1, 2) and channel, the normal equations ``(3, C, 5, 5)`` and ``(3, C, 5)`` of
    the magnitude model: for the linear one ``|residual| ~ 1, V, X, R`` (kinds 1 and 2, upper-left 4 x 4; exact
    integer sums), for the log-linear one ``targets[|residual|] ~ 1, lV, lR, lA, lY`` (``lY`` only in the
    first step; ``l`` the log features of :func:`_log_of`, ``targets`` the fitted log2 magnitude of each ``|residual|``; every
    ``stride``-th symbol: a sample is plenty for five weights).
    """
    channels = w.shape[0]
    resid[:] = 0
    activity[:] = 0
    o, r, c = table[0, 0, 0], table[0, 0, 1], table[0, 0, 2]
    n = r * c
    first = np.zeros(channels)
    gram = np.zeros((3, channels, 5, 5))
    rhs = np.zeros((3, channels, 5))
    most = most_per_step(table)
    same = np.zeros(most, np.int64)  # Y: the earlier channels' |residual| at the step's positions
    act = np.empty(most, np.int64)
    zeros = np.zeros(most, np.int64)
    for ch in range(channels):  # the first step: residual = value
        f0, f4, f5, f6, f7 = (features[0, ch * n : (ch + 1) * n], features[4, ch * n : (ch + 1) * n], features[5, ch * n : (ch + 1) * n],
                              features[6, ch * n : (ch + 1) * n], features[7, ch * n : (ch + 1) * n])
        total = 0
        for a in range(r):
            row = _row_start(channels, o, r, c, ch, a)
            for u in range(c):
                e = a * c + u
                resid[np.uint64(row + u)] = f0[e]
                f4[e], f5[e], f6[e], f7[e] = 0, 0, 0, same[e]
                total += abs(np.int64(f0[e]))
        first[ch] = total / max(n, 1)
        if log_model:  # only Y: the other features are zero
            _normal_equations(gram[0, ch], rhs[0, ch], f0, zeros, same, zeros, zeros, zeros, n, stride, True, targets)
            for e in range(n):
                same[e] += abs(np.int64(f0[e]))
    if log_model:
        _plane_activity(resid, activity, channels, 0, o, r, c)
    start = channels * n
    planes = np.zeros((3, 3), dtype=np.int64)
    for st in range(9):
        kind, specs = _step(table, st, planes)
        o, r, c = planes[2, 0], planes[2, 1], planes[2, 2]
        n = r * c
        if log_model:
            _neighbour_activity(activity, planes, specs, act)
            same[:n] = 0
        for ch in range(channels):
            alpha1, alpha2 = _alphas(w[ch], kind, log_model)
            u0 = start + ch * n
            f0, f1, f2, f3, f4 = features[0, u0 : u0 + n], features[1, u0 : u0 + n], features[2, u0 : u0 + n], features[3, u0 : u0 + n], features[4, u0 : u0 + n]
            f5, f6, f7 = features[5, u0 : u0 + n], features[6, u0 : u0 + n], features[7, u0 : u0 + n]
            for a in range(r):
                own = _row_start(channels, o, r, c, ch, a)
                b0, b1, b2, b3 = _bases(planes, specs, channels, ch, a)
                for u in range(c):
                    e = a * c + u
                    mu = _prediction(f1[e], f2[e], alpha1, alpha2, alpha_shift, max_symbol)
                    resid[np.uint64(own + u)] = f0[e] - mu
                    f5[e] = mu
                    f6[e] = _residual_feature(_at(resid, b0 + u), _at(resid, b1 + u), _at(resid, b2 + u), _at(resid, b3 + u))
            if log_model:
                for e in range(n):
                    f4[e], f7[e] = act[e], same[e]
                _normal_equations(gram[kind, ch], rhs[kind, ch], f0, f5, f3, f6, act, same, n, stride, True, targets)
                for e in range(n):
                    same[e] += abs(np.int64(f0[e]) - np.int64(f5[e]))
            else:  # 1, V, X, R against |residual|, every symbol
                _normal_equations(gram[kind, ch], rhs[kind, ch], f0, f5, f3, f4, f6, zeros, n, 1, False, targets)
        start += channels * n
        if log_model:
            _plane_activity(resid, activity, channels, 0, o, r, c)
        if st % 3 == 2 and st < 8:  # a spacing's residuals (and their activity) into the next spacing's E, which the next steps read
            _interleave(_plane(resid, channels, table[st // 3, 4]), _phases(resid, channels, table[st // 3]), 1)
            if log_model:
                _interleave(_plane(activity, 1, table[st // 3, 4]), _phases(activity, 1, table[st // 3]), 1)
    for kind in range(3):  # the lower triangles
        for ch in range(channels):
            for i in range(5):
                for j in range(i):
                    gram[kind, ch, i, j] = gram[kind, ch, j, i]
    return first, gram, rhs


@njit(cache=True, nogil=True, inline="always")
def _symbol(x: int, k: int, words: np.ndarray, ptr: int, lookup: np.ndarray, intervals: np.ndarray) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Decode one symbol of table ``k`` from state ``x``: ``(new state, new word pointer, interval index)``."""
    slot = x & 0xFFFF
    i = np.int64(_at(lookup, (k << (PRECISION - COARSE)) + (slot >> COARSE)))
    entry = np.int64(_at(intervals, i))
    while slot - (entry & 0xFFFF) >= (entry >> 16):  # step to the interval that holds the slot
        i += 1
        entry = np.int64(_at(intervals, i))
    x = (entry >> 16) * (x >> 16) + slot - (entry & 0xFFFF)
    low = np.int64(x < LOWER)  # renormalise without a branch (the padding makes the read safe):
    x = (x << (low << 4)) | (np.int64(_at(words, ptr)) & -low)  # a branch here is mispredicted often
    return x, ptr + low, i


@njit(cache=True, nogil=True, inline="always")
def _raw(x: int, words: np.ndarray, ptr: int) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Decode an escape's raw 16-bit value, coded at frequency 1: ``x = 1 * (x >> 16) + slot - slot``."""
    slot = x & 0xFFFF
    x = x >> 16
    low = np.int64(x < LOWER)
    x = (x << (low << 4)) | (np.int64(_at(words, ptr)) & -low)
    return x, ptr + low, slot


@njit(cache=True, nogil=True, error_model="numpy")
def _rans_run(t: int, ks: np.ndarray, mus: np.ndarray, decoded: np.ndarray, words: np.ndarray, state: np.ndarray,
              lookup: np.ndarray, intervals: np.ndarray, ends: np.ndarray, max_symbol: int, lanes: int) -> None:  # pragma: no cover - compiled
    """Decode ``t`` symbols, symbol ``u`` with table ``ks[u]``, into ``decoded[:t]`` as residuals from the predictions
    ``mus`` (read for escapes only). ``state``: the ``lanes`` interleaved states (2 or :data:`LANES`; the next
    symbol's first), then the word pointer, in and out. Tables: :func:`decoder_tables`.

    A function of its own with a loop over flat arrays: few enough live values for the
    processor's registers (with more, the compiler reloaded pointers from the stack at every
    symbol). With four states the processor overlaps four symbols' dependency chains (table
    reads, multiply, renormalisation), where two left it waiting. Values are range-checked by the caller.
    """
    x0, x1, x2, x3, ptr = state[0], state[1], state[2], state[3], state[4]
    # one loop per state count: with the rotation chosen inside a single loop (an inline helper on ``lanes``) the
    # compiler did not split the loop, and four states decoded no faster than two (0.68 ms a photo for both, over the 10 dev photos' latents)
    if lanes == LANES:
        for u in range(t):
            k = _at(ks, u)
            x0, ptr, i = _symbol(x0, k, words, ptr, lookup, intervals)
            x0, x1, x2, x3 = x1, x2, x3, x0  # the next symbol uses the next state
            offset = i - ends[k, 0]
            if i == ends[k, 1]:  # escape: the raw value follows
                x0, ptr, slot = _raw(x0, words, ptr)
                x0, x1, x2, x3 = x1, x2, x3, x0
                offset = slot - max_symbol - _at(mus, u)
            decoded[u] = offset
    else:
        for u in range(t):
            k = _at(ks, u)
            x0, ptr, i = _symbol(x0, k, words, ptr, lookup, intervals)
            x0, x1 = x1, x0
            offset = i - ends[k, 0]
            if i == ends[k, 1]:
                x0, ptr, slot = _raw(x0, words, ptr)
                x0, x1 = x1, x0
                offset = slot - max_symbol - _at(mus, u)
            decoded[u] = offset
    state[0], state[1], state[2], state[3], state[4] = x0, x1, x2, x3, ptr


@njit(cache=True, nogil=True, inline="always")
def _linear_contexts(values: np.ndarray, resid: np.ndarray, planes: np.ndarray, specs: tuple, channels: int, c: int, rows: int, cols: int,
                     wc: np.ndarray, kind: int, act: np.ndarray, magnitudes: np.ndarray, mus: np.ndarray, max_symbol: int,
                     alpha_shift: int) -> None:  # pragma: no cover - compiled
    """The linear model's contexts of channel ``c``'s symbols in a step (kind 1 or 2): predicted magnitudes and predictions."""
    am, wv, wx, wr = _magnitude_weights(wc, kind)
    alpha1, alpha2 = _alphas(wc, kind, False)
    others_flag = 1 if c != 0 else 0
    for a in range(rows):
        b0, b1, b2, b3 = _bases(planes, specs, channels, c, a)
        ax = act[a * cols : (a + 1) * cols]
        mo = magnitudes[a * cols : (a + 1) * cols]
        uo = mus[a * cols : (a + 1) * cols]
        for u in range(cols):
            p1, p2, spread, others = _value_features(_at(values, b0 + u), _at(values, b1 + u), _at(values, b2 + u), _at(values, b3 + u),
                                                     ax[u], others_flag)
            own = _residual_feature(_at(resid, b0 + u), _at(resid, b1 + u), _at(resid, b2 + u), _at(resid, b3 + u))
            uo[u] = _prediction(p1, p2, alpha1, alpha2, alpha_shift, max_symbol)
            mo[u] = _magnitude(am, wv, wx, wr, spread, others, own)


@njit(cache=True, nogil=True, inline="always")
def _log_contexts(values: np.ndarray, resid: np.ndarray, planes: np.ndarray, specs: tuple, channels: int, c: int, rows: int, cols: int,
                  wc: np.ndarray, kind: int, act: np.ndarray, same: np.ndarray, ks: np.ndarray, mus: np.ndarray, max_symbol: int,
                  alpha_shift: int, k0: int, top: int) -> None:  # pragma: no cover - compiled
    """The log-linear model's contexts of channel ``c``'s symbols in a step (kind 1 or 2): table indices and predictions."""
    lb, lv, lr, la, ly = _log_weights(wc, kind)
    alpha1, alpha2 = _alphas(wc, kind, True)
    for a in range(rows):
        b0, b1, b2, b3 = _bases(planes, specs, channels, c, a)
        ax = act[a * cols : (a + 1) * cols]
        ko = ks[a * cols : (a + 1) * cols]
        yo = same[a * cols : (a + 1) * cols]
        uo = mus[a * cols : (a + 1) * cols]
        for u in range(cols):
            p1, p2, spread, _ = _value_features(_at(values, b0 + u), _at(values, b1 + u), _at(values, b2 + u), _at(values, b3 + u), 0, 0)
            own = _residual_feature(_at(resid, b0 + u), _at(resid, b1 + u), _at(resid, b2 + u), _at(resid, b3 + u))
            uo[u] = _prediction(p1, p2, alpha1, alpha2, alpha_shift, max_symbol)
            ko[u] = _log_index(lb, lv, lr, la, ly, _log_of(spread), _log_of(own), _log_of(ax[u]), _log_of(yo[u]),
                               k0, top)


@njit(cache=True, nogil=True)
def _decode_step(values: np.ndarray, resid: np.ndarray, activity: np.ndarray, planes: np.ndarray, specs: tuple, kind: int,
                 state: np.ndarray, words: np.ndarray, weights: np.ndarray, max_symbol: int, alpha_shift: int,
                 edges: np.ndarray, intervals: np.ndarray, lookup: np.ndarray, ends: np.ndarray, cells: np.ndarray, per_step: np.ndarray,
                 floats: np.ndarray, lanes: int, log_model: bool, k0: int) -> None:  # pragma: no cover - compiled
    """Decode one step into its plane of the flat buffers ``values``, ``resid`` (``C`` channels) and ``activity`` (one).

    ``planes`` ``(3, 3)``: ``(offset, rows, cols)`` of the planes ``E`` and ``OO`` it reads (as
    ``specs`` says; the first step, ``kind`` 0, reads nothing) and of its own. ``state``:
    four rANS states (``lanes`` in use), the word pointer and a flag for out-of-range values, carried
    from step to step. ``per_step`` ``(6, n)``: scratch for the step's contexts. Every loop indexes the
    flat buffers from a row's start, so the context arithmetic vectorises. ``log_model``: format version 4's
    log-linear magnitudes (``k0``: see :func:`_log_index`), else the linear ones of versions 2 and 3.
    """
    channels = weights.shape[0]
    o, rows, cols = planes[2, 0], planes[2, 1], planes[2, 2]
    t = rows * cols
    if t == 0:
        return
    act, ks, mus, magnitudes, decoded, same = per_step[0], per_step[1], per_step[2], per_step[3], per_step[4], per_step[5]
    top = ends.shape[0] - 1
    if kind != 0:  # the four neighbours' summed activity, shared by all channels
        _neighbour_activity(activity, planes, specs, act)
    same[:t] = 0
    for c in range(channels):
        # 1. the contexts of the channel's symbols: table index and prediction (one loop per model: a branch
        # inside the loop kept it from vectorising, and decoding took 1.6x as long)
        if kind == 0:
            mus[:t] = 0
            if log_model:
                lb, _, _, _, ly = _log_weights(weights[c], kind)
                for u in range(t):
                    ks[u] = _log_index(lb, 0, 0, 0, ly, 0, 0, 0, _log_of(same[u]), k0, top)
            else:
                magnitudes[:t] = _magnitude_weights(weights[c], kind)[0]
                _table_indices(magnitudes, floats, ks[:t], edges, cells)
        elif log_model:
            _log_contexts(values, resid, planes, specs, channels, c, rows, cols, weights[c], kind, act, same, ks, mus, max_symbol,
                          alpha_shift, k0, top)
        else:
            _linear_contexts(values, resid, planes, specs, channels, c, rows, cols, weights[c], kind, act, magnitudes, mus, max_symbol,
                             alpha_shift)
            _table_indices(magnitudes, floats, ks[:t], edges, cells)
        # 2. the entropy decoding, into a run of the step's symbols, then into the plane's rows
        _rans_run(t, ks, mus, decoded, words, state, lookup, intervals, ends, max_symbol, lanes)
        u, bad = 0, 0
        for a in range(rows):
            row = _row_start(channels, o, rows, cols, c, a)
            gv = values[row : row + cols]
            rv = resid[row : row + cols]
            dv = decoded[u : u + cols]
            mv = mus[u : u + cols]
            for e in range(cols):
                value = mv[e] + dv[e]
                out_of_range = value > max_symbol or value < -max_symbol
                bad |= out_of_range  # flagged, and clamped so that the rest stays bounded
                value = 0 if out_of_range else value
                gv[e] = value
                rv[e] = value - mv[e]
            u += cols
        state[5] |= bad
        if log_model:  # the next channels' Y
            for u in range(t):
                same[u] += abs(decoded[u])
    # 3. the activity of the step's positions, which later steps read
    if log_model:
        _plane_activity(resid, activity, channels, 0, o, rows, cols)
    else:
        _plane_activity(values, activity, channels, 1, o, rows, cols)


@njit(cache=True, nogil=True, inline="always")
def _plane(buf: np.ndarray, lead: int, at: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The padded plane ``at`` ``(offset, rows, cols)`` (a row of :func:`plane_table`) of a flat buffer of ``lead`` channels."""
    return _carve(buf, lead * at[0], lead, at[1], at[2])


@njit(cache=True, nogil=True, inline="always")
def _phases(buf: np.ndarray, lead: int, level: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """A spacing's four planes (``level``: its rows of :func:`plane_table`) in the order of their phases
    ``(0, 0), (0, 1), (1, 0), (1, 1)``: ``E``, ``EO``, ``OE``, ``OO``."""
    return _plane(buf, lead, level[0]), _plane(buf, lead, level[2]), _plane(buf, lead, level[3]), _plane(buf, lead, level[1])


@njit(cache=True, nogil=True, inline="always")
def _interleave(dst: np.ndarray, parts: tuple, pad: int) -> None:  # pragma: no cover - compiled
    """Write ``E``, ``EO``, ``OE``, ``OO`` (padded planes ``(L, r + 2, c + 2)``) into ``dst`` ``(L, ...)`` at phases
    ``(0, 0), (0, 1), (1, 0), (1, 1)``; ``pad``: ``dst``'s own padding (1 for a plane, 0 for the output).

    Row by row of ``dst``, two source rows zipped together: unit-stride reads and writes."""
    lead = dst.shape[0]
    for i0 in range(2):
        even, odd = parts[2 * i0], parts[2 * i0 + 1]
        rows, ce, co = even.shape[1] - 2, even.shape[2] - 2, odd.shape[2] - 2
        for l in range(lead):
            for a in range(rows):
                d = dst[l, pad + i0 + 2 * a, pad:]
                ev, od = even[l, a + 1, 1:], odd[l, a + 1, 1:]
                for u in range(co):
                    d[2 * u] = ev[u]
                    d[2 * u + 1] = od[u]
                if ce > co:
                    d[2 * co] = ev[co]


@njit(cache=True, nogil=True, error_model="numpy")
def decode_interlaced(words: np.ndarray, n_words: int, weights: np.ndarray, out: np.ndarray, max_symbol: int,
                      edges: np.ndarray, intervals: np.ndarray, lookup: np.ndarray, ends: np.ndarray, cells: np.ndarray,
                      alpha_shift: int, values: np.ndarray, resid: np.ndarray, activity: np.ndarray, per_step: np.ndarray,
                      floats: np.ndarray, lanes: int, log_model: bool, k0: int) -> int:  # pragma: no cover - compiled
    """Decode every item of ``out`` ``(B, C, rows, cols)`` from a stream of ``lanes`` interleaved states (2 or
    :data:`LANES`); returns 0 or a :data:`PROBLEMS` code.

    Step by step, and within a step channel by channel, on polyphase planes (see above):
    ``values``, ``resid`` ``(C * plane_buffer_size,)`` and ``activity`` ``(plane_buffer_size,)`` are
    their flat scratch; ``per_step`` ``(6, n)`` (int64) and ``floats`` ``(n,)`` scratch for a step's contexts, ``n``
    at least :func:`most_per_step` of the planes' table. ``lookup`` and ``intervals``: :func:`decoder_tables`.
    ``words`` holds the stream's ``n_words`` words followed by zero padding up to two words per
    symbol and ``2 * lanes`` for the states (the most a stream can consume), so no read can leave
    the array whatever the payload; a stream that reads into the padding is refused afterwards.
    Table reads are bounded by construction (every table's last interval ends at ``2^16``). ``log_model``,
    ``k0``: the magnitude model (see :func:`_decode_step`).
    """
    batch, channels, rows, cols = out.shape
    if n_words < 2 * lanes:
        return 1
    state = np.full(6, LOWER, dtype=np.int64)  # the states (those not in use stay at LOWER), word pointer, flag
    for lane in range(lanes):  # the next symbol's state first
        state[lane] = (np.int64(words[2 * lane]) << 16) | np.int64(words[2 * lane + 1])
        if state[lane] < LOWER:
            return 4
    state[4], state[5] = 2 * lanes, 0
    table = plane_table(rows, cols)
    planes = np.zeros((3, 3), dtype=np.int64)  # E, OO, the step's own: offset, rows, cols
    for b in range(batch):
        values[:] = 0
        resid[:] = 0
        activity[:] = 0
        planes[2] = table[0, 0]
        _decode_step(values, resid, activity, planes, _CENTRE, 0, state, words, weights[b], max_symbol, alpha_shift,
                     edges, intervals, lookup, ends, cells, per_step, floats, lanes, log_model, k0)
        for st in range(9):
            kind, specs = _step(table, st, planes)
            _decode_step(values, resid, activity, planes, specs, kind, state, words, weights[b], max_symbol, alpha_shift,
                         edges, intervals, lookup, ends, cells, per_step, floats, lanes, log_model, k0)
            level = st // 3
            if st == 8:  # the last spacing's planes interleave into the output
                _interleave(out[b], _phases(values, channels, table[level]), 0)
            elif st % 3 == 2:  # the others into the next spacing's E
                _interleave(_plane(values, channels, table[level, 4]), _phases(values, channels, table[level]), 1)
                _interleave(_plane(resid, channels, table[level, 4]), _phases(resid, channels, table[level]), 1)
                _interleave(_plane(activity, 1, table[level, 4]), _phases(activity, 1, table[level]), 1)
    if state[4] > n_words:
        return 1
    if state[5]:
        return 2
    if state[4] != n_words or state[0] != LOWER or state[1] != LOWER or state[2] != LOWER or state[3] != LOWER:
        return 3
    return 0


# -- format 4's variable-length weights ----------------------------------------------------------
@njit(cache=True, nogil=True)
def pack_varints(w: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover - compiled
    """Write ints within int16 as zigzag LEB128 varints into ``out`` (uint8, at least ``3 * w.size``); returns the bytes
    written: 1 for ``|w| < 64``, 2 below 8,192, else 3."""
    n = 0
    for i in range(w.size):
        v = np.int64(w[i])
        z = 2 * v if v >= 0 else -2 * v - 1
        while z >= 128:
            out[n] = (z & 127) | 128
            z >>= 7
            n += 1
        out[n] = z
        n += 1
    return n


@njit(cache=True, nogil=True)
def unpack_varints(buf: np.ndarray, start: int, out: np.ndarray) -> int:  # pragma: no cover - compiled
    """Read ``out.size`` varints of :func:`pack_varints` from ``buf`` (uint8) at ``start``; returns where they end, or
    -1 if ``buf`` ends first, -2 for a varint longer than 3 bytes, -3 for one beyond int16."""
    p = start
    for i in range(out.size):
        z = np.int64(0)
        for k in range(4):
            if p >= buf.size:
                return -1
            if k == 3:
                return -2
            b = np.int64(buf[p])
            p += 1
            z |= (b & 127) << (7 * k)
            if b < 128:
                break
        if z > 65534:
            return -3
        out[i] = (z >> 1) ^ -(z & 1)
    return p

"""Range asymmetric numeral systems (rANS) with 16-bit words, compiled with Numba, for the interlaced coder.

The coder keeps two interleaved 32-bit states in ``[2^16, 2^32)`` (symbol ``t`` uses state
``t % 2``, so a decoder's two dependency chains overlap in the processor). Coding a symbol whose frequency
is ``f`` and cumulative frequency ``c`` (out of ``2^16``) maps ``x`` to
``(x // f) * 2^16 + x % f + c``, first writing out the low 16 bits while ``x`` is too large;
decoding inverts it and reads 16-bit words back in. Words are written last symbol first, so
the decoder reads them in order. Everything is integer arithmetic: the same bytes decode to
the same symbols on every machine.

Why compiled: the interlaced coder's contexts are whole-tensor passes, but after each symbol
the decoder's state changes, so a symbol loop is inherent to entropy decoding. Compiling
that loop together with the context arithmetic of :mod:`wavecodec.interlaced` makes a
sample of latents decode in about a millisecond. The context arithmetic lives here once
(:func:`_step_contexts`), and the encoder's passes (:func:`alpha_sums`, :func:`magnitude_sums`,
:func:`code_interlaced`) run the same code as the decoder, so the two cannot drift apart.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PRECISION = 16
LOWER = 1 << 16  # the state's lower bound
#: decoder status codes and what they mean
PROBLEMS = {
    1: "the ANS payload ends before the latents it declares",
    2: "the ANS payload decodes to out-of-range latents",
    3: "the ANS payload has trailing data or a wrong final state (corrupted)",
    4: "the ANS payload starts with an invalid state (corrupted)",
}


@njit(cache=True, nogil=True, error_model="numpy")
def _encode_kernel(starts: np.ndarray, freqs: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(2 * starts.size + 4, dtype=np.uint16)
    n = 0
    states = np.full(2, LOWER, dtype=np.uint64)
    for t in range(starts.size - 1, -1, -1):  # last symbol first; symbol t uses state t % 2
        x = states[t & 1]
        f = np.uint64(freqs[t])
        if x >= (f << np.uint64(16)):
            out[n] = np.uint16(x & np.uint64(0xFFFF))
            n += 1
            x >>= np.uint64(16)
        states[t & 1] = ((x // f) << np.uint64(16)) + (x % f) + np.uint64(starts[t])
    for s in (1, 0):  # reversed below: the decoder reads state 0, then state 1
        out[n] = np.uint16(states[s] & np.uint64(0xFFFF))
        out[n + 1] = np.uint16(states[s] >> np.uint64(16))
        n += 2
    return out[:n][::-1].copy()


@njit(cache=True, nogil=True)
def _intervals(k: np.ndarray, r: np.ndarray, values: np.ndarray, max_symbol: int, radii: np.ndarray, tables: np.ndarray,
               cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Each symbol's cumulative frequency and frequency, an escape followed by its raw value."""
    starts = np.empty(2 * k.size, dtype=np.int64)
    freqs = np.empty(2 * k.size, dtype=np.int64)
    n = 0
    for t in range(k.size):
        window = radii[k[t]]
        if abs(r[t]) > window:
            starts[n], freqs[n] = cum[k[t], 2 * window + 1], tables[k[t], 2 * window + 1]
            starts[n + 1], freqs[n + 1] = values[t] + max_symbol, 1
            n += 2
        else:
            starts[n], freqs[n] = cum[k[t], r[t] + window], tables[k[t], r[t] + window]
            n += 1
    return starts[:n], freqs[:n]


def encode_symbols(k: np.ndarray, r: np.ndarray, values: np.ndarray, max_symbol: int, radii: np.ndarray,
                   tables: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """16-bit words coding residuals ``r`` under ladder tables ``k`` (escaped values as raw ``values``), in order."""
    return _encode_kernel(*_intervals(k, r, values, max_symbol, radii, tables, cum))


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


def slot_lookup(cum: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``(K, 2^(16 - COARSE))``: for each coarse slot range, the first symbol whose interval reaches into it.

    Decoding looks a slot up there and steps forward over the few symbols that share the
    range, instead of a branchy binary search over the cumulative table.
    """
    starts = np.arange(0, 1 << PRECISION, 1 << COARSE)
    out = np.empty((cum.shape[0], starts.size), dtype=np.int64)
    for k in range(cum.shape[0]):
        size = 2 * int(radii[k]) + 2
        out[k] = np.searchsorted(cum[k, 1 : size + 1], starts, side="right")
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _find(cum: np.ndarray, lookup: np.ndarray, k: int, slot: int) -> int:  # pragma: no cover - compiled
    s = lookup[k, slot >> COARSE]  # then the symbol s with cum[k, s] <= slot < cum[k, s + 1]
    while cum[k, s + 1] <= slot:
        s += 1
    return s


@njit(cache=True, nogil=True, inline="always")
def _neighbours(kind: int, h: int) -> tuple[int, int, int, int, int, int, int, int]:  # pragma: no cover - compiled
    """Row and column offsets of a step's four neighbours (pairs 0-3 and 1-2): diagonal for kind 1, axial for kind 2."""
    if kind == 1:
        return -h, -h, -h, h, h, -h, h, h
    return 0, -h, -h, 0, h, 0, 0, h


@njit(cache=True, nogil=True, inline="always")
def _features(gc: np.ndarray, rc: np.ndarray, activity: np.ndarray, c: int, i: int, j: int,
              nb: tuple[int, int, int, int, int, int, int, int]) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """The context of position ``(i, j)`` of channel ``c``: the two pair sums, the spread ``V`` of the four
    neighbours, the other channels' activity ``X`` there and the neighbours' own residual magnitudes ``R``."""
    a0, b0, a1, b1, a2, b2, a3, b3 = nb
    n0, n1, n2, n3 = gc[i + a0, j + b0], gc[i + a1, j + b1], gc[i + a2, j + b2], gc[i + a3, j + b3]
    p1 = n0 + n3
    p2 = n1 + n2
    total = p1 + p2
    spread = (abs(4 * n0 - total) + abs(4 * n1 - total) + abs(4 * n2 - total) + abs(4 * n3 - total)) >> 2
    own_abs = 0 if c == 0 else abs(n0) + abs(n1) + abs(n2) + abs(n3)
    act = activity[i + a0, j + b0] + activity[i + a1, j + b1] + activity[i + a2, j + b2] + activity[i + a3, j + b3]
    own = abs(rc[i + a0, j + b0]) + abs(rc[i + a1, j + b1]) + abs(rc[i + a2, j + b2]) + abs(rc[i + a3, j + b3])
    return p1, p2, spread, act - own_abs, own


@njit(cache=True, nogil=True, inline="always")
def _prediction(p1: int, p2: int, alpha1: int, alpha2: int, alpha_shift: int, max_symbol: int) -> int:  # pragma: no cover - compiled
    """``mu = alpha1 * p1 / 2 + alpha2 * p2 / 2`` in fixed point, rounded, within the symbol range."""
    mu = (p1 * alpha1 + p2 * alpha2 + (1 << alpha_shift)) >> (alpha_shift + 1)
    return min(max(mu, -max_symbol), max_symbol)


@njit(cache=True, nogil=True)
def _step_contexts(g: np.ndarray, resid: np.ndarray, activity: np.ndarray, w: np.ndarray, step: np.ndarray, pad: int,
                   max_symbol: int, alpha_shift: int, edges: np.ndarray, cells: np.ndarray, fbuf: np.ndarray,
                   ks: np.ndarray, mus: np.ndarray) -> int:  # pragma: no cover - compiled
    """Table index ``ks`` and prediction ``mus`` of every symbol of one step, channel by channel in raster order.

    They read only positions of earlier steps, so encoder and decoder compute them alike.
    Returns the step's symbol count.
    """
    channels, height, width = g.shape
    rows, cols = height - 2 * pad, width - 2 * pad
    i0, j0, s, kind, h = step[0], step[1], step[2], step[3], step[4]
    nb = _neighbours(kind, h)
    base = 1 + 6 * (kind - 1)
    n_edges = edges.size
    fbits = fbuf.view(np.int64)
    t = 0
    for c in range(channels):
        gc = g[c]
        rc = resid[c]
        wc = w[c]
        if kind == 0:
            alpha1, alpha2, a, wv, wx, wr = 0, 0, wc[0], 0, 0, 0
        else:
            alpha1, alpha2, a, wv, wx, wr = wc[base], wc[base + 1], wc[base + 2], wc[base + 3], wc[base + 4], wc[base + 5]
        for i in range(pad + i0, pad + rows, s):
            for j in range(pad + j0, pad + cols, s):
                mu = 0
                m = a << 6
                if kind != 0:
                    p1, p2, spread, others, own = _features(gc, rc, activity, c, i, j, nb)
                    mu = _prediction(p1, p2, alpha1, alpha2, alpha_shift, max_symbol)
                    m += spread * (wv << 2) + others * wx + own * (wr << 2)
                # k = the number of edges <= m: the float's exponent and top mantissa bits pick a
                # cell holding at most one edge (cells are 1/64 of an octave, edges 1/4 apart),
                # one exact integer comparison decides
                if m < 1:
                    k = 0
                elif m >= CELL_LIMIT:
                    k = n_edges
                else:
                    fbuf[0] = m
                    cell = (fbits[0] >> 46) - (1023 << 6)
                    k = cells[cell]
                    if k < n_edges and edges[k] <= m:
                        k += 1
                ks[t] = k
                mus[t] = mu
                t += 1
    return t


@njit(cache=True, nogil=True)
def _activity(g: np.ndarray, activity: np.ndarray, step: np.ndarray, pad: int) -> None:  # pragma: no cover - compiled
    """``activity = sum of |values|`` of channels 1.. at the step's positions (channel 0 is left out)."""
    channels, height, width = g.shape
    i0, j0, s = step[0], step[1], step[2]
    for i in range(pad + i0, height - pad, s):
        for j in range(pad + j0, width - pad, s):
            total_abs = 0
            for c in range(1, channels):
                total_abs += abs(g[c, i, j])
            activity[i, j] = total_abs


@njit(cache=True, nogil=True)
def alpha_sums(g: np.ndarray, steps: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Normal equations of the predictions, per step kind (1, 2) and channel: ``(2, C, 2, 2)`` and ``(2, C, 2)``.

    The features are the half pair sums ``p1 / 2, p2 / 2``, the target the value itself.
    """
    channels, height, width = g.shape
    gram = np.zeros((2, channels, 2, 2))
    rhs = np.zeros((2, channels, 2))
    for st in range(steps.shape[0]):
        i0, j0, s, kind, h = steps[st, 0], steps[st, 1], steps[st, 2], steps[st, 3], steps[st, 4]
        if kind == 0:
            continue
        a0, b0, a1, b1, a2, b2, a3, b3 = _neighbours(kind, h)
        for c in range(channels):
            gc = g[c]
            G = gram[kind - 1, c]
            r = rhs[kind - 1, c]
            for i in range(pad + i0, height - pad, s):
                for j in range(pad + j0, width - pad, s):
                    x1 = 0.5 * (gc[i + a0, j + b0] + gc[i + a3, j + b3])
                    x2 = 0.5 * (gc[i + a1, j + b1] + gc[i + a2, j + b2])
                    q = float(gc[i, j])
                    G[0, 0] += x1 * x1
                    G[0, 1] += x1 * x2
                    G[1, 1] += x2 * x2
                    r[0] += x1 * q
                    r[1] += x2 * q
            G[1, 0] = G[0, 1]
    return gram, rhs


@njit(cache=True, nogil=True)
def magnitude_sums(g: np.ndarray, w: np.ndarray, steps: np.ndarray, pad: int, max_symbol: int,
                   alpha_shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """With the predictions of ``w`` fixed: the mean ``|residual|`` of the first step ``(C,)`` and, per kind
    (1, 2) and channel, the normal equations of ``|residual| ~ 1, V, X, R``: ``(2, C, 4, 4)`` and ``(2, C, 4)``."""
    channels, height, width = g.shape
    resid = np.zeros_like(g)
    activity = np.zeros((height, width), dtype=g.dtype)
    for st in range(steps.shape[0]):  # the residuals every position leaves, and the activity
        i0, j0, s, kind, h = steps[st, 0], steps[st, 1], steps[st, 2], steps[st, 3], steps[st, 4]
        _activity(g, activity, steps[st], pad)
        nb = _neighbours(kind, h)
        base = 1 + 6 * (kind - 1)
        for c in range(channels):
            for i in range(pad + i0, height - pad, s):
                for j in range(pad + j0, width - pad, s):
                    mu = 0
                    if kind != 0:
                        p1, p2, _, _, _ = _features(g[c], resid[c], activity, c, i, j, nb)
                        mu = _prediction(p1, p2, w[c, base], w[c, base + 1], alpha_shift, max_symbol)
                    resid[c, i, j] = g[c, i, j] - mu
    first = np.zeros(channels)
    count = 0
    gram = np.zeros((2, channels, 4, 4))
    rhs = np.zeros((2, channels, 4))
    x = np.empty(4)
    for st in range(steps.shape[0]):
        i0, j0, s, kind, h = steps[st, 0], steps[st, 1], steps[st, 2], steps[st, 3], steps[st, 4]
        nb = _neighbours(kind, h)
        for c in range(channels):
            for i in range(pad + i0, height - pad, s):
                for j in range(pad + j0, width - pad, s):
                    target = float(abs(resid[c, i, j]))
                    if kind == 0:
                        first[c] += target
                        if c == 0:
                            count += 1
                        continue
                    _, _, spread, others, own = _features(g[c], resid[c], activity, c, i, j, nb)
                    x[0], x[1], x[2], x[3] = 1.0, spread, others, own
                    for u in range(4):
                        rhs[kind - 1, c, u] += x[u] * target
                        for v in range(u, 4):
                            gram[kind - 1, c, u, v] += x[u] * x[v]
    for u in range(4):
        for v in range(u):
            gram[:, :, u, v] = gram[:, :, v, u]
    return first / max(count, 1), gram, rhs


@njit(cache=True, nogil=True)
def _work_arrays(grid: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The per-item state of encoder and decoder: residuals, activity, the float scratch and one step's tables and predictions."""
    _, channels, height, width = grid.shape
    most = channels * ((height - 2 * pad + 1) // 2) * ((width - 2 * pad + 1) // 2)  # the largest step (the first edge lattice)
    return (np.zeros((channels, height, width), dtype=grid.dtype), np.zeros((height, width), dtype=grid.dtype),
            np.empty(1, dtype=np.float64), np.empty(most, dtype=np.int64), np.empty(most, dtype=np.int64))


@njit(cache=True, nogil=True)
def code_interlaced(grid: np.ndarray, weights: np.ndarray, steps: np.ndarray, max_symbol: int, edges: np.ndarray,
                    cells: np.ndarray, pad: int, alpha_shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The encoder's side of :func:`decode_interlaced`: table indices, residuals and values of every symbol, in coding order.

    ``grid`` ``(B, C, rows + 2P, cols + 2P)`` holds every value; the contexts read only the
    positions of earlier steps, as the decoder's do.
    """
    batch, channels, height, width = grid.shape
    total = batch * channels * (height - 2 * pad) * (width - 2 * pad)
    k_out = np.empty(total, dtype=np.int64)
    r_out = np.empty(total, dtype=np.int64)
    v_out = np.empty(total, dtype=np.int64)
    resid, activity, fbuf, ks, mus = _work_arrays(grid, pad)
    n = 0
    for b in range(batch):
        g = grid[b]
        resid[:] = 0
        activity[:] = 0
        for st in range(steps.shape[0]):
            step = steps[st]
            _step_contexts(g, resid, activity, weights[b], step, pad, max_symbol, alpha_shift, edges, cells, fbuf, ks, mus)
            u = 0
            for c in range(channels):
                for i in range(pad + step[0], height - pad, step[2]):
                    for j in range(pad + step[1], width - pad, step[2]):
                        value = g[c, i, j]
                        resid[c, i, j] = value - mus[u]
                        k_out[n], r_out[n], v_out[n] = ks[u], value - mus[u], value
                        u += 1
                        n += 1
            _activity(g, activity, step, pad)
    return k_out[:n], r_out[:n], v_out[:n]


@njit(cache=True, nogil=True, error_model="numpy")
def decode_interlaced(words: np.ndarray, n_words: int, weights: np.ndarray, grid: np.ndarray, steps: np.ndarray, max_symbol: int,
                      radii: np.ndarray, edges: np.ndarray, tables: np.ndarray, cum: np.ndarray, lookup: np.ndarray,
                      cells: np.ndarray, pad: int, alpha_shift: int) -> int:  # pragma: no cover - compiled
    """Decode every item of ``grid`` ``(B, C, rows + 2P, cols + 2P)`` in place; returns 0 or a :data:`PROBLEMS` code.
    ``words`` holds the stream's ``n_words`` words followed by zero padding up to two words per
    symbol (the most a stream can consume), so no read can leave the array whatever the
    payload; a stream that reads into the padding is refused afterwards. Table reads are
    bounded by construction (the last cumulative frequency exceeds every slot).
    """
    batch, channels, height, width = grid.shape
    if n_words < 4:
        return 1
    x = (np.int64(words[0]) << 16) | np.int64(words[1])  # the state of the next symbol
    y = (np.int64(words[2]) << 16) | np.int64(words[3])  # the other state (two interleaved states)
    if x < LOWER or y < LOWER:
        return 4
    ptr = 4
    bad = 0
    resid, activity, fbuf, ks, mus = _work_arrays(grid, pad)
    values = np.empty_like(ks)
    for b in range(batch):
        g = grid[b]
        resid[:] = 0
        activity[:] = 0
        for st in range(steps.shape[0]):
            step = steps[st]
            # 1. every context of the step (they read only earlier steps): table index and prediction
            t = _step_contexts(g, resid, activity, weights[b], step, pad, max_symbol, alpha_shift, edges, cells, fbuf, ks, mus)
            # 2. the entropy decoding: a tight loop over the step's symbols
            for u in range(t):
                k = ks[u]
                window = radii[k]
                slot = x & 0xFFFF
                sym = lookup[k, slot >> COARSE]  # then step to the symbol s with cum[k, s] <= slot < cum[k, s + 1]
                while cum[k, sym + 1] <= slot:
                    sym += 1
                x = tables[k, sym] * (x >> 16) + slot - cum[k, sym]
                if x < LOWER:
                    x = (x << 16) | np.int64(words[ptr])
                    ptr += 1
                x, y = y, x  # the next symbol uses the other state
                if sym == 2 * window + 1:  # escape: the raw value follows
                    slot = x & 0xFFFF
                    x = x >> 16  # frequency 1: x = 1 * (x >> 16) + slot - slot
                    if x < LOWER:
                        x = (x << 16) | np.int64(words[ptr])
                        ptr += 1
                    x, y = y, x
                    value = slot - max_symbol
                else:
                    value = mus[u] + sym - window
                if value > max_symbol or value < -max_symbol:  # flagged, not returned: an exit in
                    bad = 1  # the loop slows it down; clamped so the rest stays bounded
                    value = 0
                values[u] = value
            # 3. store the values, residuals and the channels' activity
            u = 0
            for c in range(channels):
                for i in range(pad + step[0], height - pad, step[2]):
                    for j in range(pad + step[1], width - pad, step[2]):
                        g[c, i, j] = values[u]
                        resid[c, i, j] = values[u] - mus[u]
                        u += 1
            _activity(g, activity, step, pad)
    if ptr > n_words:
        return 1
    if bad:
        return 2
    if ptr != n_words or x != LOWER or y != LOWER:
        return 3
    return 0

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
sample of latents decode in about a millisecond. The context arithmetic here must match
:func:`wavecodec.interlaced._context`, ``_mu`` and ``_magnitude`` exactly (tested).
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


def encode_symbols(k: np.ndarray, r: np.ndarray, values: np.ndarray, max_symbol: int, radii: np.ndarray,
                   edges: np.ndarray, tables: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """16-bit words coding residuals ``r`` under ladder tables ``k`` (escaped values as raw ``values``), in order."""
    window = radii[k]
    escaped = np.abs(r) > window
    symbol = np.where(escaped, 2 * window + 1, r + window)
    count = k.size + int(escaped.sum())
    starts = np.empty(count, dtype=np.int64)
    freqs = np.empty(count, dtype=np.int64)
    slot = np.arange(k.size) + np.concatenate([[0], np.cumsum(escaped)[:-1]])  # each escape is followed by its raw value
    starts[slot], freqs[slot] = cum[k, symbol], tables[k, symbol]
    raw_slot = slot[escaped] + 1
    starts[raw_slot], freqs[raw_slot] = values[escaped] + max_symbol, 1
    return _encode_kernel(starts, freqs)


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
    rows, cols = height - 2 * pad, width - 2 * pad
    if n_words < 4:
        return 1
    x = (np.int64(words[0]) << 16) | np.int64(words[1])  # the state of the next symbol
    y = (np.int64(words[2]) << 16) | np.int64(words[3])  # the other state (two interleaved states)
    if x < LOWER or y < LOWER:
        return 4
    ptr = 4
    bad = 0
    resid = np.zeros((channels, height, width), dtype=grid.dtype)
    activity = np.zeros((height, width), dtype=grid.dtype)
    n_edges = edges.size
    fbuf = np.empty(1, dtype=np.float64)
    fbits = fbuf.view(np.int64)
    most = channels * (-(-rows // 2)) * (-(-cols // 2))  # the largest step (the first edge lattice)
    ks = np.empty(most, dtype=np.int64)
    mus = np.empty(most, dtype=np.int64)
    values = np.empty(most, dtype=np.int64)
    for b in range(batch):
        g = grid[b]
        resid[:] = 0
        activity[:] = 0
        for st in range(steps.shape[0]):
            i0, j0, s, kind, h = steps[st, 0], steps[st, 1], steps[st, 2], steps[st, 3], steps[st, 4]
            # the four neighbours as scalars (arrays would be reloaded after every store)
            if kind == 1:
                a0, b0, a1, b1, a2, b2, a3, b3 = -h, -h, -h, h, h, -h, h, h
            else:
                a0, b0, a1, b1, a2, b2, a3, b3 = 0, -h, -h, 0, h, 0, 0, h
            base = 1 + 6 * (kind - 1)
            # 1. every context of the step (they read only earlier steps): table index and prediction
            t = 0
            for c in range(channels):
                gc = g[c]
                rc = resid[c]
                w = weights[b, c]
                if kind == 0:
                    alpha1, alpha2, a, wv, wx, wr = 0, 0, w[0], 0, 0, 0
                else:
                    alpha1, alpha2, a, wv, wx, wr = w[base], w[base + 1], w[base + 2], w[base + 3], w[base + 4], w[base + 5]
                for i in range(pad + i0, pad + rows, s):
                    for j in range(pad + j0, pad + cols, s):
                        mu = 0
                        m = a << 6
                        if kind != 0:
                            n0 = gc[i + a0, j + b0]
                            n1 = gc[i + a1, j + b1]
                            n2 = gc[i + a2, j + b2]
                            n3 = gc[i + a3, j + b3]
                            p1 = n0 + n3
                            p2 = n1 + n2
                            total = p1 + p2
                            spread = (abs(4 * n0 - total) + abs(4 * n1 - total) + abs(4 * n2 - total) + abs(4 * n3 - total)) >> 2
                            own_abs = 0 if c == 0 else abs(n0) + abs(n1) + abs(n2) + abs(n3)
                            act = activity[i + a0, j + b0] + activity[i + a1, j + b1] + activity[i + a2, j + b2] + activity[i + a3, j + b3]
                            own = (abs(rc[i + a0, j + b0]) + abs(rc[i + a1, j + b1]) + abs(rc[i + a2, j + b2])
                                   + abs(rc[i + a3, j + b3]))
                            mu = (p1 * alpha1 + p2 * alpha2 + (1 << alpha_shift)) >> (alpha_shift + 1)
                            if mu > max_symbol:
                                mu = max_symbol
                            elif mu < -max_symbol:
                                mu = -max_symbol
                            m += spread * (wv << 2) + (act - own_abs) * wx + own * (wr << 2)
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
            t = 0
            for c in range(channels):
                gc = g[c]
                rc = resid[c]
                for i in range(pad + i0, pad + rows, s):
                    for j in range(pad + j0, pad + cols, s):
                        gc[i, j] = values[t]
                        rc[i, j] = values[t] - mus[t]
                        t += 1
            for i in range(pad + i0, pad + rows, s):
                for j in range(pad + j0, pad + cols, s):
                    total_abs = 0
                    for c in range(1, channels):
                        total_abs += abs(g[c, i, j])
                    activity[i, j] = total_abs
    if ptr > n_words:
        return 1
    if bad:
        return 2
    if ptr != n_words or x != LOWER or y != LOWER:
        return 3
    return 0

"""Is the interlaced coder's rANS loop waiting on its state chain? Two interleaved states against four.

The shipped coder (format 2) decodes with two interleaved rANS states that share one word
pointer. If the loop were bound by the latency of each state's chain (table reads, multiply,
renormalisation), more states would decode faster, and that would justify a new format version.
This times the same loop with two and with four states on 2 million symbols drawn from the frozen
ladder's tables (table ``k`` picked per symbol around the ladder's middle, as photos' latents pick
them), both reading the shipped decoder's tables (:func:`wavecodec.rans.decoder_tables`) and renormalising
without a branch as it does; the symbols are checked.

Run: ``.venv/bin/python experiments/rans_states.py`` (under a minute). Writes
``experiments/results/rans_states.json``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from numba import njit

from wavecodec.benchmarking import machine, write_json
from wavecodec.interlaced import _coder_tables
from wavecodec.rans import COARSE, LOWER, PRECISION

RESULTS = Path(__file__).resolve().parent / "results"
SYMBOLS = 2_000_000


@njit(cache=True)
def encode(starts: np.ndarray, freqs: np.ndarray, lanes: int, out: np.ndarray) -> int:
    """Symbol ``t`` uses state ``t % lanes``; the words come out last first, the states' final values at the end."""
    n = 0
    st = np.full(lanes, LOWER, dtype=np.uint64)
    for t in range(starts.size - 1, -1, -1):
        k = t % lanes
        x, f = st[k], np.uint64(freqs[t])
        if x >= (f << np.uint64(16)):
            out[n] = np.uint16(x & np.uint64(0xFFFF))
            n += 1
            x >>= np.uint64(16)
        st[k] = (x // f << np.uint64(16)) + x % f + np.uint64(starts[t])
    for k in range(lanes - 1, -1, -1):
        out[n], out[n + 1] = np.uint16(st[k] & np.uint64(0xFFFF)), np.uint16(st[k] >> np.uint64(16))
        n += 2
    return n


@njit(cache=True, inline="always")
def _one(x: int, k: int, words: np.ndarray, ptr: int, intervals: np.ndarray, lookup: np.ndarray) -> tuple[int, int, int]:
    """One symbol: the new state, word pointer and the index of its interval in ``intervals``."""
    slot = x & 0xFFFF
    i = np.int64(lookup[np.uint64((k << (PRECISION - COARSE)) + (slot >> COARSE))])
    entry = np.int64(intervals[np.uint64(i)])
    while slot - (entry & 0xFFFF) >= (entry >> 16):
        i += 1
        entry = np.int64(intervals[np.uint64(i)])
    x = (entry >> 16) * (x >> 16) + slot - (entry & 0xFFFF)
    low = np.int64(x < LOWER)
    x = (x << (low << 4)) | (np.int64(words[np.uint64(ptr)]) & -low)
    return x, ptr + low, i


@njit(cache=True)
def decode2(words: np.ndarray, ks: np.ndarray, intervals: np.ndarray, lookup: np.ndarray, out: np.ndarray) -> None:
    x, y = (np.int64(words[0]) << 16) | words[1], (np.int64(words[2]) << 16) | words[3]
    ptr = 4
    for u in range(ks.size):
        x, ptr, out[u] = _one(x, ks[u], words, ptr, intervals, lookup)
        x, y = y, x


@njit(cache=True)
def decode4(words: np.ndarray, ks: np.ndarray, intervals: np.ndarray, lookup: np.ndarray, out: np.ndarray) -> None:
    x0, x1 = (np.int64(words[0]) << 16) | words[1], (np.int64(words[2]) << 16) | words[3]
    x2, x3 = (np.int64(words[4]) << 16) | words[5], (np.int64(words[6]) << 16) | words[7]
    ptr = 8
    for u in range(ks.size):
        x0, ptr, out[u] = _one(x0, ks[u], words, ptr, intervals, lookup)
        x0, x1, x2, x3 = x1, x2, x3, x0


def main() -> None:
    radii, _, tables, cum, _, lookup, intervals, ends = _coder_tables()
    rng = np.random.default_rng(0)
    ks = np.clip(np.round(rng.normal(28, 6, SYMBOLS)), 0, len(radii) - 1).astype(np.int64)
    syms = np.empty(SYMBOLS, dtype=np.int64)
    for k in np.unique(ks):  # each table's symbols drawn with its own probabilities
        where = np.flatnonzero(ks == k)
        p = tables[k, : 2 * radii[k] + 1].astype(np.float64)
        syms[where] = rng.choice(p.size, where.size, p=p / p.sum())
    starts, freqs = cum[ks, syms].astype(np.int64), tables[ks, syms].astype(np.int64)
    report: dict = {"symbols": SYMBOLS, "machine": machine(), "ns_per_symbol": {}}
    for lanes, decode in ((2, decode2), (4, decode4)):
        buf = np.zeros(2 * SYMBOLS + 8, dtype=np.uint16)
        n = encode(starts, freqs, lanes, buf)
        words = np.concatenate([buf[:n][::-1], np.zeros(8, np.uint16)])
        out = np.empty(SYMBOLS, dtype=np.int64)
        decode(words, ks, intervals, lookup, out)
        assert np.array_equal(out - (ends[ks, 0] - radii[ks]), syms), "the symbols must come back"
        times = []
        for _ in range(9):
            start = time.perf_counter()
            decode(words, ks, intervals, lookup, out)
            times.append(time.perf_counter() - start)
        report["ns_per_symbol"][f"{lanes} states"] = 1e9 * statistics.median(times) / SYMBOLS
        print(f"{lanes} states: {report['ns_per_symbol'][f'{lanes} states']:.2f} ns per symbol "
              f"({8 * 2 * n / SYMBOLS:.2f} bits per symbol)", flush=True)
    print("wrote", write_json(RESULTS / "rans_states.json", report))


if __name__ == "__main__":
    main()

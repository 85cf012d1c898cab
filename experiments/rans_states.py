"""Is the interlaced coder's rANS loop waiting on its state chain? Two interleaved states against four.

If the decoder's symbol loop is bound by the latency of each state's chain (table reads,
multiply, renormalisation), more interleaved states decode faster; that is what format version 3
(four states, where version 2 has two) is for. This times the shipped loop itself
(:func:`wavecodec.rans._rans_run`, with the shipped tables and encoder) with two and with four
states on 2 million symbols drawn from the frozen ladder's tables (table ``k`` picked per symbol
around the ladder's middle, as photos' latents pick them); the symbols are checked.

Run: ``.venv/bin/python experiments/rans_states.py`` (under a minute). Writes
``experiments/results/rans_states.json``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from wavecodec import rans
from wavecodec.benchmarking import machine, write_json
from wavecodec.interlaced import _coder_tables

RESULTS = Path(__file__).resolve().parent / "results"
SYMBOLS = 2_000_000


def main() -> None:
    radii, _, tables, cum, _, lookup, intervals, ends = _coder_tables()
    rng = np.random.default_rng(0)
    ks = np.clip(np.round(rng.normal(28, 6, SYMBOLS)), 0, len(radii) - 1).astype(np.int64)
    syms = np.empty(SYMBOLS, dtype=np.int64)
    for k in np.unique(ks):  # each table's symbols drawn with its own probabilities (no escapes)
        where = np.flatnonzero(ks == k)
        p = tables[k, : 2 * radii[k] + 1].astype(np.float64)
        syms[where] = rng.choice(p.size, where.size, p=p / p.sum())
    starts, freqs = cum[ks, syms].astype(np.int32), tables[ks, syms].astype(np.int32)
    no_escapes, spliced = np.full(SYMBOLS, -1, dtype=np.int32), np.empty((2, 2 * SYMBOLS), dtype=np.int32)
    mus = np.zeros(SYMBOLS, dtype=np.int64)
    report: dict = {"symbols": SYMBOLS, "machine": machine(), "ns_per_symbol": {}}
    for lanes in (2, rans.LANES):
        buf = np.zeros(4 * SYMBOLS + 2 * lanes, dtype=np.uint16)
        n = rans.encode_symbols(starts, freqs, no_escapes, spliced, buf, lanes)
        words = np.concatenate([buf[:n][::-1], np.zeros(2 * SYMBOLS, np.uint16)])
        out = np.empty(SYMBOLS, dtype=np.int64)

        def decode() -> None:
            state = np.full(6, rans.LOWER, dtype=np.int64)
            for lane in range(lanes):
                state[lane] = (np.int64(words[2 * lane]) << 16) | np.int64(words[2 * lane + 1])
            state[4] = 2 * lanes
            rans._rans_run(SYMBOLS, ks, mus, out, words, state, lookup, intervals, ends, 127, lanes)

        decode()
        assert np.array_equal(out + radii[ks], syms), "the symbols must come back"
        times = []
        for _ in range(9):
            start = time.perf_counter()
            decode()
            times.append(time.perf_counter() - start)
        report["ns_per_symbol"][f"{lanes} states"] = 1e9 * statistics.median(times) / SYMBOLS
        print(f"{lanes} states: {report['ns_per_symbol'][f'{lanes} states']:.2f} ns per symbol "
              f"({8 * 2 * n / SYMBOLS:.2f} bits per symbol)", flush=True)
    print("wrote", write_json(RESULTS / "rans_states.json", report))


if __name__ == "__main__":
    main()

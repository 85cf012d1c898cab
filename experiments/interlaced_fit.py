"""How much the interlaced coder's per-file fit leaves on the table, encoder side only (same format), for format
version 3's linear magnitude model (the coder ``ans-linear``; format 4 replaced it with a log-linear one).

The encoder fits each file's prediction weights by least squares and its magnitude weights by
least squares on the residual magnitudes (``wavecodec.interlaced._fit`` with ``model=LINEAR``). Two questions, on the
``rgb-16x`` latents of the 10 dev photos (768x512 crops, as in ``benchmarks/data_path.py``):

1. the magnitude model: every magnitude weight scaled by ``s`` (the tables one by one shift
   up or down the ladder); the ideal code length of every variant, ``sum -log2 p``;
2. the predictions: least squares against least absolute deviations (iteratively reweighted
   least squares, weights ``1 / max(|r|, floor)``, the magnitude model refitted after), real
   file sizes that must decode back.

Run: ``.venv/bin/python experiments/interlaced_fit.py`` (about a minute). Writes ``experiments/results/interlaced_fit.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

import wavecodec
from wavecodec import interlaced as il
from wavecodec import rans
from wavecodec.benchmarking import machine, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from data_path import prepared_photos  # noqa: E402  (the benchmark's 768x512 crops)

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)
FITS = ((0, 1.0), (3, 1.0), (10, 0.5))  # (IRLS iterations, floor); 0: least squares


def _layout(q: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The encoder's planes of item 0 (values, residuals, activity, their table) and each symbol's
    (kind, channel) in coding order."""
    item = q[0]
    channels, rows, cols = item.shape
    per_channel = rans.plane_buffer_size(rows, cols)
    values, activity = np.empty(channels * per_channel, np.int16), np.empty(per_channel, np.int32)
    table = rans.plane_table(rows, cols)
    rans.encoder_planes(item, values, activity, table, False)
    steps = rans.step_kinds_and_sizes(table)
    kinds = np.concatenate([np.full(channels * n, kind) for kind, n in steps])
    chans = np.concatenate([np.repeat(np.arange(channels), n) for _, n in steps])
    return (values, np.empty_like(values), activity, table), np.stack([kinds, chans])


def _magnitudes(w: np.ndarray, planes: tuple[np.ndarray, ...], f: np.ndarray) -> None:
    values, resid, activity, table = planes
    first, gram, rhs = rans.encoder_residuals(values, resid, activity, table, w, 127, il.ALPHA_SHIFT, f, False, il._log_targets(127), 1)
    w[:, 0] = il._to_fixed(first, il.M_SHIFT - il._M_SCALE["a"])
    for kind in (1, 2):
        coef = il._solve(gram[kind, :, :4, :4], rhs[kind, :, :4])
        for slot, name in enumerate(("a", "wV", "wX", "wR")):
            w[:, 1 + 6 * (kind - 1) + 2 + slot] = il._to_fixed(coef[:, slot], il.M_SHIFT - il._M_SCALE[name])


def _code(q: np.ndarray, w: np.ndarray, planes: tuple[np.ndarray, ...], f: np.ndarray) -> tuple[bytes, np.ndarray]:
    radii, edges, tables, cum, cells, _, _, _ = il._coder_tables()
    starts, freqs, raw = (np.empty(q.size, np.int32) for _ in range(3))
    rans.code_interlaced(f[None], w[None], planes[3], 127, radii, edges, tables, cum, cells, starts, freqs, raw, False, il.LOG_K0)
    out = np.empty(4 * q.size + 2 * rans.LANES, np.uint16)
    n = rans.encode_symbols(starts, freqs, raw, np.empty((2, 2 * q.size), np.int32), out, rans.LANES)
    data = w.astype("<i2").tobytes() + out[:n][::-1].astype("<u2").tobytes()
    assert np.array_equal(il.decode(data, q.shape, 127, version=3), q), "a variant must decode back"
    bits = float(np.sum(16 - np.log2(freqs)) + 16 * np.count_nonzero(raw >= 0))
    return data, bits


def fit_variant(q: np.ndarray, iterations: int, floor: float) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """Weights with the predictions fitted by least squares (0 iterations) or least absolute deviations."""
    planes, index = _layout(q)
    f = np.empty((rans.FEATURES, q.size), np.int64)
    w = np.zeros((q.shape[1], il.WEIGHTS), np.int64)
    values, _, activity, table = planes
    gram, rhs = rans.encoder_values(values, activity, table, q.shape[1], f)
    for kind in (1, 2):
        coef = il._solve(gram[kind - 1], rhs[kind - 1])
        for _ in range(iterations):
            for c in range(q.shape[1]):
                sel = (index[0] == kind) & (index[1] == c)
                X = np.stack([f[1, sel] / 2, f[2, sel] / 2], 1).astype(float)
                y = f[0, sel].astype(float)
                weight = 1.0 / np.maximum(np.abs(y - X @ coef[c]), floor)
                coef[c] = il._solve(((X * weight[:, None]).T @ X)[None], ((X * weight[:, None]).T @ y)[None])[0]
        w[:, 1 + 6 * (kind - 1) : 3 + 6 * (kind - 1)] = il._to_fixed(np.clip(coef, -2, 2), il.ALPHA_SHIFT)
    _magnitudes(w, planes, f)
    return w, planes, f


def main() -> None:
    torch.set_num_threads(1)
    codec = wavecodec.load("rgb-16x")
    scale_bits = {s: 0.0 for s in SCALES}
    sizes = {f"{it} iterations, floor {fl}": 0 for it, fl in FITS}
    for img in prepared_photos().values():
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous()
        with torch.inference_mode():
            q = codec.quantize(codec.encode(x)).numpy().astype(np.int32)
        for (it, fl), key in zip(FITS, sizes):
            w, planes, f = fit_variant(q, it, fl)
            data, _ = _code(q, w, planes, f)
            sizes[key] += len(data)
            if it == 0:
                assert data == il.encode(q, 127, version=3), "the least-squares variant is the shipped encoder"
                for s in SCALES:
                    scaled = w.copy()
                    for kind in (1, 2):
                        cols = slice(3 + 6 * (kind - 1), 7 + 6 * (kind - 1))
                        scaled[:, cols] = np.clip(np.round(w[:, cols] * s), -32767, 32767)
                    scaled[:, 0] = np.clip(np.round(w[:, 0] * s), -32767, 32767)
                    scale_bits[s] += _code(q, scaled, planes, f)[1]
    base_bits, base_size = scale_bits[1.0], sizes[next(iter(sizes))]
    report = {
        "model": "rgb-16x", "photos": 10, "size": [768, 512],
        "magnitude_scale_vs_ideal_bits": {str(s): v / base_bits for s, v in scale_bits.items()},
        "prediction_fit_payload_bytes": sizes,
        "prediction_fit_vs_least_squares": {k: v / base_size for k, v in sizes.items()},
        "machine": machine(),
    }
    path = write_json(RESULTS / "interlaced_fit.json", report)
    for k, v in report["magnitude_scale_vs_ideal_bits"].items():
        print(f"magnitudes x{k}: {v:.4f} of the least-squares bits")
    for k, v in report["prediction_fit_vs_least_squares"].items():
        print(f"predictions, {k}: {sizes[k]:,} bytes ({v:.4f})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

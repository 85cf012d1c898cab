"""How much smaller could the interlaced coder's payloads get, and from what? Upper bounds, measured.

The data-path issue asks for `ans` payloads at least 5% smaller than the lossless-WebP mosaic of the
same latents; format 4/5 codes ``rgb-16x``'s latents of the 768x512 dev photos in 0.979x the mosaic.
Before a new format version, this measures the three cheap levers on those latents (the photos of
``benchmarks/data_path.py``), each as an *ideal* code length (no table quantization, no header):

1. **Table shapes.** Every table of the frozen ladder is a discretised Laplace. Each symbol's table
   index ``k`` and residual are recorded from the shipped encoder (its own fitted weights); the
   residuals are then costed under generalised Gaussians of shape ``beta`` with the same mean
   ``|residual|`` as table ``k``, with the best ``beta`` and scale shift per channel (an oracle:
   the shape's side information is not charged).
2. **Cross-channel prediction.** The coder predicts a symbol from its own channel's neighbours only
   (two pair means). At the last three steps (the spacing-2 centres and edges, 3/4 of all symbols) each channel is
   predicted again by least squares from those pairs plus the prediction residuals of the channels
   decoded before it at the same position; the bits saved per symbol are estimated as
   ``log2`` of the ratio of mean absolute residuals (the Laplace code length's dependence on scale).
3. **Header.** Payload bytes less the ideal bits of the symbols under the tables the encoder chose:
   the weights, escapes and rANS flush.

Run: ``.venv/bin/python experiments/coder_headroom.py`` (about a minute). Writes
``experiments/results/coder_headroom.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.special import gamma
from scipy.stats import gennorm

import wavecodec
from wavecodec import coders, interlaced, rans
from wavecodec.benchmarking import machine, photo_tensor, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from data_path import prepared_photos  # noqa: E402  (the photos the issue's figure is measured on)

RESULTS = Path(__file__).resolve().parent / "results"
BETAS = (0.6, 0.8, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0)  # 1.0 is the shipped Laplace
SHIFTS = range(-4, 5)  # scale moves in ladder steps (a quarter octave each)
RADIUS = 600


def recorded_tables(q: np.ndarray, max_symbol: int) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Format 4's log-linear payload of ``q`` and, per symbol in coding order, its channel, table index, residual and frequency."""
    rows: list[tuple[np.ndarray, ...]] = []
    shipped = rans.code_interlaced

    def recording(features, weights, table, max_sym, radii, edges, tables, cum, cells, starts, freqs, raw, log_model, k0):  # type: ignore[no-untyped-def]
        shipped(features, weights, table, max_sym, radii, edges, tables, cum, cells, starts, freqs, raw, log_model, k0)
        steps, top = rans.step_kinds_and_sizes(table), tables.shape[0] - 1
        values, spreads, others, mus, owns, same = (features[0, i] for i in (0, 3, 4, 5, 6, 7))
        u = 0
        for st in range(steps.shape[0]):
            m = steps[st, 1]
            for c in range(weights.shape[1]):
                w = rans._log_weights(weights[0, c], steps[st, 0])
                ks = np.array([rans._log_index(*w, rans._log_of(int(spreads[u + e])), rans._log_of(int(owns[u + e])),
                                               rans._log_of(int(others[u + e])), rans._log_of(int(same[u + e])), k0, top) for e in range(m)])
                r = values[u : u + m].astype(np.int64) - mus[u : u + m].astype(np.int64)
                rows.append((np.full(m, c), ks, r, freqs[u : u + m].astype(np.int64)))
                u += m

    rans.code_interlaced = recording
    try:
        payload = interlaced.encode(q, max_symbol, 4, interlaced.LOG)
    finally:
        rans.code_interlaced = shipped
    c, k, r, f = (np.concatenate(a) for a in zip(*rows))
    return payload, c, k, r, f


_BITS: dict[tuple[float, int], np.ndarray] = {}


def shape_bits(beta: float, k: int) -> np.ndarray:
    """``-log2 p(n)`` for ``n`` in ``[-RADIUS, RADIUS]`` under a generalised Gaussian with table ``k``'s mean ``|x|``."""
    if (beta, k) not in _BITS:
        m = interlaced.LADDER_MIN * interlaced.LADDER_RATIO**k
        scale = m * gamma(1 / beta) / gamma(2 / beta)
        n = np.arange(-RADIUS, RADIUS + 1)
        p = gennorm.cdf(n + 0.5, beta, scale=scale) - gennorm.cdf(n - 0.5, beta, scale=scale)
        _BITS[(beta, k)] = -np.log2(np.clip(p, 1e-12, interlaced.MAX_PROBABILITY))
    return _BITS[(beta, k)]


def channel_bits(k: np.ndarray, r: np.ndarray, beta: float, shift: int) -> float:
    r = np.clip(r, -RADIUS, RADIUS) + RADIUS
    return float(sum(shape_bits(beta, int(kv) + shift)[r[k == kv]].sum() for kv in np.unique(k)))


def cross_channel_saving(q: np.ndarray) -> tuple[float, int]:
    """Estimated bits saved (sum) at the spacing-2 positions (centres and edges) by predicting each channel also from
    the earlier channels' residuals, and how many symbols that covers."""
    C, H, W = q.shape
    saved, count = 0.0, 0
    for dr, dc in ((1, 1), (0, 1), (1, 0)):  # the three spacing-2 steps: centres (odd, odd), then the edges
        R_, C_ = np.meshgrid(np.arange(2 + dr, H - 2, 2), np.arange(2 + dc, W - 2, 2), indexing="ij")
        if dr and dc:  # the two diagonal pairs
            pairs = np.stack([(q[:, R_ - 1, C_ - 1] + q[:, R_ + 1, C_ + 1]) / 2, (q[:, R_ - 1, C_ + 1] + q[:, R_ + 1, C_ - 1]) / 2], -1)
        else:  # the two axial pairs
            pairs = np.stack([(q[:, R_, C_ - 1] + q[:, R_, C_ + 1]) / 2, (q[:, R_ - 1, C_] + q[:, R_ + 1, C_]) / 2], -1)
        pairs = pairs.reshape(C, -1, 2)
        y = q[:, R_, C_].reshape(C, -1)
        own = np.stack([y[c] - pairs[c] @ np.linalg.lstsq(pairs[c], y[c], rcond=None)[0] for c in range(C)])
        for c in range(C):
            a = np.concatenate([pairs[c], own[:c].T], 1)
            both = y[c] - a @ np.linalg.lstsq(a, y[c], rcond=None)[0]
            saved += y.shape[1] * np.log2(np.abs(own[c]).mean() / max(np.abs(both).mean(), 1e-9))
        count += y.size
    return saved, count


def main() -> None:
    torch.set_num_threads(1)
    codec = wavecodec.load("rgb-16x")
    ms = codec.bottleneck.max_symbol
    totals = {"payload_bytes": 0, "webp_mosaic_bytes": 0, "table_bits": 0.0, "laplace_bits": 0.0, "best_shape_bits": 0.0,
              "cross_channel_saved_bits": 0.0, "cross_channel_symbols": 0, "symbols": 0}
    per_beta = {b: 0.0 for b in BETAS}
    chosen: dict[str, int] = {}
    for img in prepared_photos().values():
        with torch.no_grad():
            q = codec.quantize(codec.encode(photo_tensor(img))).numpy().astype(np.int64)
        payload, c, k, r, f = recorded_tables(q, ms)
        totals["payload_bytes"] += len(payload) + len(np.packbits(interlaced.live_channels(q)))  # as format 5 writes it
        totals["webp_mosaic_bytes"] += len(coders.encode_symbols("webp", q, codec))
        totals["table_bits"] += float((16 - np.log2(f)).sum())
        totals["symbols"] += q.size
        for ch in np.unique(c):
            sel = c == ch
            scores = {(b, s): channel_bits(k[sel], r[sel], b, s) for b in BETAS for s in SHIFTS}
            totals["laplace_bits"] += scores[(1.0, 0)]
            best = min(scores, key=scores.__getitem__)
            totals["best_shape_bits"] += scores[best]
            chosen[str(best[0])] = chosen.get(str(best[0]), 0) + 1
            for b in BETAS:
                per_beta[b] += min(scores[(b, s)] for s in SHIFTS)
        saved, count = cross_channel_saving(q[0].astype(np.float64))
        totals["cross_channel_saved_bits"] += saved
        totals["cross_channel_symbols"] += count
    payload_bits = 8 * totals["payload_bytes"]
    report = {
        "experiment": "coder_headroom",
        "model": "rgb-16x",
        "photos": "dev photos at 768x512 (benchmarks/data_path.py)",
        **totals,
        "ans_vs_webp_mosaic": totals["payload_bytes"] / totals["webp_mosaic_bytes"],
        "header_escape_flush_share": 1 - totals["table_bits"] / payload_bits,
        "shape_saving_share": (totals["laplace_bits"] - totals["best_shape_bits"]) / payload_bits,
        "one_shape_saving_share": {str(b): (totals["laplace_bits"] - v) / payload_bits for b, v in per_beta.items()},
        "best_shape_per_channel_count": chosen,
        "cross_channel_saving_share": totals["cross_channel_saved_bits"] / payload_bits,
        "machine": machine(),
    }
    levers = report["shape_saving_share"] + report["cross_channel_saving_share"] + report["header_escape_flush_share"]
    report["all_levers_ans_vs_webp_mosaic"] = report["ans_vs_webp_mosaic"] * (1 - levers)
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "coder_headroom.json", report)
    for key in ("ans_vs_webp_mosaic", "shape_saving_share", "cross_channel_saving_share", "header_escape_flush_share",
                "all_levers_ans_vs_webp_mosaic"):
        print(f"{key}: {report[key]:.4f}")


if __name__ == "__main__":
    main()

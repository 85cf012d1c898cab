"""How far is a ladder's per-channel rate estimate from the bits the file coder spends, channel by channel?

A variable-rate model trains on a discretised Laplace per channel and rung (the estimate); files are coded by
the interlaced context coder, which predicts each symbol from its decoded neighbours. This quantizes 16 training
crops (256 px, Lanczos-downsampled training photos) at every rung and reports, per rung, both totals and the
spread of the per-channel ratio coded / estimate (quantiles, and the channels that cost the most bits). Where the
ratio differs between channels, training prices them wrongly against each other: that is what
``TrainConfig.calibrate_rate_every`` corrects (:mod:`wavecodec.training.calibration`).

Run: ``.venv/bin/python experiments/rate_calibration.py [--model rgb-storage]`` (under a minute).
Writes ``experiments/results/rate_calibration.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import machine, training_crops, write_json
from wavecodec.training.calibration import MIN_BITS, channel_rates

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rgb-storage")
    parser.add_argument("-o", "--output", default=str(RESULTS / "rate_calibration.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    codec = wavecodec.load(args.model).eval()
    crops = training_crops(16, 256, seed=5)
    estimate, coded = channel_rates(codec, crops)
    pixels = crops.shape[0] * crops.shape[2] * crops.shape[3]
    rungs = []
    for rung in range(estimate.shape[0]):
        measured = estimate[rung] >= MIN_BITS
        ratio = coded[rung, measured] / estimate[rung, measured]
        top = torch.argsort(coded[rung], descending=True)[:6]
        rungs.append({
            "lambda": codec.rates.lambdas[rung],
            "estimate_bpp": float(estimate[rung].sum()) / pixels,
            "coded_bpp": float(coded[rung].sum()) / pixels,
            "measured_channels": int(measured.sum()),
            "ratio_quantiles_10_50_90": [round(float(v), 3) for v in torch.quantile(ratio, torch.tensor([0.1, 0.5, 0.9], dtype=ratio.dtype))],
            "costliest_channels": [{"channel": int(c), "coded_bpp": round(float(coded[rung, c]) / pixels, 4),
                                    "ratio": round(float(coded[rung, c] / estimate[rung, c].clamp_min(1e-9)), 3)} for c in top],
        })
        print(f"rung {rung}: estimate {rungs[-1]['estimate_bpp']:.3f} bpp, coded {rungs[-1]['coded_bpp']:.3f} bpp, "
              f"ratio per channel (10/50/90%) {rungs[-1]['ratio_quantiles_10_50_90']}", flush=True)
    path = write_json(Path(args.output), {"experiment": "rate_calibration", "model": args.model,
                                          "crops": "16 training crops, 256 px, seed 5", "rungs": rungs, "machine": machine()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

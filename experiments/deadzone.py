"""Does a dead-zone quantizer at encode time pay for the storage model? Rounding offsets side by side.

Classic codecs round transform coefficients towards zero (``sign(v) floor(|v| / step + f)`` with
``f`` about 1/3 instead of 1/2): small values become 0, which costs little distortion and saves many
bits under a peaked distribution. It is an encoder-side choice: files stay valid and decoders unchanged.
This measures it on a variable-rate model at qualities 0-100 on the dev photos, BD-rate (PSNR)
against ordinary rounding (``f = 0.5``), by swapping the bottleneck's rounding for the run.

Run: ``.venv/bin/python experiments/deadzone.py`` (about two minutes; ``--model``, ``--offsets``).
Writes ``experiments/results/deadzone.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import dev_photos, machine, write_json
from wavecodec.bottleneck import Bottleneck, Step, per_channel
from wavecodec.metrics import bd_rate

from storage_ablation import curve

RESULTS = Path(__file__).resolve().parent / "results"


def dead_zone(offset: float):  # type: ignore[no-untyped-def]
    """A :meth:`Bottleneck.quantize` that rounds ``|v| / step`` up from ``1 - offset`` instead of 1/2."""
    def quantize(self: Bottleneck, v: torch.Tensor, quant_step: Step = 1.0) -> torch.Tensor:
        r = v / per_channel(quant_step, v)
        m = self.max_symbol
        return (torch.sign(r) * torch.floor(r.abs() + offset)).clamp_(-m, m).to(self.int_dtype)
    return quantize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rgb-storage")
    parser.add_argument("--offsets", default="0.4,0.3", help="rounding offsets to compare with 0.5")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "deadzone.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec, photos = wavecodec.load(args.model), dev_photos()
    qualities = [float(q) for q in range(0, 101, 10)]
    shipped = Bottleneck.quantize
    curves = {}
    try:
        for offset in [0.5] + [float(f) for f in args.offsets.split(",")]:
            Bottleneck.quantize = dead_zone(offset)
            curves[str(offset)] = curve(codec, photos, qualities)
    finally:
        Bottleneck.quantize = shipped
    ref = curves["0.5"]
    report = {
        "experiment": "deadzone", "model": args.model, "photos": list(photos), "curves": curves,
        "bd_rate_psnr_vs_rounding": {f: bd_rate([p["bpp"] for p in ref], [p["psnr"] for p in ref],
                                                [p["bpp"] for p in c], [p["psnr"] for p in c]) for f, c in curves.items() if f != "0.5"},
        "machine": machine(),
    }
    write_json(args.output, report)
    for f, v in report["bd_rate_psnr_vs_rounding"].items():
        print(f"offset {f}: BD-rate {v:+.2f}% against rounding")


if __name__ == "__main__":
    main()

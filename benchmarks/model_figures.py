"""A model's figures on the dev evaluation photos, optionally recorded in the registry.

For each photo (in gray for a one-channel model): the whole .wvc file (default ans coder), bits per pixel from its size,
PSNR of the decoded uint8 image, and the median time of ``compress`` and ``decompress``
(model load and one warm-up excluded). With ``--register`` the means go into
``src/wavecodec/weights/index.json`` for the model's entry.

Run: ``cd benchmarks && ../.venv/bin/python model_figures.py PATH_OR_NAME [--register --description TEXT]``
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


import torch

import wavecodec
from wavecodec.container import VERSION
from wavecodec.benchmarking import dev_photos, machine, time_call, write_json
from wavecodec.evaluation import evaluate_image
from wavecodec.rates import DEFAULT_QUALITY
from wavecodec.registry import register

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--register", action="store_true")
    parser.add_argument("--description", default="")
    parser.add_argument("--use", default="", help="what the model is for, for `wavecodec models`")
    args = parser.parse_args()
    codec = wavecodec.load(args.model)
    cfg = codec.config
    rows = []
    gray = cfg.channels == 1
    for name, img in dev_photos(gray).items():
        x = torch.from_numpy(img.copy().reshape(*img.shape[:2], -1)).permute(2, 0, 1)[None].contiguous()
        row = evaluate_image(codec, x, name)
        data = codec.compress(x)
        pixels = x.shape[2] * x.shape[3]
        row["encode_mpix_s"] = pixels / 1e6 / time_call(lambda: codec.compress(x), args.repeats, warmup=1)["median_s"]
        row["decode_mpix_s"] = pixels / 1e6 / time_call(lambda: codec.decompress(data), args.repeats, warmup=1)["median_s"]
        rows.append(row)
        print(f"{name:24s} bpp {row['bpp']:.3f}  PSNR {row['psnr']:.2f} dB", flush=True)
    figures = {
        "channels": cfg.channels, "levels": cfg.levels, "latent_dim": cfg.latent_dim, "latent_bits": cfg.latent_bits,
        "reduction": cfg.reduction, "parameters": codec.num_parameters(),
        "dev_bpp": round(statistics.mean(r["bpp"] for r in rows), 4),
        "dev_psnr_db": round(statistics.mean(r["psnr"] for r in rows), 3),
        "encode_mpix_s": round(statistics.median(r["encode_mpix_s"] for r in rows), 3),
        "decode_mpix_s": round(statistics.median(r["decode_mpix_s"] for r in rows), 3),
        "measured_with": f"benchmarks/model_figures.py (10 dev photos{' in gray' if gray else ''}, format {VERSION} files (interlaced ans coder), 2-core CPU)",
        **({"dev_quality": DEFAULT_QUALITY} if codec.rates is not None else {}),  # a variable-rate model: at its default
    }
    path = write_json(RESULTS / f"figures_{cfg.name or 'model'}.json", {"model": cfg.name, "figures": figures, "photos": rows, "machine": machine()})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    if args.register:
        keep = {k: v for k, v in figures.items() if k not in ("channels", "levels", "latent_dim", "latent_bits", "parameters")}
        print(f"registered {cfg.name} in {register(args.model, args.description, keep, use=args.use)}")


if __name__ == "__main__":
    main()

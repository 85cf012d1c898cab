"""Colorization in the compressed domain: predict color latents from the latents of the gray image.

Both models are ``wavecodec.learn.DenseHead`` with the same body and the same token count
(one token per 8 x 8 pixels):

* latent model: reads the ``rgb-16x`` latents of the gray image (luma copied to R, G, B;
  12 x H/8 x W/8) and predicts the latents of the color image (a residual, rounded to
  integers, so the result is itself a valid ``.wvc`` payload); the codec's decoder makes
  the pixels. Trained with MSE on latents: no decoding during training.
* pixel model: reads the gray pixels in 8 x 8 patches and predicts the RGB pixels of each
  patch (also a residual over the gray image). Trained with MSE on pixels.

Training: random 128 x 128 crops of the training wallpapers (Lanczos 4x down), the same
crops for both. Test: the dev photos. Metrics: RGB PSNR, mean absolute chroma error (Cb, Cr
of BT.601, 0-255) and colorfulness (Hasler and Suesstrunk 2003) relative to the original;
the gray input itself is the identity baseline and the codec's own reconstruction of the
color photo bounds what the latent route can reach. Writes
``experiments/results/colorize.{json,png}``.

Run (CPU, about 10 minutes):  .venv/bin/python experiments/colorize.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wavecodec.benchmarking import TRAIN_GLOBS, dev_photos
import wavecodec
from wavecodec.metrics import psnr_from_mse
from wavecodec.progress import bar
from wavecodec.learn import count_parameters, fit_dense
from wavecodec.learn.colorize import LatentColorizer, PixelColorizer, chroma, colorfulness, gray
from wavecodec.training.data import CropDataset, collate

RESULTS = Path(__file__).resolve().parent / "results"


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x.float(), (0, (-w) % multiple, 0, (-h) % multiple), mode="reflect")


def evaluate(models: dict, codec: wavecodec.Codec, multiple: int) -> tuple[dict, dict]:
    rows: dict[str, list[dict]] = {k: [] for k in ["gray input", *models, "codec on the color photo"]}
    pictures = {}
    for name, img in dev_photos().items():
        rgb = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None]
        h, w = rgb.shape[-2:]
        padded = pad_to(rgb, multiple).round().to(torch.uint8)
        outs = {"gray input": gray(rgb).expand(-1, 3, -1, -1).float()}
        for key, model in models.items():
            outs[key] = (model(padded)[..., :h, :w].clamp(0, 1) * 255).round()
        with torch.no_grad():
            outs["codec on the color photo"] = codec.reconstruct(padded)[..., :h, :w].float()
        ref = rgb.float()
        for key, out in outs.items():
            mse = F.mse_loss(out, ref).item()
            rows[key].append({"photo": name, "psnr_db": psnr_from_mse(mse, 255.0),
                              "chroma_mae": (chroma(out) - chroma(ref)).abs().mean().item(),
                              "colorfulness_ratio": colorfulness(out) / max(colorfulness(ref), 1e-9)})
        pictures[name] = {k: v[0].permute(1, 2, 0).numpy().astype(np.uint8) for k, v in outs.items()} | {"original": img}
    summary = {k: {m: statistics.mean(r[m] for r in v) for m in ("psnr_db", "chroma_mae", "colorfulness_ratio")} | {"photos": v}
               for k, v in rows.items()}
    return summary, pictures


def plot(pictures: dict, path: Path, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["gray input", "pixel model", "latent model", "original"]
    fig, axes = plt.subplots(len(names), len(cols), figsize=(3.2 * len(cols), 3.0 * len(names)))
    for i, name in enumerate(names):
        for j, col in enumerate(cols):
            axes[i, j].imshow(pictures[name][col])
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(col)
        axes[i, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rgb-16x")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--cache", default="runs/colorize/cache")
    args = parser.parse_args()
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    codec = wavecodec.load(args.model)
    multiple = 2**codec.config.levels
    data = CropDataset([str(Path(g).parent) for g in TRAIN_GLOBS], modality="image", channels=3, crop=args.crop,
                       downscale=4, cache_dir=Path(args.cache), seed=7)

    def batch(step: int) -> torch.Tensor:
        b, _ = collate([data[step * args.batch_size + i] for i in range(args.batch_size)])
        return b

    latent, pixel = LatentColorizer(codec, args.width, args.depth), PixelColorizer(multiple, args.width, args.depth)
    report = {"config": vars(args)}
    for key, model in (("latent model", latent), ("pixel model", pixel)):
        torch.manual_seed(0)
        t = time.perf_counter()
        losses = fit_dense(model.head, lambda s: model.pair(batch(s)), args.steps, progress=bar("step"))
        report[key] = {"parameters": count_parameters(model.head), "train_seconds": time.perf_counter() - t,
                       "first_loss": statistics.mean(losses[:20]), "final_loss": statistics.mean(losses[-20:])}
        print(key, report[key], flush=True)
    summary, pictures = evaluate({"pixel model": pixel, "latent model": latent}, codec, multiple)
    report["dev"] = summary
    for key, value in summary.items():
        print(f"{key:28s} PSNR {value['psnr_db']:.2f} dB  chroma MAE {value['chroma_mae']:.2f}  colorfulness x{value['colorfulness_ratio']:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / "colorize.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, RESULTS / "colorize.json")
    plot(pictures, RESULTS / "colorize.png", list(pictures)[:5])


if __name__ == "__main__":
    main()

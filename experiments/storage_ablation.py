"""What lets a many-channel variable-rate storage model use its channels? Partial runs side by side.

Each argument is a training run folder (its checkpoint is exported with fitted tables) or a model
(name or weights). Every model is measured on the dev photos (scikit-image's and opencv-doc's, never
trained on) at the qualities that fall exactly on its rungs, giving a rate-distortion curve, BD-rate
(PSNR) against the first model, and two numbers that show where its top rung is capped: the PSNR of
its decoder fed the *unquantized* latents (with the finest rung's gains), and the PSNR of the best
*linear* map from those latents back to the subbands (least squares, fitted on the same photos): when
the first is far below the second, the decoder, not the encoder, throws the detail away.

The partial runs (3,000 of ``recipes/rgb-storage-64.toml``'s 8,000 steps, each adding one change)::

    R="--config recipes/rgb-storage-64.toml --until 3000"
    .venv/bin/wavecodec train $R --run-dir runs/ablate-noise --set codec.rate_model=table --set balance_rungs=false \
        --set rounded_decoder_input=false --set codec.rate_gains=false
    .venv/bin/wavecodec train $R --run-dir runs/ablate-unbalanced --set codec.rate_model=table --set balance_rungs=false
    .venv/bin/wavecodec train $R --run-dir runs/ablate-table --set codec.rate_model=table
    .venv/bin/wavecodec train $R --run-dir runs/ablate-laplace

Run: ``.venv/bin/python experiments/storage_ablation.py runs/ablate-noise runs/ablate-unbalanced runs/ablate-table
runs/ablate-laplace runs/rgb-storage-64``; between the rungs (``recipes/rgb-storage-64-between.toml``):
``.venv/bin/python experiments/storage_ablation.py runs/rgb-storage-64 runs/rgb-storage-64-between --no-ceilings
--qualities 0,10,20,30,40,50,60,70,80,90,100 -o experiments/results/storage_between.json``. Writes ``experiments/results/storage_ablation.json`` and ``.png``
(``-o`` another file).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import wavecodec
from wavecodec.benchmarking import dev_photos, machine, photo_tensor, write_json
from wavecodec.bottleneck import per_channel
from wavecodec.metrics import bd_rate, psnr
from wavecodec.model import Codec
from wavecodec.training import export

RESULTS = Path(__file__).resolve().parent / "results"


def load(ref: str, scratch: Path) -> tuple[Codec, int | None]:
    """A model from a run folder (exported, with the checkpoint's step) or a name or weights file."""
    folder = Path(ref)
    if folder.is_dir():
        from safetensors import safe_open

        with safe_open(str(folder / "checkpoint.safetensors"), "pt") as f:
            step = int((f.metadata() or {}).get("step", 0))
        out = scratch / f"{folder.name}.safetensors"
        export(folder, out, name=f"ablation-{folder.name}", fit_batches=8)
        return wavecodec.load(out), step
    return wavecodec.load(ref), None


def curve(codec: Codec, photos: dict[str, np.ndarray], qualities: list[float] | None = None) -> list[dict]:
    """bpp and PSNR (means over the photos) at ``qualities``, by default those on the rungs."""
    rungs = codec.rates.rungs
    points = []
    for q in qualities or [100.0 * (1 - k / (rungs - 1)) for k in range(rungs)]:
        bpp, score = [], []
        for img in photos.values():
            x = photo_tensor(img)
            data = codec.compress(x, quality=q)
            bpp.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            score.append(psnr(x.double(), codec.decompress(data).double(), 255.0))
        points.append({"quality": q, "bpp": float(np.mean(bpp)), "psnr": float(np.mean(score))})
    return sorted(points, key=lambda p: p["bpp"])


@torch.no_grad()
def ceilings(codec: Codec, photos: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean PSNR (unit range) of the decoder on unquantized latents, and of the least-squares linear decode."""
    gains = codec.reconstruction_step(quality=100) / codec.quantization_step(quality=100)
    ys, subbands, cases, decoded = [], [], [], []
    for img in photos.values():
        x = photo_tensor(img)
        size = x.shape[2:]
        u = codec.pad(codec.to_unit(x))
        s = codec.wpt(u)
        y = codec.encoder(s)
        latents = codec.bottleneck.compand(y)
        z = codec.bottleneck.expand(latents * per_channel(gains, latents))
        ref = codec.crop(u, size)
        out = codec.crop(codec.wpt.inverse(codec.decoder(z)), size).clamp(-0.5, 0.5)
        decoded.append(-10 * math.log10(float(((out - ref) ** 2).mean())))
        ys.append(y.flatten(2)[0].double())
        subbands.append(s.flatten(2)[0].double())
        cases.append((s.shape, size, ref))
    ones = lambda a: torch.cat([a, torch.ones(1, a.shape[1], dtype=a.dtype)])  # noqa: E731
    fit = torch.linalg.lstsq(ones(torch.cat(ys, 1)).T, torch.cat(subbands, 1).T).solution.T
    linear = []
    for y, (shape, size, ref) in zip(ys, cases):
        out = codec.crop(codec.wpt.inverse((fit @ ones(y)).reshape(shape).float()), size).clamp(-0.5, 0.5)
        linear.append(-10 * math.log10(float(((out - ref) ** 2).mean())))
    return {"decoder_unquantized_psnr": float(np.mean(decoded)), "least_squares_linear_psnr": float(np.mean(linear))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run folders, model names or weights (the first is the BD anchor)")
    parser.add_argument("--qualities", help="comma-separated qualities to measure (default: those on the rungs)")
    parser.add_argument("--no-ceilings", action="store_true", help="skip the unquantized decoder and linear-map figures")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "storage_ablation.json", help="result file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    photos = dev_photos()
    report: dict = {"photos": list(photos), "models": {}, "machine": machine()}
    with tempfile.TemporaryDirectory() as scratch:
        for ref in args.models:
            codec, step = load(ref, Path(scratch))
            if codec.rates is None:
                sys.exit(f"{ref} is not a variable-rate model")
            qualities = [float(q) for q in args.qualities.split(",")] if args.qualities else None
            entry = {"step": step, "latent_dim": codec.config.latent_dim, "curve": curve(codec, photos, qualities),
                     **({} if args.no_ceilings else ceilings(codec, photos))}
            report["models"][ref] = entry
            print(ref, {k: v for k, v in entry.items() if k != "curve"}, flush=True)
            for p in entry["curve"]:
                print(f"  quality {p['quality']:5.1f}: {p['bpp']:.3f} bpp, {p['psnr']:.2f} dB", flush=True)
    anchor = report["models"][args.models[0]]["curve"]
    for ref, entry in report["models"].items():
        c = entry["curve"]
        try:
            entry["bd_rate_vs_first"] = bd_rate([p["bpp"] for p in anchor], [p["psnr"] for p in anchor],
                                                [p["bpp"] for p in c], [p["psnr"] for p in c])
        except ValueError:
            entry["bd_rate_vs_first"] = None
        print(f"{ref}: BD-rate vs {args.models[0]} {entry['bd_rate_vs_first']}")
    path = write_json(args.output, report)
    plot(report, args.output.with_suffix(".png"))
    print(f"wrote {path}")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for ref, entry in report["models"].items():
        c = entry["curve"]
        label = f"{Path(ref).name} ({entry['latent_dim']} ch" + (f", step {entry['step']})" if entry["step"] else ")")
        ax.plot([p["bpp"] for p in c], [p["psnr"] for p in c], marker="o", label=label)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB), dev photos")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

"""Classification on Fashion-MNIST: codec latents vs pixels with the same number of values.

The same classifier body (``wavecodec.learn.Classifier``: patch embedding, ConvNeXt-like
blocks, pooling, linear) is trained on

* latents of the shipped gray codecs ``fmnist-4x`` (4 x 7 x 7) and ``fmnist-16x`` (1 x 7 x 7),
  the rounded integers every ``.wvc`` file holds (``OnTheFlyLatents``);
* pixels area-downsampled to the same number of values (14 x 14 and 7 x 7), cut into
  patches so that the token count (49) is the same as the latents';
* full-resolution pixels (28 x 28) with 4 x 4 patches (49 tokens) and with 2 x 2 patches
  (196 tokens, the usual stride-2 stem: what one would train without a codec).

Several seeds each; test accuracy (mean, standard deviation), epoch time (median) and the
memory autograd keeps per batch. Writes ``experiments/results/fashion_mnist.{json,png}``.

Run (CPU, about 25 minutes with the defaults):
    apt-get install -y --no-install-recommends dataset-fashion-mnist
    .venv/bin/python experiments/fashion_mnist.py
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

import _fmnist
import wavecodec
from wavecodec.metrics import psnr_from_mse
from wavecodec.progress import bar
from wavecodec.benchmarking import save_figure, write_json
from wavecodec.data import OnTheFlyLatents
from wavecodec.learn import Classifier, activation_bytes, count_parameters, downsample, fit_classifier, matched_pixels

RESULTS = Path(__file__).resolve().parent / "results"


def latents_of(codec: wavecodec.Codec, images: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    to_latents = OnTheFlyLatents(codec)
    return torch.cat([to_latents(images[i : i + batch]) for i in range(0, len(images), batch)])


@torch.no_grad()
def codec_figures(codec: wavecodec.Codec, images: torch.Tensor, count: int = 500) -> dict[str, float]:
    """Reconstruction PSNR on the test images and the coded size of ``count`` of them (payload and whole file)."""
    x = images[:count]
    y = torch.cat([codec.decompress(codec.compress(x[i : i + 1])) for i in range(count)])
    mse = ((y.double() - x.double()) ** 2).mean().item() / 255**2
    sizes = [len(codec.compress(x[i : i + 1])) for i in range(count)]
    batch_file = len(codec.compress(x))  # one file for the whole batch: the header is shared
    return {"psnr_db": psnr_from_mse(mse), "bpp_single_files": 8 * statistics.mean(sizes) / 784,
            "bpp_batched_file": 8 * batch_file / (784 * count), "reduction": codec.config.reduction}


def variants(latents: dict[str, torch.Tensor], train_px: torch.Tensor) -> dict[str, tuple[str, int, str]]:
    """name -> (input key, patch, description); input keys index the tensors built in ``main``."""
    out = {}
    for name in latents:
        lat = latents[name]
        m = matched_pixels(tuple(lat.shape[1:]), 1)
        out[f"latents {name}"] = (f"lat:{name}", 1, f"{tuple(lat.shape[1:])} codec latents, {m.tokens} tokens")
        out[f"pixels {m.side}x{m.side}"] = (f"px:{m.side}", m.patch, f"pixels downsampled to {m.side}x{m.side} ({m.values} values), {m.tokens} tokens")
    out["pixels 28x28 /4"] = ("px:28", 4, "full-resolution pixels in 4x4 patches, 49 tokens")
    out["pixels 28x28 /2"] = ("px:28", 2, "full-resolution pixels in 2x2 patches, 196 tokens")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fmnist-4x", "fmnist-16x"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=0, help="use only this many training images (quick runs)")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from the saved results, without training")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads((RESULTS / "fashion_mnist.json").read_text())["results"], RESULTS / "fashion_mnist.png")
        return
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    x_train, y_train = (torch.from_numpy(a.copy()) for a in _fmnist.load("train"))
    x_test, y_test = (torch.from_numpy(a.copy()) for a in _fmnist.load("test"))
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    x_train, x_test = x_train[:, None], x_test[:, None]
    y_train, y_test = y_train.long(), y_test.long()

    inputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    latents, codecs = {}, {}
    for ref in args.models:
        codec = wavecodec.load(ref)
        name = codec.config.name or Path(ref).stem
        t = time.perf_counter()
        inputs[f"lat:{name}"] = (latents_of(codec, x_train), latents_of(codec, x_test))
        speed = (len(x_train) + len(x_test)) / (time.perf_counter() - t)
        codecs[name] = {**codec_figures(codec, x_test), "latent_images_per_s": speed}
        latents[name] = inputs[f"lat:{name}"][0]
        print(name, codecs[name], flush=True)
    for side in sorted({matched_pixels(tuple(v.shape[1:]), 1).side for v in latents.values()} | {28}):
        inputs[f"px:{side}"] = (downsample(x_train, side), downsample(x_test, side))

    results = {}
    for label, (key, patch, description) in variants(latents, x_train).items():
        train_in, test_in = inputs[key]
        runs = []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = Classifier(train_in.shape[1], 10, patch=patch, width=args.width, depth=args.depth)
            history = fit_classifier(model, train_in, y_train, test_in, y_test, epochs=args.epochs,
                                     batch_size=args.batch_size, seed=seed, progress=bar("step"))
            runs.append(history.to_dict())
            print(f"{label:20s} seed {seed}: {history.accuracy[-1]:.4f}  {statistics.median(history.epoch_seconds):.1f} s/epoch", flush=True)
        final = [r["accuracy"][-1] for r in runs]
        results[label] = {
            "description": description, "input_shape": list(train_in.shape[1:]), "patch": patch,
            "values": int(np.prod(train_in.shape[1:])), "tokens": (train_in.shape[2] // patch) * (train_in.shape[3] // patch),
            "parameters": count_parameters(model),
            "activation_mb_per_batch": activation_bytes(model, train_in[: args.batch_size]) / 1e6,
            "accuracy_mean": statistics.mean(final), "accuracy_std": statistics.stdev(final) if len(final) > 1 else 0.0,
            "epoch_seconds_median": statistics.median(s for r in runs for s in r["epoch_seconds"]), "runs": runs,
        }
    comparisons = {}
    for name, lat in latents.items():
        side = matched_pixels(tuple(lat.shape[1:]), 1).side
        a, b = results[f"latents {name}"], results[f"pixels {side}x{side}"]
        full = results["pixels 28x28 /2"]
        comparisons[name] = {
            "accuracy_margin_vs_equal_size_pixels": a["accuracy_mean"] - b["accuracy_mean"],
            "margin_spread": (a["accuracy_std"] ** 2 + b["accuracy_std"] ** 2) ** 0.5,
            "epoch_speedup_vs_full_resolution_2x2": full["epoch_seconds_median"] / a["epoch_seconds_median"],
            "epoch_speedup_vs_full_resolution_4x4": results["pixels 28x28 /4"]["epoch_seconds_median"] / a["epoch_seconds_median"],
        }
    payload = {"config": vars(args), "codecs": codecs, "results": results, "comparisons": comparisons,
               "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}}
    write_json(RESULTS / "fashion_mnist.json", payload)
    plot(results, RESULTS / "fashion_mnist.png")
    print(json.dumps(comparisons, indent=2))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    labels = list(results)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    colors = ["tab:blue" if k.startswith("latents") else "tab:gray" for k in labels]
    axes[0].bar(labels, [100 * results[k]["accuracy_mean"] for k in labels],
                yerr=[100 * results[k]["accuracy_std"] for k in labels], color=colors, capsize=3)
    axes[0].set_ylim(0, 100)  # from zero: a cut axis would make differences of a few tenths look large
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].bar(labels, [results[k]["epoch_seconds_median"] for k in labels], color=colors)
    axes[1].set_ylabel("seconds per epoch (median)")
    for k in labels:
        for r in results[k]["runs"][:1]:
            axes[2].plot(range(1, len(r["accuracy"]) + 1), [100 * a for a in r["accuracy"]], marker="o", label=k)
    axes[2].set_xlabel("epoch")
    axes[2].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # whole epochs only
    axes[2].set_ylabel("test accuracy (%), seed 0")
    axes[2].legend(fontsize=7)
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=35, labelsize=8)
    save_figure(fig, path, "Fashion-MNIST: same classifier on codec latents vs pixels")


if __name__ == "__main__":
    main()

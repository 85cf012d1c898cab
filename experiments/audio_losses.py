"""Ablation of the audio training losses: MSE alone vs + multi-resolution STFT vs + mel vs both.

Each variant fine-tunes the shipped ``stereo-20x`` (or ``--model``) for the same number of
steps on the training music (Debian ``wesnoth-1.16-music``), from the same weights, with the
same data order; only the loss differs. Then every variant, and the starting model, is
measured on the dev music (Debian ``hyperrogue-music`` excerpts, never trained on) through
``wavecodec.evaluation.evaluate_audio_file``: kbps, SNR, mel and STFT distance and ViSQOL
MOS-LQO, in one run. Training resumes where it stopped (``--resume`` is automatic per variant).

Run (CPU; the default 300 steps per variant take about 10 minutes each on 2 cores):
    .venv/bin/python experiments/audio_losses.py
Writes ``experiments/results/audio_losses.{json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import dev_audio, machine, save_figure, write_json
from wavecodec.evaluation import evaluate
from wavecodec.progress import bar
from wavecodec.training import TrainConfig, export, train
from wavecodec.training.state import CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {  # name: loss weights (beside the MSE every variant keeps)
    "mse": {},
    "mse+stft": {"stft_weight": 1e-4},
    "mse+mel": {"mel_weight": 2e-4},
    "mse+stft+mel": {"stft_weight": 1e-4, "mel_weight": 2e-4},
    "mse+mel x4": {"mel_weight": 8e-4},  # the best single loss at higher weights
    "mse+mel x16": {"mel_weight": 3.2e-3},
}
KEYS = ("kbps", "snr", "si_sdr", "mel_distance", "stft_distance", "visqol")


def config(model: str, variant: str, steps: int, work: Path) -> TrainConfig:
    """The model's recipe, fine-tuning from its shipped weights with the variant's loss."""
    overrides = [f"run_dir={json.dumps(str(work / variant))}", f"init_weights={json.dumps(model)}", "pca_init=false",
                 f"steps={steps}", "lr=3e-4", "warmup=20", "val_every=100000", "checkpoint_every=50", "log_every=10"]
    overrides += [f"{k}={v}" for k, v in VARIANTS[variant].items()]
    return TrainConfig.load(str(ROOT / "recipes" / f"{model}.toml"), overrides)


def measure(codec: wavecodec.Codec, paths: list[Path]) -> dict[str, float]:
    """The mean of each figure over the dev excerpts, through ``wavecodec eval``'s evaluation."""
    means = evaluate(codec, paths, perceptual=True)["results"]
    return {k: means[k][0] for k in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stereo-20x")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS)[:4], choices=list(VARIANTS),
                        help="default: the four one-at-a-time variants; results merge into the saved JSON")
    parser.add_argument("--tracks", type=int, default=8, help="dev tracks (20 s excerpts)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "audio_losses")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    paths = dev_audio(args.tracks, 20.0, ROOT / "runs" / "audio-dev")
    out = RESULTS / "audio_losses.json"
    saved = json.loads(out.read_text()) if out.exists() else {}
    same = saved.get("model") == args.model and saved.get("steps") == args.steps and len(saved.get("dev_audio", [])) == len(paths)
    results = saved["results"] if same else {}
    if "start" not in results:
        results["start"] = {"model": args.model, **measure(wavecodec.load(args.model), paths)}
        print("start", results["start"], flush=True)
    for variant in args.variants:
        cfg = config(args.model, variant, args.steps, args.work)
        run_dir = Path(cfg.run_dir)
        started = time.perf_counter()
        train(cfg, resume=(run_dir / CHECKPOINT).exists(), progress=bar("step", variant))
        seconds = time.perf_counter() - started
        codec = export(run_dir, args.work / f"{variant}.safetensors", name=f"{args.model}-{variant}", fit_batches=8)
        results[variant] = {"weights": VARIANTS[variant], "train_seconds_this_run": seconds, **measure(codec, paths)}
        print(variant, results[variant], flush=True)
    payload = {"model": args.model, "steps": args.steps, "dev_audio": [str(p) for p in paths], "results": results,
               "machine": machine()}
    write_json(out, payload)
    plot(results, RESULTS / "audio_losses.png")
    print(f"{'variant':14s} " + " ".join(f"{k:>13s}" for k in KEYS))
    for name, r in results.items():
        print(f"{name:14s} " + " ".join(f"{r[k]:13.3f}" for k in KEYS))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, label in zip(axes, ("snr", "mel_distance", "visqol"),
                              ("SNR (dB), higher is better", "mel distance, lower is better", "ViSQOL MOS-LQO, higher is better")):
        ax.bar(names, [results[n][key] for n in names], color=["tab:gray"] + ["tab:blue"] * (len(names) - 1))
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=30)
    save_figure(fig, path, "Audio training losses, one at a time (dev music)")


if __name__ == "__main__":
    main()

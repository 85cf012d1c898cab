"""Shared parts of the detail-decides-the-label experiments (``font_id.py``, ``soundtrack_id.py``).

Each experiment trains the same classifier body (``wavecodec.learn.Classifier``) on several
inputs with the same token count: codec latents, the source signal reduced to the same
number of values, and the full-resolution source. This module runs those comparisons over
seeds and heads, measures the data path (samples/s through a ``DataLoader``), and draws the
result plot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from wavecodec.benchmarking import save_figure, write_json
from wavecodec.convert import convert
from wavecodec.learn import Classifier, activation_bytes, count_parameters, fit_classifier
from wavecodec.learn.classify import read_all
from wavecodec.progress import bar

RESULTS = Path(__file__).resolve().parent / "results"


def _bar(unit: str, desc: str) -> Callable[[int, int], None] | None:
    """A progress bar on a terminal; nothing in a log file."""
    return bar(unit, desc) if sys.stderr.isatty() else None


@dataclass
class Variant:
    """One classifier input: train/test tensors, the patch that gives the shared token count, a description."""

    train: torch.Tensor
    test: torch.Tensor
    patch: int
    description: str
    kind: str  # "latents", "reduced" (same number of values as a latent variant) or "full"

    @property
    def dims(self) -> int:
        return self.train.ndim - 2

    @property
    def tokens(self) -> int:
        return int(np.prod([n // self.patch for n in self.train.shape[2:]]))


def build_sources(args: argparse.Namespace, build: Callable[[Path, dict[str, int], int], Path], folder: str) -> tuple[Path, float]:
    """Set the thread count, then build (or reuse) the sources in ``args.work / folder``; returns the folder and the seconds."""
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    start = time.perf_counter()
    root = build(args.work / folder, {"train": args.train_per_class, "test": args.test_per_class}, args.seed)
    return root, time.perf_counter() - start


def up_to_date(root: Path, recipe: dict[str, Any]) -> bool:
    """Whether ``root`` holds a complete build of ``recipe`` (its ``.complete`` marker says so).

    If not, the whole work folder above it (sources and the shards converted from them) is
    removed, so a build for other counts or another seed never mixes with an old one.
    """
    marker = root / ".complete"
    if marker.exists() and json.loads(marker.read_text()).get("recipe") == recipe:
        return True
    if root.parent.exists():
        shutil.rmtree(root.parent)
    return False


def mark_complete(root: Path, recipe: dict[str, Any], **facts: Any) -> None:
    """Record that ``root`` holds a complete build of ``recipe`` (and ``facts`` about it)."""
    (root / ".complete").write_text(json.dumps({"recipe": recipe, **facts}))


def convert_splits(src: Path, dst: Path, model: str, workers: int = 2) -> dict[str, float]:
    """``wavecodec convert`` each split folder of ``src`` (labels from folders) into ``dst/split``; seconds per split."""
    seconds = {}
    for split in ("train", "test"):
        start = time.perf_counter()
        convert(str(src / split), str(dst / split), model, labels_from_folders=True, shard_size=250, workers=workers,
                progress=_bar("file", f"convert {model} {split}"))
        seconds[split] = time.perf_counter() - start
    return seconds


def read_latents(root: Path) -> tuple[torch.Tensor, torch.Tensor, list[str], float]:
    """All latents of a converted split (``LatentDataset``), their labels, class names and the read time."""
    start = time.perf_counter()
    x, y, names = read_all(root, _bar("sample", f"read {root.parent.name}/{root.name}"))
    return x, y, names, time.perf_counter() - start


def latents(sources: Path, work: Path, model: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str], dict[str, Any]]:
    """Convert both splits of ``sources`` with ``model`` and read them back: train and test latents and labels, class names, facts.

    The shards mix the classes; the latents come back stably sorted by label, the order in
    which :func:`read_split` reads the sources, so every input of an experiment shares one
    label vector. The facts: conversion and read seconds, samples read per second, bytes per
    sample of the shards and of the sources, the latent shape.
    """
    convert_seconds = convert_splits(sources, work / model, model)
    x, y, names, t_train = read_latents(work / model / "train")
    x_test, y_test, test_names, t_test = read_latents(work / model / "test")
    assert names == test_names
    order, order_test = torch.argsort(y, stable=True), torch.argsort(y_test, stable=True)
    x, y, x_test, y_test = x[order], y[order], x_test[order_test], y_test[order_test]
    index = json.loads((work / model / "train" / "index.json").read_text())
    facts = {"convert_seconds": convert_seconds, "read_seconds": {"train": t_train, "test": t_test},
             "read_samples_per_s": (len(x) + len(x_test)) / (t_train + t_test),
             "bytes_per_sample": index["bytes"] / index["count"], "source_bytes_per_sample": index["source_bytes"] / index["count"],
             "latent_shape": list(x.shape[1:])}
    return x, x_test, y, y_test, names, facts


def time_to_accuracy(history: dict[str, list[float]], target: float) -> float | None:
    """Training seconds until the test accuracy first reaches ``target`` (None if it never does)."""
    elapsed = 0.0
    for acc, seconds in zip(history["accuracy"], history["epoch_seconds"]):
        elapsed += seconds
        if acc >= target:
            return elapsed
    return None


def run_variants(variants: dict[str, Variant], y_train: torch.Tensor, y_test: torch.Tensor, num_classes: int,
                 heads: list[str], seeds: int, epochs: int, width: int, depth: int, batch_size: int,
                 lr: float = 2e-3, log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Train every variant with every head over ``seeds``; accuracy mean and spread, time and memory per run."""
    results: dict[str, dict[str, Any]] = {}
    for head in heads:
        for name, v in variants.items():
            runs, model = [], None
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = Classifier(v.train.shape[1], num_classes, patch=v.patch, width=width, depth=depth, kind=head, dims=v.dims)
                history = fit_classifier(model, v.train, y_train, v.test, y_test, epochs=epochs, batch_size=batch_size,
                                         lr=lr, seed=seed, progress=_bar("step", f"{head} {name} seed {seed}"))
                runs.append(history.to_dict())
                log(f"{head:11s} {name:24s} seed {seed}: {history.accuracy[-1]:.4f} "
                    f"({statistics.median(history.epoch_seconds):.1f} s/epoch)")
            final = [r["accuracy"][-1] for r in runs]
            results[f"{head}: {name}"] = {
                "head": head, "input": name, "kind": v.kind, "description": v.description,
                "input_shape": list(v.train.shape[1:]), "values": int(np.prod(v.train.shape[1:])), "patch": v.patch,
                "tokens": v.tokens, "parameters": count_parameters(model),
                "activation_mb_per_batch": activation_bytes(model, v.train[:batch_size]) / 1e6,
                "accuracy_mean": statistics.mean(final), "accuracy_std": statistics.stdev(final) if len(final) > 1 else 0.0,
                "accuracy_runs": final,
                "epoch_seconds_median": statistics.median(s for r in runs for s in r["epoch_seconds"]), "runs": runs,
            }
    return results


def add_time_to_accuracy(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Add each result's median training seconds to a fixed accuracy; returns the targets by head.

    The target of a head is the lowest final accuracy of any of its runs, so every run reaches
    it (the time then says how fast each input gets to the same place); a run that never
    reaches it would count as missing (the median is then None).
    """
    targets: dict[str, float] = {}
    for r in results.values():
        targets[r["head"]] = min(targets.get(r["head"], 1.0), *r["accuracy_runs"])
    for r in results.values():
        times = [time_to_accuracy(run, targets[r["head"]]) for run in r["runs"]]
        reached = [t for t in times if t is not None]
        r["target_accuracy"] = targets[r["head"]]
        r["seconds_to_target_median"] = statistics.median(reached) if len(reached) == len(times) else None
        r["runs_reaching_target"] = len(reached)
    return targets


def loader_rate(dataset: Dataset | Any, workers: int, batch_size: int = 32, limit: int = 1600) -> float:
    """Samples per second through a ``DataLoader`` with ``workers`` processes, after its first batch.

    The clock starts when the first batch arrives, so worker start-up (a one-off cost per
    epoch, the same for every dataset) does not count; at most ``limit`` samples are read.
    """
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, worker_init_fn=_one_thread if workers else None)
    if workers == 0:
        torch.set_num_threads(1)
    start, seen = 0.0, -1
    for x, _ in loader:
        if seen < 0:
            start, seen = time.perf_counter(), 0
            continue
        seen += len(x)
        if seen >= limit:
            break
    rate = seen / (time.perf_counter() - start)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    return rate


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


class SourceFolder(Dataset):
    """The source path a model without a codec trains from: ``root/<class>/*<suffix>`` files, each read by ``load``."""

    def __init__(self, root: Path, suffix: str, load: Callable[[Path], torch.Tensor]) -> None:
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.items = [(p, k) for k, c in enumerate(self.classes) for p in sorted((root / c).glob(f"*{suffix}"))]
        self.load = load

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        return self.load(path), label


def read_split(root: Path, names: list[str], suffix: str, read: Callable[[Path], np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``root/<name>/*<suffix>`` file read by ``read`` and stacked, with labels in ``names``' order."""
    xs, ys = [], []
    for k, name in enumerate(names):
        for p in sorted((root / name).glob(f"*{suffix}")):
            xs.append(read(p))
            ys.append(k)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


class Limited(torch.utils.data.IterableDataset):
    """The first ``n`` items of a map-style dataset, in a random order split across workers (for throughput)."""

    def __init__(self, dataset: Dataset, n: int, seed: int = 0) -> None:
        self.dataset, self.order = dataset, np.random.default_rng(seed).permutation(len(dataset))[:n]

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        order = self.order if info is None else self.order[info.id :: info.num_workers]
        for i in order:
            yield self.dataset[int(i)]


def plot(payload: dict[str, Any], path: Path, title: str) -> None:
    """Accuracy (mean and spread) per input and head, and seconds per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = payload["results"]
    heads = sorted({r["head"] for r in results.values()})
    inputs = list(dict.fromkeys(r["input"] for r in results.values()))
    colors = {"latents": "tab:blue", "reduced": "tab:gray", "full": "tab:green"}
    fig, axes = plt.subplots(1, len(heads) + 1, figsize=(5.5 * (len(heads) + 1), 4.6))
    for ax, head in zip(axes, heads):
        rows = [results[f"{head}: {i}"] for i in inputs]
        ax.bar(range(len(rows)), [100 * r["accuracy_mean"] for r in rows], yerr=[100 * r["accuracy_std"] for r in rows],
               color=[colors[r["kind"]] for r in rows], capsize=3)
        chance = 100 / payload["num_classes"]
        ax.axhline(chance, color="k", lw=0.8, ls=":")
        ax.set_xticks(range(len(rows)), inputs, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("test accuracy (%), mean and std over seeds")
        ax.set_title(f"{head} head (dotted: chance)")
    ax = axes[-1]
    for k, head in enumerate(heads):
        rows = [results[f"{head}: {i}"] for i in inputs]
        ax.bar(np.arange(len(rows)) + 0.4 * k - 0.2, [r["epoch_seconds_median"] for r in rows], width=0.4, label=head)
    ax.set_xticks(range(len(inputs)), inputs, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("seconds per training epoch (median)")
    ax.legend()
    save_figure(fig, path, title)


def markdown(payload: dict[str, Any]) -> str:
    """The result tables (accuracy, time, memory; data-loader throughput) as Markdown, for ``docs/``."""
    lines = ["| head | input | values | tokens | parameters | test accuracy (mean ± std, "
             f"{len(next(iter(payload['results'].values()))['accuracy_runs'])} seeds) | s / epoch (median) | "
             "s to target (median) | autograd MB / batch |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in payload["results"].values():
        reach = r["seconds_to_target_median"]
        lines.append(f"| {r['head']} | {r['input']} | {r['values']:,} | {r['tokens']} | {r['parameters']:,} | "
                     f"{100 * r['accuracy_mean']:.1f}% ± {100 * r['accuracy_std']:.1f} | {r['epoch_seconds_median']:.1f} | "
                     f"{'not reached' if reach is None else f'{reach:.0f}'} | {r['activation_mb_per_batch']:.0f} |")
    targets = ", ".join(f"{h} {100 * t:.1f}%" for h, t in payload["time_to_accuracy_targets"].items())
    lines += ["", f"Target accuracy of the time column (the lowest final accuracy of any of the head's runs): {targets}.", ""]
    loaders = payload["loader_samples_per_s"]
    names = list(next(iter(loaders.values())))
    lines += ["| DataLoader samples/s | " + " | ".join(loaders) + " |", "| --- |" + " ---: |" * len(loaders)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{loaders[w][n]:,.0f}" for w in loaders) + " |")
    return "\n".join(lines)


def arguments(doc: str, name: str, items: str, train: int, test: int, epochs: int, batch_size: int,
              quick_train: int) -> argparse.Namespace:
    """The experiments' shared command line; ``args.out`` is the JSON to write (a ``--quick`` run writes under ``--work``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs") / name, help=f"where the {items} and shards go")
    parser.add_argument("--train-per-class", type=int, default=train)
    parser.add_argument("--test-per-class", type=int, default=test)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--heads", nargs="+", default=["conv", "transformer"])
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: few {items}, one seed, two epochs")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot and tables from the saved JSON")
    parser.add_argument("--only", nargs="+", metavar="INPUT", help="train on these inputs only, keeping the saved results of the others")
    args = parser.parse_args()
    args.out = RESULTS / f"{name}.json"
    if args.quick:
        args.train_per_class, args.test_per_class, args.seeds, args.epochs = quick_train, 4, 1, 2
        args.work = args.work.with_name(args.work.name + "-quick")
        args.out = args.work / f"{name}-quick.json"
    return args


def comparisons(results: dict[str, dict[str, Any]], pairs: dict[str, str], full: str) -> dict[str, dict[str, float]]:
    """Per head and codec: accuracy margin over the input of equal size, gap to and epoch speed-up over full resolution.

    ``pairs`` maps each codec to the name of its equal-size input; ``full`` names the full-resolution input.
    """
    out = {}
    for head in dict.fromkeys(r["head"] for r in results.values()):
        for model, reduced in pairs.items():
            a, b, c = results[f"{head}: latents {model}"], results[f"{head}: {reduced}"], results[f"{head}: {full}"]
            out[f"{head}: {model}"] = {
                "accuracy_margin_vs_equal_size_input": a["accuracy_mean"] - b["accuracy_mean"],
                "margin_spread": (a["accuracy_std"] ** 2 + b["accuracy_std"] ** 2) ** 0.5,
                "accuracy_gap_to_full_resolution": a["accuracy_mean"] - c["accuracy_mean"],
                "epoch_speedup_vs_full_resolution": c["epoch_seconds_median"] / a["epoch_seconds_median"],
            }
    return out


def report(payload: dict[str, Any], out: Path, title: str, pairs: dict[str, str], full: str) -> None:
    """Add the comparisons and times to a fixed accuracy, write the JSON and the plot, print them and the Markdown tables."""
    payload["pairs"], payload["full_input"] = pairs, full
    payload["comparisons"] = comparisons(payload["results"], pairs, full)
    payload["time_to_accuracy_targets"] = add_time_to_accuracy(payload["results"])
    write_json(out, payload)
    plot(payload, out.with_suffix(".png"), title)
    print(json.dumps(payload["comparisons"], indent=2))
    print(markdown(payload))


def rerun_only(args: argparse.Namespace, variants: dict[str, Variant], order: list[str], y_train: torch.Tensor,
               y_test: torch.Tensor, num_classes: int, title: str, full: str) -> bool:
    """With ``--only``: train those inputs, merge them into the saved results (in ``order``), report; False without it."""
    if not args.only:
        return False
    unknown = set(args.only) - set(order)
    if unknown:
        raise SystemExit(f"unknown inputs {sorted(unknown)}; choose from {order}")
    saved = json.loads(args.out.read_text())
    fresh = run_variants({k: variants[k] for k in args.only}, y_train, y_test, num_classes, args.heads, args.seeds,
                         args.epochs, args.width, args.depth, args.batch_size)
    merged = {**saved["results"], **fresh}
    heads = list(dict.fromkeys(r["head"] for r in merged.values()))
    saved["results"] = {f"{h}: {k}": merged[f"{h}: {k}"] for h in heads for k in order if f"{h}: {k}" in merged}
    report(saved, args.out, title, saved["pairs"], full)
    return True

"""Train a classifier on a converted latent dataset (``wavecodec convert`` output): what ``wavecodec learn`` runs.

The latents are read once into memory (4-20x smaller than the pixels) and the classifier is
trained from there; the result is a safetensors file with the head's config in its metadata,
``metrics.json`` (per-epoch test accuracy and time) and ``curves.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from ..atomic import atomic_write
from ..data import LatentDataset
from ..errors import InputError, need
from .fit import fit_classifier
from .heads import Classifier, count_parameters


def read_all(root: str | Path, progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every sample of a converted dataset as ``(latents (N, C, *S) float, labels (N,), class names)``.

    Raises:
        InputError: no samples, no labels, or latents of different shapes.
    """
    ds = LatentDataset(root)
    if len(ds) == 0:
        raise InputError(f"{root} holds no samples")
    xs, ys = [], []
    for i in range(len(ds)):
        x, y = ds[i]
        if y < 0:
            raise InputError(f"{root} has no labels; convert it with labels (a CSV, or from folders)")
        xs.append(x)
        ys.append(y)
        if progress is not None:
            progress(i + 1, len(ds))
    if len({tuple(x.shape) for x in xs}) > 1:
        raise InputError(f"the latents in {root} differ in shape; convert images of one size (or resize them first)")
    return torch.stack(xs), torch.tensor(ys), ds.class_names


def learn(train_dir: str | Path, out_dir: str | Path, test_dir: str | Path | None = None, test_fraction: float = 0.1,
          epochs: int = 10, batch_size: int = 128, width: int = 64, depth: int = 3, kind: str = "conv",
          lr: float = 2e-3, seed: int = 0, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Train a :class:`Classifier` on latents; evaluate on ``test_dir`` or a held-out fraction.

    Args:
        progress: called as ``progress(stage, done, total)`` for the stages ``reading ...`` and ``training``.

    Returns:
        The metrics (also in ``out_dir/metrics.json``, beside ``classifier.safetensors`` and ``curves.png``).

    Raises:
        InputError: unreadable or unlabelled data, mismatched train/test sets, a bad ``test_fraction``.
    """
    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    x, y, names = read_all(train_dir, stage(f"reading {Path(train_dir).name}"))
    if test_dir is not None:
        x_test, y_test, test_names = read_all(test_dir, stage(f"reading {Path(test_dir).name}"))
        if test_names and names and test_names != names:
            raise InputError("the train and test datasets have different class names")
        if x_test.shape[1:] != x.shape[1:]:
            raise InputError("the train and test latents differ in shape")
    else:
        if not 0 < test_fraction < 1:
            raise InputError("test_fraction must be between 0 and 1")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        n_test = max(1, round(len(x) * test_fraction))
        if n_test >= len(x):
            raise InputError("too few samples to hold some out for testing; give a test dataset")
        x_test, y_test, x, y = x[order[:n_test]], y[order[:n_test]], x[order[n_test:]], y[order[n_test:]]
    num_classes = max(len(names), int(max(y.max(), y_test.max())) + 1)
    torch.manual_seed(seed)
    if x.ndim not in (3, 4):
        raise InputError(f"classifiers read 1-D (audio) or 2-D (image) latents, not {x.ndim - 2}-D ones")
    head = {"in_channels": x.shape[1], "num_classes": num_classes, "width": width, "depth": depth, "kind": kind,
            "dims": x.ndim - 2}
    model = Classifier(**head)
    history = fit_classifier(model, x, y, x_test, y_test, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             progress=stage("training"))
    out = Path(out_dir)
    metrics = {"train": str(train_dir), "test": str(test_dir or f"{test_fraction:.0%} held out"), "train_samples": len(x),
               "test_samples": len(x_test), "class_names": names, "head": head, "parameters": count_parameters(model),
               "final_accuracy": history.accuracy[-1], **history.to_dict()}
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out / "classifier.safetensors",
                 lambda tmp: save_file(state, tmp, metadata={"head": json.dumps(head), "class_names": json.dumps(names)}))
    atomic_write(out / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=2) + "\n"))
    _plot(history.accuracy, history.train_loss, out / "curves.png")
    return metrics


def load_classifier(path: str | Path) -> tuple[Classifier, list[str]]:
    """A classifier written by :func:`learn`, in eval mode, and its class names."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "head" not in meta:
        raise InputError(f"{path} is not a classifier written by wavecodec learn")
    model = Classifier(**json.loads(meta["head"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval(), json.loads(meta.get("class_names", "[]"))


def _plot(accuracy: list[float], loss: list[float], path: Path) -> None:
    need("matplotlib", "plots", "drawing plots").use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(accuracy) + 1)
    a.plot(epochs, [100 * v for v in accuracy], marker="o")
    a.set_xlabel("epoch"), a.set_ylabel("test accuracy (%)")
    b.plot(epochs, loss, marker="o")
    b.set_xlabel("epoch"), b.set_ylabel("training loss")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)

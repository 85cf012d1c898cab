"""PNG plots of a run: loss, PSNR and bpp curves, and validation reconstructions."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..errors import need


def _plt():
    need("matplotlib", "plots", "drawing plots").use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(log_path: Path, out: Path) -> None:
    """Training and validation loss, PSNR and bpp against the step."""
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, label in zip(axes, ("loss", "psnr", "bpp"), ("loss", "PSNR (dB)", "bits per pixel")):
        for kind, style in (("train", "-"), ("val", "o-")):
            pts = [(r["step"], r[key]) for r in rows if r.get("kind") == kind and key in r]
            if pts:
                ax.plot(*zip(*pts), style, label=kind, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if any(r.get("kind") == "train" for r in rows):
        axes[0].set_yscale("log")
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def plot_reconstructions(originals: torch.Tensor, recons: torch.Tensor, out: Path, title: str = "") -> None:
    """Originals (top row) above reconstructions (bottom row) for image batches in [0, 1]."""
    if originals.dim() != 4:
        return
    plt = _plt()
    n = min(4, originals.shape[0])
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 6.2), squeeze=False)
    for i in range(n):
        for row, batch in enumerate((originals, recons)):
            img = batch[i].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            ax = axes[row][i]
            ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img[:, :, :3], cmap="gray" if img.shape[2] == 1 else None, vmin=0, vmax=1)
            ax.set_axis_off()
            if i == 0:
                ax.set_title("original" if row == 0 else "reconstruction", loc="left", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)

"""Training and evaluation loops for heads on in-memory tensors (latents or pixels).

Latent datasets are small (4-20x fewer values than the pixels), so they are read once into
memory and batched from there; this keeps an epoch's time the model's time, which is what
the comparisons measure.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..schedule import warmup_cosine


@dataclass
class History:
    """Per-epoch test accuracy and wall time of one classifier run."""

    accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[float]]:
        """The history as plain lists."""
        return {"accuracy": self.accuracy, "train_loss": self.train_loss, "epoch_seconds": self.epoch_seconds}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Share of ``x`` classified as ``y`` (eval mode, batched)."""
    model.eval()
    correct = sum(int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum()) for i in range(0, len(x), batch_size))
    return correct / max(1, len(x))


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                   epochs: int = 5, batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 0.05, seed: int = 0,
                   augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> History:
    """AdamW with warm-up and cosine decay; test accuracy after every epoch.

    ``progress(done, total)`` is called after every step.
    """
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch
    history, step = History(), 0
    for _ in range(epochs):
        model.train()
        start, losses = time.perf_counter(), []
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if augment is None else augment(x[idx])
            for group in optimizer.param_groups:
                group["lr"] = lr * warmup_cosine(step, total, max(1, total // 20))
            loss = F.cross_entropy(model(xb), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if progress is not None:
                progress(step, total)
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(sum(losses) / len(losses))
        history.accuracy.append(accuracy(model, x_test, y_test))
    return history


def fit_dense(model: nn.Module, batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: int,
              lr: float = 2e-3, progress: Callable[[int, int], None] | None = None) -> list[float]:
    """Train an image-to-image head with MSE on ``batches(step) -> (input, target)``; returns the loss per step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        xb, target = batches(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * warmup_cosine(step, steps, max(1, steps // 20))
        loss = F.mse_loss(model(xb), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, steps)
    return losses


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of tensors autograd keeps for the backward pass of one batch: the memory that grows with input size."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    model.zero_grad(set_to_none=True)
    return total

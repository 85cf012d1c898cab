"""Variable rate: one model trained at a ladder of rate points, and a quality knob between them.

A *ladder* model (``CodecConfig.rate_lambdas`` non-empty) is trained at ``L`` rate points at
once: each batch takes one rung ``l`` and the loss ``MSE + lambda_l * bpp``. Rung ``l`` owns
a vector of per-channel quantization steps: the companded latents are divided by it before
rounding and multiplied back before the decoder (gained variable-rate compression, Cui et
al., CVPR 2021). A channel that matters little at a low rate gets a large step and costs
almost nothing, so one decoder serves every rate. Between rungs the steps interpolate
geometrically, so the rate moves continuously with ``quality`` in 0..100 (100 the finest
rung, 0 the coarsest), the scale cwebp and Pillow use.

Each rung also has its own learned probabilities (:class:`~wavecodec.entropy.EntropyModel`):
they give the training's rate estimate. Files are coded by the forward-adaptive coders,
which need no tables for the rung.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .coder_names import DEFAULT_QUALITY
from .entropy import EntropyModel
from .errors import ShapeError

__all__ = ["DEFAULT_QUALITY", "RateLadder", "check_quality"]


def check_quality(quality: object) -> float:
    """``quality`` as a float in ``[0, 100]``; :class:`ShapeError` otherwise."""
    if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not 0 <= quality <= 100:
        raise ShapeError(f"quality must be a number from 0 to 100, got {quality!r}")
    return float(quality)


class RateLadder(nn.Module):
    """Per-rung quantization steps ``(L, C)`` (as logarithms) and per-rung rate models."""

    def __init__(self, lambdas: tuple[float, ...], channels: int, bits: int) -> None:
        super().__init__()
        self.lambdas = tuple(float(v) for v in lambdas)
        # rung l starts with steps 3^l (each rung some 1.6 bits per latent cheaper than the one before);
        # training moves them from there (at a larger learning rate, wavecodec.training.loop)
        start = torch.arange(len(lambdas), dtype=torch.float32)[:, None] * math.log(3.0)
        self.log_steps = nn.Parameter(start.repeat(1, channels))
        self.entropy = nn.ModuleList(EntropyModel(channels, bits) for _ in lambdas)

    @property
    def rungs(self) -> int:
        return len(self.lambdas)

    def position(self, quality: float) -> float:
        """Where ``quality`` falls on the ladder: 0 at the finest rung (quality 100), ``L - 1`` at the coarsest (0)."""
        return (100.0 - check_quality(quality)) / 100.0 * (self.rungs - 1)

    def steps(self, quality: float) -> torch.Tensor:
        """The per-channel steps ``(C,)`` at ``quality``: geometric interpolation between the two nearest rungs."""
        p = self.position(quality)
        i = min(int(math.floor(p)), max(self.rungs - 2, 0))
        f = p - i
        logs = self.log_steps.detach().double()
        log = logs[i] if self.rungs == 1 else (1 - f) * logs[i] + f * logs[i + 1]
        return torch.exp(log).float()

    def rung_steps(self, rung: int) -> torch.Tensor:
        """The steps ``(C,)`` of one rung, differentiable (training)."""
        return torch.exp(self.log_steps[rung])

    def extra_repr(self) -> str:
        return f"lambdas={list(self.lambdas)}"

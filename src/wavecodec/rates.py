"""Variable rate: one model trained at a ladder of rate points, and a quality knob between them.

A *ladder* model (``CodecConfig.rate_lambdas`` non-empty) is trained at ``L`` rate points at
once: each batch takes one rung ``l`` and the loss ``MSE + lambda_l * bpp``. Rung ``l`` owns
a vector of per-channel quantization steps: the companded latents are divided by it before
rounding and multiplied back before the decoder (gained variable-rate compression, Cui et
al., CVPR 2021). A channel that matters little at a low rate gets a large step and costs
almost nothing, so one decoder serves every rate. Between rungs the steps interpolate
geometrically, so the rate moves continuously with ``quality`` in 0..100 (100 the finest
rung, 0 the coarsest), the scale cwebp and Pillow use.

With ``rate_gains`` each rung also owns per-channel *reconstruction* gains: a symbol is
dequantized to ``q * step * gain``. A decoder shared by every rung would otherwise learn one
compromise: a channel that the coarse rungs leave as noise gets small decoder weights, which
throws away what the fine rungs send in it (the decoder-side inverse gain of Cui et al.).

Each rung also has its own learned probabilities (:class:`~wavecodec.entropy.EntropyModel`, or
with ``rate_model = "laplace"`` a :class:`~wavecodec.entropy.LaplaceRate`): they give the
training's rate estimate. Files are coded by the forward-adaptive coders,
which need no tables for the rung.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .coder_names import DEFAULT_QUALITY
from .entropy import EntropyModel, LaplaceRate, laplace_bits
from .errors import ConfigError, ShapeError

__all__ = ["DEFAULT_QUALITY", "RateLadder", "check_quality"]


def check_quality(quality: object) -> float:
    """``quality`` as a float in ``[0, 100]``; :class:`ShapeError` otherwise."""
    if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not 0 <= quality <= 100:
        raise ShapeError(f"quality must be a number from 0 to 100, got {quality!r}")
    return float(quality)


class RateLadder(nn.Module):
    """Per-rung quantization steps ``(L, C)`` (as logarithms) and per-rung rate models."""

    def __init__(self, lambdas: tuple[float, ...], channels: int, bits: int, gains: bool = False,
                 rate_model: str = "table") -> None:
        super().__init__()
        self.lambdas = tuple(float(v) for v in lambdas)
        # rung l starts with steps 3^l (each rung some 1.6 bits per latent cheaper than the one before);
        # training moves them from there (at a larger learning rate, wavecodec.training.loop)
        start = torch.arange(len(lambdas), dtype=torch.float32)[:, None] * math.log(3.0)
        self.log_steps = nn.Parameter(start.repeat(1, channels))
        self.log_gains = nn.Parameter(torch.zeros(len(lambdas), channels)) if gains else None
        self.entropy = nn.ModuleList((LaplaceRate(channels) if rate_model == "laplace" else EntropyModel(channels, bits))
                                     for _ in lambdas)

    @property
    def rungs(self) -> int:
        return len(self.lambdas)

    def position(self, quality: float) -> float:
        """Where ``quality`` falls on the ladder: 0 at the finest rung (quality 100), ``L - 1`` at the coarsest (0)."""
        return (100.0 - check_quality(quality)) / 100.0 * (self.rungs - 1)

    def mix(self, logs: torch.Tensor, position: float) -> torch.Tensor:
        """Per-rung logarithms ``(L, C)`` (or ``(C,)`` scales of rate models, stacked) interpolated linearly to a ``position`` in ``[0, L - 1]``."""
        i = min(int(math.floor(position)), max(self.rungs - 2, 0))
        j = min(i + 1, self.rungs - 1)
        f = position - i
        return (1 - f) * logs[i] + f * logs[j]

    def _between(self, logs: torch.Tensor, quality: float) -> torch.Tensor:
        """``exp`` of per-rung logarithms ``(L, C)`` interpolated linearly to ``quality`` (detached: inference)."""
        return torch.exp(self.mix(logs.detach().double(), self.position(quality))).float()

    def steps(self, quality: float) -> torch.Tensor:
        """The per-channel steps ``(C,)`` at ``quality``: geometric interpolation between the two nearest rungs."""
        return self._between(self.log_steps, quality)

    def gains(self, quality: float) -> torch.Tensor | None:
        """The per-channel reconstruction gains ``(C,)`` at ``quality`` (interpolated as the steps are); ``None`` without gains."""
        return None if self.log_gains is None else self._between(self.log_gains, quality)

    def reconstruction_steps(self, quality: float) -> torch.Tensor:
        """What a symbol is multiplied by when dequantized at ``quality``: the steps times the gains, if any."""
        steps, gains = self.steps(quality), self.gains(quality)
        return steps if gains is None else steps * gains

    def rung_steps(self, rung: int) -> torch.Tensor:
        """The steps ``(C,)`` of one rung, differentiable (training)."""
        return torch.exp(self.log_steps[rung])

    def rung_gains(self, rung: int) -> torch.Tensor | None:
        """The reconstruction gains ``(C,)`` of one rung, differentiable; ``None`` without gains."""
        return None if self.log_gains is None else torch.exp(self.log_gains[rung])

    def at(self, position: float) -> tuple[torch.Tensor, torch.Tensor | None, float, Callable[[torch.Tensor], torch.Tensor]]:
        """The ladder at a point ``position`` in ``[0, L - 1]`` between rungs, differentiably (training at every
        quality, not only at the rungs): ``(steps, gains or None, lambda, bits of noisy latents)``, each
        interpolated on a log scale as :meth:`steps` does. Needs Laplace rate models (tables do not interpolate).
        """
        if not all(isinstance(m, LaplaceRate) for m in self.entropy):
            raise ConfigError("training between rungs needs codec.rate_model = 'laplace'")
        steps = torch.exp(self.mix(self.log_steps, position))
        gains = None if self.log_gains is None else torch.exp(self.mix(self.log_gains, position))
        lmbda = math.exp(float(self.mix(torch.tensor(self.lambdas, dtype=torch.float64).log(), position)))
        log_scale = self.mix(torch.stack([m.log_scale for m in self.entropy]), position)
        return steps, gains, lmbda, lambda v: laplace_bits(v, log_scale)

    def extra_repr(self) -> str:
        return f"lambdas={list(self.lambdas)}"

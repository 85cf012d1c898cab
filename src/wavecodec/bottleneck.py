"""The entropy bottleneck: companding, training noise, and rounding to b-bit integers.

The encoder output is companded with the Gaussian CDF into the open interval
``(-(2^b - 1)/2, (2^b - 1)/2)``, so that rounding gives integers in
``[-(2^(b-1) - 1), 2^(b-1) - 1]``: ``2^b - 1`` symbols, bounded whatever the input. While
training, additive uniform noise in ``[-0.5, 0.5)`` stands in for rounding, which keeps the
model differentiable. The decoder first undoes the companding (inverse Gaussian CDF),
which spends the quantization levels densely near zero, where latents are most likely.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

_EPS = 1e-6
Step = float | torch.Tensor  # one quantization step, or one per latent channel


def per_channel(step: Step, v: torch.Tensor) -> Step:
    """A ``(C,)`` step shaped to broadcast over ``(B, C, *S)`` latents; a float as it is."""
    if isinstance(step, torch.Tensor):
        return step.to(device=v.device, dtype=v.dtype if v.is_floating_point() else torch.float32).view(1, -1, *[1] * (v.dim() - 2))
    return step


def _scales(step: Step) -> bool:
    return isinstance(step, torch.Tensor) or step != 1


_NUMPY_TYPES = {torch.int8: np.dtype(np.int8), torch.int16: np.dtype(np.int16)}


class Bottleneck(nn.Module):
    """Compand, perturb or round, and expand latents of ``bits``-bit precision."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.half_range = (2**bits - 1) / 2

    @property
    def max_symbol(self) -> int:
        """Largest integer a latent can take; the smallest is its negative."""
        return 2 ** (self.bits - 1) - 1

    @property
    def int_dtype(self) -> torch.dtype:
        """The integer type that holds the symbols (int8 up to 8 bits, else int16)."""
        return torch.int8 if self.bits <= 8 else torch.int16

    @property
    def numpy_int_dtype(self) -> np.dtype:
        """:attr:`int_dtype` as a NumPy type: what the entropy decoders return."""
        return _NUMPY_TYPES[self.int_dtype]

    def compand(self, y: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """Map the real line into ``(-half_range, half_range)`` via the Gaussian CDF (overwriting ``y`` if ``in_place``)."""
        if in_place:
            return y.div_(math.sqrt(2.0)).erf_().mul_(self.half_range)
        return self.half_range * torch.erf(y / math.sqrt(2.0))

    def expand(self, v: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`compand` (clamped so that noisy values stay finite)."""
        u = (v / self.half_range).clamp(-1 + _EPS, 1 - _EPS)
        return math.sqrt(2.0) * torch.erfinv(u)

    def perturb(self, v: torch.Tensor) -> torch.Tensor:
        """Additive uniform noise, the differentiable stand-in for rounding."""
        return v + torch.empty_like(v).uniform_(-0.5, 0.5)

    def quantize(self, v: torch.Tensor, quant_step: Step = 1.0) -> torch.Tensor:
        """Round companded latents to multiples of ``quant_step``; returns the multiples (an integer tensor).

        ``quant_step`` >= 1 trades bits for quality in any model: fewer, coarser levels.
        ``1`` is the model's native quantization. A tensor ``(C,)`` gives each channel its own
        step (variable-rate models, :mod:`wavecodec.rates`). The symbols stay within ``max_symbol``.
        """
        m = self.max_symbol
        step = per_channel(quant_step, v)
        return torch.round(v / step if _scales(step) else v).clamp_(-m, m).to(self.int_dtype)

    def dequantize(self, q: torch.Tensor, quant_step: Step = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Inverse of :meth:`quantize`: integer symbols back to companded latents (floats of ``dtype``)."""
        v = q.to(dtype)
        step = per_channel(quant_step, v)
        return v * step if _scales(step) else v

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Noise while training, rounding (kept as float) at inference."""
        if self.training:
            return self.perturb(v)
        return torch.round(v)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

"""Small building blocks shared by the encoder and decoder, for 1-, 2- and 3-D signals."""

from __future__ import annotations

import torch
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv(ndim: int, in_channels: int, out_channels: int, kernel: int = 1) -> nn.Module:
    """A 'same'-padded convolution of the given dimensionality."""
    return _CONV[ndim](in_channels, out_channels, kernel, padding=kernel // 2)


class ResidualBlock(nn.Module):
    """``x + conv(gelu(conv(gelu(x))))``: the unit of the nonlinear decoder."""

    def __init__(self, ndim: int, width: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv1 = conv(ndim, width, width, kernel)
        self.conv2 = conv(ndim, width, width, kernel)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (weights and biases, not buffers) of ``module``."""
    return sum(p.numel() for p in module.parameters())

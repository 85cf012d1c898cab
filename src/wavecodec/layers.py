"""Small building blocks shared by the encoder and decoder, for 1-, 2- and 3-D signals."""

from __future__ import annotations

import torch
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv(ndim: int, in_channels: int, out_channels: int, kernel: int = 1, dilation: int = 1, groups: int = 1) -> nn.Module:
    """A 'same'-padded convolution of the given dimensionality."""
    return _CONV[ndim](in_channels, out_channels, kernel, padding=kernel // 2 * dilation, dilation=dilation, groups=groups)


class ResidualBlock(nn.Module):
    """``x + conv(gelu(conv(gelu(x))))``: the unit of the nonlinear decoder."""

    def __init__(self, ndim: int, width: int, kernel: int = 3, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv(ndim, width, width, kernel)
        self.conv2 = conv(ndim, width, width, kernel, dilation)  # dilation > 1: a wider view for the same work
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


class ConvNeXtBlock(nn.Module):
    """``x + pw2(gelu(pw1(depthwise(x))))``: a ConvNeXt-style block (no normalisation; the decoder's
    residual starts at zero). A 7 x 7 depthwise view and a 2x wide 1 x 1 bottleneck cost
    ``49 w + 4 w^2`` multiply-accumulates per position, against ``18 w^2`` for a residual block."""

    EXPAND = 2

    def __init__(self, ndim: int, width: int, kernel: int = 7) -> None:
        super().__init__()
        self.depthwise = conv(ndim, width, width, kernel, groups=width)
        self.pw1 = conv(ndim, width, self.EXPAND * width, 1)
        self.pw2 = conv(ndim, self.EXPAND * width, width, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.act(self.pw1(self.depthwise(x))))


def decoder_blocks(kind: str, ndim: int, width: int, kernel: int, depth: int) -> list[nn.Module]:
    """``depth`` residual blocks of ``kind`` (:data:`wavecodec.config.DECODER_BLOCKS`); ``kernel`` is the residual
    blocks' (a ConvNeXt block's depthwise kernel is 7)."""
    if kind == "convnext":
        return [ConvNeXtBlock(ndim, width) for _ in range(depth)]
    return [ResidualBlock(ndim, width, kernel, 2 if kind == "dilated" else 1) for _ in range(depth)]


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (weights and biases, not buffers) of ``module``."""
    return sum(p.numel() for p in module.parameters())

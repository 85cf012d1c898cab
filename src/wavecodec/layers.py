"""Small building blocks shared by the encoder and decoder, for 1-, 2- and 3-D signals."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVS = tuple(_CONV.values())


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


class DownUp(nn.Module):
    """``x + up(gelu(blocks(down(x))))``: residual blocks at half resolution, a view twice as far.

    ``down`` folds each ``2^ndim`` block of positions into channels and maps them to ``inner``
    channels (a 1 x 1 convolution), ``up`` the reverse; ``up`` starts at zero, so the stage
    starts as the identity. A signal of odd length is zero-padded at its end (as the
    convolutions' own zero padding), so a window that starts at an even position and ends at
    an even position or at the signal's end decodes the same as the whole
    (:func:`wavecodec.streaming.decoder_alignment`).
    """

    def __init__(self, ndim: int, width: int, inner: int, kernel: int, depth: int) -> None:
        super().__init__()
        self.ndim, self.fold = ndim, 2**ndim
        self.down = conv(ndim, width * self.fold, inner, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(ndim, inner, kernel) for _ in range(depth)])
        self.act = nn.GELU()
        self.up = conv(ndim, inner, width * self.fold, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = [x.shape[2 + i] for i in range(self.ndim)]
        pads: list = []
        for i in reversed(range(self.ndim)):
            pads += [0, sizes[i] % 2]
        y = F.pad(x, pads)
        halves = [y.shape[2 + i] // 2 for i in range(self.ndim)]
        b, c = y.shape[0], y.shape[1]
        pairs: list = []
        for h in halves:
            pairs += [h, 2]
        y = y.reshape([b, c] + pairs).permute([0, 1] + [3 + 2 * i for i in range(self.ndim)] + [2 + 2 * i for i in range(self.ndim)])
        y = self.up(self.act(self.blocks(self.down(y.reshape([b, c * self.fold] + halves)))))
        y = y.reshape([b, c] + [2] * self.ndim + halves)
        y = y.permute([0, 1] + [j for i in range(self.ndim) for j in (2 + self.ndim + i, 2 + i)]).reshape([b, c] + [2 * h for h in halves])
        return x + y[(slice(None), slice(None)) + tuple(slice(0, n) for n in sizes)]


def downup_width(ndim: int, width: int, kernel: int, blocks: int) -> int:
    """The widest multiple of 8 whose ``blocks`` half-resolution residual blocks, with the 1 x 1 fold in and out, cost
    no more multiply-accumulates per position than as many full-resolution blocks of ``width`` (2-D, 3 x 3: 1.8x ``width``)."""
    fold = 2**ndim

    def macs(inner: int) -> float:
        return (blocks * 2 * inner**2 * kernel**ndim + 2 * fold * width * inner) / fold

    inner = 8
    while macs(inner + 8) <= blocks * 2 * width**2 * kernel**ndim:
        inner += 8
    return inner


def decoder_blocks(kind: str, ndim: int, width: int, kernel: int, depth: int) -> list[nn.Module]:
    """``depth`` residual blocks of ``kind`` (:data:`wavecodec.config.DECODER_BLOCKS`); ``kernel`` is the residual
    blocks' (a ConvNeXt block's depthwise kernel is 7). ``downup``: a quarter of the depth at full resolution on
    each side of a :class:`DownUp` stage that takes the middle half of the depth's work (images only)."""
    if kind == "convnext":
        return [ConvNeXtBlock(ndim, width) for _ in range(depth)]
    if kind == "downup":
        outer, inner = depth // 4, depth - 2 * (depth // 4)
        return [*[ResidualBlock(ndim, width, kernel) for _ in range(outer)],
                DownUp(ndim, width, downup_width(ndim, width, kernel, inner), kernel, inner),
                *[ResidualBlock(ndim, width, kernel) for _ in range(outer)]]
    return [ResidualBlock(ndim, width, kernel, 2 if kind == "dilated" else 1) for _ in range(depth)]


def reach(module: nn.Module) -> int:
    """Positions on each side that ``module``'s convolutions read along an axis (their receptive field's
    half-width): a half-resolution stage reads twice its blocks' reach, and the other half of a pair."""
    if isinstance(module, DownUp):
        return 2 * reach(module.blocks) + 1
    if isinstance(module, _CONVS):
        return (module.kernel_size[0] // 2) * module.dilation[0]
    return sum(reach(m) for m in module.children())


def macs_per_position(module: nn.Module) -> float:
    """Multiply-accumulates of ``module``'s convolutions per position of its input (a half-resolution stage's
    work is spread over the positions it folds together)."""
    if isinstance(module, DownUp):
        return sum(macs_per_position(m) for m in module.children()) / module.fold
    if isinstance(module, _CONVS):
        return module.weight.numel()
    return sum(macs_per_position(m) for m in module.children())


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (weights and biases, not buffers) of ``module``."""
    return sum(p.numel() for p in module.parameters())

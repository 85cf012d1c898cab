"""Small model heads that read latents (or pixels, or samples) as a grid of tokens.

Heads work on 2-D grids ``(B, C, H, W)`` (images) and, with ``dims=1``, on 1-D sequences
``(B, C, T)`` (audio and other signals). Every head starts with a patch embedding, a convolution whose kernel equals its stride, so
``patch`` sets how many input positions form one token. A latent grid uses ``patch=1``;
a pixel baseline with the same token count uses ``patch = pixels per latent position``.
The body is either convolutional (depthwise 3x3 + pointwise MLP, ConvNeXt-like) or a
transformer (self-attention over all tokens, positions from a depthwise convolution so
the head accepts any grid size). Inputs are standardised by a BatchNorm without affine
parameters, so integer latents (about +-127) and unit-range pixels both work as they come.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import count_parameters

__all__ = ["Classifier", "ConvBlock", "DenseHead", "PatchEmbed", "TransformerBlock", "count_parameters"]


_LAYERS = {  # dims -> (convolution, batch norm, adaptive average pooling)
    1: (nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d),
}


def _layers(dims: int) -> tuple[type[nn.Module], type[nn.Module], type[nn.Module]]:
    """The convolution, batch norm and pooling classes for 1-D sequences or 2-D grids."""
    if dims not in _LAYERS:
        raise ValueError(f"dims must be 1 (sequences) or 2 (images), got {dims!r}")
    return _LAYERS[dims]


def _conv(dims: int) -> type[nn.Module]:
    return _layers(dims)[0]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(1, -1)


def _channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(-1, 1)


class ConvBlock(nn.Module):
    """Residual block: depthwise 3x3 convolution, LayerNorm and MLP over channels (ConvNeXt-like).

    The MLP runs as ``nn.Linear`` on channels-last tokens: on a CPU that is about 3x faster
    than the same map as 1x1 convolutions, and it is what dominates the cost.
    """

    def __init__(self, width: int, mlp_ratio: int = 2, dims: int = 2) -> None:
        super().__init__()
        self.spatial = _conv(dims)(width, width, 3, padding=1, groups=width)
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * mlp_ratio), nn.GELU(), nn.Linear(width * mlp_ratio, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + _channels_first(self.mlp(self.norm(_channels_last(self.spatial(x)))))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and MLP over the flattened token grid, with a convolutional position term."""

    def __init__(self, width: int, heads: int = 4, mlp_ratio: int = 2, dims: int = 2) -> None:
        super().__init__()
        self.position = _conv(dims)(width, width, 3, padding=1, groups=width)
        self.layer = nn.TransformerEncoderLayer(width, heads, width * mlp_ratio, dropout=0.0, activation="gelu",
                                                batch_first=True, norm_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.position(x)
        tokens = self.layer(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(x.shape)


def _body(kind: str, width: int, depth: int, dims: int) -> nn.Sequential:
    if kind == "conv":
        return nn.Sequential(*[ConvBlock(width, dims=dims) for _ in range(depth)])
    if kind == "transformer":
        return nn.Sequential(*[TransformerBlock(width, dims=dims) for _ in range(depth)])
    raise ValueError(f"kind must be 'conv' or 'transformer', got {kind!r}")


class PatchEmbed(nn.Module):
    """Standardise the input, then map each ``patch x patch`` window to one ``width``-wide token."""

    def __init__(self, in_channels: int, width: int, patch: int = 1, dims: int = 2) -> None:
        super().__init__()
        self.patch = patch
        conv, norm, _ = _layers(dims)
        self.norm = norm(in_channels, affine=False)
        self.proj = conv(in_channels, width, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(x.float()))


class Classifier(nn.Module):
    """Patch embedding, ``depth`` blocks, global average pooling, linear classifier.

    ``dims=2`` reads ``(B, C, H, W)`` grids, ``dims=1`` reads ``(B, C, T)`` sequences.
    """

    def __init__(self, in_channels: int, num_classes: int, patch: int = 1, width: int = 64, depth: int = 3,
                 kind: str = "conv", dims: int = 2) -> None:
        super().__init__()
        self.embed = PatchEmbed(in_channels, width, patch, dims)
        self.body = _body(kind, width, depth, dims)
        self.head = nn.Sequential(_layers(dims)[2](1), nn.Flatten(), nn.LayerNorm(width), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embed(x)))


class DenseHead(nn.Module):
    """Image-to-image head: tokens in, ``out_channels x out_patch^2`` values per token out.

    With ``out_patch=1`` it maps a latent grid to another latent grid (for example gray
    latents to color latents); with ``out_patch=p`` each token is unfolded back into a
    ``p x p`` pixel window (a pixel-domain baseline with the same token count).
    """

    def __init__(self, in_channels: int, out_channels: int, patch: int = 1, out_patch: int = 1, width: int = 64,
                 depth: int = 4, kind: str = "conv") -> None:
        super().__init__()
        self.embed = PatchEmbed(in_channels, width, patch)
        self.body = _body(kind, width, depth, dims=2)
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.Conv2d(width, out_channels * out_patch**2, 1))
        self.unfold = nn.PixelShuffle(out_patch) if out_patch > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unfold(self.out(self.body(self.embed(x))))


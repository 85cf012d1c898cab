"""The analysis side: a per-position linear map from wavelet subbands to latent channels.

WaLLoC keeps the encoder tiny on purpose: the wavelet transform already does the spatial
decorrelation, so one 1x1 convolution (a matrix applied at every position) is enough to
reach a low-dimensional latent, and encoding stays cheap on weak devices.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import CodecConfig
from .layers import conv


class LinearEncoder(nn.Module):
    """``latent = W @ subbands + b`` at every position (a 1x1 convolution)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.proj = conv(config.ndim, config.subbands, config.latent_dim, 1)

    def forward(self, subbands: torch.Tensor) -> torch.Tensor:
        return self.proj(subbands)

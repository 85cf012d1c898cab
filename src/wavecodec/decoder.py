"""The synthesis side: latents back to wavelet subbands, as a linear path plus a residual.

The linear path (a 1x1 convolution) alone is a complete codec, and the optimal one for MSE
when it is initialised by PCA of the subbands. The nonlinear residual (convolutions at
latent resolution) starts at exactly zero, so training begins from that linear codec and
only has to learn the correction. That is what lets a small decoder train well on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import CodecConfig
from .layers import ResidualBlock, conv


class Decoder(nn.Module):
    """``subbands = linear(z) + residual(z)``, with ``z`` the expanded latents."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        d, width = config.ndim, config.decoder_width
        self.linear = conv(d, config.latent_dim, config.subbands, 1)
        self.residual: nn.Module | None = None
        if width > 0:
            out = conv(d, width, config.subbands, 1)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            self.residual = nn.Sequential(
                conv(d, config.latent_dim, width, config.decoder_kernel),
                *[ResidualBlock(d, width, config.decoder_kernel) for _ in range(config.decoder_depth)],
                nn.GELU(),
                out,
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.linear(z)
        if self.residual is not None:
            out = out + self.residual(z)
        return out

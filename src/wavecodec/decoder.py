"""The synthesis side: latents back to wavelet subbands, as a linear path plus a residual.

The linear path (a 1x1 convolution) alone is a complete codec, and the optimal one for MSE
when it is initialised by PCA of the subbands. The nonlinear residual (convolutions at
latent resolution) starts at exactly zero, so training begins from that linear codec and
only has to learn the correction. That is what lets a small decoder train well on a CPU.
"""

from __future__ import annotations

from copy import deepcopy
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .config import CodecConfig
from .errors import ConfigError
from .layers import conv, decoder_blocks
from .quantized import int8_available, int8_residual

PRECISIONS = ("float32", "bfloat16", "int8")  # how the decoder's residual may run on a CPU


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
                *decoder_blocks(config.decoder_block, d, width, config.decoder_kernel, config.decoder_depth),
                nn.GELU(),
                out,
            )

        self.noise = NoiseFill(config) if config.noise_fill else None

    def forward(self, z: torch.Tensor, precision: str = "float32", split_noise: bool = False,
                calibration: Callable[[], list[torch.Tensor]] | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Subbands from expanded latents; ``split_noise`` returns ``(subbands without the noise fill, the
        noise fill or None)`` (training: a loss may charge the waveform error to the first only).

        ``precision`` (one of :data:`PRECISIONS`) is how the residual runs on a CPU in inference:
        ``"bfloat16"`` (about 1.8x faster where the CPU has AVX512-BF16, float32 elsewhere) or
        ``"int8"`` (about 2.8x with AVX512-VNNI; :mod:`wavecodec.quantized`, its scales observed
        once on ``calibration()``, expanded latents). Only the residual, a small correction,
        runs in the lower precision; the linear path, which carries the signal, stays float32.
        """
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        out = self.linear(z)
        if self.residual is not None:
            cpu = not self.training and z.dtype == torch.float32 and z.device.type == "cpu"
            if cpu and precision == "int8" and calibration is not None and int8_available():
                out = out + self._int8_residual(calibration)(z)
            elif cpu and precision != "float32" and cpu_bfloat16():
                layout = torch.channels_last if z.dim() == 4 else torch.contiguous_format
                out = out + self._bfloat16_residual()(z.to(torch.bfloat16).contiguous(memory_format=layout)).float()
            else:
                out = out + self.residual(z)
        noise = self.noise(z) if self.noise is not None else None
        if split_noise:
            return out, noise
        return out if noise is None else out + noise

    def _bfloat16_residual(self) -> nn.Module:
        """A bfloat16 copy of the residual, images in channels-last layout (oneDNN's bfloat16 convolutions
        run in it without reordering every layer).

        A copy with its weights cast once, not ``torch.autocast``, which casts every weight on
        every call.
        """
        def build() -> nn.Module:
            copy = deepcopy(self.residual).to(torch.bfloat16)
            if copy[0].weight.dim() == 4:
                copy = copy.to(memory_format=torch.channels_last)
            return copy.eval()

        return self._cached("bfloat16", build)

    def _int8_residual(self, calibration: Callable[[], list[torch.Tensor]]) -> nn.Module:
        """The int8 copy of the residual (:func:`wavecodec.quantized.int8_residual`)."""
        return self._cached("int8", lambda: int8_residual(self.residual, calibration(), cpu_bfloat16()))

    def _cached(self, kind: str, build: Callable[[], nn.Module]) -> nn.Module:
        """A copy of the residual made by ``build``, made again whenever one of its weights changes.

        Kept off the module's registry, so it is neither saved nor trained.
        """
        key = tuple((p.data_ptr(), _version(p)) for p in self.residual.parameters())
        cache = self.__dict__.setdefault("_copies", {})
        if kind not in cache or cache[kind][0] != key:
            cache[kind] = (key, build())
        return cache[kind][1]


class NoiseFill(nn.Module):
    """Noise at a learned level in every subband: ``softplus(level(z)) * pseudo_noise(z)``.

    A latent with few channels per band cannot carry a music track's high bands; a decoder
    trained for MSE then leaves them silent, which listeners (and ViSQOL) hear at once.
    Perceptual codecs fill such bands with noise of the right energy (Opus's CELT
    does); here a 1x1 convolution predicts each subband's noise level from the latents, and
    the noise itself is a deterministic function of the latents at the same position
    (a sine of a fixed random projection at a high frequency), so decoding needs no random
    state and a signal decoded in chunks gets the same noise as decoded whole. No gradient
    flows through the noise, only through its level, which starts near zero.
    """

    FREQUENCY = 997.0  # turns the projection into phase-like values that change entirely between nearby latents

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        d = config.ndim
        self.level = conv(d, config.latent_dim, config.subbands, 1)
        nn.init.zeros_(self.level.weight)
        nn.init.constant_(self.level.bias, -8.0)  # softplus(-8) = 3e-4: silence, until training raises it
        gen = torch.Generator().manual_seed(0x5EED)
        projection = torch.randn(config.subbands, config.latent_dim, *[1] * d, generator=gen)
        self.register_buffer("projection", projection)
        self.register_buffer("offset", torch.rand(config.subbands, generator=gen) * 2 * torch.pi)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        conv_nd = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[z.dim() - 2]
        phase = conv_nd(z.detach(), self.projection.to(z.dtype), self.offset.to(z.dtype) / self.FREQUENCY)
        noise = torch.sin(self.FREQUENCY * phase) * 2**0.5  # unit power
        return F.softplus(self.level(z)) * noise


def _version(p: torch.Tensor) -> int:
    """A tensor's in-place modification count (-1 for an inference tensor, which has none and cannot change)."""
    try:
        return p._version
    except RuntimeError:
        return -1


@lru_cache(maxsize=1)
def cpu_bfloat16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN with AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False

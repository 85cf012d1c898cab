"""Colorization as a compressed-domain task, and its pixel-domain baseline at the same token count.

* :class:`LatentColorizer` reads the latents of the gray image (luma copied to R, G, B and
  encoded by an RGB codec) and predicts the color image's latents as a residual, rounded to
  integers, so its output is itself a valid latent payload; the codec's decoder makes pixels.
  It trains on latents alone: no decoder runs during training.
* :class:`PixelColorizer` reads gray pixels in ``patch x patch`` windows (one token per
  latent position) and predicts the RGB pixels of each window, also as a residual.
"""

from __future__ import annotations

import torch

from ..model import Codec
from .heads import DenseHead

LUMA = (0.299, 0.587, 0.114)  # BT.601


def gray(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> uint8 luma ``(B, 1, H, W)``."""
    w = torch.tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    return (rgb.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """Cb and Cr (BT.601, same scale as the input) of float RGB ``(B, 3, H, W)``."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return torch.stack([-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b], 1)


def colorfulness(rgb: torch.Tensor) -> float:
    """Hasler and Suesstrunk's (2003) colorfulness of float RGB in 0-255."""
    r, g, b = rgb[:, 0].double(), rgb[:, 1].double(), rgb[:, 2].double()
    rg, yb = r - g, 0.5 * (r + g) - b
    return float((rg.std() ** 2 + yb.std() ** 2).sqrt() + 0.3 * (rg.mean() ** 2 + yb.mean() ** 2).sqrt())


class LatentColorizer:
    """Gray latents -> color latents with a :class:`DenseHead`; the frozen codec encodes and decodes."""

    def __init__(self, codec: Codec, width: int = 96, depth: int = 4) -> None:
        if codec.config.channels != 3:
            raise ValueError("colorization needs an RGB codec")
        self.codec = codec.eval()
        d = codec.config.latent_dim
        self.head = DenseHead(d, d, width=width, depth=depth)
        self.scale = float(codec.bottleneck.max_symbol)

    @torch.no_grad()
    def latents(self, rgb: torch.Tensor) -> torch.Tensor:
        """Continuous latents of RGB images (the targets)."""
        return self.codec.quantize(self.codec.encode(rgb)).float()

    def gray_latents(self, image: torch.Tensor) -> torch.Tensor:
        """Latents of the gray versions of RGB images (the inputs)."""
        g = gray(image) if image.shape[1] == 3 else image
        return self.latents(g.expand(-1, 3, -1, -1))

    def pair(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pair for uint8 color images: (gray latents, scaled residual to the color latents)."""
        g = self.gray_latents(rgb)
        return g, (self.latents(rgb) - g) / self.scale

    @torch.no_grad()
    def predict_latents(self, image: torch.Tensor) -> torch.Tensor:
        """Predicted color latents from gray latents."""
        self.head.eval()
        g = self.gray_latents(image)
        return (g + self.scale * self.head(g)).round().clamp(-self.scale, self.scale)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 gray ``(B, 1, H, W)`` or color images -> color images, float in [0, 1]."""
        return self.codec.decode(self.predict_latents(image))


class PixelColorizer:
    """Gray pixels in ``patch x patch`` windows -> RGB pixels of each window, a residual over the gray image."""

    def __init__(self, patch: int = 8, width: int = 96, depth: int = 4) -> None:
        self.head = DenseHead(1, 3, patch=patch, out_patch=patch, width=width, depth=depth)

    @staticmethod
    def pair(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input, target)`` for a batch of RGB images."""
        g = gray(rgb).float() / 255
        return g, rgb.float() / 255 - g

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        self.head.eval()
        g = (gray(image) if image.shape[1] == 3 else image).float() / 255
        return (g + self.head(g)).clamp(0, 1)

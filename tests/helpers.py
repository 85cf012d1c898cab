"""Test data the tests make themselves: synthetic photos and a small fitted codec."""

from __future__ import annotations

import numpy as np
import torch

from wavecodec import Codec, CodecConfig
from wavecodec.fitting import fit_entropy, pca_init


def synthetic_images(count: int, size: int = 64, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Photo-like uint8 images: smooth gradients, sinusoids, a few sharp-edged shapes, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((count, channels, size, size), dtype=np.uint8)
    for n in range(count):
        base = np.zeros((size, size))
        for _ in range(3):
            fy, fx, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.28)]
            base += rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
        for _ in range(2):
            cy, cx, r = rng.uniform(0.1, 0.9, 3)
            base += rng.uniform(-0.4, 0.4) * (((yy - cy) ** 2 + (xx - cx) ** 2) < (r / 3) ** 2)
        for c in range(channels):
            img = 0.5 + base * rng.uniform(0.6, 1.2) + rng.normal(0, 0.02, (size, size))
            out[n, c] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return torch.from_numpy(out)


def fitted_codec(seed: int = 0, name: str = "test-fitted") -> Codec:
    """A small RGB codec (J=2, 6 latent channels) with PCA weights and fitted tables."""
    torch.manual_seed(seed)
    codec = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, decoder_width=8, decoder_depth=1, name=name))
    data = synthetic_images(24, seed=seed)
    pca_init(codec, data.split(8))
    fit_entropy(codec, data.split(8))
    with torch.no_grad():  # exercise the residual path too
        for p in codec.decoder.residual.parameters():
            p.add_(0.003 * torch.randn_like(p))
    return codec.eval()

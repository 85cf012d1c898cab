"""Quality metrics against skimage and basic properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavecodec.metrics import ms_ssim, ms_ssim_scales, psnr, ssim


def test_psnr_of_known_error() -> None:
    x = torch.zeros(1, 1, 4, 4)
    assert psnr(x, x + 0.1) == pytest.approx(20.0)
    assert psnr(x, x) == float("inf")


def test_ssim_matches_skimage() -> None:
    from skimage import metrics as skimage_metrics

    rng = np.random.default_rng(0)
    a = rng.random((64, 80))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ref = skimage_metrics.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    ours = ssim(torch.tensor(a)[None, None], torch.tensor(b)[None, None]).item()
    assert ours == pytest.approx(ref, abs=1e-9)  # skimage also averages over the valid region


def test_ms_ssim_is_one_for_identical_and_falls_with_noise() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 200, 180)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    slightly = ms_ssim(x, (x + 0.02 * torch.randn_like(x)).clamp(0, 1))
    badly = ms_ssim(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1))
    assert torch.all(badly < slightly) and torch.all(slightly < 1)


def test_ms_ssim_scales_for_small_images() -> None:
    assert ms_ssim_scales(512, 512) == 5
    assert ms_ssim_scales(40, 40) == 2
    assert ms_ssim_scales(10, 100) == 0
    with pytest.raises(ValueError, match="smaller than"):
        ms_ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))

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


def test_bjontegaard_deltas_recover_known_shifts() -> None:
    from wavecodec.metrics import bd_quality, bd_rate

    rate = np.array([0.2, 0.4, 0.8, 1.6, 3.2])
    quality = 28 + 3.0 * np.log2(rate)  # 3 dB per doubling of the rate
    assert bd_rate(rate, quality, 0.8 * rate, quality) == pytest.approx(-20.0)  # same quality for 20% fewer bits
    assert bd_rate(0.8 * rate, quality, rate, quality) == pytest.approx(25.0)
    assert bd_quality(rate, quality, rate, quality + 0.5) == pytest.approx(0.5)
    assert bd_rate(rate, quality, rate, quality + 0.5) == pytest.approx((2 ** (-0.5 / 3) - 1) * 100)
    assert bd_rate(rate[:2], quality[:2], rate[:2], quality[:2]) == pytest.approx(0.0, abs=1e-9)  # two points: a line
    with pytest.raises(ValueError, match="overlap"):
        bd_rate(rate, quality, rate, quality + 100)
    with pytest.raises(ValueError, match="positive rate"):
        bd_rate([0.0, 1.0], [20, 30], [0.5, 1.0], [22, 28])


def test_ssimulacra2_is_100_for_identical_and_falls_with_distortion() -> None:
    from wavecodec.metrics import ssimulacra2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    x = np.stack([(xx * 2) % 256, (yy * 3) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    mild = np.clip(x + rng.normal(0, 3, x.shape), 0, 255).astype(np.uint8)
    strong = np.clip(x + rng.normal(0, 25, x.shape), 0, 255).astype(np.uint8)
    assert ssimulacra2(x, x) == pytest.approx(100.0)
    assert ssimulacra2(x, strong) < ssimulacra2(x, mild) < 100.0
    tensor = torch.from_numpy(x).permute(2, 0, 1)[None]
    assert ssimulacra2(tensor, torch.from_numpy(mild).permute(2, 0, 1)[None]) == pytest.approx(ssimulacra2(x, mild))
    gray = x[:, :, 0]
    assert ssimulacra2(gray, gray) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="8-bit"):
        ssimulacra2(x.astype(np.uint16), x.astype(np.uint16))
    with pytest.raises(ValueError, match="one size"):
        ssimulacra2(x, x[:64])


def test_visqol_scores_a_clean_copy_above_a_noisy_one() -> None:
    from wavecodec.audio_metrics import visqol

    rate = 44100
    t = np.arange(2 * rate) / rate
    rng = np.random.default_rng(0)
    music = np.stack([np.sin(2 * np.pi * 440 * t) * (0.5 + 0.4 * np.sin(2 * np.pi * 3 * t)),
                      0.3 * np.sin(2 * np.pi * 660 * t) + 0.05 * rng.standard_normal(len(t))]).astype(np.float32)
    noisy = music + 0.05 * rng.standard_normal(music.shape).astype(np.float32)
    clean_score, noisy_score = visqol(music, music, rate), visqol(music, noisy, rate)
    assert 4.0 < clean_score <= 5.0 and 1.0 <= noisy_score < clean_score
    with pytest.raises(ValueError, match="at least"):
        visqol(music[:, :1000], music[:, :1000], rate)

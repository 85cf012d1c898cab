"""Quality metrics: PSNR, SSIM and MS-SSIM (Wang, Simoncelli & Bovik 2003) in PyTorch, SSIMULACRA2, Bjontegaard deltas.

SSIM uses the usual 11-tap Gaussian window (sigma 1.5), constants K1=0.01 and K2=0.03 of
the data range, and 'valid' filtering; MS-SSIM uses 5 scales with the published weights
and 2x2 average pooling between scales. Images too small for 5 scales use as many scales as
fit, with the weights renormalised (reported by :func:`ms_ssim_scales`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WINDOW = 11
_SIGMA = 1.5


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR in dB of a mean squared error over signals spanning ``data_range`` (inf for 0)."""
    return float("inf") if mse == 0 else 10 * math.log10(data_range**2 / mse)


def psnr(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over the whole tensor or array (computed in float64)."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        mse = float(np.mean((np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))
    else:
        mse = torch.mean((x.double() - y.double()) ** 2).item()
    return psnr_from_mse(mse, data_range)


def _gaussian(device: torch.device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    t = torch.arange(_WINDOW, dtype=torch.float64, device=device) - _WINDOW // 2
    g = torch.exp(-(t**2) / (2 * _SIGMA**2))
    return (g / g.sum()).to(dtype)


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image, ``(B,)`` each."""
    g = _gaussian(x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my, xx, yy, xy = _filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), g).chunk(5, dim=1)  # one pass for all five
    sxx = xx - mx**2
    syy = yy - my**2
    sxy = xy - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return ssim.flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Single-scale SSIM of ``(B, C, H, W)`` images, averaged over channels: ``(B,)``."""
    return _ssim_parts(x.double(), y.double(), data_range)[0]


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales fit: the smallest scale must hold the 11-tap window."""
    scales = 0
    while scales < len(MS_SSIM_WEIGHTS) and min(height, width) >= _WINDOW:
        scales += 1
        height, width = height // 2, width // 2
    return scales


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Multi-scale SSIM of ``(B, C, H, W)`` images: ``(B,)``; computed in ``dtype`` (float32 is enough for a training loss)."""
    x, y = x.to(dtype), y.to(dtype)
    scales = ms_ssim_scales(x.shape[2], x.shape[3])
    if scales == 0:
        raise ValueError(f"images of {x.shape[2]}x{x.shape[3]} are smaller than the {_WINDOW}-pixel SSIM window")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=dtype, device=x.device)
    weights = weights / weights.sum()
    values = []
    for s in range(scales):
        full, cs = _ssim_parts(x, y, data_range)
        values.append(full if s == scales - 1 else cs)
        if s < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=1).clamp_min(0)  # negative cs at coarse scales would make the power undefined
    return torch.prod(stacked ** weights, dim=1)


def available(module: str) -> bool:
    """Whether an optional metric package is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def ssimulacra2(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """SSIMULACRA2 of 8-bit images, 100 = identical, about 70 = high, 50 = medium, 30 = low quality.

    A perceptual metric (Cloudinary/JPEG XL) that weighs blur, ringing and blocking in the
    XYB colour space at six scales; unlike PSNR it punishes the blur that MSE training
    favours. Takes ``(1, C, H, W)`` tensors or ``(H, W[, C])`` arrays with 1 (grey, scored as
    RGB) or 3 channels. Needs the ``metrics`` extra (PyPI ``ssimulacra2``).

    Raises:
        InputError: the package is missing. ValueError: not 8-bit grey or RGB images of one shape.
    """
    import io

    from PIL import Image

    from .errors import need

    score = need("ssimulacra2", "metrics", "SSIMULACRA2 scores").compute_ssimulacra2

    def image(a: torch.Tensor | np.ndarray) -> np.ndarray:
        a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        if a.ndim == 4:
            a = a[0].transpose(1, 2, 0)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
            raise ValueError(f"SSIMULACRA2 needs 8-bit grey or RGB images, not {a.dtype} of shape {a.shape}")
        return a

    def png(a: np.ndarray) -> io.BytesIO:  # the package reads files (or file objects) only
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG", compress_level=0)
        buf.seek(0)
        return buf

    a, b = image(x), image(y)
    if a.shape[:2] != b.shape[:2]:
        raise ValueError("SSIMULACRA2 needs two images of one size")
    return float(score(png(a), png(b)))


def _bd_fit(x: np.ndarray, y: np.ndarray) -> np.polynomial.Polynomial:
    """The Bjontegaard fit of ``y`` over ``x``: a cubic (fewer points: as high a degree as they allow)."""
    return np.polynomial.Polynomial.fit(x, y, deg=min(3, len(x) - 1))


def _bd_check(rate: np.ndarray, quality: np.ndarray) -> None:
    if len(rate) < 2 or len(rate) != len(quality) or np.any(rate <= 0) or not np.all(np.isfinite(quality)):
        raise ValueError("a Bjontegaard curve needs at least two points of positive rate and finite quality")


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if lo >= hi:
        raise ValueError("the two curves do not overlap; Bjontegaard deltas need a shared range")
    return float(lo), float(hi)


def bd_rate(ref_rate: ArrayLike, ref_quality: ArrayLike, test_rate: ArrayLike, test_quality: ArrayLike) -> float:
    """Bjontegaard delta rate (VCEG-M33) in percent: the average bit-rate change of ``test`` against
    ``ref`` at equal quality, over the quality range both curves cover (negative = ``test`` saves bits).

    Log-rate is fitted as a cubic of quality for each curve and the two fits are integrated
    over the shared quality interval. Quality can be PSNR, SSIMULACRA2 or any score that
    grows with quality.

    Raises:
        ValueError: fewer than two points, non-positive rates, or curves without a shared range.
    """
    r1, q1, r2, q2 = (np.asarray(v, dtype=np.float64) for v in (ref_rate, ref_quality, test_rate, test_quality))
    _bd_check(r1, q1)
    _bd_check(r2, q2)
    lo, hi = _overlap(q1, q2)
    i1, i2 = _bd_fit(q1, np.log(r1)).integ(), _bd_fit(q2, np.log(r2)).integ()
    mean_diff = ((i2(hi) - i2(lo)) - (i1(hi) - i1(lo))) / (hi - lo)
    return float((np.exp(mean_diff) - 1) * 100)


def bd_quality(ref_rate: ArrayLike, ref_quality: ArrayLike, test_rate: ArrayLike, test_quality: ArrayLike) -> float:
    """Bjontegaard delta quality (BD-PSNR when quality is PSNR): the average quality change of ``test``
    against ``ref`` at equal rate, over the log-rate range both cover (positive = ``test`` is better).

    Raises:
        ValueError: as :func:`bd_rate`.
    """
    r1, q1, r2, q2 = (np.asarray(v, dtype=np.float64) for v in (ref_rate, ref_quality, test_rate, test_quality))
    _bd_check(r1, q1)
    _bd_check(r2, q2)
    lo, hi = _overlap(np.log(r1), np.log(r2))
    i1, i2 = _bd_fit(np.log(r1), q1).integ(), _bd_fit(np.log(r2), q2).integ()
    return float(((i2(hi) - i2(lo)) - (i1(hi) - i1(lo))) / (hi - lo))

"""Quality metrics: PSNR, SSIM and MS-SSIM (Wang, Simoncelli & Bovik 2003) in PyTorch.

SSIM uses the usual 11-tap Gaussian window (sigma 1.5), constants K1=0.01 and K2=0.03 of
the data range, and 'valid' filtering; MS-SSIM uses 5 scales with the published weights
and 2x2 average pooling between scales. Images too small for 5 scales use as many scales as
fit, with the weights renormalised (reported by :func:`ms_ssim_scales`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
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


def _gaussian(device: torch.device) -> torch.Tensor:
    t = torch.arange(_WINDOW, dtype=torch.float64, device=device) - _WINDOW // 2
    g = torch.exp(-(t**2) / (2 * _SIGMA**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image, ``(B,)`` each."""
    g = _gaussian(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mx**2
    syy = _filter(y * y, g) - my**2
    sxy = _filter(x * y, g) - mx * my
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


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Multi-scale SSIM of ``(B, C, H, W)`` images: ``(B,)``."""
    x, y = x.double(), y.double()
    scales = ms_ssim_scales(x.shape[2], x.shape[3])
    if scales == 0:
        raise ValueError(f"images of {x.shape[2]}x{x.shape[3]} are smaller than the {_WINDOW}-pixel SSIM window")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64, device=x.device)
    weights = weights / weights.sum()
    values = []
    for s in range(scales):
        full, cs = _ssim_parts(x, y, data_range)
        values.append(full if s == scales - 1 else cs)
        if s < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=1).clamp_min(0)  # negative cs at coarse scales would make the power undefined
    return torch.prod(stacked ** weights, dim=1)

"""SSIMULACRA2 as a differentiable PyTorch loss, for training decoders that keep detail.

Reports score images with the reference package (:func:`wavecodec.metrics.ssimulacra2`); this is
the same recipe written in tensors, so that gradients reach a decoder: sRGB to linear light to
JPEG XL's XYB space, then at six scales (halving in linear light) an SSIM-like error map and two
edge maps, one for edges the decode adds (ringing, blocking) and one for edges it loses (blur),
each averaged as an L1 and an L4 norm and weighted. MSE training blurs because the mean of what a
latent might have been is smooth; the "detail lost" maps are what punish that. The weights and the
score's final polynomial are the published ones (libjxl ``tools/ssimulacra2.cc``). Borders are
mirrored, where the reference pads some with zeros, so scores differ from it by a point or two
(tests/test_perceptual.py bounds it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SCALES = 6
_C2 = 0.0009
_OPSIN = ((0.30, 0.622, 0.078), (0.23, 0.692, 0.078), (0.24342268924547819, 0.20476744424496821, 0.5518098665095536))
_BIAS = 0.0037930732552754493
# per colour (X, Y, B), scale and norm (L1, L4): the weights of the SSIM error, the artifact and the detail-lost maps
_WEIGHTS = (
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0,
    0.0, 0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271, 0.00015231632783718752,
    0.0, 0.0016406437456599754, 0.0, 1.8422455520539298, 11.441172603757666, 0.0,
    0.0007989109436015163, 0.000176816438078653, 0.0, 1.8787594979546387, 10.94906990605142, 0.0,
    0.0007289346991508072, 0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,
    0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0,
    0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
    225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408,
    0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0004179171803251336, 0.0017290828234722833, 0.0,
    0.0020827005846636437, 0.0, 0.0, 8.826982764996862, 23.19243343998926, 0.0,
    95.1080498811086, 0.9863978034400682, 0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379,
    0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
)


def _linear(srgb: torch.Tensor) -> torch.Tensor:
    """sRGB values in [0, 1] to linear light."""
    s = srgb.clamp(0, 1)
    return torch.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def _xyb(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB ``(B, 3, H, W)`` to XYB, shifted positive as SSIMULACRA2 does."""
    m = torch.tensor(_OPSIN, dtype=linear.dtype, device=linear.device)
    mixed = torch.einsum("oc,bchw->bohw", m, linear).add(_BIAS).clamp_min(0) ** (1 / 3) - _BIAS ** (1 / 3)
    x, y = 0.5 * (mixed[:, 0] - mixed[:, 1]), 0.5 * (mixed[:, 0] + mixed[:, 1])
    return torch.stack([14.0 * x + 0.42, y + 0.01, mixed[:, 2] - y + 0.55], dim=1)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur, sigma 1.5, separable, mirrored borders."""
    radius = 5
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (t / 1.5) ** 2)
    g = g / g.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate" if min(x.shape[-2:]) <= radius else "reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _norms(d: torch.Tensor) -> torch.Tensor:
    """Per image and channel, the L1 and L4 norms of a non-negative map: ``(B, C, 2)``."""
    return torch.stack([d.mean((2, 3)), (d ** 4).mean((2, 3)).clamp_min(1e-30) ** 0.25], dim=-1)


def distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIMULACRA2's weighted error sum of ``y`` against the original ``x`` (``(B, 3, H, W)`` sRGB in [0, 1]),
    per image: 0 for identical images, growing with the damage. Differentiable in ``y``; :func:`score` maps it
    to the 0-100 scale."""
    a, b = _linear(x), _linear(y)
    w = torch.tensor(_WEIGHTS, dtype=x.dtype, device=x.device).view(3, SCALES, 2, 3)
    total = x.new_zeros(x.shape[0])
    for s in range(SCALES):
        if min(a.shape[-2:]) < 8:
            break
        p, q = _xyb(a), _xyb(b)
        mu_p, mu_q, pp, qq, pq = _blur(torch.cat([p, q, p * p, q * q, p * q], dim=1)).split(3, dim=1)  # one pass
        var_p, var_q, cov = pp - mu_p ** 2, qq - mu_q ** 2, pq - mu_p * mu_q
        ssim_error = (1 - (1 - (mu_p - mu_q) ** 2) * (2 * cov + _C2) / (var_p + var_q + _C2)).clamp_min(0)
        edges = (1 + (q - mu_q).abs()) / (1 + (p - mu_p).abs()) - 1
        terms = torch.stack([_norms(ssim_error), _norms(edges.clamp_min(0)), _norms((-edges).clamp_min(0))], dim=-1)
        total = total + (terms * w[:, s]).sum((1, 2, 3))  # terms: (B, colour, norm, map)
        if s < SCALES - 1:
            a, b = (F.avg_pool2d(v, 2, ceil_mode=True) for v in (a, b))
    return total


def score(d: torch.Tensor) -> torch.Tensor:
    """:func:`distance` on SSIMULACRA2's scale: 100 for identical images, about 70 high, 30 low quality."""
    d = d * 0.9562382616834844
    d = 2.326765642916932 * d - 0.020884521182843837 * d ** 2 + 6.248496625763138e-05 * d ** 3
    return torch.where(d > 0, 100 - 10 * d.clamp_min(1e-12) ** 0.6276336467831387, torch.full_like(d, 100.0))

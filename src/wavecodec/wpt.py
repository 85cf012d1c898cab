"""Wavelet packet transform (full tree, periodization boundary) in PyTorch.

The transform is the first stage of every codec: it turns a signal into ``2^(d*J)``
subbands per channel at ``1/2^J`` of the resolution, without losing anything (it is
invertible, and orthogonal for orthogonal wavelets).

Layout and channel order
------------------------
The number of spatial dimensions ``d`` follows the tensor:

* ``(B, C, T)`` is 1-D and becomes ``(B, C * 2^J, T / 2^J)``;
* ``(B, C, H, W)`` is 2-D and becomes ``(B, C * 4^J, H / 2^J, W / 2^J)``;
* ``(B, C, D, H, W)`` is 3-D and becomes ``(B, C * 8^J, D / 2^J, H / 2^J, W / 2^J)``.

Output channel ``c * 2^(d*J) + k`` holds subband ``k`` of input channel ``c``. The index ``k``
is written in base ``2^d`` with one digit per level, the first level most significant.
Within a level, the digit is built from one bit per axis (0 = low-pass, 1 = high-pass),
the **last** axis giving the most significant bit. In 1-D the order is PyWavelets'
``WaveletPacket.get_level(J, "natural")`` (``a, d`` per level); in 2-D it is
``WaveletPacket2D.get_level(J, "natural")`` (``a, h, v, d`` per level), so channel 0 is the
approximation band. In 3-D the digit is ``4*bit(W) + 2*bit(H) + bit(D)``.

Why depthwise convolutions over all subbands at once: the subbands are channels, and each
level applies one strided, grouped (depthwise) convolution per axis to all of them, the low
and high branch in the same call. That is ``d`` large convolutions per level instead of one
small call per subband, which is what makes it fast on CPUs and GPUs
(``benchmarks/wpt_speed.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from .errors import ShapeError

__all__ = ["analysis", "synthesis", "WaveletPacket", "spatial_dims", "check_divisible"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_AXIS_NAMES = {1: ("T",), 2: ("H", "W"), 3: ("D", "H", "W")}


@lru_cache(maxsize=64)
def _filter_pair(wavelet: str, synthesis: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Correlation kernels (low, high) and the circular padding (left, right).

    Analysis computes ``y[k] = sum_j f[j] x[(2k + L/2 - j) mod N]`` (PyWavelets'
    periodization convention). Synthesis is the transpose of the same operator built from
    the reversed reconstruction filters, which for biorthogonal wavelets is the inverse.
    """
    try:
        w = pywt.Wavelet(wavelet)
    except ValueError:
        raise ShapeError(f"unknown wavelet {wavelet!r}; use a discrete PyWavelets name such as 'bior4.4'") from None
    if synthesis:
        lo, hi = np.asarray(w.rec_lo)[::-1], np.asarray(w.rec_hi)[::-1]
    else:
        lo, hi = np.asarray(w.dec_lo), np.asarray(w.dec_hi)
    length = len(lo)
    offset = length // 2
    pad_left = length - 1 - offset
    pad_right = offset - 1
    # conv is correlation: flip the filters so that it computes the convolution above
    return lo[::-1].copy(), hi[::-1].copy(), pad_left, pad_right


def _kernel(wavelet: str, synthesis: bool, ndim: int, axis: int, groups: int, like: torch.Tensor) -> torch.Tensor:
    lo, hi = _filter_pair(wavelet, synthesis)[:2]
    bank = torch.tensor(np.stack([lo, hi]), dtype=like.dtype, device=like.device)
    shape = [2, 1] + [1] * ndim
    shape[2 + axis] = len(lo)
    return bank.reshape(shape).repeat(groups, *([1] * (ndim + 1)))


def _wrap_pad(x: torch.Tensor, dim: int, left: int, right: int) -> torch.Tensor:
    n = x.shape[dim]
    if 0 <= left <= n and 0 <= right <= n:
        parts = [x.narrow(dim, n - left, left), x, x.narrow(dim, 0, right)]
        return torch.cat(parts, dim=dim)
    idx = torch.arange(-left, n + right, device=x.device) % n
    return x.index_select(dim, idx)


def _wrap_fold(z: torch.Tensor, dim: int, left: int, right: int, n: int) -> torch.Tensor:
    """Adjoint of :func:`_wrap_pad`: add the padded margins back onto the signal."""
    if 0 <= left <= n and 0 <= right <= n:
        out = z.narrow(dim, left, n).clone()
        if right:
            out.narrow(dim, 0, right).add_(z.narrow(dim, left + n, right))
        if left:
            out.narrow(dim, n - left, left).add_(z.narrow(dim, 0, left))
        return out
    idx = torch.arange(-left, n + right, device=z.device) % n
    shape = list(z.shape)
    shape[dim] = n
    return z.new_zeros(shape).index_add(dim, idx, z)


def spatial_dims(x: torch.Tensor) -> int:
    """Number of spatial dimensions of a ``(B, C, ...)`` tensor (1, 2 or 3)."""
    d = x.dim() - 2
    if d not in _CONV:
        raise ShapeError(
            f"expected a (B, C, T), (B, C, H, W) or (B, C, D, H, W) tensor, got shape {tuple(x.shape)}"
        )
    return d


def check_divisible(shape: tuple[int, ...] | torch.Size, levels: int) -> None:
    """Raise :class:`ShapeError` unless every spatial size is a multiple of ``2^levels``."""
    d = len(shape) - 2
    step = 2**levels
    for name, size in zip(_AXIS_NAMES[d], shape[2:]):
        if size == 0 or size % step:
            raise ShapeError(
                f"size {size} along {name} is not a positive multiple of 2^{levels}={step}; "
                "pad the input first (Codec does this for you)"
            )


def _check_common(x: torch.Tensor, levels: int) -> int:
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ShapeError(f"expected a floating-point tensor, got dtype {x.dtype}")
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 0:
        raise ShapeError(f"levels must be a non-negative integer, got {levels!r}")
    return spatial_dims(x)


def _analysis_level(x: torch.Tensor, wavelet: str, d: int) -> torch.Tensor:
    """One level on ``(B, K, *S)``: returns ``(B, K * 2^d, *S/2)`` (depthwise convolutions)."""
    pad_left, pad_right = _filter_pair(wavelet, False)[2:]
    for axis in reversed(range(d)):  # last axis first: it becomes the most significant bit
        groups = x.shape[1]
        x = _wrap_pad(x, 2 + axis, pad_left, pad_right)
        stride = [1] * d
        stride[axis] = 2
        x = _CONV[d](x, _kernel(wavelet, False, d, axis, groups, x), stride=stride, groups=groups)
    return x


def _synthesis_level(y: torch.Tensor, wavelet: str, d: int) -> torch.Tensor:
    """Inverse of :func:`_analysis_level`: ``(B, K * 2^d, *S)`` to ``(B, K, *2S)``."""
    pad_left, pad_right = _filter_pair(wavelet, True)[2:]
    for axis in range(d):
        groups = y.shape[1] // 2
        n = 2 * y.shape[2 + axis]
        stride = [1] * d
        stride[axis] = 2
        y = _CONV_T[d](y, _kernel(wavelet, True, d, axis, groups, y), stride=stride, groups=groups)
        y = _wrap_fold(y, 2 + axis, pad_left, pad_right, n)
    return y


def analysis(x: torch.Tensor, levels: int, wavelet: str = "bior4.4") -> torch.Tensor:
    """Forward wavelet packet transform of ``x`` with ``levels`` full-tree levels.

    ``x`` is ``(B, C, *S)`` with 1 to 3 spatial dimensions, each a multiple of
    ``2^levels``. Returns ``(B, C * 2^(d*levels), *S / 2^levels)`` in the order described in
    the module docstring. Differentiable; works for any device and floating dtype.
    """
    d = _check_common(x, levels)
    check_divisible(x.shape, levels)
    for _ in range(levels):
        x = _analysis_level(x, wavelet, d)
    return x


def synthesis(X: torch.Tensor, levels: int, wavelet: str = "bior4.4") -> torch.Tensor:
    """Inverse of :func:`analysis`: ``(B, C * 2^(d*levels), *S)`` to ``(B, C, *S * 2^levels)``."""
    d = _check_common(X, levels)
    bands = 2 ** (d * levels)
    channels = X.shape[1]
    if channels % bands:
        raise ShapeError(
            f"{channels} channels is not a multiple of the {bands} subbands of a {d}-D transform with {levels} levels"
        )
    for _ in range(levels):
        X = _synthesis_level(X, wavelet, d)
    return X


class WaveletPacket(torch.nn.Module):
    """The transform as a module: ``forward`` is :func:`analysis`, ``inverse`` is :func:`synthesis`."""

    def __init__(self, levels: int, wavelet: str = "bior4.4") -> None:
        super().__init__()
        _filter_pair(wavelet, False)  # fail early on an unknown wavelet
        self.levels = levels
        self.wavelet = wavelet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return analysis(x, self.levels, self.wavelet)

    def inverse(self, X: torch.Tensor) -> torch.Tensor:
        """Synthesis: subbands back to the signal (inverse of ``forward``)."""
        return synthesis(X, self.levels, self.wavelet)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, wavelet={self.wavelet!r}"

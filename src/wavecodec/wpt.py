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

Why one convolution per axis: a full packet tree of J levels along one axis is a single
filter bank of ``2^J`` composite filters applied with stride ``2^J`` (for CDF 9/7 and J=3,
64 taps each). :func:`analysis` filters each axis once with that bank, in place along the
axis (no transposes), and :func:`synthesis` runs the inverse bank in polyphase form (one
stride-1 convolution giving the ``2^J`` phases, then an interleave). The composite filters
are computed once, in float64, from impulse responses of the level-by-level transform
(kept as the reference: two-filter banks as depthwise convolutions over all subbands),
and deeper trees are fused in stages of at most :data:`STAGE` levels because the
composite filters grow as ``2^J``. ``benchmarks/wpt_speed.py`` compares the two.

On the CPU, for ``bior4.4`` tensors that need no gradient (every encode and decode), both
functions run the lifting scheme of :mod:`wavecodec.lifting` instead: the same map in about
a tenth of the arithmetic. The convolution form stays for autograd, GPUs and other wavelets.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from . import lifting
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
    """Circular padding of ``dim`` by ``left`` and ``right`` (either may exceed its length or be negative)."""
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


def _levelwise_analysis(x: torch.Tensor, levels: int, wavelet: str) -> torch.Tensor:
    """The transform level by level (two-filter banks): the reference the fused filters are derived from."""
    d = spatial_dims(x)
    for _ in range(levels):
        x = _analysis_level(x, wavelet, d)
    return x


def _levelwise_synthesis(X: torch.Tensor, levels: int, wavelet: str) -> torch.Tensor:
    d = spatial_dims(X)
    for _ in range(levels):
        X = _synthesis_level(X, wavelet, d)
    return X


@lru_cache(maxsize=32)
def _fused(wavelet: str, levels: int) -> tuple[torch.Tensor, int, torch.Tensor, int, int]:
    """The ``levels``-level packet tree along one axis as single filter banks, from impulse responses (float64).

    Returns ``(analysis bank (2^J, 1, L), its left padding, synthesis polyphase bank (2^J, 2^J, T),
    its left and right padding)``. Analysis is one stride-``2^J`` convolution; synthesis is one
    stride-1 convolution producing the ``2^J`` phases of the output (polyphase form), which
    is far faster on CPUs than a transposed convolution.
    """
    block = 2**levels
    taps = len(_filter_pair(wavelet, False)[0])  # also refuses unknown wavelets with a ShapeError
    reach = (taps - 1) * (block - 1) + 1  # support of the composite filters
    n = block * (-(-2 * (reach + block) // block))  # a period long enough that nothing wraps onto itself twice
    eye = torch.eye(n, dtype=torch.float64)[:, None]  # n impulses
    resp = _levelwise_analysis(eye, levels, wavelet)[:, :, 0].T.numpy()  # (bands, n): band k at m=0 from x[i]
    start = _support_start(resp)
    length = block * -(-_support_length(resp, start) // block)
    ana = np.stack([np.roll(resp[k], -start)[:length] for k in range(block)])  # A[k, t] = resp[k, start + t]
    impulses = torch.zeros(block, block, n // block, dtype=torch.float64)
    impulses[torch.arange(block), torch.arange(block), 0] = 1.0
    out = _levelwise_synthesis(impulses, levels, wavelet)[:, 0].numpy()  # (bands, n): x[i] from y_k[0]
    s_start = _support_start(out)
    s_start -= s_start % block  # align to a phase boundary (the extra taps are zero)
    s_len = block * -(-_support_length(out, s_start) // block)
    syn = np.stack([np.roll(out[k], -s_start)[:s_len] for k in range(block)])  # S'[k, u] = S[k, s_start + u]
    t = s_len // block
    z0 = s_start // block if s_start < n // 2 else (s_start - n) // block
    poly = np.zeros((block, block, t))
    for p in range(block):
        for j2 in range(t):
            poly[p, :, j2] = syn[:, block * (t - 1 - j2) + p]
    left = t - 1 + z0
    return (torch.from_numpy(ana[:, None, :]), -start if start < n // 2 else n - start, torch.from_numpy(poly), left, -z0)


def _support_start(resp: np.ndarray) -> int:
    """First index of the circular run of non-zero columns of ``resp`` (bands, n)."""
    nz = np.abs(resp).max(axis=0) > 1e-15
    n = nz.size
    for i in range(n):
        if nz[i] and not nz[i - 1]:
            return i
    return 0


def _support_length(resp: np.ndarray, start: int) -> int:
    nz = np.roll(np.abs(resp).max(axis=0) > 1e-15, -start)
    return int(np.flatnonzero(nz).max()) + 1


def _conv_along(x: torch.Tensor, bank: torch.Tensor, axis: int, stride: int) -> torch.Tensor:
    """Convolve ``(N, in, *S)`` with a 1-D bank ``(out, in, T)`` along spatial ``axis`` only (stride along it)."""
    d = x.dim() - 2
    shape = [bank.shape[0], bank.shape[1]] + [1] * d
    shape[2 + axis] = bank.shape[2]
    strides = [1] * d
    strides[axis] = stride
    return _CONV[d](x, bank.to(x.dtype).reshape(shape), stride=strides)


STAGE = 3  # levels fused into one filter bank: the composite filters grow as 2^J, so deeper trees go in stages


def _analysis_axis(x: torch.Tensor, axis: int, levels: int, wavelet: str) -> torch.Tensor:
    """``(N, 1, *S)`` to ``(N, 2^J, *S')`` with ``S'[axis] = S[axis] / 2^J``: the packet tree along one axis."""
    if levels > STAGE:  # the first levels, then the rest within each band (first levels most significant)
        y = _analysis_axis(x, axis, STAGE, wavelet)
        n, bands = y.shape[0], y.shape[1]
        z = _analysis_axis(y.reshape(n * bands, 1, *y.shape[2:]), axis, levels - STAGE, wavelet)
        return z.reshape(n, bands * z.shape[1], *z.shape[2:])
    bank, left = _fused(wavelet, levels)[:2]
    block = 2**levels
    padded = _wrap_pad(x, 2 + axis, left, bank.shape[-1] - block - left)
    return _conv_along(padded, bank, axis, block)


def _synthesis_axis(y: torch.Tensor, axis: int, levels: int, wavelet: str) -> torch.Tensor:
    """Inverse of :func:`_analysis_axis`: ``(N, 2^J, *S')`` to ``(N, 1, *S)`` (polyphase convolution)."""
    if levels > STAGE:
        outer, inner = 2**STAGE, 2 ** (levels - STAGE)
        n = y.shape[0]
        z = _synthesis_axis(y.reshape(n * outer, inner, *y.shape[2:]), axis, levels - STAGE, wavelet)
        return _synthesis_axis(z.reshape(n, outer, *z.shape[2:]), axis, STAGE, wavelet)
    _, _, poly, left, right = _fused(wavelet, levels)
    block = 2**levels
    phases = _conv_along(_wrap_pad(y, 2 + axis, left, right), poly, axis, 1)  # (N, phase, *S')
    # interleave: sample 2^J * m + p of the axis is phase p at m
    moved = phases.movedim(1, 2 + axis)  # the phase right after its axis
    size = list(y.shape[2:])
    size[axis] *= block
    return moved.reshape(y.shape[0], 1, *size)


def lifting_computes(dtype: torch.dtype, device: torch.device, wavelet: str) -> bool:
    """Whether :mod:`wavecodec.lifting` computes the transform of tensors of ``dtype`` on ``device`` when no gradient is needed."""
    return wavelet == "bior4.4" and device.type == "cpu" and dtype in (torch.float32, torch.float64)


def by_lifting(x: torch.Tensor, wavelet: str) -> bool:
    """Whether :mod:`wavecodec.lifting` computes this transform: CPU, float32/64, CDF 9/7, no gradient needed."""
    return lifting_computes(x.dtype, x.device, wavelet) and not (x.requires_grad and torch.is_grad_enabled())


def _band_order(d: int, levels: int) -> list[int]:
    """Permutation of ``(B, C, [bits of axis a (first level first), small_a] for each axis)`` to ``(B, C, bits in channel order, *small)``."""
    bits = [2 + a * (levels + 1) + level for level in range(levels) for a in reversed(range(d))]
    return [0, 1] + bits + [2 + a * (levels + 1) + levels for a in range(d)]


def _lifting_analysis(x: torch.Tensor, levels: int, out: torch.Tensor | None = None, overwrite: bool = False) -> torch.Tensor:
    """:func:`analysis` by lifting, into ``out`` if given; ``overwrite`` lets it transform ``x`` itself (a contiguous tensor the caller no longer needs)."""
    B, C, *size = x.shape
    d, small = len(size), [n >> levels for n in size]
    a = x.detach().numpy()
    a = lifting.analysis(a if overwrite and a.flags.c_contiguous else a.copy(order="C"), levels)
    # numpy's strided copy is some 20x faster than torch's for this many small dimensions (1 thread)
    split = [B, C] + [m for n in small for m in [2] * levels + [n]]
    bands = a.reshape(split).transpose(_band_order(d, levels))
    if out is None:
        return torch.from_numpy(np.ascontiguousarray(bands).reshape(B, C * 2 ** (d * levels), *small))
    np.copyto(out.numpy().reshape(bands.shape), bands)
    return out


def analysis_into(x: torch.Tensor, levels: int, out: torch.Tensor) -> torch.Tensor:
    """:func:`analysis` of a CPU tensor that :func:`by_lifting` accepts, written into the contiguous ``out``;
    ``x`` is overwritten (the inference path's own intermediate: no copy of it is made)."""
    check_divisible(x.shape, levels)
    return _lifting_analysis(x, levels, out, overwrite=True) if levels else out.copy_(x)


def _lifting_synthesis(X: torch.Tensor, levels: int, channels: int) -> torch.Tensor:
    B, _, *small = X.shape
    d = len(small)
    order = _band_order(d, levels)
    a = X.detach().numpy().reshape([B, channels] + [2] * (d * levels) + small)
    inverse_order = [order.index(i) for i in range(len(order))]
    split = a.transpose(inverse_order).copy(order="C").reshape(B, channels, *[n << levels for n in small])
    return torch.from_numpy(lifting.synthesis(split, levels))


def analysis(x: torch.Tensor, levels: int, wavelet: str = "bior4.4") -> torch.Tensor:
    """Forward wavelet packet transform of ``x`` with ``levels`` full-tree levels.

    ``x`` is ``(B, C, *S)`` with 1 to 3 spatial dimensions, each a multiple of
    ``2^levels``. Returns ``(B, C * 2^(d*levels), *S / 2^levels)`` in the order described in
    the module docstring. Each axis is filtered once with the whole tree's composite filter
    bank (one strided convolution), which is several times faster than level by level.
    Differentiable; works for any device and floating dtype.
    """
    _check_common(x, levels)
    check_divisible(x.shape, levels)
    if levels == 0:
        return x
    if by_lifting(x, wavelet):
        return _lifting_analysis(x, levels)
    return _convolution_analysis(x, levels, wavelet)


def _convolution_analysis(x: torch.Tensor, levels: int, wavelet: str) -> torch.Tensor:
    """:func:`analysis` by the fused filter banks (differentiable, any device and wavelet)."""
    d = spatial_dims(x)
    B, C, *size = x.shape
    block = 2**levels
    t = x.reshape(B * C, 1, *size)
    for axis in range(d):  # each pass puts its bands after the earlier ones: (B*C*bands, 1, *S) -> (B*C*bands, 2^J, *S')
        t = _analysis_axis(t, axis, levels, wavelet)
        t = t.reshape(-1, 1, *t.shape[2:])
    small = [n // block for n in size]
    # (B, C, bits of axis 0 (first level most significant), ..., bits of axis d-1, *small) to the channel order
    t = t.reshape(B, C, *([2] * (d * levels)), *small)
    bits = [2 + a * levels + level for level in range(levels) for a in reversed(range(d))]
    spatial = list(range(2 + d * levels, 2 + d * levels + d))
    return t.permute([0, 1] + bits + spatial).reshape(B, C * block**d, *small)


def synthesis(X: torch.Tensor, levels: int, wavelet: str = "bior4.4") -> torch.Tensor:
    """Inverse of :func:`analysis`: ``(B, C * 2^(d*levels), *S)`` to ``(B, C, *S * 2^levels)``."""
    d = _check_common(X, levels)
    bands = 2 ** (d * levels)
    channels = X.shape[1]
    if channels % bands:
        raise ShapeError(
            f"{channels} channels is not a multiple of the {bands} subbands of a {d}-D transform with {levels} levels"
        )
    if levels == 0:
        return X
    if by_lifting(X, wavelet):
        return _lifting_synthesis(X, levels, channels // bands)
    return _convolution_synthesis(X, levels, wavelet)


def _convolution_synthesis(X: torch.Tensor, levels: int, wavelet: str) -> torch.Tensor:
    """:func:`synthesis` by the polyphase filter banks (differentiable, any device and wavelet)."""
    d = spatial_dims(X)
    B, channels, *small = X.shape
    C, block = channels // 2 ** (d * levels), 2**levels
    t = X.reshape(B, C, *([2] * (d * levels)), *small)
    bits = [2 + a * levels + level for level in range(levels) for a in reversed(range(d))]
    forward = [0, 1] + bits + list(range(2 + d * levels, 2 + d * levels + d))
    t = t.permute([forward.index(i) for i in range(len(forward))])  # (B, C, bits of axis 0, ..., of axis d-1, *small)
    size = list(small)
    for axis in reversed(range(d)):  # undo the last pass first
        t = _synthesis_axis(t.reshape(-1, block, *size), axis, levels, wavelet)
        size[axis] *= block
    return t.reshape(B, C, *size)


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

"""The CDF 9/7 (``bior4.4``) wavelet packet transform by lifting, compiled with Numba: the CPU inference path.

Why a second implementation of :mod:`wavecodec.wpt`: the convolution form (composite filter
banks of 64+ taps per axis) is what autograd and GPUs want, but on a CPU it spends about
64 multiply-adds per value and axis. The lifting factorisation of the 9/7 wavelet
(Daubechies & Sweldens, 1998) needs four two-tap steps and a scaling per level, about
six multiply-adds per value and level, done in place in cache-sized passes. It is the same
linear map: PyWavelets' ``bior4.4`` periodization DWT is exactly

    s, d = x[0::2], x[1::2]
    d[n] += ALPHA * (s[n] + s[n+1]);  s[n] += BETA * (d[n] + d[n-1])
    d[n] += GAMMA * (s[n] + s[n+1]);  s[n] += DELTA * (d[n] + d[n-1])
    approximation = ZETA * s;  detail = -d / ZETA

with indices taken modulo the length (the periodization boundary), and synthesis runs
the steps backwards. :mod:`wavecodec.wpt` uses this module for tensors that need no
gradient on the CPU and checks it against the convolution form in the tests.

Arrays are processed as ``(outer, N, inner)`` views, transforming the middle axis: every
lifting step runs over the flattened ``(rows, inner)`` block, so the compiler vectorises it
whether the axis is the last one (``inner == 1``) or not.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ALPHA = -1.586134342059924
BETA = -0.052980118572961
GAMMA = 0.882911075530934
DELTA = 0.443506852043971
ZETA = 1.149604398860241


@njit(cache=True, nogil=True, inline="always")
def _predict(target: np.ndarray, source: np.ndarray, half: int, inner: int, c: float) -> None:  # pragma: no cover - compiled
    """``target[n] += c * (source[n] + source[n+1])`` on rows of ``inner`` values, periodic."""
    last = (half - 1) * inner
    if inner == 1:
        for f in range(last):
            target[f] += c * (source[f] + source[f + 1])
    else:
        for i in range(half - 1):
            _axpy(target[i * inner : (i + 1) * inner], source[i * inner : (i + 1) * inner], source[(i + 1) * inner : (i + 2) * inner], c)
    _axpy(target[last : last + inner], source[last : last + inner], source[:inner], c)


@njit(cache=True, nogil=True, inline="always")
def _update(target: np.ndarray, source: np.ndarray, half: int, inner: int, c: float) -> None:  # pragma: no cover - compiled
    """``target[n] += c * (source[n] + source[n-1])`` on rows of ``inner`` values, periodic."""
    last = (half - 1) * inner
    _axpy(target[:inner], source[:inner], source[last : last + inner], c)
    if inner == 1:
        for f in range(1, half):
            target[f] += c * (source[f] + source[f - 1])
    else:
        for i in range(1, half):
            _axpy(target[i * inner : (i + 1) * inner], source[i * inner : (i + 1) * inner], source[(i - 1) * inner : i * inner], c)


@njit(cache=True, nogil=True, inline="always")
def _axpy(target: np.ndarray, a: np.ndarray, b: np.ndarray, c: float) -> None:  # pragma: no cover - compiled
    """``target += c * (a + b)`` over equal-length views.

    Every index is a bare loop counter: Numba's negative-index wraparound on computed
    indices keeps LLVM from vectorising, so loops run over views.
    """
    for lane in range(target.size):
        target[lane] += c * (a[lane] + b[lane])


LANES = 128  # lanes transformed together: a column block of a 2-D image stays in the L2 cache through all levels


@njit(cache=True, nogil=True)
def forward(x: np.ndarray, levels: int) -> None:  # pragma: no cover - compiled
    """In place on ``(outer, N, inner)``: the axis of length ``N`` becomes ``2^levels`` bands of ``N / 2^levels`` rows.

    Band ``b`` (rows ``b * N/2^J`` to ``(b+1) * N/2^J``) is the packet whose path, first level
    most significant, is the binary digits of ``b`` (0 = approximation).
    """
    outer, n, inner = x.shape
    flat = x.reshape(outer, n * inner)
    lanes = min(inner, LANES)
    s = np.empty((n // 2) * lanes, dtype=x.dtype)
    d = np.empty((n // 2) * lanes, dtype=x.dtype)
    zeta, minus_inverse = x.dtype.type(ZETA), x.dtype.type(-1.0 / ZETA)
    alpha, beta, gamma, delta = x.dtype.type(ALPHA), x.dtype.type(BETA), x.dtype.type(GAMMA), x.dtype.type(DELTA)
    for o in range(outer):
        row = flat[o]
        for lane0 in range(0, inner, lanes):
            width = min(lanes, inner - lane0)
            for level in range(levels):
                length = n >> level
                half = length // 2
                for seg in range(1 << level):
                    base = seg * length * inner + lane0
                    _split(row, base, s, d, half, inner, width)
                    _predict(d, s, half, width, alpha)
                    _update(s, d, half, width, beta)
                    _predict(d, s, half, width, gamma)
                    _update(s, d, half, width, delta)
                    _scale_store(row, base, s, zeta, half, inner, width)
                    _scale_store(row, base + half * inner, d, minus_inverse, half, inner, width)


@njit(cache=True, nogil=True)
def inverse(x: np.ndarray, levels: int) -> None:  # pragma: no cover - compiled
    """In place on ``(outer, N, inner)``: undoes :func:`forward`."""
    outer, n, inner = x.shape
    flat = x.reshape(outer, n * inner)
    lanes = min(inner, LANES)
    s = np.empty((n // 2) * lanes, dtype=x.dtype)
    d = np.empty((n // 2) * lanes, dtype=x.dtype)
    inverse_zeta, minus_zeta = x.dtype.type(1.0 / ZETA), x.dtype.type(-ZETA)
    alpha, beta, gamma, delta = x.dtype.type(-ALPHA), x.dtype.type(-BETA), x.dtype.type(-GAMMA), x.dtype.type(-DELTA)
    for o in range(outer):
        row = flat[o]
        for lane0 in range(0, inner, lanes):
            width = min(lanes, inner - lane0)
            for level in range(levels - 1, -1, -1):
                length = n >> level
                half = length // 2
                for seg in range(1 << level):
                    base = seg * length * inner + lane0
                    _scale_load(row, base, s, inverse_zeta, half, inner, width)
                    _scale_load(row, base + half * inner, d, minus_zeta, half, inner, width)
                    _update(s, d, half, width, delta)
                    _predict(d, s, half, width, gamma)
                    _update(s, d, half, width, beta)
                    _predict(d, s, half, width, alpha)
                    _merge(row, base, s, d, half, inner, width)


@njit(cache=True, nogil=True, inline="always")
def _split(row: np.ndarray, base: int, s: np.ndarray, d: np.ndarray, half: int, inner: int, width: int) -> None:  # pragma: no cover - compiled
    """Even rows of the segment at ``base`` to ``s``, odd rows to ``d`` (``width`` lanes of rows ``inner`` apart)."""
    if inner == 1:
        seg = row[base : base + 2 * half]
        for i in range(half):
            s[i] = seg[2 * i]
            d[i] = seg[2 * i + 1]
    else:
        for i in range(half):
            src = base + 2 * i * inner
            _copy(s[i * width : (i + 1) * width], row[src : src + width], 1.0)
            _copy(d[i * width : (i + 1) * width], row[src + inner : src + inner + width], 1.0)


@njit(cache=True, nogil=True, inline="always")
def _merge(row: np.ndarray, base: int, s: np.ndarray, d: np.ndarray, half: int, inner: int, width: int) -> None:  # pragma: no cover - compiled
    """Inverse of :func:`_split`."""
    if inner == 1:
        seg = row[base : base + 2 * half]
        for i in range(half):
            seg[2 * i] = s[i]
            seg[2 * i + 1] = d[i]
    else:
        for i in range(half):
            dst = base + 2 * i * inner
            _copy(row[dst : dst + width], s[i * width : (i + 1) * width], 1.0)
            _copy(row[dst + inner : dst + inner + width], d[i * width : (i + 1) * width], 1.0)


@njit(cache=True, nogil=True, inline="always")
def _scale_store(row: np.ndarray, base: int, v: np.ndarray, c: float, half: int, inner: int, width: int) -> None:  # pragma: no cover - compiled
    """``half`` rows of ``c * v`` into the segment's rows from ``base`` on."""
    if inner == 1:
        _copy(row[base : base + half], v[:half], c)
    else:
        for i in range(half):
            dst = base + i * inner
            _copy(row[dst : dst + width], v[i * width : (i + 1) * width], c)


@njit(cache=True, nogil=True, inline="always")
def _scale_load(row: np.ndarray, base: int, v: np.ndarray, c: float, half: int, inner: int, width: int) -> None:  # pragma: no cover - compiled
    """Inverse of :func:`_scale_store` up to the scale: ``v = c * rows``."""
    if inner == 1:
        _copy(v[:half], row[base : base + half], c)
    else:
        for i in range(half):
            src = base + i * inner
            _copy(v[i * width : (i + 1) * width], row[src : src + width], c)


@njit(cache=True, nogil=True, inline="always")
def _copy(target: np.ndarray, source: np.ndarray, c: float) -> None:  # pragma: no cover - compiled
    """``target = c * source`` over equal-length views (bare loop counters, see :func:`_axpy`)."""
    for lane in range(target.size):
        target[lane] = c * source[lane]


def analysis(x: np.ndarray, levels: int) -> np.ndarray:
    """``(B, C, *S)`` contiguous float array to ``(B, C, [bands, small] per axis)``, transformed in place along every axis."""
    return _each_axis(x, levels, forward)


def synthesis(x: np.ndarray, levels: int) -> np.ndarray:
    """Inverse of :func:`analysis`, in place on the ``(B, C, *S)`` layout it returns."""
    return _each_axis(x, levels, inverse)


def _each_axis(x: np.ndarray, levels: int, kernel) -> np.ndarray:
    """Run ``kernel`` (:func:`forward` or :func:`inverse`) along every spatial axis of ``(B, C, *S)``, in place."""
    _check_in_place(x)
    batch, channels, *size = x.shape
    for axis, n in enumerate(size):
        outer = batch * channels * int(np.prod(size[:axis], dtype=np.int64))
        kernel(x.reshape(outer, n, -1), levels)
    return x


def _check_in_place(x: np.ndarray) -> None:
    """The kernels work in place on reshaped views, which only a C-contiguous array has (a reshape would copy)."""
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError("lifting works in place on a writeable C-contiguous array")

"""Per-channel entropy model: learned probabilities, frozen as integer tables.

Each latent channel has a probability table over the integers ``[-R, R]`` (``R`` is
``table_radius``: all ``2^b - 1`` values for ``b <= 9`` bits) plus one **escape** entry;
values outside the table are coded as the escape followed by the raw value, so a table
never has to cover a 16-bit alphabet and no value is ever unencodable.

Two views of the same model:

* while training, ``logits`` give a differentiable rate ``-log2 p(v)`` of the noisy
  latents, with ``p`` interpolated linearly between the two nearest integers (the
  additive-noise relaxation of rounding);
* for coding, :meth:`EntropyModel.freeze` turns the probabilities into **integer**
  frequency tables (``pmf``, summing to ``2^16`` per channel, every entry >= 1) stored with
  the weights. The coder reads only these integers, so encoder and decoder agree bit for
  bit on every machine and thread count, whatever floating-point arithmetic does.
"""

from __future__ import annotations

import math

import constriction
import numpy as np
import torch
from torch import nn

from .errors import FormatError

PRECISION = 16
TOTAL = 2**PRECISION
MAX_TABLE_RADIUS = 255


def table_radius(bits: int) -> int:
    """Largest ``|value|`` with its own table entry for ``bits``-bit latents."""
    return min(2 ** (bits - 1) - 1, MAX_TABLE_RADIUS)


def quantize_pmf(probs: np.ndarray) -> np.ndarray:
    """Float probabilities ``(C, T)`` to int32 frequencies summing to ``2^16``, each >= 1."""
    probs = np.asarray(probs, dtype=np.float64)
    probs = np.where(np.isfinite(probs) & (probs > 0), probs, 0.0)
    rows, size = probs.shape
    if size >= TOTAL:
        raise ValueError("table too large for the fixed-point precision")
    sums = probs.sum(axis=1, keepdims=True)
    probs = np.where(sums > 0, probs / np.where(sums > 0, sums, 1), 1.0 / size)
    spare = TOTAL - size  # every entry gets 1, the rest is shared by probability
    scaled = probs * spare
    freq = np.floor(scaled).astype(np.int64)
    short = spare - freq.sum(axis=1)
    order = np.argsort(-(scaled - freq), axis=1, kind="stable")
    for r in range(rows):  # hand out what flooring left over, largest remainders first
        freq[r, order[r, : short[r]]] += 1
    return (freq + 1).astype(np.int32)


class EntropyModel(nn.Module):
    """Learned per-channel probabilities with frozen integer tables for coding."""

    def __init__(self, channels: int, bits: int) -> None:
        super().__init__()
        self.channels = channels
        self.bits = bits
        self.max_symbol = 2 ** (bits - 1) - 1
        self.table_radius = table_radius(bits)
        size = 2 * self.table_radius + 2  # values -R..R, then the escape
        outside = (2 * self.max_symbol + 1) - (2 * self.table_radius + 1)
        # companding makes Gaussian latents uniform, so start from a uniform table
        init = torch.zeros(channels, size)
        init[:, -1] = math.log(outside) if outside else -12.0
        self.logits = nn.Parameter(init)
        self.register_buffer("pmf", torch.from_numpy(quantize_pmf(torch.softmax(init, 1).numpy())))

    @property
    def escape(self) -> int:
        """Table index of the escape symbol."""
        return 2 * self.table_radius + 1

    def _outside(self) -> int:
        return max(1, (2 * self.max_symbol + 1) - (2 * self.table_radius + 1))

    def bits_noisy(self, v: torch.Tensor) -> torch.Tensor:
        """Differentiable bits of each element of noisy latents ``v`` ``(B, C, *S)``."""
        p = torch.softmax(self.logits, dim=1)
        flat = v.transpose(0, 1).reshape(self.channels, -1)
        t = (flat + self.table_radius).clamp(0, 2 * self.table_radius)
        lo = t.detach().floor().clamp(max=max(2 * self.table_radius - 1, 0)).long()
        frac = t - lo
        hi = (lo + 1).clamp(max=2 * self.table_radius)
        prob = torch.gather(p, 1, lo) * (1 - frac) + torch.gather(p, 1, hi) * frac
        if self.table_radius < self.max_symbol:
            escaped = flat.abs() > self.table_radius + 0.5
            prob = torch.where(escaped, p[:, -1:].expand_as(prob) / self._outside(), prob)
        bits = -torch.log2(prob.clamp_min(1e-9))
        return bits.reshape(self.channels, v.shape[0], *v.shape[2:]).transpose(0, 1)

    def bits_integer(self, q: torch.Tensor) -> torch.Tensor:
        """Bits of each element of integer latents under the frozen tables (what the coder spends)."""
        flat = q.transpose(0, 1).reshape(self.channels, -1).long()
        idx = torch.where(flat.abs() > self.table_radius, torch.full_like(flat, self.escape), flat + self.table_radius)
        freq = torch.gather(self.pmf.long(), 1, idx).double()
        bits = PRECISION - torch.log2(freq)
        if self.table_radius < self.max_symbol:
            bits = bits + (flat.abs() > self.table_radius).double() * math.log2(self._outside())
        return bits.reshape(self.channels, q.shape[0], *q.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def freeze(self) -> None:
        """Copy the learned probabilities into the integer tables used for coding."""
        probs = torch.softmax(self.logits.double(), 1).cpu().numpy()
        self.pmf.copy_(torch.from_numpy(quantize_pmf(probs)))

    @torch.no_grad()
    def fit(self, q: torch.Tensor, smoothing: float = 0.5) -> None:
        """Set the tables (and logits) from a histogram of integer latents ``(B, C, *S)``."""
        flat = q.transpose(0, 1).reshape(self.channels, -1).long().cpu()
        idx = torch.where(flat.abs() > self.table_radius, torch.full_like(flat, self.escape), flat + self.table_radius)
        counts = torch.zeros(self.channels, self.escape + 1, dtype=torch.float64)
        counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
        probs = (counts + smoothing) / (counts + smoothing).sum(1, keepdim=True)
        self.logits.copy_(torch.log(probs).to(self.logits.dtype))
        self.pmf.copy_(torch.from_numpy(quantize_pmf(probs.numpy())))

    def encode(self, q: np.ndarray) -> bytes:
        """ANS-code integer latents ``(B, C, *S)`` with the frozen per-channel tables (coder ``ans-iid``)."""
        return ans_encode(q, self.pmf.cpu().numpy(), self.table_radius, self.max_symbol)

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Inverse of :meth:`encode`; :class:`FormatError` for a malformed payload."""
        return ans_decode(data, shape, self.pmf.cpu().numpy(), self.table_radius, self.max_symbol)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, bits={self.bits}, table=[-{self.table_radius}, {self.table_radius}]+escape"


def _channels_first(q: np.ndarray) -> np.ndarray:
    """``(B, C, *S)`` to ``(C, B * prod(S))``: one row per channel, the order each is coded in."""
    return np.ascontiguousarray(np.moveaxis(q, 1, 0).reshape(q.shape[1], -1))


def _from_channels_first(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    batch, channels, *size = shape
    return np.ascontiguousarray(np.moveaxis(rows.reshape(channels, batch, *size), 0, 1))


def _categorical(freq: np.ndarray) -> "constriction.stream.model.Categorical":
    return constriction.stream.model.Categorical(freq.astype(np.float64), perfect=False)


def ans_encode(q: np.ndarray, pmf: np.ndarray, table_radius: int, max_symbol: int) -> bytes:
    """ANS-code integer latents ``q`` ``(B, C, *S)`` with per-channel frequency tables ``pmf``."""
    rows = _channels_first(q).astype(np.int64)
    escape = 2 * table_radius + 1
    coder = constriction.stream.stack.AnsCoder()
    raw_model = constriction.stream.model.Uniform(2 * max_symbol + 1)
    for c in reversed(range(rows.shape[0])):  # a stack: push the last channel first
        row = rows[c]
        outside = np.abs(row) > table_radius
        if outside.any():
            coder.encode_reverse((row[outside] + max_symbol).astype(np.int32), raw_model)
        idx = np.where(outside, escape, row + table_radius).astype(np.int32)
        coder.encode_reverse(idx, _categorical(pmf[c]))
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decode(data: bytes, shape: tuple[int, ...], pmf: np.ndarray, table_radius: int, max_symbol: int) -> np.ndarray:
    """Inverse of :func:`ans_encode` for latents of ``shape``."""
    if len(data) % 4:
        raise FormatError("the ANS payload is not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    channels, count = shape[1], math.prod(shape) // shape[1]
    escape = 2 * table_radius + 1
    rows = np.empty((channels, count), dtype=np.int32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        raw_model = constriction.stream.model.Uniform(2 * max_symbol + 1)
        for c in range(channels):
            idx = np.asarray(coder.decode(_categorical(pmf[c]), count), dtype=np.int32)
            outside = idx == escape
            row = idx - table_radius
            n_out = int(outside.sum())
            if n_out:
                row[outside] = np.asarray(coder.decode(raw_model, n_out), dtype=np.int32) - max_symbol
            rows[c] = row
    except FormatError:
        raise
    except Exception:  # constriction raises on malformed streams; all we can say is that
        raise FormatError("the ANS payload is corrupted") from None
    if np.abs(rows).max(initial=0) > max_symbol:
        raise FormatError("the ANS payload decodes to out-of-range latents")
    return _from_channels_first(rows, shape)


class LaplaceRate(nn.Module):
    """A zero-mean discretised Laplace per channel: a ladder rung's differentiable rate estimate.

    The noisy latent ``v = y + u`` gets the probability mass ``F(v + 1/2) - F(v - 1/2)`` of a
    Laplace distribution of learned scale ``b``. Unlike :class:`EntropyModel`'s table, which is
    flat within each unit cell, this can be a spike: a channel that a coarse step leaves at zero
    costs about 0 bits here, as it does in the files, where the table charged it about 0.3 bits a
    latent, so the rate term could not tell a dead channel from a weakly used one and training kept
    dozens alive. The shape is the one the file coders use (:mod:`wavecodec.interlaced` codes with
    discretised Laplace tables). Used only for training: files need no table for a rung.
    """

    MIN_SCALE = 0.02

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def bits_noisy(self, v: torch.Tensor) -> torch.Tensor:
        """Differentiable bits of each element of noisy latents ``v`` ``(B, C, *S)``."""
        return laplace_bits(v, self.log_scale)

    def bits_integer(self, q: torch.Tensor) -> torch.Tensor:
        """Bits of each element of integer latents under the same model."""
        return laplace_bits(q.double(), self.log_scale)

    @torch.no_grad()
    def fit(self, q: torch.Tensor) -> None:
        """Set each channel's scale to the maximum-likelihood one of integer latents ``(B, C, *S)``: the mean ``|q|``."""
        mean_abs = q.transpose(0, 1).reshape(self.channels, -1).double().abs().mean(1)
        self.log_scale.copy_(mean_abs.clamp_min(self.MIN_SCALE).log().to(self.log_scale.dtype))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, discretised Laplace"


def laplace_bits(v: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Bits of each element of ``v`` ``(B, C, *S)`` under zero-mean discretised Laplaces of per-channel ``log_scale``
    (:class:`LaplaceRate`): ``-log2(F(v + 1/2) - F(v - 1/2))``."""
    b = log_scale.exp().clamp_min(LaplaceRate.MIN_SCALE).view(1, -1, *[1] * (v.dim() - 2)).to(v.dtype)
    a = v.abs()
    # |v| >= 1/2: both cell ends on one side, mass = exp(-(a - 1/2)/b) (1 - exp(-1/b)) / 2
    far = -(a - 0.5).clamp_min(0) / b + torch.log(-torch.expm1(-1 / b)) - math.log(2)
    # |v| < 1/2: the cell holds the peak, mass = 1 - (exp(-(a + 1/2)/b) + exp((a - 1/2)/b)) / 2
    near_a = a.clamp(max=0.5)
    near = torch.log((1 - 0.5 * (torch.exp(-(near_a + 0.5) / b) + torch.exp((near_a - 0.5) / b))).clamp_min(1e-12))
    return -torch.where(a >= 0.5, far, near) / math.log(2)

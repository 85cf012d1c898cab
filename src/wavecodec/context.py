"""Context model for entropy coding: integer prediction and scale buckets from decoded neighbours.

The i.i.d. per-channel tables of :mod:`wavecodec.entropy` ignore that latents are
correlated in space and across channels. This model codes each integer ``q`` at channel
``c``, position ``(i, j)`` (latents viewed as ``(C, rows, cols)``: rows are all but the last
spatial axis) as a residual ``q - mu`` from a table chosen by a **scale bucket**:

* ``mu`` is a fixed-point linear prediction from the already decoded neighbours left,
  up, up-left, up-right, two-left and two-up;
* the bucket is a fixed-point linear score of the residual magnitudes at those neighbours
  and of the magnitudes of the previous channel around ``(i, j)``, cut at fitted edges.

Everything is integer arithmetic on frozen integer parameters, so encoder and decoder
compute the same contexts on any machine. Decoding runs over wavefronts ``2i + j = d``
(every neighbour used lies on an earlier wavefront), with channel ``c`` trailing channel
``c - 1`` by :data:`SKEW` wavefronts so that the previous channel's 3x3 neighbourhood is
decoded in time; each step decodes all the positions of its wavefronts in one call.
"""

from __future__ import annotations

import constriction
import numpy as np
import torch
from torch import nn

from .entropy import quantize_pmf
from .errors import FormatError

PRED_SHIFT = 12
SCALE_SHIFT = 8
PAD = 2
SKEW = 4
#: (row, col) offsets of the causal neighbours used for prediction and scale
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0))
#: offsets of the previous channel's neighbourhood used for the scale
PREV_BOX = tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1))
NUM_SCALE_FEATURES = len(NEIGHBOURS) + 2


def residual_radius(bits: int) -> int:
    """Largest ``|residual|`` with a table entry; larger ones are escaped."""
    return min(2 ** bits - 2, 255)


class ContextModel(nn.Module):
    """Frozen integer parameters of the context model (all buffers, fitted by :meth:`fit`)."""

    def __init__(self, channels: int, bits: int, buckets: int = 16) -> None:
        super().__init__()
        self.channels = channels
        self.bits = bits
        self.max_symbol = 2 ** (bits - 1) - 1
        self.residual_radius = residual_radius(bits)
        self.num_buckets = buckets
        size = 2 * self.residual_radius + 2
        self.register_buffer("pred_weights", torch.zeros(channels, len(NEIGHBOURS), dtype=torch.int32))
        self.register_buffer("scale_weights", torch.zeros(channels, NUM_SCALE_FEATURES + 1, dtype=torch.int32))
        self.register_buffer("edges", torch.full((channels, buckets - 1), 2**62, dtype=torch.int64))
        uniform = np.ones((channels * buckets, size))
        uniform[:, -1] = 1e-6
        tables = quantize_pmf(uniform).reshape(channels, buckets, size)
        self.register_buffer("tables", torch.from_numpy(tables))
        self.register_buffer("bucket_radius", torch.full((buckets,), self.residual_radius, dtype=torch.int32))

    @property
    def escape(self) -> int:
        """Table index of the escape symbol."""
        return 2 * self.residual_radius + 1

    def numpy_params(self) -> dict:
        """The integer parameters as NumPy arrays, plus each bucket's coding window.

        Bucket ``b`` codes residuals in ``[-r_b, r_b]`` (``r_b = bucket_radius[b]``) with the
        table's own frequencies and everything else as one escape whose frequency is the
        rest of the table's mass; small windows make coding fast where residuals are small.
        """
        tables = self.tables.cpu().numpy().astype(np.int64)
        radius = self.bucket_radius.cpu().numpy().astype(np.int64)
        windows = []
        for b, r_b in enumerate(radius):
            inside = tables[:, b, self.residual_radius - r_b : self.residual_radius + r_b + 1]
            rest = tables[:, b].sum(axis=1, keepdims=True) - inside.sum(axis=1, keepdims=True)
            windows.append(np.concatenate([inside, rest], axis=1).astype(np.float64))
        return {
            "pred": self.pred_weights.cpu().numpy().astype(np.int64),
            "scale": self.scale_weights.cpu().numpy().astype(np.int64),
            "edges": self.edges.cpu().numpy(),
            "bucket_radius": radius,
            "windows": windows,
        }

    @torch.no_grad()
    def fit(self, q: torch.Tensor, smoothing: float = 0.05) -> None:
        """Fit predictor, scale score, bucket edges and tables to integer latents ``(B, C, *S)``."""
        grids = as_grids(q.cpu().numpy().astype(np.int64))  # (B, C, H + 2P, W + 2P)
        params = self.numpy_params()
        rows, cols = grids.shape[2] - 2 * PAD, grids.shape[3] - 2 * PAD
        resid = np.zeros_like(grids)
        size = 2 * self.residual_radius + 2
        tables = np.zeros((self.channels, self.num_buckets, size))
        magnitudes: list[list[np.ndarray]] = [[] for _ in range(self.num_buckets)]
        for c in range(self.channels):
            P = _neighbours(grids[:, c], rows, cols).reshape(-1, len(NEIGHBOURS)).astype(np.float64)
            y = grids[:, c, PAD:-PAD, PAD:-PAD].reshape(-1).astype(np.float64)
            w = np.linalg.lstsq(P, y, rcond=None)[0] if np.abs(P).sum() else np.zeros(P.shape[1])
            params["pred"][c] = np.round(np.clip(w, -8, 8) * 2**PRED_SHIFT).astype(np.int64)
            mu = _predict(grids[:, c], params["pred"][c], rows, cols, self.max_symbol)
            resid[:, c, PAD:-PAD, PAD:-PAD] = grids[:, c, PAD:-PAD, PAD:-PAD] - mu
            F = _scale_features(resid[:, c], grids[:, c - 1] if c else None, rows, cols)
            F = F.reshape(-1, NUM_SCALE_FEATURES).astype(np.float64)
            target = np.abs(resid[:, c, PAD:-PAD, PAD:-PAD]).reshape(-1).astype(np.float64)
            A = np.concatenate([F, np.ones((F.shape[0], 1))], axis=1)
            v = np.linalg.lstsq(A, target, rcond=None)[0]
            params["scale"][c] = np.round(np.clip(v, -1e4, 1e4) * 2**SCALE_SHIFT).astype(np.int64)
            score = _score(resid[:, c], grids[:, c - 1] if c else None, params["scale"][c], rows, cols).reshape(-1)
            cuts = np.unique(np.quantile(score, np.linspace(0, 1, self.num_buckets + 1)[1:-1], method="lower"))
            edges = np.full(self.num_buckets - 1, 2**62, dtype=np.int64)
            edges[: len(cuts)] = cuts
            params["edges"][c] = edges
            bucket = np.searchsorted(edges, score, side="right")
            r = resid[:, c, PAD:-PAD, PAD:-PAD].reshape(-1)
            sym = np.where(np.abs(r) > self.residual_radius, self.escape, r + self.residual_radius)
            np.add.at(tables[c], (bucket, sym), 1.0)
            for b in range(self.num_buckets):
                magnitudes[b].append(np.abs(r[bucket == b]))
        tables += smoothing
        radius = np.full(self.num_buckets, self.residual_radius)
        for b, mags in enumerate(magnitudes):
            mags = np.concatenate(mags)
            if mags.size:  # cover all but ~1e-3 of the training residuals; escape the rest
                radius[b] = min(self.residual_radius, max(2, int(np.ceil(np.quantile(mags, 1 - 1e-3))) + 2))
        self.bucket_radius.copy_(torch.from_numpy(radius.astype(np.int32)))
        self.pred_weights.copy_(torch.from_numpy(params["pred"].astype(np.int32)))
        self.scale_weights.copy_(torch.from_numpy(params["scale"].astype(np.int32)))
        self.edges.copy_(torch.from_numpy(params["edges"]))
        frozen = quantize_pmf(tables.reshape(-1, size)).reshape(tables.shape)
        self.tables.copy_(torch.from_numpy(frozen))

    def encode(self, q: np.ndarray) -> bytes:
        """Code integer latents ``(B, C, *S)`` wavefront by wavefront (coder ``ans`` of format version 1)."""
        return ctx_encode(q, self.numpy_params(), self.residual_radius, self.max_symbol)

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Inverse of :meth:`encode`; :class:`FormatError` for a malformed payload."""
        return ctx_decode(data, shape, self.numpy_params(), self.residual_radius, self.max_symbol)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, bits={self.bits}, buckets={self.num_buckets}, residual=[-{self.residual_radius}, {self.residual_radius}]+escape"


# -- integer context computation, shared by fitting, encoding and decoding ---------------
def as_grids(q: np.ndarray) -> np.ndarray:
    """``(B, C, *S)`` to zero-padded ``(B, C, rows + 2P, cols + 2P)`` int64 grids."""
    batch, channels, *size = q.shape
    rows = int(np.prod(size[:-1])) if len(size) > 1 else 1
    grid = q.reshape(batch, channels, rows, size[-1])
    return np.pad(grid, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))


def _window(g: np.ndarray, di: int, dj: int, rows: int, cols: int) -> np.ndarray:
    return g[..., PAD + di : PAD + di + rows, PAD + dj : PAD + dj + cols]


def _neighbours(g: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return np.stack([_window(g, di, dj, rows, cols) for di, dj in NEIGHBOURS], axis=-1)


def _predict(g: np.ndarray, w: np.ndarray, rows: int, cols: int, max_symbol: int) -> np.ndarray:
    raw = _neighbours(g, rows, cols) @ w
    return np.clip((raw + (1 << (PRED_SHIFT - 1))) >> PRED_SHIFT, -max_symbol, max_symbol)


def _scale_features(r: np.ndarray, prev: np.ndarray | None, rows: int, cols: int) -> np.ndarray:
    feats = [np.abs(_window(r, di, dj, rows, cols)) for di, dj in NEIGHBOURS]
    if prev is None:
        zero = np.zeros_like(feats[0])
        feats += [zero, zero]
    else:
        feats.append(np.abs(_window(prev, 0, 0, rows, cols)))
        feats.append(sum(np.abs(_window(prev, di, dj, rows, cols)) for di, dj in PREV_BOX))
    return np.stack(feats, axis=-1)


def _score(r: np.ndarray, prev: np.ndarray | None, v: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return _scale_features(r, prev, rows, cols) @ v[:-1] + v[-1]


def _gather(g: np.ndarray, c: np.ndarray, i: np.ndarray, j: np.ndarray, offsets) -> np.ndarray:
    """Values of grid ``g`` ``(C, H+2P, W+2P)`` at ``(c, i + di, j + dj)`` for each offset: ``(n, len(offsets))``.

    One flat fancy-indexing gather for all offsets: this runs once per decoding step, so
    its overhead matters more than its arithmetic.
    """
    _, height, width = g.shape
    base = (c * height + i + PAD) * width + j + PAD
    shift = np.array([di * width + dj for di, dj in offsets])
    return g.reshape(-1)[base[:, None] + shift[None, :]]


def predict_at(grid: np.ndarray, c: np.ndarray, i: np.ndarray, j: np.ndarray, pred: np.ndarray, max_symbol: int) -> np.ndarray:
    """Integer prediction ``mu`` at positions ``(c, i, j)`` of one item's grids ``(C, H+2P, W+2P)``."""
    raw = np.einsum("nk,nk->n", _gather(grid, c, i, j, NEIGHBOURS), pred[c])
    return np.clip((raw + (1 << (PRED_SHIFT - 1))) >> PRED_SHIFT, -max_symbol, max_symbol)


def bucket_at(
    grid: np.ndarray, resid: np.ndarray, c: np.ndarray, i: np.ndarray, j: np.ndarray, scale: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Scale bucket at positions ``(c, i, j)``; ``resid`` holds the residuals decoded so far."""
    feats = np.abs(_gather(resid, c, i, j, NEIGHBOURS))
    prev = np.abs(_gather(grid, np.maximum(c - 1, 0), i, j, PREV_BOX)) * (c > 0)[:, None]
    extra = np.stack([prev[:, PREV_BOX.index((0, 0))], prev.sum(axis=1)], axis=-1)
    F = np.concatenate([feats, extra], axis=1)
    v = scale[c]
    score = np.einsum("nk,nk->n", F, v[:, :-1]) + v[:, -1]
    return (score[:, None] >= edges[c]).sum(axis=1)


def schedule(channels: int, rows: int, cols: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decoding steps: for each, the ``(c, i, j)`` positions decoded together."""
    waves = 2 * (rows - 1) + cols
    by_wave = []
    for d in range(waves):
        i = np.arange(max(0, (d - cols + 2) // 2), min(rows - 1, d // 2) + 1)
        j = d - 2 * i
        keep = (j >= 0) & (j < cols)
        by_wave.append((i[keep], j[keep]))
    steps = []
    for t in range(waves + SKEW * (channels - 1)):
        cs, is_, js = [], [], []
        for c in range(channels):
            d = t - SKEW * c
            if 0 <= d < waves:
                i, j = by_wave[d]
                cs.append(np.full(len(i), c))
                is_.append(i)
                js.append(j)
        if cs:
            steps.append((np.concatenate(cs), np.concatenate(is_), np.concatenate(js)))
    return steps


# -- coding (format version 1's ans) ------------------------------------------------------
def _family() -> "constriction.stream.model.Categorical":
    return constriction.stream.model.Categorical(perfect=False)


def _bucket_groups(bucket: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Positions of each bucket present, buckets ascending: the order symbols are decoded in."""
    return [(int(b), np.flatnonzero(bucket == b)) for b in np.unique(bucket)]


def ctx_encode(q: np.ndarray, params: dict, residual_radius: int, max_symbol: int) -> bytes:
    """ANS-code latents ``(B, C, *S)`` with the context model (see :mod:`wavecodec.context`).

    Per decoding step: the symbols of each bucket (ascending), each bucket with its own
    window of the tables, then the raw values of the escaped positions.
    """
    grids = as_grids(q.astype(np.int64))
    channels, rows, cols = q.shape[1], grids.shape[2] - 2 * PAD, grids.shape[3] - 2 * PAD
    steps = schedule(channels, rows, cols)
    raw_model = constriction.stream.model.Uniform(2 * max_symbol + 1)
    family = _family()
    coder = constriction.stream.stack.AnsCoder()
    windows, rb = params["windows"], params["bucket_radius"]
    c, i, j = (np.concatenate(a) for a in zip(*steps))
    ends = np.cumsum([len(s[0]) for s in steps])
    for grid in reversed(grids):  # items are decoded first to last: push the last first
        resid = np.zeros_like(grid)
        mu = predict_at(grid, c, i, j, params["pred"], max_symbol)
        resid[c, PAD + i, PAD + j] = grid[c, PAD + i, PAD + j] - mu
        bucket = bucket_at(grid, resid, c, i, j, params["scale"], params["edges"])
        r = resid[c, PAD + i, PAD + j]
        escaped = np.abs(r) > rb[bucket]
        for end, (sc, _, _) in zip(reversed(ends), reversed(steps)):
            sl = slice(end - len(sc), end)
            if escaped[sl].any():
                out = escaped[sl]
                raw = grid[c[sl][out], PAD + i[sl][out], PAD + j[sl][out]] + max_symbol
                coder.encode_reverse(raw.astype(np.int32), raw_model)
            for b, idx in reversed(_bucket_groups(bucket[sl])):
                sym = np.where(escaped[sl][idx], 2 * rb[b] + 1, r[sl][idx] + rb[b]).astype(np.int32)
                coder.encode_reverse(sym, family, windows[b][c[sl][idx]])
    return coder.get_compressed().astype("<u4").tobytes()


def ctx_decode(data: bytes, shape: tuple[int, ...], params: dict, residual_radius: int, max_symbol: int) -> np.ndarray:
    """Inverse of :func:`ctx_encode` for latents of ``shape``."""
    if len(data) % 4:
        raise FormatError("the ANS payload is not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    grids = as_grids(np.zeros(shape, dtype=np.int64))
    rows, cols = grids.shape[2] - 2 * PAD, grids.shape[3] - 2 * PAD
    steps = schedule(shape[1], rows, cols)
    windows, rb = params["windows"], params["bucket_radius"]
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        raw_model = constriction.stream.model.Uniform(2 * max_symbol + 1)
        family = _family()
        for grid in grids:
            resid = np.zeros_like(grid)
            for c, i, j in steps:
                mu = predict_at(grid, c, i, j, params["pred"], max_symbol)
                bucket = bucket_at(grid, resid, c, i, j, params["scale"], params["edges"])
                value = np.empty(len(c), dtype=np.int64)
                escaped = np.zeros(len(c), dtype=bool)
                for b, idx in _bucket_groups(bucket):
                    sym = np.asarray(coder.decode(family, windows[b][c[idx]]), dtype=np.int64)
                    value[idx] = mu[idx] + sym - rb[b]
                    escaped[idx] = sym == 2 * rb[b] + 1
                if escaped.any():
                    value[escaped] = np.asarray(coder.decode(raw_model, int(escaped.sum())), dtype=np.int64) - max_symbol
                if np.abs(value).max(initial=0) > max_symbol:
                    raise FormatError("the ANS payload decodes to out-of-range latents")
                grid[c, PAD + i, PAD + j] = value
                resid[c, PAD + i, PAD + j] = value - mu
    except FormatError:
        raise
    except Exception:
        raise FormatError("the ANS payload is corrupted") from None
    inner = grids[:, :, PAD : PAD + rows, PAD : PAD + cols]
    return np.ascontiguousarray(inner.reshape(shape))

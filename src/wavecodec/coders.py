"""Entropy coders: integer latents to bytes and back.

* ``ans`` (default): asymmetric numeral systems through ``constriction`` with the
  model's context model (:mod:`wavecodec.context`): each latent is coded as the residual
  from an integer prediction, with a table picked by a scale bucket, both computed from
  already decoded neighbours. Decoding runs wavefront by wavefront, one call per step.
* ``ans-iid``: the same coder with one fixed table per latent channel (no context), fully
  vectorised per channel; the baseline that shows what the context model gains.

For both, values outside a table are an escape symbol plus the raw value (uniform model),
and the tables are the model's frozen integers, so decoding is bit-exact everywhere.
* ``webp``: the reference implementation's format, the latent channels tiled into one 8-bit
  mosaic saved as lossless WebP; only for latents of at most 8 bits.
* ``raw``: the symbols as little-endian 8- or 16-bit words; a baseline.

All decoders treat their input as untrusted: whatever the bytes, they return an array of
the requested shape or raise :class:`FormatError`.
"""

from __future__ import annotations

import io
import math

import constriction
import numpy as np
from PIL import Image

from .errors import FormatError

CODERS = ("ans", "ans-iid", "webp", "raw")
_WEBP_MAX_SIDE = 16383


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


def _mosaic_layout(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Tile grid ``(rows, cols)`` and tile size ``(h, w)`` for latents ``(B, C, *S)``."""
    batch, channels, *size = shape
    h = math.prod(size[:-1]) if len(size) > 1 else 1
    w = size[-1]
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols) * batch
    return rows, cols, h, w


def webp_encode(q: np.ndarray, max_symbol: int) -> bytes:
    """Tile latents into one 8-bit image and save it as lossless WebP (the reference's format)."""
    if max_symbol > 127:
        raise FormatError("the WebP mosaic holds 8-bit latents only; use the ans coder")
    rows, cols, h, w = _mosaic_layout(q.shape)
    if rows * h > _WEBP_MAX_SIDE or cols * w > _WEBP_MAX_SIDE:
        raise FormatError("the latents are too large for a WebP mosaic (16383 pixels a side); use the ans coder")
    batch, channels = q.shape[:2]
    tiles = np.zeros((batch, rows // batch * cols, h, w), dtype=np.uint8)
    tiles[:, :channels] = (q.reshape(batch, channels, h, w) + max_symbol).astype(np.uint8)
    mosaic = tiles.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    buf = io.BytesIO()
    Image.fromarray(mosaic, mode="L").save(buf, format="WEBP", lossless=True, quality=100, method=6)
    return buf.getvalue()


def webp_decode(data: bytes, shape: tuple[int, ...], max_symbol: int) -> np.ndarray:
    """Inverse of :func:`webp_encode` for latents of ``shape``."""
    rows, cols, h, w = _mosaic_layout(shape)
    try:
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as im:
            if im.size != (cols * w, rows * h):
                raise FormatError("the WebP mosaic has the wrong size for the declared latents")
            mosaic = np.asarray(im.convert("L"))
    except FormatError:
        raise
    except Exception:
        raise FormatError("the WebP payload is corrupted") from None
    batch, channels = shape[:2]
    tiles = mosaic.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(batch, -1, h, w)[:, :channels]
    q = tiles.astype(np.int32) - max_symbol
    if np.abs(q).max(initial=0) > max_symbol:
        raise FormatError("the WebP payload decodes to out-of-range latents")
    return np.ascontiguousarray(q.reshape(shape))


def raw_encode(q: np.ndarray, max_symbol: int) -> bytes:
    """The symbols as little-endian 8- or 16-bit words (offset by ``max_symbol``)."""
    dtype = np.uint8 if max_symbol <= 127 else np.dtype("<u2")
    return (q.astype(np.int64) + max_symbol).astype(dtype).tobytes()


def raw_decode(data: bytes, shape: tuple[int, ...], max_symbol: int) -> np.ndarray:
    """Inverse of :func:`raw_encode` for latents of ``shape``."""
    dtype = np.uint8 if max_symbol <= 127 else np.dtype("<u2")
    if len(data) != math.prod(shape) * np.dtype(dtype).itemsize:
        raise FormatError("the raw payload has the wrong length for the declared latents")
    q = np.frombuffer(data, dtype=dtype).astype(np.int32) - max_symbol
    if np.abs(q).max(initial=0) > max_symbol:
        raise FormatError("the raw payload holds out-of-range latents")
    return q.reshape(shape)


def encode_symbols(coder: str, q: np.ndarray, codec) -> bytes:
    """Code integer latents ``q`` ``(B, C, *S)`` with the coder named ``coder`` and ``codec``'s tables."""
    ent, ctx = codec.entropy, codec.context
    if coder == "ans":
        return ctx_encode(q, ctx.numpy_params(), ctx.residual_radius, ctx.max_symbol)
    if coder == "ans-iid":
        return ans_encode(q, ent.pmf.cpu().numpy(), ent.table_radius, ent.max_symbol)
    if coder == "webp":
        return webp_encode(q, ent.max_symbol)
    if coder == "raw":
        return raw_encode(q, ent.max_symbol)
    raise FormatError(f"unknown coder {coder!r}; choose one of {', '.join(CODERS)}")


def decode_symbols(coder: str, data: bytes, shape: tuple[int, ...], codec) -> np.ndarray:
    """Inverse of :func:`encode_symbols` for latents of ``shape``."""
    ent, ctx = codec.entropy, codec.context
    if coder == "ans":
        return ctx_decode(data, shape, ctx.numpy_params(), ctx.residual_radius, ctx.max_symbol)
    if coder == "ans-iid":
        return ans_decode(data, shape, ent.pmf.cpu().numpy(), ent.table_radius, ent.max_symbol)
    if coder == "webp":
        return webp_decode(data, shape, ent.max_symbol)
    if coder == "raw":
        return raw_decode(data, shape, ent.max_symbol)
    raise FormatError(f"unknown coder {coder!r} in the file")


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
    from . import context as ctx

    grids = ctx.as_grids(q.astype(np.int64))
    channels, rows, cols = q.shape[1], grids.shape[2] - 2 * ctx.PAD, grids.shape[3] - 2 * ctx.PAD
    steps = ctx.schedule(channels, rows, cols)
    raw_model = constriction.stream.model.Uniform(2 * max_symbol + 1)
    family = _family()
    coder = constriction.stream.stack.AnsCoder()
    windows, rb = params["windows"], params["bucket_radius"]
    c, i, j = (np.concatenate(a) for a in zip(*steps))
    ends = np.cumsum([len(s[0]) for s in steps])
    for grid in reversed(grids):  # items are decoded first to last: push the last first
        resid = np.zeros_like(grid)
        mu = ctx.predict_at(grid, c, i, j, params["pred"], max_symbol)
        resid[c, ctx.PAD + i, ctx.PAD + j] = grid[c, ctx.PAD + i, ctx.PAD + j] - mu
        bucket = ctx.bucket_at(grid, resid, c, i, j, params["scale"], params["edges"])
        r = resid[c, ctx.PAD + i, ctx.PAD + j]
        escaped = np.abs(r) > rb[bucket]
        for end, (sc, _, _) in zip(reversed(ends), reversed(steps)):
            sl = slice(end - len(sc), end)
            if escaped[sl].any():
                out = escaped[sl]
                raw = grid[c[sl][out], ctx.PAD + i[sl][out], ctx.PAD + j[sl][out]] + max_symbol
                coder.encode_reverse(raw.astype(np.int32), raw_model)
            for b, idx in reversed(_bucket_groups(bucket[sl])):
                sym = np.where(escaped[sl][idx], 2 * rb[b] + 1, r[sl][idx] + rb[b]).astype(np.int32)
                coder.encode_reverse(sym, family, windows[b][c[sl][idx]])
    return coder.get_compressed().astype("<u4").tobytes()


def ctx_decode(data: bytes, shape: tuple[int, ...], params: dict, residual_radius: int, max_symbol: int) -> np.ndarray:
    """Inverse of :func:`ctx_encode` for latents of ``shape``."""
    from . import context as ctx

    if len(data) % 4:
        raise FormatError("the ANS payload is not a whole number of 32-bit words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    grids = ctx.as_grids(np.zeros(shape, dtype=np.int64))
    rows, cols = grids.shape[2] - 2 * ctx.PAD, grids.shape[3] - 2 * ctx.PAD
    steps = ctx.schedule(shape[1], rows, cols)
    windows, rb = params["windows"], params["bucket_radius"]
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        raw_model = constriction.stream.model.Uniform(2 * max_symbol + 1)
        family = _family()
        for grid in grids:
            resid = np.zeros_like(grid)
            for c, i, j in steps:
                mu = ctx.predict_at(grid, c, i, j, params["pred"], max_symbol)
                bucket = ctx.bucket_at(grid, resid, c, i, j, params["scale"], params["edges"])
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
                grid[c, ctx.PAD + i, ctx.PAD + j] = value
                resid[c, ctx.PAD + i, ctx.PAD + j] = value - mu
    except FormatError:
        raise
    except Exception:
        raise FormatError("the ANS payload is corrupted") from None
    inner = grids[:, :, ctx.PAD : ctx.PAD + rows, ctx.PAD : ctx.PAD + cols]
    return np.ascontiguousarray(inner.reshape(shape))

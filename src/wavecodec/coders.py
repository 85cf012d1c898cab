"""The entropy coders by name: integer latents to bytes and back.

* ``ans`` (default): the interlaced context coder (:mod:`wavecodec.interlaced`): ten
  whole-tensor passes, forward-adaptive weights in the payload, a log-linear magnitude model that
  reads the channels decoded before at the same position (quiet latents may get the linear one),
  a frozen table ladder, four interleaved rANS states; channels that are all 0 are marked in a bit
  mask and cost nothing else (format version 5).
* ``ans-all-channels``: format version 4's form of it, which codes every channel (version 4 files
  call it ``ans``); ``rgb-storage``'s files at qualities 0-20 are 78-194% larger
  (``benchmarks/storage_coder.py``).
* ``ans-linear``: format version 3's form of it: the linear magnitude model and int16 weights
  (version 3 files call it ``ans``); its files are 1-5% larger (``benchmarks/data_path.py``).
* ``ans-two-states``: ``ans-linear`` with the two rANS states of format version 2, whose
  files call it ``ans``; its streams decode about a tenth slower.
* ``ans-wavefront``: the context coder of format version 1 (:class:`wavecodec.context.ContextModel`,
  the model's fitted tables, decoded wavefront by wavefront); version 1 files call it ``ans``.
* ``ans-iid``: one frozen table per latent channel (:class:`wavecodec.entropy.EntropyModel`);
  the baseline that shows what context modelling gains.
* ``webp``: the reference implementation's format, the latent channels tiled into one 8-bit
  mosaic saved as lossless WebP; only for latents of at most 8 bits.
* ``raw``: the symbols as little-endian 8- or 16-bit words; a baseline.

The ANS coders use only integer tables, so decoding is bit-exact everywhere. All decoders
treat their input as untrusted: whatever the bytes, they return an array of the requested
shape or raise :class:`FormatError`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image

from . import interlaced
from .coder_names import CODERS as CODER_NAMES
from .errors import FormatError

_WEBP_MAX_SIDE = 16383


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
    tiles[:, :channels] = (q.reshape(batch, channels, h, w).astype(np.int64) + max_symbol).astype(np.uint8)
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


@dataclass(frozen=True)
class Coder:
    """One entropy coder: integer latents ``(B, C, *S)`` to bytes with a codec's tables, and back.

    ``capacity(payload_bytes, codec)`` is the most symbols a payload of that size can hold;
    a file declaring more is refused before anything is decoded, so a decode's work and
    memory are bounded by its payload's size, not by what its header claims.
    """

    encode: Callable[[np.ndarray, Any], bytes]
    decode: Callable[[bytes, tuple[int, ...], Any, np.dtype], np.ndarray]  # the symbols as that type (floats too)
    capacity: Callable[[int, Any], int]


def ans_capacity(largest_frequency: int, payload_bytes: int) -> int:
    """Symbols an ANS payload can hold when no table entry exceeds ``largest_frequency`` of ``2^16``.

    Each symbol then costs at least ``-log2(largest_frequency / 2^16)`` bits; the coder's
    state adds at most 64 bits.
    """
    least_bits = -math.log2(min(largest_frequency, 2**16 - 1) / 2**16)
    return int((8 * payload_bytes + 64) / least_bits) + 1


WEBP_CAPACITY = (1 << 20, 1 << 12)  # lossless WebP squeezes flat mosaics hard: a base allowance plus 4,096 per byte


#: coders by the name files record (format version 5); ``ans-wavefront`` is what version 1 calls ``ans``,
#: ``ans-two-states`` what version 2 calls ``ans``, ``ans-linear`` what version 3 calls ``ans``,
#: ``ans-all-channels`` what version 4 calls ``ans``
CODER_TABLE: dict[str, Coder] = {
    # format 5's: dead channels cost nothing, so a payload bounds the live channels' symbols, and at least one lives
    "ans": Coder(lambda q, codec: interlaced.encode(q, codec.bottleneck.max_symbol, 5),
                 lambda data, shape, codec, dtype: interlaced.decode(data, shape, codec.bottleneck.max_symbol, dtype, 5),
                 lambda n, codec: codec.config.latent_dim * interlaced.max_symbols(n, 5)),
    **{name: Coder(lambda q, codec, v=version: interlaced.encode(q, codec.bottleneck.max_symbol, v),
                   lambda data, shape, codec, dtype, v=version: interlaced.decode(data, shape, codec.bottleneck.max_symbol, dtype, v),
                   lambda n, codec, v=version: interlaced.max_symbols(n, v))
       for name, version in (("ans-all-channels", 4), ("ans-linear", 3), ("ans-two-states", 2))},
    "ans-wavefront": Coder(lambda q, codec: codec.context.encode(q.astype(np.int64)), lambda data, shape, codec, dtype: codec.context.decode(data, shape).astype(dtype, copy=False),
                           lambda n, codec: ans_capacity(int(codec.context.tables.max()), n)),
    "ans-iid": Coder(lambda q, codec: codec.entropy.encode(q.astype(np.int64)), lambda data, shape, codec, dtype: codec.entropy.decode(data, shape).astype(dtype, copy=False),
                     lambda n, codec: ans_capacity(int(codec.entropy.pmf.max()), n)),
    "webp": Coder(lambda q, codec: webp_encode(q, codec.bottleneck.max_symbol),
                  lambda data, shape, codec, dtype: webp_decode(data, shape, codec.bottleneck.max_symbol).astype(dtype, copy=False),
                  lambda n, codec: WEBP_CAPACITY[0] + WEBP_CAPACITY[1] * n),
    "raw": Coder(lambda q, codec: raw_encode(q, codec.bottleneck.max_symbol),
                 lambda data, shape, codec, dtype: raw_decode(data, shape, codec.bottleneck.max_symbol).astype(dtype, copy=False),
                 lambda n, codec: n),
}
CODERS = tuple(CODER_TABLE)
assert CODERS == CODER_NAMES, "wavecodec.coder_names lists the coders for the command line: keep it in step"
#: what a format version 1 file's coder names mean now
LEGACY_NAMES = {1: {"ans": "ans-wavefront"}, 2: {"ans": "ans-two-states"}, 3: {"ans": "ans-linear"}, 4: {"ans": "ans-all-channels"}}


def encode_symbols(coder: str, q: np.ndarray, codec: Any) -> bytes:
    """Code integer latents ``q`` ``(B, C, *S)`` (any integer type) with the coder named ``coder`` and ``codec``'s tables.

    Raises:
        FormatError: an unknown coder, or latents it cannot hold.
    """
    if coder not in CODER_TABLE:
        raise FormatError(f"unknown coder {coder!r}; choose one of {', '.join(CODERS)}")
    return CODER_TABLE[coder].encode(q, codec)


def decode_symbols(coder: str, data: bytes, shape: tuple[int, ...], codec: Any, dtype: np.dtype | type | None = None) -> np.ndarray:
    """Inverse of :func:`encode_symbols` for latents of ``shape``, in the model's integer type (``Bottleneck.numpy_int_dtype``)
    or as ``dtype`` (floats straight from the decoder: no integer copy on the way); :class:`FormatError` for a bad payload.

    A payload too short to hold ``shape``'s symbols is refused first (see :class:`Coder`).
    """
    if coder not in CODER_TABLE:
        raise FormatError(f"unknown coder {coder!r} in the file")
    if math.prod(shape) > CODER_TABLE[coder].capacity(len(data), codec):
        raise FormatError("the latents section is too short to hold the latents the header declares")
    return CODER_TABLE[coder].decode(data, shape, codec, np.dtype(codec.bottleneck.numpy_int_dtype if dtype is None else dtype))




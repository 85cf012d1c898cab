"""Compress signals into ``.wvc`` bytes and back: the codec, the coder and the container together.

``compress`` runs the encoder and bottleneck, codes the integers (``ans``, ``webp`` or
``raw``), and wraps them with a header that records everything decoding needs: the model
(name and weight hash), modality, original shape and dtype, padding, coder, sample rate.
``decompress`` checks that header against the model and against size limits before it
allocates anything, so a corrupt or hostile file gives a :class:`FormatError`, never a
crash or a memory blow-up.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch

from .coders import CODERS, LEGACY_NAMES, decode_symbols, encode_symbols
from .config import MODALITIES
from .container import pack, unpack
from .errors import FormatError, ShapeError
from .rates import DEFAULT_QUALITY
from .streaming import (DEFAULT_CHUNK_FRAMES, ChunkedLatents, Reader, chunk_count, chunks_per_window, decode_chunks,
                        decode_tiles, encode_chunks, encode_tiles)

if TYPE_CHECKING:  # the codec calls into this module, never the other way round at import time
    from .model import Codec

MAX_SAMPLES = 2**30
MAX_SIDE = 2**24
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000  # audio rates in the file (resampling between any two is bounded)
# chunks of at least this many latent frames: a chunk's decoding window (its context on both sides) is then
# a bounded multiple of the chunk, so the work of decoding a chunked file stays linear in its length
MIN_CHUNK_FRAMES, MAX_CHUNK_FRAMES = 16, 1 << 20
AUDIO_DTYPES = ("int16", "int32", "float32", "float64")
MAX_STEP = 64.0
DTYPES: dict[str, torch.dtype] = {
    "uint8": torch.uint8,
    "uint16": torch.uint16,
    "int16": torch.int16,
    "int32": torch.int32,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


class ModelMismatchError(FormatError):
    """The file was made with another model than the one decoding it."""


@dataclass
class Decoded:
    """What :func:`decompress` returns: the signal in its original shape and dtype, and the header."""

    signal: torch.Tensor
    header: dict[str, Any]

    @property
    def sample_rate(self) -> int | None:
        """The sample rate recorded in the file (audio), else ``None``."""
        return self.header.get("sample_rate")


def _split_alpha(x: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fit the input's channels to the model's: gray to RGB by repetition, alpha kept aside."""
    have = x.shape[1]
    if have == channels:
        return x, None
    alpha = None
    if have in (2, 4) and have - 1 in (1, channels):  # LA or RGBA
        x, alpha = x[:, :-1], x[:, -1:]
        have -= 1
    if have == 1 and (channels == 3 or x.dim() == 3):  # gray through RGB, mono through multichannel audio
        x = x.expand(-1, channels, *x.shape[2:])
    if x.shape[1] != channels:
        raise ShapeError(f"the model codes {channels}-channel signals, the input has {have} channel(s)")
    return x, alpha


def _check_chunk_frames(chunk_frames: object) -> None:
    if type(chunk_frames) is not int or not MIN_CHUNK_FRAMES <= chunk_frames <= MAX_CHUNK_FRAMES:
        raise ShapeError(f"chunk_frames must be an integer in {MIN_CHUNK_FRAMES}..{MAX_CHUNK_FRAMES}, got {chunk_frames!r}")


def _check_quant_step(quant_step: object) -> None:
    if not (isinstance(quant_step, (int, float)) and 1.0 <= quant_step <= MAX_STEP):
        raise ShapeError(f"quant_step must be a number in [1, {MAX_STEP}], got {quant_step!r}")


def compress(
    codec: Codec, x: torch.Tensor | np.ndarray, coder: str = "ans", sample_rate: int | None = None,
    quant_step: float = 1.0, chunk_frames: int = DEFAULT_CHUNK_FRAMES, extra: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None, quality: float | None = None,
) -> bytes:
    """Encode ``x`` into the bytes of a ``.wvc`` file.

    Args:
        codec: the model.
        x: ``(B, C, *S)`` or ``(C, *S)`` samples (tensor or array) of a dtype in :data:`DTYPES`.
        coder: an entropy coder of :data:`wavecodec.coders.CODERS`.
        sample_rate: recorded in the header (audio).
        quant_step: >= 1 trades bits for quality in any model: the companded latents are
            rounded to multiples of it (:meth:`Bottleneck.quantize`); 1 is the native quantization.
        chunk_frames: a single 1-D signal longer than this many latent frames is coded in
            chunks (:mod:`wavecodec.streaming`): same latents, bounded memory.
        extra: more header fields to record.
        progress: called as ``progress(done, total)`` while a large image is encoded tile by tile.
        quality: 0-100 (higher is better) for a variable-rate model (:mod:`wavecodec.rates`; default
            :data:`~wavecodec.rates.DEFAULT_QUALITY`); a fixed-rate model refuses it.

    Returns:
        The file's bytes.

    Raises:
        FormatError: unknown coder. ShapeError: a shape, dtype or ``quant_step`` it cannot code.
    """
    if coder not in CODERS:
        raise FormatError(f"unknown coder {coder!r}; choose one of {', '.join(CODERS)}")
    _check_quant_step(quant_step)
    _check_chunk_frames(chunk_frames)
    steps = codec.quantization_step(quant_step, quality)  # refuses a quality the model cannot take
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"expected a tensor or array, got {type(x).__name__}")
    cfg = codec.config
    if x.dim() == cfg.ndim + 1:
        x = x[None]
    if x.dim() != cfg.ndim + 2 or x.numel() == 0:
        raise ShapeError(f"expected a non-empty (B, C, ...) signal with {cfg.ndim} spatial axes, got {tuple(x.shape)}")
    if x.dtype not in _DTYPE_NAMES:
        raise ShapeError(f"unsupported dtype {x.dtype}; use one of {', '.join(DTYPES)}")
    input_channels = x.shape[1]
    if cfg.modality == "audio" and _DTYPE_NAMES[x.dtype] not in AUDIO_DTYPES:
        raise ShapeError(f"audio is coded from {', '.join(AUDIO_DTYPES)} samples, not {_DTYPE_NAMES[x.dtype]}")
    if x.is_floating_point():
        _check_floats(x, cfg.value_range if cfg.normalize == "dtype" else None)
    x, alpha = _split_alpha(x, cfg.channels)
    size = list(x.shape[2:])
    dtype, ranges = x.dtype, None
    if cfg.normalize == "per_channel":
        x, ranges = normalize(x, cfg.value_range)
    if cfg.ndim == 1 and x.shape[0] == 1 and -(-size[0] // cfg.block) > chunk_frames:
        signal = x[0]
        extra = {**(extra or {}), "value_range": ranges} if ranges else extra
        return compress_reader(codec, lambda a, b: signal[:, a:b], size[0], dtype, input_channels, coder=coder,
                               sample_rate=sample_rate, quant_step=quant_step, chunk_frames=chunk_frames, extra=extra,
                               quality=quality)
    with torch.inference_mode():
        if cfg.ndim == 2 and max(x.shape[-2:]) > TILE * cfg.block:  # large images: memory for one tile, not the image
            q = encode_tiles(codec, x, TILE, steps, progress)
        else:
            q = codec.quantize(codec.encode(x.to(codec.device)), steps).cpu()
    payload = encode_symbols(coder, q.numpy(), codec)
    header = _header(codec, x.shape[0], input_channels, size, dtype, list(q.shape[1:]), coder, quant_step, sample_rate, quality)
    header["alpha"] = alpha is not None
    header["value_range"] = ranges
    header.update(extra or {})
    sections = {"latents": payload}
    if alpha is not None:
        sections["alpha"] = zlib.compress(alpha.cpu().contiguous().numpy().tobytes(), 9)
    return pack(header, sections)


def compress_to_bpp(codec: Codec, x: torch.Tensor | np.ndarray, bpp: float, tolerance: float = 0.03,
                    **options: Any) -> tuple[bytes, float]:
    """Compress with a variable-rate model at the quality whose file comes nearest ``bpp`` bits per sample position.

    The size grows with the quality, so a bisection over 0..100 finds it; it stops once the
    file is within ``tolerance`` (relative) of the target, else returns the nearest of at
    most :data:`BPP_SEARCH_STEPS` tries. Bits count the whole file, header included.

    Returns:
        ``(file bytes, the quality used)``.

    Raises:
        ShapeError: a fixed-rate model, or a target outside what the model reaches for this signal.
    """
    if codec.rates is None:
        raise ShapeError(f"model {codec.config.name or 'unnamed'!r} has a single rate; a bit-rate target needs a variable-rate model")
    if isinstance(bpp, bool) or not isinstance(bpp, (int, float)) or not bpp > 0:
        raise ShapeError(f"the bit-rate target must be a positive number, got {bpp!r}")
    def rate(q: float) -> tuple[bytes, float]:
        data = compress(codec, x, quality=q, **options)
        return data, bits_per_sample(len(data), read_header(data))

    low, high = rate(0.0), rate(100.0)
    if not low[1] * (1 - tolerance) <= bpp <= high[1] * (1 + tolerance):
        raise ShapeError(f"{bpp:g} bpp is outside what model {codec.config.name!r} reaches for this input "
                         f"({low[1]:.3g}-{high[1]:.3g} bpp)")
    best = min(((low, 0.0), (high, 100.0)), key=lambda t: abs(t[0][1] - bpp))
    lo, hi = 0.0, 100.0
    for _ in range(BPP_SEARCH_STEPS):
        if abs(best[0][1] - bpp) <= tolerance * bpp:
            break
        mid = (lo + hi) / 2
        tried = rate(mid)
        if abs(tried[1] - bpp) < abs(best[0][1] - bpp):
            best = (tried, mid)
        lo, hi = (mid, hi) if tried[1] < bpp else (lo, mid)
    return best[0][0], best[1]


BPP_SEARCH_STEPS = 14  # bisection steps over quality 0..100: a resolution of 0.006


FLOAT_TOLERANCE = 1e-3  # share of the value range a float may stray past it (rounding in the caller's pipeline)


def _check_floats(x: torch.Tensor, value_range: tuple[float, float] | None) -> None:
    """Refuse NaN and infinite samples, and (for models with a fixed range) samples outside it.

    The model would clip them silently (one NaN spoils a whole decode), so the caller is told
    instead: rescale the data, or use a model with per-channel normalisation.
    """
    if not bool(torch.isfinite(x).all()):
        raise ShapeError("the input holds NaN or infinite values")
    if value_range is not None:
        lo, hi = value_range
        slack = FLOAT_TOLERANCE * (hi - lo)
        low, high = float(x.min()), float(x.max())
        if low < lo - slack or high > hi + slack:
            raise ShapeError(
                f"the input's values run from {low:.4g} to {high:.4g}, outside the model's range [{lo:g}, {hi:g}]; "
                "rescale them, or use a model that normalises each channel"
            )


def normalize(x: torch.Tensor, value_range: tuple[float, float]) -> tuple[torch.Tensor, list[list[float]]]:
    """Map each channel's min..max (over batch and space) onto ``value_range``, as float32; returns the ranges."""
    wide = (x.to(torch.int32) if x.dtype == torch.uint16 else x).double()  # torch has no uint16 arithmetic
    flat = wide.transpose(0, 1).reshape(x.shape[1], -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ShapeError("the input holds NaN or infinite values")
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    a, b = value_range
    u = (wide - lo.view(shape)) / span.view(shape) * (b - a) + a
    return u.float(), [[float(l), float(h)] for l, h in zip(lo, hi)]


def denormalize(x: torch.Tensor, ranges: list[list[float]], value_range: tuple[float, float], dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`normalize`, rounded and clamped when ``dtype`` is an integer type."""
    lo = torch.tensor([r[0] for r in ranges], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in ranges], dtype=torch.float64)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    a, b = value_range
    y = (x.double() - a) / (b - a) * (hi - lo).view(shape) + lo.view(shape)
    if dtype.is_floating_point:
        return y.to(dtype)
    info = torch.iinfo(dtype)
    return y.round().clamp(max(info.min, lo.min().item()), min(info.max, hi.max().item())).to(dtype)


def _header(codec: Codec, batch: int, input_channels: int, size: list[int], dtype: torch.dtype, latent_shape: list[int],
            coder: str, quant_step: float, sample_rate: int | None, quality: float | None = None) -> dict[str, Any]:
    cfg = codec.config
    rate = {"quality": DEFAULT_QUALITY if quality is None else float(quality)} if codec.rates is not None else {}
    return {
        "model": cfg.name,
        "model_hash": codec.fingerprint(),
        "modality": cfg.modality,
        "batch": batch,
        "channels": cfg.channels,
        "input_channels": input_channels,
        "shape": size,
        "dtype": _DTYPE_NAMES[dtype],
        "latent_bits": cfg.latent_bits,
        "latent_shape": latent_shape,
        "padding": [-s % cfg.block for s in size],
        "coder": coder,
        "step": float(quant_step),  # the quantization step (the field's name is part of the format)
        "sample_rate": sample_rate,
        "alpha": False,
        "chunk_frames": None,
        "chunk_bytes": None,
        "value_range": None,
        **rate,  # variable-rate models only: the quality the steps were taken at
    }


def compress_reader(codec: Codec, read: Reader, length: int, dtype: torch.dtype, input_channels: int, coder: str = "ans",
                    sample_rate: int | None = None, quant_step: float = 1.0, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                    progress: Callable[[int], None] | None = None, extra: dict[str, Any] | None = None,
                    quality: float | None = None) -> bytes:
    """Compress one long 1-D signal read window by window, in chunks.

    Memory stays bounded by the chunk size whatever ``length`` is (only the coded bytes grow).

    Args:
        read: ``read(start, stop)`` gives ``(C, stop - start)`` samples.
        length: samples in all. dtype: their type, recorded for decoding.
        input_channels: channels of the source (1 for mono through a stereo model).
        progress: called with the samples done after each chunk.
        Others as in :func:`compress`.

    Returns:
        The file's bytes.
    """
    cfg = codec.config
    if coder not in CODERS:
        raise FormatError(f"unknown coder {coder!r}; choose one of {', '.join(CODERS)}")
    _check_quant_step(quant_step)
    _check_chunk_frames(chunk_frames)
    if cfg.ndim != 1:
        raise ShapeError("chunked coding is for 1-D signals")
    if length < 1:
        raise ShapeError("the signal is empty")
    if dtype not in _DTYPE_NAMES:
        raise ShapeError(f"unsupported dtype {dtype}")
    steps = codec.quantization_step(quant_step, quality)
    payloads = []
    for q in encode_chunks(codec, read, length, chunk_frames, steps):
        payloads.append(encode_symbols(coder, q.cpu().numpy(), codec))
        if progress is not None:
            progress(q.shape[-1] * cfg.block)
    frames = -(-length // cfg.block)
    header = _header(codec, 1, input_channels, [length], dtype, [cfg.latent_dim, frames], coder, quant_step, sample_rate, quality)
    header["chunk_frames"] = chunk_frames
    header["chunk_bytes"] = [len(p) for p in payloads]
    header.update(extra or {})
    return pack(header, {"latents": b"".join(payloads)})


def _int(header: dict[str, Any], key: str, low: int, high: int) -> int:
    value = header.get(key)
    if type(value) is not int or not low <= value <= high:
        raise FormatError(f"the header field {key!r} is missing or out of range")
    return value


def validate_header(header: dict[str, Any], max_samples: int = MAX_SAMPLES) -> dict[str, Any]:
    """Check a header's fields and sizes without a model; returns it unchanged."""
    for key in ("model", "model_hash", "modality", "dtype", "coder"):
        if not isinstance(header.get(key), str):
            raise FormatError(f"the header field {key!r} is missing or not a string")
    if header["modality"] not in MODALITIES:
        raise FormatError(f"the header names an unknown modality {header['modality']!r}")
    if header["dtype"] not in DTYPES:
        raise FormatError(f"the header names an unsupported dtype {header['dtype']!r}")
    if header["coder"] not in CODERS:
        raise FormatError(f"the header names an unknown coder {header['coder']!r}")
    batch = _int(header, "batch", 1, max_samples)
    _int(header, "channels", 1, 4096)
    channels = _int(header, "input_channels", 1, 4096)
    _int(header, "latent_bits", 1, 16)
    step = header.get("step")
    if type(step) not in (int, float) or not 1.0 <= step <= MAX_STEP:
        raise FormatError("the header's quantization step is missing or out of range")
    quality = header.get("quality")
    if quality is not None and (type(quality) not in (int, float) or not 0 <= quality <= 100):
        raise FormatError("the header's quality is out of range")
    shape = header.get("shape")
    side = max_samples if isinstance(shape, list) and len(shape) == 1 else MAX_SIDE
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(type(s) is int and 1 <= s <= side for s in shape):
        raise FormatError("the header's shape is missing or out of range")
    if batch * channels * math.prod(shape) > max_samples:
        raise FormatError(
            f"the file declares {batch * channels * math.prod(shape):,} samples, above the limit of {max_samples:,}"
        )
    latent = header.get("latent_shape")
    if not isinstance(latent, list) or not all(type(s) is int and s >= 1 for s in latent):
        raise FormatError("the header's latent shape is malformed")
    rate = header.get("sample_rate")
    if rate is not None and (type(rate) is not int or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE):
        raise FormatError("the header's sample rate is out of range")
    if header["modality"] == "audio":
        if header["dtype"] not in AUDIO_DTYPES:
            raise FormatError(f"the header's audio sample type {header['dtype']!r} is not one audio is coded from")
        if channels - int(header["alpha"]) > header["channels"]:
            raise FormatError("the header declares more input channels than the model codes")
    if not isinstance(header.get("alpha"), bool):
        raise FormatError("the header field 'alpha' is missing or not a boolean")
    ranges = header.get("value_range")
    if ranges is not None and (
        not isinstance(ranges, list) or len(ranges) != header["channels"]
        or not all(isinstance(r, list) and len(r) == 2 and all(type(v) in (int, float) and math.isfinite(v) for v in r) and r[0] <= r[1] for r in ranges)
    ):
        raise FormatError("the header's value ranges are malformed")
    affine = header.get("affine")
    if affine is not None and (not isinstance(affine, list) or len(affine) != 4
                               or not all(isinstance(r, list) and len(r) == 4 and all(type(v) in (int, float) for v in r) for r in affine)):
        raise FormatError("the header's affine is malformed")
    source_rate, source_format = header.get("source_rate"), header.get("source_format")
    if source_rate is not None and (type(source_rate) is not int or not MIN_SAMPLE_RATE <= source_rate <= MAX_SAMPLE_RATE):
        raise FormatError("the header's source sample rate is out of range")
    if source_format is not None and (not isinstance(source_format, str) or len(source_format) > 32):
        raise FormatError("the header's source format is malformed")
    chunk = header.get("chunk_frames")
    if chunk is not None:
        sizes = header.get("chunk_bytes")
        if type(chunk) is not int or not MIN_CHUNK_FRAMES <= chunk <= MAX_CHUNK_FRAMES or len(shape) != 1 or batch != 1 or len(latent) != 2:
            raise FormatError("the header's chunking is malformed")
        if not isinstance(sizes, list) or len(sizes) != chunk_count(latent[1], chunk) or not all(type(n) is int and n >= 0 for n in sizes):
            raise FormatError("the header's chunk sizes are malformed")
    return header


def _unpack(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """:func:`unpack`, with the coder names of older format versions given their current names."""
    header, sections = unpack(data)
    coder = header.get("coder")
    if isinstance(coder, str):
        header["coder"] = LEGACY_NAMES.get(header["format_version"], {}).get(coder, coder)
    return header, sections


def read_header(data: bytes, max_samples: int = MAX_SAMPLES) -> dict[str, Any]:
    """The verified header of ``.wvc`` bytes (no model needed); :class:`FormatError` if malformed."""
    header, _ = _unpack(data)
    return validate_header(header, max_samples)


def check_model(header: dict[str, Any], codec: Codec, digest: str | None = None) -> None:
    """Raise :class:`ModelMismatchError` unless ``codec`` (whose fingerprint is ``digest``, if known) made the file."""
    cfg = codec.config
    digest = digest or codec.fingerprint()
    if header["model_hash"] != digest:
        same = header["model"] == cfg.name and cfg.name
        raise ModelMismatchError(
            f"the file was made with model {header['model'] or 'unnamed'!r} ({header['model_hash']}), "
            f"not with {cfg.name or 'unnamed'!r} ({digest})"
            + ("; two different models carry that name: decode with the checkpoint the file was made with" if same else "")
        )
    expected_latent = list(codec.latent_shape(header["shape"]))
    if (
        header["modality"] != cfg.modality
        or header["channels"] != cfg.channels
        or header["latent_bits"] != cfg.latent_bits
        or len(header["shape"]) != cfg.ndim
        or header["latent_shape"] != expected_latent
    ):
        raise FormatError("the header's shapes do not match the model it names")
    if (header.get("quality") is None) != (codec.rates is None):
        raise FormatError("the header's quality does not match the model's kind (variable or fixed rate)")
    colour = header["input_channels"] - int(header["alpha"])
    if colour != cfg.channels and not (colour == 1 and cfg.channels > 1):
        raise FormatError(f"the header declares {header['input_channels']} input channels, which the model cannot have coded")


class LatentSymbols:
    """The integer latents of one verified file, entropy-decoded on demand.

    The one way from file bytes to integer latents: :func:`decompress`,
    :func:`decompress_blocks` and the latent datasets all read through it. Unchunked files
    are decoded whole on first access; chunked 1-D files chunk by chunk (with a small
    cache), so reading a window of frames decodes only the chunks it touches.
    """

    def __init__(self, codec: Codec, header: dict[str, Any], payload: bytes) -> None:
        self.codec, self.header, self.payload = codec, header, payload
        self.shape: tuple[int, ...] = (header["batch"], *header["latent_shape"])
        #: what a symbol is multiplied by when dequantized: the step(s) it was rounded with (a float, or per channel
        #: for a variable-rate model), times a variable-rate model's gains if it has them
        self.reconstruction_step: float | torch.Tensor = codec.reconstruction_step(header["step"], header.get("quality"))
        self.chunk_frames: int | None = header.get("chunk_frames")
        self._whole: np.ndarray | None = None
        self._chunks: ChunkedLatents | None = None
        if self.chunk_frames:
            sizes = header["chunk_bytes"]
            if sum(sizes) != len(payload):
                raise FormatError("the chunk sizes do not add up to the latents section")
            offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64).tolist()
            latent_dim, frames = header["latent_shape"]

            def decode_chunk(k: int) -> np.ndarray:
                n = min(self.chunk_frames, frames - k * self.chunk_frames)
                blob = payload[offsets[k] : offsets[k + 1]]
                return decode_symbols(header["coder"], blob, (1, latent_dim, n), codec)[0]

            self._chunks = ChunkedLatents(decode_chunk, frames, self.chunk_frames,
                                          cache=max(4, chunks_per_window(codec, self.chunk_frames)))

    @property
    def frames(self) -> int:
        """Length of the last latent axis."""
        return self.shape[-1]

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Frames ``[lo, hi)`` of the last axis of item 0, ``(latent_dim, ..., hi - lo)``; chunked files decode only what it touches."""
        if self._chunks is not None:
            return self._chunks(lo, hi)
        return self.all()[0][..., lo:hi]

    def all(self) -> np.ndarray:
        """Every symbol, ``(B, latent_dim, *S)``, in the model's integer type (:attr:`Bottleneck.numpy_int_dtype`: int8 up to 8 bits, else int16)."""
        if self._whole is None:
            if self._chunks is not None:
                self._whole = self._chunks(0, self.frames)[None]
            else:
                self._whole = decode_symbols(self.header["coder"], self.payload, self.shape, self.codec)
        return self._whole

    def latents(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Every latent, dequantized (:meth:`Bottleneck.dequantize`): what the decoder takes.

        A whole file not yet decoded is decoded straight into float32 (no integer array on the way)."""
        if self._whole is None and self._chunks is None and dtype == torch.float32:
            q = torch.from_numpy(decode_symbols(self.header["coder"], self.payload, self.shape, self.codec, np.float32))
        else:
            q = torch.from_numpy(self.all())
        return self.codec.bottleneck.dequantize(q, self.reconstruction_step, dtype)


def open_latents(codec: Codec, data: bytes, max_samples: int = MAX_SAMPLES,
                 fingerprint: str | None = None) -> tuple[dict[str, Any], LatentSymbols, bytes | None]:
    """Verify ``.wvc`` bytes made with ``codec``; nothing is entropy-decoded yet.

    Args:
        codec: the model the file must have been made with.
        data: the file's bytes (untrusted).
        max_samples: refuse files that declare more samples than this.
        fingerprint: ``codec.fingerprint()`` when the caller already knows it (readers of many
            files made with one fixed model skip rehashing the weights).

    Returns:
        ``(header, symbols, alpha)``: the checked header, the latents to decode on demand,
        and the alpha section (``None`` without one).

    Raises:
        FormatError: a malformed, corrupted or oversized file; ``ModelMismatchError`` when
        it was made with another model.
    """
    header, sections = _unpack(data)
    validate_header(header, max_samples)
    check_model(header, codec, fingerprint)
    if set(sections) != ({"latents", "alpha"} if header["alpha"] else {"latents"}):
        raise FormatError("the file's sections do not match its header")
    return header, LatentSymbols(codec, header, sections["latents"]), sections.get("alpha")


def decompress(codec: Codec, data: bytes, max_samples: int = MAX_SAMPLES,
               progress: Callable[[int, int], None] | None = None) -> Decoded:
    """Decode ``.wvc`` bytes made with ``codec``; everything is checked before anything large is allocated.

    Returns:
        A :class:`Decoded`: the signal in its original shape and dtype, and the header.

    Raises:
        FormatError: as :func:`open_latents`.
    """
    header, blocks = decompress_blocks(codec, data, max_samples, progress)
    parts = list(blocks)
    return Decoded(signal=parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1), header=header)


def decompress_blocks(codec: Codec, data: bytes, max_samples: int = MAX_SAMPLES,
                      progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], Iterator[torch.Tensor]]:
    """The verified header and the decoded signal as consecutive blocks along the last axis.

    Unchunked files give one block. For chunked files the blocks are decoded as they are
    taken, so only one chunk's samples exist at a time: write them out as they come.

    Raises:
        FormatError: as :func:`open_latents` (and while iterating, for a corrupted payload).
    """
    header, symbols, alpha = open_latents(codec, data, max_samples)
    if symbols.chunk_frames:
        return header, (_restore(codec, _fold(u, header, codec), header).cpu() for u in _chunked_units(codec, header, symbols))
    return header, iter([_decode_whole(codec, header, symbols, alpha, progress)])


TILE = 256  # latent positions a side of a decoding tile (2,048 pixels at J=3)


def _decode_whole(codec: Codec, header: dict[str, Any], symbols: LatentSymbols, alpha_blob: bytes | None,
                  progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    size = header["shape"]
    with torch.inference_mode():
        latents = symbols.latents(codec.param_dtype).to(codec.device)
        if latents.dim() == 4 and max(latents.shape[-2:]) > TILE:  # large images: memory for one tile, not the image
            signal = torch.empty(header["batch"], header["input_channels"] - int(header["alpha"]), *size,
                                 dtype=DTYPES[header["dtype"]])
            for top, left, u in decode_tiles(codec, latents, TILE, progress):
                bottom, right = min(size[0], top + u.shape[-2]), min(size[1], left + u.shape[-1])
                if bottom > top and right > left:
                    tile = _fold(u[..., : bottom - top, : right - left], header, codec)
                    signal[..., top:bottom, left:right] = _restore(codec, tile, header).cpu()
        else:
            u = _fold(codec.crop(codec._decode_unit(latents), size), header, codec)
            signal = _restore(codec, u, header).cpu()
    if alpha_blob is not None:
        alpha = _inflate_alpha(alpha_blob, header["batch"], size, DTYPES[header["dtype"]])
        signal = torch.cat([signal, alpha], dim=1)
    return signal


def _restore(codec: Codec, u: torch.Tensor, header: dict[str, Any]) -> torch.Tensor:
    """Model-range samples back to the file's dtype (and its recorded per-channel ranges)."""
    dtype = DTYPES[header["dtype"]]
    if header.get("value_range"):
        ranges = header["value_range"][: u.shape[1]]  # one range left after folding copies back
        return denormalize(codec.from_unit(u, torch.float32), ranges, codec.config.value_range, dtype)
    return codec.from_unit(u, dtype)


def _fold(u: torch.Tensor, header: dict[str, Any], codec: Codec) -> torch.Tensor:
    """Gray through an RGB model, or mono through a stereo one: average the copies back into one channel."""
    color = header["input_channels"] - int(header["alpha"])
    if color == 1 and codec.config.channels > 1:
        return u.mean(dim=1, keepdim=True)
    return u


def _chunked_units(codec: Codec, header: dict[str, Any], symbols: LatentSymbols) -> Iterator[torch.Tensor]:
    """Decoded blocks (model unit range) of a chunked file, in order."""
    with torch.inference_mode():
        yield from decode_chunks(codec, symbols.window, symbols.frames, header["shape"][0], symbols.chunk_frames,
                                 symbols.reconstruction_step)


def _inflate_alpha(blob: bytes, batch: int, size: list[int], dtype: torch.dtype) -> torch.Tensor:
    itemsize = torch.empty((), dtype=dtype).element_size()
    expected = batch * math.prod(size) * itemsize
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob, expected + 1)  # never inflate more than the header allows
    except zlib.error:
        raise FormatError("the alpha section is corrupted") from None
    if len(raw) != expected or not inflater.eof:
        raise FormatError("the alpha section has the wrong size")
    arr = np.frombuffer(raw, dtype=torch.empty((), dtype=dtype).numpy().dtype).copy()
    return torch.from_numpy(arr).reshape(batch, 1, *size)


def bits_per_sample(nbytes: int, header: dict[str, Any]) -> float:
    """Bits per pixel (per sample position for audio, per voxel for volumes) from a file's real size."""
    return 8.0 * nbytes / (header["batch"] * math.prod(header["shape"]))

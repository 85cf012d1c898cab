"""Audio files in and out: streaming compression of long files, resampling, mono and stereo.

Reading goes through soundfile (libsndfile: WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF). A WAV,
FLAC or AIFF file at the model's sample rate is read window by window
(:mod:`wavecodec.streaming`), so memory does not grow with its length; MP3 and Ogg are
decoded whole first (their seeking is not sample-exact), and a file at another rate is first
resampled as a whole with SciPy's
polyphase resampler (``resample_poly``, Kaiser window) and resampled back on decode. Mono
through a stereo model is coded as two equal channels and folded back to mono. The header
records the source rate and sample format (for example ``PCM_16``), and decoding writes the
same integer PCM format back; float and compressed sources come back as 32-bit float WAV
(24-bit PCM in FLAC).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .checkpoint import atomic_write
from .compression import compress, compress_reader, decompress_blocks
from .errors import InputError, ShapeError, reading
from .files import audio_dtype, read_audio
from .model import Codec
from .streaming import DEFAULT_CHUNK_FRAMES

SEEKABLE = {"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64"}  # exact seeking; MP3 and Ogg are decoded whole
PCM_DTYPES = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32"}


def _info(path: str | os.PathLike[str]):
    import soundfile as sf

    with reading(path, "not a readable audio file"):
        info = sf.info(str(path))
    if info.frames <= 0:
        raise InputError(f"{path}: the audio is empty")
    return info


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``(C, T)`` float samples from ``rate`` to ``target`` Hz with a polyphase filter."""
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def encode_file(codec: Codec, path: str | os.PathLike[str], coder: str = "ans", step: float = 1.0,
                chunk_frames: int = DEFAULT_CHUNK_FRAMES, progress: Callable[[int], None] | None = None) -> bytes:
    """Compress an audio file into ``.wvc`` bytes, streaming it when it is at the model's rate."""
    import soundfile as sf

    cfg = codec.config
    if cfg.modality != "audio":
        raise InputError(f"model {cfg.name or 'unnamed'!r} codes {cfg.modality}, not audio")
    info = _info(path)
    if info.channels not in (1, cfg.channels):
        raise ShapeError(f"{path}: {info.channels} channels; model {cfg.name!r} codes {cfg.channels} (or mono)")
    rate = cfg.sample_rate or info.samplerate
    dtype = audio_dtype(info.subtype)
    facts = {"source_rate": info.samplerate, "source_format": info.subtype}
    if info.samplerate != rate or info.format not in SEEKABLE:
        x, _ = read_audio(path)
        if info.samplerate != rate:
            x = torch.from_numpy(resample(as_float(x[0]), info.samplerate, rate))[None]
        return compress(codec, x, coder=coder, sample_rate=rate, step=step, chunk_frames=chunk_frames, extra=facts)
    with sf.SoundFile(str(path)) as f:
        def read(start: int, stop: int) -> torch.Tensor:
            f.seek(start)
            block = f.read(stop - start, dtype=dtype, always_2d=True)
            if block.shape[0] != stop - start:
                raise InputError(f"{path}: the audio ends before its declared length (truncated file?)")
            t = torch.from_numpy(np.ascontiguousarray(block.T))
            return t.expand(cfg.channels, -1) if info.channels == 1 else t

        return compress_reader(codec, read, info.frames, getattr(torch, dtype), info.channels, coder=coder,
                               sample_rate=rate, step=step, chunk_frames=chunk_frames, progress=progress, extra=facts)


def as_float(x: torch.Tensor) -> np.ndarray:
    """Samples as float32 in [-1, 1] (PCM integers scaled by 2^(bits-1))."""
    if x.is_floating_point():
        return x.float().numpy()
    return (x.double() / float(2 ** (torch.iinfo(x.dtype).bits - 1))).float().numpy()


def read_float(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A whole audio file as float32 ``(C, T)`` in [-1, 1] and its rate."""
    x, rate = read_audio(path)
    return as_float(x[0]), rate


def decode_array(codec: Codec, data: bytes) -> tuple[np.ndarray, int]:
    """Decode ``.wvc`` audio bytes to float32 ``(C, T)`` at the source's rate (in memory)."""
    header, blocks = decompress_blocks(codec, data)
    x = np.concatenate([as_float(b[0]) for b in blocks], axis=-1)
    rate, target = header["sample_rate"], header.get("source_rate") or header["sample_rate"]
    return (resample(x, rate, target) if target != rate else x), target


def decode_file(codec: Codec, data: bytes, out: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Decode ``.wvc`` audio bytes into a WAV or FLAC file, chunk by chunk, atomically; returns the header."""
    import soundfile as sf

    out = Path(out)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(out.suffix.lower())
    if fmt is None:
        raise InputError(f"{out}: audio is decoded to .wav or .flac")
    header, blocks = decompress_blocks(codec, data)
    if header["modality"] != "audio" or not header.get("sample_rate"):
        raise InputError("the file does not hold audio with a sample rate")
    source = header.get("source_format")
    if source in PCM_DTYPES and not (fmt == "FLAC" and source == "PCM_32"):
        subtype = source
    else:
        subtype = "PCM_24" if fmt == "FLAC" else "FLOAT"
    rate, target = header["sample_rate"], header.get("source_rate") or header["sample_rate"]
    if target != rate:  # resampled on the way in: back to the source rate, as a whole
        whole = np.concatenate([as_float(b[0]) for b in blocks], axis=-1)
        blocks = iter([torch.from_numpy(resample(whole, rate, target))[None]])

    def write(tmp: str) -> None:
        with sf.SoundFile(tmp, "w", samplerate=target, channels=header["input_channels"], format=fmt, subtype=subtype) as f:
            for block in blocks:
                arr = block[0].T.numpy()
                if arr.dtype.kind == "f":
                    arr = np.clip(arr, -1.0, 1.0)
                f.write(arr)
                if progress is not None:
                    progress(arr.shape[0])

    atomic_write(out, write)
    return header

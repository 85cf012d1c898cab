"""Audio files in and out: reading, writing, resampling (through soundfile and SciPy).

soundfile (libsndfile) reads WAV, FLAC, Ogg Vorbis/Opus, MP3 and AIFF. Samples are read as
int16 when the file is 16-bit PCM (kept exactly) and as float32 otherwise. One rule picks
the sample format a decoded file is written in (:func:`output_subtype`): the source's PCM
format where the container holds it, else 16-bit PCM for int16 samples, 32-bit float WAV or
24-bit FLAC for floats. Resampling is SciPy's polyphase filter (the ``audio`` extra).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError, need, reading

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
WRITABLE = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}
SEEKABLE = {"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64"}  # exact seeking; MP3 and Ogg are decoded whole
PCM_DTYPES = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32"}
MAX_RESAMPLE_FACTOR = 2000  # polyphase up/down factors (44.1 <-> 48 kHz is 160/147); bounds the filter's memory


def audio_dtype(subtype: str) -> str:
    """The sample type audio is read in: int16 for 16-bit PCM (kept exactly), float32 otherwise."""
    return "int16" if subtype == "PCM_16" else "float32"


def info(path: str | os.PathLike[str]) -> Any:
    """soundfile's facts about an audio file (rate, channels, frames, format, subtype).

    Raises:
        InputError: unreadable or empty.
    """
    import soundfile as sf

    with reading(path, "not a readable audio file"):
        facts = sf.info(str(path))
    if facts.frames <= 0:
        raise InputError(f"{path}: the audio is empty")
    return facts


def read_audio(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """A whole audio file as ``(1, channels, samples)`` in :func:`audio_dtype`, and its rate.

    Raises:
        InputError: unreadable or empty.
    """
    import soundfile as sf

    with reading(path, "not a readable audio file"):
        dtype = audio_dtype(sf.info(str(path)).subtype)
        data, rate = sf.read(str(path), dtype=dtype, always_2d=True)
    if data.size == 0:
        raise InputError(f"{path}: the audio is empty")
    return torch.from_numpy(np.ascontiguousarray(data.T))[None], int(rate)


def as_float(x: torch.Tensor) -> np.ndarray:
    """Samples as float32 in [-1, 1] (PCM integers scaled by 2^(bits-1))."""
    if x.is_floating_point():
        return x.float().numpy()
    return (x.double() / float(2 ** (torch.iinfo(x.dtype).bits - 1))).float().numpy()


def read_float(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A whole audio file as float32 ``(C, T)`` in [-1, 1] and its rate."""
    x, rate = read_audio(path)
    return as_float(x[0]), rate


def resample(x: np.ndarray, rate: int, target: int, axis: int = -1) -> np.ndarray:
    """Float samples from ``rate`` to ``target`` Hz along ``axis`` with a polyphase filter (Kaiser window).

    Raises:
        InputError: SciPy is missing (install the ``audio`` extra).
    """
    resample_poly = need("scipy.signal", "audio", "resampling audio").resample_poly
    ratio = Fraction(target, rate)
    if max(ratio.numerator, ratio.denominator) > MAX_RESAMPLE_FACTOR:
        raise InputError(f"cannot resample from {rate} Hz to {target} Hz (the ratio {ratio} is too fine); convert the file first")
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=axis).astype(np.float32)


def output_subtype(fmt: str, dtype: np.dtype, source_format: str | None = None) -> str | None:
    """The sample format a decoded file is written in (see the module docstring); ``None`` for Ogg Vorbis."""
    if fmt == "OGG":
        return None
    if source_format in PCM_DTYPES and not (fmt == "FLAC" and source_format == "PCM_32"):
        return source_format
    if np.dtype(dtype) == np.int16:
        return "PCM_16"
    return "PCM_24" if fmt == "FLAC" else "FLOAT"


def format_of(path: str | os.PathLike[str]) -> str:
    """soundfile's container name for an output path (WAV, FLAC or OGG).

    Raises:
        InputError: a suffix audio is not written as.
    """
    fmt = WRITABLE.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: audio is written as {', '.join(WRITABLE)}")
    return fmt


def prepare_block(block: np.ndarray) -> np.ndarray:
    """``(T, C)`` samples ready for soundfile: floats clipped to [-1, 1] (full scale)."""
    return np.clip(block, -1.0, 1.0) if block.dtype.kind == "f" else block


def write_audio(path: str | os.PathLike[str], samples: np.ndarray, rate: int, source_format: str | None = None) -> None:
    """Write ``(C, T)`` samples as an audio file (by suffix), atomically, in :func:`output_subtype`'s format."""
    import io

    import soundfile as sf

    from .atomic import write_bytes

    fmt = format_of(path)
    data = samples.T
    buf = io.BytesIO()
    sf.write(buf, prepare_block(data), rate, format=fmt, subtype=output_subtype(fmt, data.dtype, source_format))
    write_bytes(path, buf.getvalue())

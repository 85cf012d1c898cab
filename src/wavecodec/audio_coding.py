"""Coding audio files: streaming compression of long files, resampling, mono and stereo.

A WAV, FLAC or AIFF file at the model's sample rate is read window by window
(:mod:`wavecodec.streaming`), so memory does not grow with its length; MP3 and Ogg are
decoded whole first (their seeking is not sample-exact), and a file at another rate is first
resampled as a whole and resampled back on decode. Mono through a stereo model is coded as
two equal channels and folded back to mono. The header records the source rate and sample
format (for example ``PCM_16``), and decoding writes by :func:`wavecodec.audio.output_subtype`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .atomic import atomic_write
from .audio import SEEKABLE, as_float, audio_dtype, format_of, info, output_subtype, prepare_block, read_audio, resample
from .compression import compress, compress_reader, decompress_blocks
from .errors import InputError, ShapeError
from .model import Codec
from .streaming import DEFAULT_CHUNK_FRAMES


def encode_file(codec: Codec, path: str | os.PathLike[str], coder: str = "ans", quant_step: float = 1.0,
                chunk_frames: int = DEFAULT_CHUNK_FRAMES, progress: Callable[[int], None] | None = None,
                quality: float | None = None) -> bytes:
    """Compress an audio file into ``.wvc`` bytes, streaming it when it is at the model's rate.

    Args:
        codec: an audio model. path: the audio file. coder, quant_step, chunk_frames, quality: as in
        :func:`wavecodec.compression.compress`. progress: called with the samples done.

    Returns:
        The ``.wvc`` bytes.

    Raises:
        InputError: not an audio model, or an unreadable file. ShapeError: a channel count
        the model cannot code.
    """
    import soundfile as sf

    cfg = codec.config
    if cfg.modality != "audio":
        raise InputError(f"model {cfg.name or 'unnamed'!r} codes {cfg.modality}, not audio")
    facts_in = info(path)
    if facts_in.channels not in (1, cfg.channels):
        raise ShapeError(f"{path}: {facts_in.channels} channels; model {cfg.name!r} codes {cfg.channels} (or mono)")
    rate = cfg.sample_rate or facts_in.samplerate
    dtype = audio_dtype(facts_in.subtype)
    facts = {"source_rate": facts_in.samplerate, "source_format": facts_in.subtype}
    if facts_in.samplerate != rate or facts_in.format not in SEEKABLE:
        x, _ = read_audio(path)
        if facts_in.samplerate != rate:
            x = torch.from_numpy(resample(as_float(x[0]), facts_in.samplerate, rate))[None]
        return compress(codec, x, coder=coder, sample_rate=rate, quant_step=quant_step, chunk_frames=chunk_frames, quality=quality,
                        extra=facts)
    with sf.SoundFile(str(path)) as f:
        def read(start: int, stop: int) -> torch.Tensor:
            f.seek(start)
            block = f.read(stop - start, dtype=dtype, always_2d=True)
            if block.shape[0] != stop - start:
                raise InputError(f"{path}: the audio ends before its declared length (truncated file?)")
            t = torch.from_numpy(np.ascontiguousarray(block.T))
            return t.expand(cfg.channels, -1) if facts_in.channels == 1 else t

        return compress_reader(codec, read, facts_in.frames, getattr(torch, dtype), facts_in.channels, coder=coder,
                               sample_rate=rate, quant_step=quant_step, chunk_frames=chunk_frames, quality=quality, progress=progress,
                               extra=facts)


def decode_array(codec: Codec, data: bytes) -> tuple[np.ndarray, int]:
    """Decode ``.wvc`` audio bytes to float32 ``(C, T)`` at the source's rate (in memory)."""
    header, blocks = decompress_blocks(codec, data)
    x = np.concatenate([as_float(b[0]) for b in blocks], axis=-1)
    rate, target = header["sample_rate"], header.get("source_rate") or header["sample_rate"]
    return (resample(x, rate, target) if target != rate else x), target


def decode_file(codec: Codec, data: bytes, out: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Decode ``.wvc`` audio bytes into an audio file, chunk by chunk, atomically; returns the header.

    Raises:
        FormatError: a bad file. InputError: not audio, or an output type audio is not written as.
    """
    import soundfile as sf

    out = Path(out)
    fmt = format_of(out)
    header, blocks = decompress_blocks(codec, data)
    if header["modality"] != "audio" or not header.get("sample_rate"):
        raise InputError("the file does not hold audio with a sample rate")
    dtype = np.int16 if header["dtype"] == "int16" else np.float32
    subtype = output_subtype(fmt, dtype, header.get("source_format"))
    rate, target = header["sample_rate"], header.get("source_rate") or header["sample_rate"]
    if target != rate:  # resampled on the way in: back to the source rate, as a whole
        whole = np.concatenate([as_float(b[0]) for b in blocks], axis=-1)
        blocks = iter([torch.from_numpy(resample(whole, rate, target))[None]])

    def write(tmp: str) -> None:
        with sf.SoundFile(tmp, "w", samplerate=target, channels=header["input_channels"], format=fmt, subtype=subtype) as f:
            for block in blocks:
                arr = prepare_block(block[0].T.numpy())
                f.write(arr)
                if progress is not None:
                    progress(arr.shape[0])

    atomic_write(out, write)
    return header

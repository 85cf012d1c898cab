"""The two calls most users need: ``wavecodec.compress(x)`` and ``wavecodec.decompress(data)``.

They pick a shipped model the way the command line does (by the input's kind and channel
count, or by the model a file names), accept what people have at hand (a torch tensor
``(C, *S)`` or ``(B, C, *S)``, a NumPy image ``(H, W, C)`` as Pillow and most libraries lay
it out, a Pillow image), and cache each loaded model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from .compression import decompress as decompress_with, read_header
from .images import as_signal
from .model import Codec
from .registry import load, model_for, model_for_header


@lru_cache(maxsize=8)
def _shipped(name: str) -> Codec:
    return load(name)


def _model(model: str | Codec) -> Codec:
    return model if isinstance(model, Codec) else _shipped(str(model))


def compress(x: Any, model: str | Codec | None = None, coder: str = "ans", *, quant_step: float = 1.0,
             sample_rate: int | None = None, quality: float | None = None) -> bytes:
    """Compress ``x`` into ``.wvc`` bytes with ``model`` (default: the shipped model for images of its channel count).

    ``quality`` (0-100, higher is better) sets the rate of a variable-rate model.

    Raises:
        ShapeError: an input the model cannot code. CheckpointError: no shipped model fits.
    """
    codec = _model(model) if model is not None else None
    t = as_signal(x, 2 if codec is None else codec.config.ndim)
    if codec is None:
        channels = t.shape[0] if t.dim() == 3 else t.shape[1]
        codec = _shipped(model_for("image", int(channels)))
    return codec.compress(t, coder=coder, quant_step=quant_step, sample_rate=sample_rate, quality=quality)


def decompress(data: bytes, model: str | Codec | None = None) -> torch.Tensor:
    """Decode ``.wvc`` bytes with the shipped model the file names (or ``model``): ``(B, C, *S)`` in the source's dtype.

    Raises:
        FormatError: a malformed file, or one made with another model. CheckpointError: the
        file names a model that is not shipped and none was given.
    """
    codec = _model(model) if model is not None else _shipped(model_for_header(read_header(data)))
    return decompress_with(codec, data).signal

"""wavecodec: learned wavelet compression and compressed-domain learning.

Stages, one module each: :mod:`wavecodec.wpt` (wavelet packet transform) ->
:mod:`wavecodec.encoder` -> :mod:`wavecodec.bottleneck` -> :mod:`wavecodec.decoder`,
assembled in :mod:`wavecodec.model` from a :class:`CodecConfig`; :mod:`wavecodec.checkpoint`
saves and loads them and :mod:`wavecodec.registry` lists the shipped ones.

The names below are imported on first use (PEP 562), so that importing the package, and
the command line's ``--help``, does not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, ConfigError, FormatError, InputError, ShapeError, WavecodecError

__version__ = "0.2.0"

_LAZY = {
    "Codec": "model",
    "CodecConfig": "config",
    "ModelInfo": "registry",
    "compress": "api",
    "decompress": "api",
    "fingerprint": "checkpoint",
    "load": "registry",
    "models": "registry",
    "save": "checkpoint",
}

if TYPE_CHECKING:
    from .api import compress, decompress
    from .checkpoint import fingerprint, save
    from .config import CodecConfig
    from .model import Codec
    from .registry import ModelInfo, load, models


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wavecodec' has no attribute {name!r}")


__all__ = [
    "Codec",
    "CodecConfig",
    "CheckpointError",
    "ConfigError",
    "FormatError",
    "InputError",
    "ModelInfo",
    "ShapeError",
    "WavecodecError",
    "compress",
    "decompress",
    "fingerprint",
    "load",
    "models",
    "save",
]

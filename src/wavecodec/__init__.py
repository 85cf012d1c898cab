"""wavecodec: learned wavelet compression and compressed-domain learning.

Stages, one module each: :mod:`wavecodec.wpt` (wavelet packet transform) ->
:mod:`wavecodec.encoder` -> :mod:`wavecodec.bottleneck` -> :mod:`wavecodec.decoder`,
assembled in :mod:`wavecodec.model` from a :class:`CodecConfig`; :mod:`wavecodec.checkpoint`
saves and loads them and :mod:`wavecodec.registry` lists the shipped ones.
"""

from .api import compress, decompress
from .checkpoint import fingerprint, save
from .config import CodecConfig
from .errors import CheckpointError, ConfigError, FormatError, InputError, ShapeError, WavecodecError
from .model import Codec
from .registry import ModelInfo, load, models

__version__ = "0.1.0"

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

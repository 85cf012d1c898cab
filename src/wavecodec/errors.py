"""Exceptions raised for user-facing errors.

Every error a user can cause (bad config, wrong shape, unreadable file, wrong model)
is a :class:`WavecodecError` whose message is one sentence, so that the CLI can print it
without a traceback and library users can catch one type.
"""

from __future__ import annotations


class WavecodecError(Exception):
    """Base class of all errors wavecodec raises on bad input."""


class ConfigError(WavecodecError, ValueError):
    """A codec configuration is invalid."""


class ShapeError(WavecodecError, ValueError):
    """A tensor has a shape, dtype or size the operation cannot handle."""


class CheckpointError(WavecodecError):
    """A weights file is missing, corrupt, or not a wavecodec checkpoint."""


class FormatError(WavecodecError):
    """A compressed file is malformed, truncated, corrupted or from another model."""


class InputError(WavecodecError):
    """An input file cannot be read or has an unsupported kind."""

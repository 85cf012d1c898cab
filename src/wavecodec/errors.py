"""Exceptions raised for user-facing errors.

Every error a user can cause (bad config, wrong shape, unreadable file, wrong model)
is a :class:`WavecodecError` whose message is one sentence, so that the CLI can print it
without a traceback and library users can catch one type.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


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


def need(module: str, extra: str, purpose: str):
    """Import an optional dependency, or raise :class:`InputError` naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{purpose} needs {module.split('.')[0]}: pip install 'wavecodec[{extra}]'") from None


@contextmanager
def reading(path: object, problem: str) -> Iterator[None]:
    """Turn any failure of a third-party reader into one :class:`InputError` sentence about ``path``."""
    try:
        yield
    except WavecodecError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception:
        raise InputError(f"{path}: {problem}") from None

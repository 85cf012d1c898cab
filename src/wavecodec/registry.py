"""The registry of shipped models: names, weight files inside the package, and figures.

Weights live in ``wavecodec/weights/`` next to ``index.json``, which lists each model's
name, file, description and the figures measured on the dev evaluation set. Loading a
shipped model therefore needs no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_file
from .errors import CheckpointError
from .model import Codec

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelInfo:
    """One shipped model as listed by :func:`models`."""

    name: str
    file: str
    description: str = ""
    modality: str = "image"
    figures: dict[str, Any] = field(default_factory=dict)
    task: str = ""  # a model made for one dataset (e.g. "fashion-mnist") is never picked by default

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


@lru_cache(maxsize=1)
def _index() -> tuple[ModelInfo, ...]:
    data = json.loads((WEIGHTS_DIR / "index.json").read_text())
    return tuple(ModelInfo(**entry) for entry in data["models"])


def models() -> list[ModelInfo]:
    """The shipped models, in registry order."""
    return list(_index())


def get_info(name: str) -> ModelInfo:
    for info in _index():
        if info.name == name:
            return info
    known = ", ".join(i.name for i in _index()) or "none yet"
    raise CheckpointError(f"no shipped model named {name!r} (shipped: {known})")


def default_model(modality: str, channels: int | None = None) -> str:
    """Name of the first general-purpose shipped model for ``modality`` (and ``channels``, if given)."""
    for info in _index():
        if not info.task and info.modality == modality and (channels is None or info.figures.get("channels", channels) == channels):
            return info.name
    raise CheckpointError(f"no shipped {modality} model yet; pass --model with a checkpoint path")


def load(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Codec:
    """Load a shipped model by name, or any checkpoint by path, in eval mode."""
    text = str(name_or_path)
    if any(info.name == text for info in _index()):
        info = get_info(text)
        codec = load_file(info.path, device)
        return codec
    if Path(text).is_file():
        return load_file(text, device)
    known = ", ".join(i.name for i in _index()) or "none shipped yet"
    raise CheckpointError(f"{text!r} is neither a shipped model ({known}) nor a checkpoint file")

"""The registry of shipped models: names, weight files, figures, and which model codes what.

Weights live in ``wavecodec/weights/`` next to ``index.json``, which lists each model's
name, file, channel count, description and the figures measured on the dev evaluation set.
Loading a shipped model therefore needs no network. This module is the one place that
decides which model an input or a file gets (:func:`model_for`, :func:`model_for_header`)
and the one writer of ``index.json`` (:func:`register`, :func:`retire`).

A shipped model can be retrained under its name. Its former weights then stay in
``weights/retired/`` (:func:`retire`), listed under the entry by their hash, so every file and
dataset made with them still decodes: a file records the hash of the weights that made it, and
:func:`model_for_header` answers ``name@hash`` for a retired version, which :func:`load` opens.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .atomic import write_bytes, write_text
from .checkpoint import load_file
from .errors import CheckpointError
from .model import Codec
from .paths import WEIGHTS_DIR

INDEX_PATH = WEIGHTS_DIR / "index.json"
#: input kinds (as :func:`wavecodec.files.kind_of` names them) and the model modality that codes each
KIND_MODALITY = {"image": "image", "audio": "audio", "volume": "volume"}


@dataclass(frozen=True)
class ModelInfo:
    """One shipped model as listed by :func:`models`."""

    name: str
    file: str
    description: str = ""
    modality: str = "image"
    channels: int = 0  # input channels the model codes
    figures: dict[str, Any] = field(default_factory=dict)
    task: str = ""  # a model made for one dataset (e.g. "fashion-mnist") is never picked by default
    use: str = ""  # what the model is for, one short phrase (`wavecodec models` shows it)
    retired: tuple[tuple[str, str], ...] = ()  # former versions still decoded: (hash, file under weights/)

    @property
    def variable_rate(self) -> bool:
        """Whether the model has a quality knob (``rate_lambdas`` in its config)."""
        return bool(self.figures.get("rate_lambdas"))

    @property
    def path(self) -> Path:
        """The model's weight file inside the package."""
        return WEIGHTS_DIR / self.file


def _entry(data: dict[str, Any]) -> ModelInfo:
    known = {k: v for k, v in data.items() if k in ModelInfo.__dataclass_fields__}
    known.setdefault("channels", int(data.get("figures", {}).get("channels", 0)))
    known["retired"] = tuple((str(r["hash"]), str(r["file"])) for r in data.get("retired", []))
    return ModelInfo(**known)


@lru_cache(maxsize=1)
def _index() -> tuple[ModelInfo, ...]:
    data = json.loads(INDEX_PATH.read_text())
    return tuple(_entry(entry) for entry in data["models"])


def models() -> list[ModelInfo]:
    """The shipped models, in registry order."""
    return list(_index())


def _known() -> str:
    return ", ".join(i.name for i in _index()) or "none"


def get_info(name: str) -> ModelInfo:
    """The registry entry of the shipped model ``name``; :class:`CheckpointError` if there is none."""
    for info in _index():
        if info.name == name:
            return info
    raise CheckpointError(f"no shipped model named {name!r} (shipped: {_known()})")


def is_shipped(name: str) -> bool:
    """Whether ``name`` is the name of a shipped model."""
    return any(info.name == name for info in _index())


def default_model(modality: str, channels: int | None = None, purpose: str = "files") -> str:
    """Name of the shipped model for ``modality`` (and ``channels``, if given) and ``purpose``.

    The one model-selection policy: among general-purpose models (no ``task``) of that
    modality and channel count, coding ``files`` prefers a variable-rate model (it has a
    quality knob), making ``latents`` for compressed-domain learning prefers a fixed-rate one
    (a fixed latent shape and step); otherwise the registry's order decides.

    Raises:
        CheckpointError: no general model codes that modality and channel count.
    """
    if purpose not in ("files", "latents"):
        raise ValueError(f"purpose must be 'files' or 'latents', got {purpose!r}")
    wanted = purpose == "files"
    ranked = sorted(_index(), key=lambda info: info.variable_rate != wanted)  # stable: else registry order
    for info in ranked:
        if not info.task and info.modality == modality and (channels is None or info.channels == channels):
            return info.name
    what = f"{channels}-channel {modality}" if channels is not None else modality
    raise CheckpointError(f"no shipped model codes {what} signals; name a model or checkpoint explicitly")


def model_for(kind: str, channels: int, purpose: str = "files") -> str:
    """The shipped model an input of ``kind`` (``image``, ``audio``, ``volume``, ``array``) with ``channels`` gets
    for ``purpose`` (``files``: coding it; ``latents``: a dataset for compressed-domain learning, see :func:`default_model`).

    Audio of any channel count gets the default audio model (mono is duplicated and folded
    back); images get a model made for their channel count, else gray and gray+alpha
    (1, 2 channels) and RGBA (4) go through the RGB model.

    Raises:
        CheckpointError: no shipped model fits (arrays never have a default).
    """
    if kind == "array":
        raise CheckpointError("arrays have no default model; name a model or checkpoint explicitly")
    if kind not in KIND_MODALITY:
        raise CheckpointError(f"unknown input kind {kind!r}")
    if kind == "audio":
        return default_model("audio", purpose=purpose)
    try:
        return default_model(KIND_MODALITY[kind], channels, purpose)
    except CheckpointError:
        if kind != "image" or channels not in (1, 2, 4):
            raise
    return default_model("image", 3, purpose)


def version_of(name: str, model_hash: object) -> str:
    """``name``, or ``name@model_hash`` when that hash is a retired version of the shipped model ``name``."""
    retired = {h for h, _ in get_info(name).retired}
    return f"{name}@{model_hash}" if isinstance(model_hash, str) and model_hash in retired else name


def model_for_header(header: dict[str, Any]) -> str:
    """The shipped model a ``.wvc`` file names in its header: its name, or ``name@hash`` for a
    retired version of it (:func:`version_of`).

    Only shipped names select weights: a file never makes the decoder open another file.

    Raises:
        CheckpointError: the file names no model, or one that is not shipped.
    """
    name = header.get("model")
    if not isinstance(name, str) or not name:
        raise CheckpointError("the file names no model; give the checkpoint it was made with explicitly")
    if not is_shipped(name):
        raise CheckpointError(f"the file was made with model {name!r}, which is not shipped; give its checkpoint explicitly")
    return version_of(name, header.get("model_hash"))


def model_for_dataset(index: dict[str, Any]) -> str:
    """The model a converted dataset (its ``index.json``) was made with: the checkpoint it names, else the shipped model."""
    ref = str(index.get("model_ref", ""))
    if ref and not is_shipped(ref) and Path(ref).is_file():
        return ref
    name = str(index["model"])
    return version_of(name, index.get("model_hash")) if is_shipped(name) else name


def _load_version(ref: str, device: str | torch.device) -> Codec:
    """The shipped model ``name``, or its version ``name@hash`` (retired, or the current one pinned by its hash)."""
    name, _, digest = ref.partition("@")
    info = get_info(name)
    for h, file in info.retired:
        if digest and h == digest:
            return load_file(WEIGHTS_DIR / file, device)
    codec = load_file(info.path, device)
    if digest and codec.fingerprint() != digest:
        raise CheckpointError(f"model {name!r} has no version {digest}")
    return codec


def load(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Codec:
    """Load a shipped model by name (``name@hash``: a retired version of it), or any checkpoint by path, in eval mode.

    Raises:
        CheckpointError: neither a shipped name nor a readable checkpoint.
    """
    text = str(name_or_path)
    if is_shipped(text.partition("@")[0]) and not Path(text).is_file():
        return _load_version(text, device)
    if Path(text).is_file():
        return load_file(text, device)
    raise CheckpointError(f"{text!r} is neither a shipped model ({_known()}) nor a checkpoint file")


def register(model: str, description: str, figures: dict[str, Any], task: str = "", use: str = "") -> Path:
    """Record a model's figures in ``index.json`` (replacing its old entry); returns the index path.

    Args:
        model: a shipped name or a checkpoint path (its file name is what the index records).
        description: one line for ``wavecodec models`` (empty: keep the registered one).
        figures: measured figures; the config's basics (channels, levels, ...) are added.
        task: set for models made for one dataset, which are never picked by default.
        use: what the model is for, one phrase (empty: keep the registered one).
    """
    codec = load(model)
    cfg = codec.config
    index = json.loads(INDEX_PATH.read_text())
    file = Path(model).name if Path(model).exists() else f"{cfg.name}.safetensors"
    basics = {"channels": cfg.channels, "levels": cfg.levels, "latent_dim": cfg.latent_dim, "latent_bits": cfg.latent_bits,
              "reduction": round(cfg.reduction, 3), "parameters": codec.num_parameters(), "normalize": cfg.normalize,
              **({"rate_lambdas": list(cfg.rate_lambdas)} if cfg.rate_lambdas else {})}
    old = next((m for m in index["models"] if m["name"] == cfg.name), {})
    entry: dict[str, Any] = {"name": cfg.name, "file": file, "description": description or old.get("description", ""),
                             "modality": cfg.modality, "channels": cfg.channels, "figures": {**basics, **figures}}
    if task:
        entry["task"] = task
    if use or old.get("use"):
        entry["use"] = use or old["use"]
    if old.get("retired"):
        entry["retired"] = old["retired"]
    names = [m["name"] for m in index["models"]]
    if cfg.name in names:  # in place: the order decides which model is a modality's default
        index["models"][names.index(cfg.name)] = entry
    else:
        index["models"].append(entry)
    _write_index(index)
    return INDEX_PATH


def retire(name: str) -> Path:
    """Keep the current weights of the shipped model ``name`` as a retired version, before new weights
    take its file: they are copied to ``weights/retired/NAME-HASH.safetensors`` and listed under its
    entry, so files made with them keep decoding. Returns the copy's path.
    """
    info = get_info(name)
    digest = load(name).fingerprint()
    file = f"retired/{name}-{digest}.safetensors"
    (WEIGHTS_DIR / "retired").mkdir(exist_ok=True)
    write_bytes(WEIGHTS_DIR / file, info.path.read_bytes())
    index = json.loads(INDEX_PATH.read_text())
    entry = next(m for m in index["models"] if m["name"] == name)
    entry["retired"] = [r for r in entry.get("retired", []) if r["hash"] != digest] + [{"hash": digest, "file": file}]
    _write_index(index)
    return WEIGHTS_DIR / file


def _write_index(index: dict[str, Any]) -> None:
    """Write ``index.json`` atomically and forget the cached registry."""
    write_text(INDEX_PATH, json.dumps(index, indent=2) + "\n")
    _index.cache_clear()

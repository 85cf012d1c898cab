"""Saving and loading codecs as safetensors files, with the config in the metadata.

No pickle: a checkpoint is tensors plus a JSON config, so loading an untrusted file cannot
run code. The file is written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import atomic_write
from .config import CodecConfig
from .errors import CheckpointError, ConfigError
from .model import Codec

FORMAT = "wavecodec"
FORMAT_VERSION = 1


def fingerprint(codec: Codec) -> str:
    """The codec's weight fingerprint (:meth:`Codec.fingerprint`), as recorded in files and checkpoints."""
    return codec.fingerprint()


def save(codec: Codec, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> None:
    """Write ``codec``'s weights and config to a safetensors file at ``path``."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in codec.state_dict().items()}
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": codec.config.to_json(),
        "fingerprint": fingerprint(codec),
    }
    meta.update(metadata or {})
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a wavecodec checkpoint, checked for format and version."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception:  # safetensors raises several types for malformed files
        raise CheckpointError(f"{path} is not a readable safetensors file") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a wavecodec checkpoint")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint format version {meta.get('format_version')}, this wavecodec reads {FORMAT_VERSION}"
        )
    return meta


def load_file(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Codec:
    """Rebuild a codec from a checkpoint written by :func:`save`."""
    meta = read_metadata(path)
    try:
        config = CodecConfig.from_json(meta["config"])
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path} has an invalid config: {exc}") from None
    codec = Codec(config)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
        codec.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} does not match its config ({first})") from None
    codec.to(device).eval()
    expected = meta.get("fingerprint")
    if not expected:  # save() always records it: without one, changed weights could not be told apart
        raise CheckpointError(f"{path} records no weight fingerprint; it was not written by wavecodec.save")
    if expected != fingerprint(codec):
        raise CheckpointError(f"{path} is corrupted: its weights do not match the recorded fingerprint")
    return codec


def config_json(codec: Codec) -> str:
    """The codec's config as indented JSON."""
    return json.dumps(codec.config.to_dict(), indent=2, sort_keys=True)

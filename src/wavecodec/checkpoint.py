"""Saving and loading codecs as safetensors files, with the config in the metadata.

No pickle: a checkpoint is tensors plus a JSON config, so loading an untrusted file cannot
run code. The file is written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import CodecConfig
from .errors import CheckpointError, ConfigError
from .model import Codec

FORMAT = "wavecodec"
FORMAT_VERSION = 1


def fingerprint(codec: Codec) -> str:
    """A short hash of the config and every weight, recorded in compressed files.

    Every ``compress`` and ``decompress`` needs it, so the digest is cached on the codec and
    recomputed only when a tensor was replaced or modified in place (its storage pointer or
    autograd version counter changed) or the config changed.
    """
    state = codec.state_dict()
    key = (codec.config, tuple((name, t.data_ptr(), t._version, tuple(t.shape), t.dtype) for name, t in state.items()))
    cached = getattr(codec, "_fingerprint_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    h = hashlib.sha256(codec.config.to_json().encode())
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:16]
    codec._fingerprint_cache = (key, digest)
    return digest


def atomic_write(path: str | os.PathLike[str], write) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path`` only if it succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    if expected and expected != fingerprint(codec):
        raise CheckpointError(f"{path} is corrupted: its weights do not match the recorded fingerprint")
    return codec


def config_json(codec: Codec) -> str:
    return json.dumps(codec.config.to_dict(), indent=2, sort_keys=True)

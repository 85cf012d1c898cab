"""Training checkpoints: model, optimizer, EMA and RNG state in one safetensors file.

No pickle here either: tensors go into safetensors, scalars into its JSON metadata. The
file is written under a temporary name and renamed, so a crash mid-write leaves the
previous checkpoint intact and ``--resume`` continues exactly where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..atomic import atomic_write
from ..errors import CheckpointError, ConfigError

CHECKPOINT = "checkpoint.safetensors"


def save_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: dict[str, Any],
    ema: dict[str, torch.Tensor] | None,
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write a resumable training checkpoint (weights, optimizer, step, config, EMA and the loop's ``extra``
    state, given back by :func:`load_state`) atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    for k, v in (ema or {}).items():
        tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "step": str(step),
        "config": json.dumps(config),
        "param_groups": json.dumps(opt["param_groups"]),
        "format": "wavecodec-training",
    }
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_state(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> tuple[int, dict[str, torch.Tensor] | None, dict[str, torch.Tensor]]:
    """Restore everything :func:`save_state` wrote; returns ``(step, ema, extra)`` (``extra`` empty if none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception:
        raise CheckpointError(f"{path} is not a readable training checkpoint") from None
    if meta.get("format") != "wavecodec-training":
        raise CheckpointError(f"{path} is not a wavecodec training checkpoint")
    config = getattr(model, "config", None)
    if config is not None and "config" in meta:
        saved = json.loads(meta["config"]).get("codec", {})
        now = config.to_dict()
        changed = sorted(k for k in set(saved) | set(now) if k != "name" and saved.get(k) != now.get(k))
        if changed:
            field = changed[0]
            raise ConfigError(f"codec.{field} is {now.get(field)!r} but the checkpoint in {path.parent} was trained with "
                              f"{saved.get(field)!r}; resume with the same codec settings or start a new run")
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError:
        raise CheckpointError(f"{path} does not match the model being resumed (its weights have other shapes)") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, key = k.split(".", 2)
            state.setdefault(int(pid), {})[key] = v.to(device) if key != "step" else v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    ema = {k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("ema.")} or None
    torch.set_rng_state(tensors["rng.torch"])
    extra = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return int(meta["step"]), ema, extra


def read_run_config(path: Path) -> dict[str, Any]:
    """The training config stored in a checkpoint."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})["config"])
    except Exception:
        raise CheckpointError(f"{path} is not a readable training checkpoint") from None


def load_weights(path: Path, model: torch.nn.Module, use_ema: bool = True) -> None:
    """Load model (or EMA) weights from a training checkpoint into ``model``."""
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        prefix = "ema." if use_ema and any(k.startswith("ema.") for k in keys) else "model."
        state = {k[len(prefix) :]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
        if prefix == "ema.":  # buffers are not averaged: take them from the model
            for k in keys:
                if k.startswith("model.") and k[6:] not in state:
                    state[k[6:]] = f.get_tensor(k)
    model.load_state_dict(state)

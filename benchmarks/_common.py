"""Shared helpers for the benchmark scripts: timing with medians, machine info, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return median/min/max seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``benchmarks/results/<name>.json`` atomically and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def register(model: str, description: str, figures: dict[str, Any], task: str = "") -> Path:
    """Record a model's figures in ``src/wavecodec/weights/index.json`` (replacing its old entry)."""
    import wavecodec
    from wavecodec.registry import WEIGHTS_DIR

    codec = wavecodec.load(model)
    cfg = codec.config
    index_path = WEIGHTS_DIR / "index.json"
    index = json.loads(index_path.read_text())
    file = Path(model).name if Path(model).exists() else f"{cfg.name}.safetensors"
    basics = {"channels": cfg.channels, "levels": cfg.levels, "latent_dim": cfg.latent_dim, "latent_bits": cfg.latent_bits,
              "reduction": round(cfg.reduction, 3), "parameters": codec.num_parameters(), "normalize": cfg.normalize}
    entry = {"name": cfg.name, "file": file, "description": description, "modality": cfg.modality,
             "figures": {**basics, **figures}}
    if task:
        entry["task"] = task
    index["models"] = [m for m in index["models"] if m["name"] != cfg.name] + [entry]
    tmp = index_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(tmp, index_path)
    return index_path

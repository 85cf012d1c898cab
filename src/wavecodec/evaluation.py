"""Evaluate a codec on files: real file sizes, quality and speed, per file and on average.

Rates come from the bytes of the whole ``.wvc`` file (header included); quality from the
decoded file against the original (PSNR over the full sample range of the dtype, MS-SSIM
for images); speed from ``compress`` and ``decompress`` alone (model load and one warm-up
on the first file excluded). The JSON follows CompressAI's results files: a ``results``
mapping of metric name to values, plus the per-file rows.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from .errors import InputError
from .files import read_input
from .metrics import ms_ssim, ms_ssim_scales, psnr
from .model import Codec

_PEAK = {torch.uint8: 255.0, torch.uint16: 65535.0}


def _unit(x: torch.Tensor, codec: Codec) -> torch.Tensor:
    """Samples scaled to [0, 1] for MS-SSIM."""
    return codec.to_unit(x).double() + 0.5


def evaluate_file(codec: Codec, path: Path, coder: str = "ans", step: float = 1.0) -> dict[str, Any]:
    x, facts = read_input(path)
    if facts["kind"] != "image" or codec.config.modality != "image":
        raise InputError(f"{path}: eval handles images with image models for now")
    start = time.perf_counter()
    data = codec.compress(x, coder=coder, step=step)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    y = codec.decompress(data)
    decode_s = time.perf_counter() - start
    pixels = x.shape[2] * x.shape[3]
    peak = _PEAK.get(x.dtype, 1.0)
    row: dict[str, Any] = {
        "file": str(path),
        "width": x.shape[3],
        "height": x.shape[2],
        "channels": x.shape[1],
        "bytes": len(data),
        "bpp": 8.0 * len(data) / pixels,
        "compression_ratio": x.numel() * x.element_size() / len(data),
        "dimension_reduction": codec.config.reduction,
        "psnr": psnr(_unit(x, codec), _unit(y, codec)) if x.is_floating_point() else psnr(x, y, peak),
        "encode_mpix_s": pixels / 1e6 / encode_s,
        "decode_mpix_s": pixels / 1e6 / decode_s,
    }
    if ms_ssim_scales(x.shape[2], x.shape[3]):
        row["ms_ssim"] = float(ms_ssim(_unit(x, codec), _unit(y, codec)).mean())
        row["ms_ssim_scales"] = ms_ssim_scales(x.shape[2], x.shape[3])
    return row


def evaluate(
    codec: Codec, paths: Iterable[Path], coder: str = "ans", name: str = "", progress: bool = False, step: float = 1.0
) -> dict[str, Any]:
    """Evaluate ``codec`` on every path; returns a CompressAI-style results dict."""
    paths = list(paths)
    if not paths:
        raise InputError("there is nothing to evaluate")
    x, _ = read_input(paths[0])  # warm-up, untimed
    codec.decompress(codec.compress(x, coder=coder, step=step))
    from tqdm import tqdm

    rows = [evaluate_file(codec, p, coder, step) for p in tqdm(paths, unit="file", disable=not progress)]
    keys = ["bpp", "psnr", "ms_ssim", "compression_ratio", "encode_mpix_s", "decode_mpix_s"]
    means = {k: statistics.mean(r[k] for r in rows) for k in keys if all(k in r for r in rows)}
    medians = {k: statistics.median(r[k] for r in rows) for k in ("encode_mpix_s", "decode_mpix_s")}
    return {
        "name": name or codec.config.name,
        "description": f"wavecodec {codec.config.name}: J={codec.config.levels}, {codec.config.latent_dim} latent channels, coder {coder}, step {step:g}",
        "step": step,
        "results": {k: [v] for k, v in means.items()},
        "median": medians,
        "dimension_reduction": codec.config.reduction,
        "files": rows,
    }


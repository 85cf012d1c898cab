"""Evaluate a codec on files: real file sizes, quality and speed, per file and on average.

Rates come from the bytes of the whole ``.wvc`` file (header included); quality from the
decoded file against the original (PSNR over the full sample range of the dtype, MS-SSIM
for images; with the ``metrics`` extra also SSIMULACRA2 for 8-bit images and ViSQOL
MOS-LQO for audio, the perceptual scores the field reports); speed from ``compress`` and
``decompress`` alone (model load and one warm-up on the first file excluded). The JSON
follows CompressAI's results files: a ``results`` mapping of metric name to values, plus
the per-file rows.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .errors import InputError, WavecodecError
from .files import read_input
from .metrics import available, ms_ssim, ms_ssim_scales, psnr, ssimulacra2
from .model import Codec

_PEAK = {torch.uint8: 255.0, torch.uint16: 65535.0}


def _perceptual(wanted: bool | None, module: str) -> bool:
    """Whether to compute a perceptual score: ``None`` when its package is installed, ``True`` always, ``False`` never."""
    return available(module) if wanted is None else wanted


def _unit(x: torch.Tensor, codec: Codec) -> torch.Tensor:
    """Samples scaled to [0, 1] for MS-SSIM."""
    return codec.to_unit(x).double() + 0.5


def evaluate_file(codec: Codec, path: Path, coder: str = "ans", quant_step: float = 1.0,
                  perceptual: bool | None = None) -> dict[str, Any]:
    """Rate (whole-file bpp), PSNR, MS-SSIM, SSIMULACRA2 and encode/decode speed of one image file.

    ``perceptual``: compute SSIMULACRA2 (8-bit grey or RGB only) when its package is installed
    (``None``), always (``True``: :class:`InputError` if missing) or never (``False``).

    Raises:
        InputError: not an image, or not an image model.
    """
    x, facts = read_input(path)
    if facts["kind"] != "image" or codec.config.modality != "image":
        raise InputError(f"{path}: eval handles images with image models for now")
    return evaluate_image(codec, x, str(path), coder, quant_step, perceptual)


def evaluate_image(codec: Codec, x: torch.Tensor, name: str = "", coder: str = "ans", quant_step: float = 1.0,
                   perceptual: bool | None = None) -> dict[str, Any]:
    """Like :func:`evaluate_file` for an image already in memory, ``(1, C, H, W)``; ``name`` labels the row."""
    start = time.perf_counter()
    data = codec.compress(x, coder=coder, quant_step=quant_step)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    y = codec.decompress(data)
    decode_s = time.perf_counter() - start
    pixels = x.shape[2] * x.shape[3]
    peak = _PEAK.get(x.dtype, 1.0)
    row: dict[str, Any] = {
        "file": name,
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
    if x.dtype == torch.uint8 and x.shape[1] in (1, 3) and min(x.shape[2:]) >= 8 and _perceptual(perceptual, "ssimulacra2"):
        row["ssimulacra2"] = ssimulacra2(x, y)
    return row


def evaluate_audio_file(codec: Codec, path: Path, coder: str = "ans", quant_step: float = 1.0,
                        perceptual: bool | None = None) -> dict[str, Any]:
    """Rate from the ``.wvc`` bytes, quality of the decoded audio against the file, speed of encode/decode.

    ``perceptual``: add ViSQOL MOS-LQO (files of 1 s or more) as :func:`evaluate_file` adds SSIMULACRA2.
    """
    from .audio import read_float
    from .audio_coding import decode_array, encode_file
    from .audio_metrics import VISQOL_MIN_SECONDS, all_metrics, visqol

    ref, rate = read_float(path)
    start = time.perf_counter()
    data = encode_file(codec, path, coder=coder, quant_step=quant_step)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    out, _ = decode_array(codec, data)
    decode_s = time.perf_counter() - start
    if ref.shape[0] == 1 and out.shape[0] > 1:
        out = out.mean(axis=0, keepdims=True)
    n = min(ref.shape[1], out.shape[1])  # resampling round trips may differ by a sample
    seconds = ref.shape[1] / rate
    samples = ref.size
    scores = {"visqol": visqol(ref[:, :n], out[:, :n], rate)} if seconds >= VISQOL_MIN_SECONDS and _perceptual(perceptual, "visqol") else {}
    return {
        "file": str(path), "sample_rate": rate, "channels": ref.shape[0], "seconds": seconds, "bytes": len(data),
        "kbps": 8 * len(data) / seconds / 1000, "bits_per_sample": 8 * len(data) / samples,
        "compression_ratio": 2 * samples / len(data),  # against 16-bit PCM
        "dimension_reduction": codec.config.reduction,
        **all_metrics(ref[:, :n], out[:, :n], rate), **scores,
        "encode_msamples_s": samples / 1e6 / encode_s, "decode_msamples_s": samples / 1e6 / decode_s,
        "encode_realtime": seconds / encode_s, "decode_realtime": seconds / decode_s,
    }


AUDIO_KEYS = ["kbps", "bits_per_sample", "compression_ratio", "snr", "psnr", "si_sdr", "stft_distance", "mel_distance", "visqol"]
IMAGE_KEYS = ["bpp", "psnr", "ms_ssim", "ssimulacra2", "compression_ratio"]


def evaluate(
    codec: Codec, paths: Iterable[Path], coder: str = "ans", name: str = "",
    progress: Callable[[int, int], None] | None = None, quant_step: float = 1.0, perceptual: bool | None = None,
) -> dict[str, Any]:
    """Evaluate ``codec`` on every path (images or audio, by the model).

    Args:
        progress: called as ``progress(done, total)`` files.
        perceptual: SSIMULACRA2 / ViSQOL when installed (``None``), always (``True``) or never (``False``).

    Returns:
        A CompressAI-style results dict: ``results`` (metric -> [mean]), ``median`` speeds, per-file ``files``.

    Raises:
        InputError: no paths, or an unreadable one.
    """
    paths = list(paths)
    if not paths:
        raise InputError("there is nothing to evaluate")
    audio = codec.config.modality == "audio"
    one = evaluate_audio_file if audio else evaluate_file
    rows, failed, warm = [], [], False
    for k, p in enumerate(paths):
        try:
            if not warm:  # warm-up on the first readable file, untimed
                one(codec, p, coder, quant_step, perceptual=False)
                warm = True
            rows.append(one(codec, p, coder, quant_step, perceptual=perceptual))
        except WavecodecError as exc:  # an unreadable file is reported, and the others still count
            failed.append({"file": str(p), "error": str(exc)})
        if progress is not None:
            progress(k + 1, len(paths))
    if not rows:
        raise InputError(f"none of the {len(paths)} files could be evaluated: {failed[0]['error']}")
    speed = ("encode_msamples_s", "decode_msamples_s", "encode_realtime", "decode_realtime") if audio else ("encode_mpix_s", "decode_mpix_s")
    keys = (AUDIO_KEYS if audio else IMAGE_KEYS) + list(speed)
    means = {k: statistics.mean(r[k] for r in rows) for k in keys if all(k in r for r in rows)}
    medians = {k: statistics.median(r[k] for r in rows) for k in speed}
    return {
        "name": name or codec.config.name,
        "description": f"wavecodec {codec.config.name}: J={codec.config.levels}, {codec.config.latent_dim} latent channels, coder {coder}, quantization step {quant_step:g}",
        "quant_step": quant_step,
        "results": {k: [v] for k, v in means.items()},
        "median": medians,
        "dimension_reduction": codec.config.reduction,
        "files": rows,
        "failed": failed,
    }


"""Which int8 decoder keeps closest to float32? Activation observers and float additions, on training photos.

For ``rgb-16x``, ``rgb-4x`` and ``rgb-storage`` (at its default quality), each variant of
:func:`wavecodec.quantized.int8_residual` (PyTorch's default histogram observer or min/max, the
residual blocks' additions in int8 or in float, the first convolution in int8 or in float) decodes the latents of 8 crops of training photos
(512x512 from ``plasma-workspace-wallpapers`` and ``mate-backgrounds`` downsampled 3x with
Lanczos; the dev photos are left for the benchmark), calibrated as the decoder is (latents of pink noise). Reports the PSNR
change against the float32 decode (mean and worst), the PSNR of the int8 decode measured against
the float32 one (its own noise floor) and the residual's speed-up on two threads.

Run: ``.venv/bin/python experiments/int8_calibration.py`` (about 5 minutes). Writes
``experiments/results/int8_calibration.json``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import machine, training_crops, write_json
from wavecodec.decoder import cpu_bfloat16
from wavecodec.quantized import int8_residual

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {"histogram, int8 additions": ("histogram", False, False), "histogram, float additions": ("histogram", True, False),
            "min/max, int8 additions": ("minmax", False, False), "min/max, float additions (shipped)": ("minmax", True, False),
            "  + first convolution in float": ("minmax", True, True)}


def pixels(codec: wavecodec.Codec, subbands: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return codec.from_unit(codec.crop(codec.wpt.inverse(subbands), x.shape[2:]), torch.uint8).double()


def psnr_of(y: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(255.0**2 / ((y - x.double()) ** 2).mean().clamp(min=1e-10)))


def main() -> None:
    torch.set_num_threads(2)
    images = list(training_crops(8, size=512, factor=3).split(1))
    report = {"photos": len(images), "machine": machine(), "models": {}}
    for name in ("rgb-16x", "rgb-4x", "rgb-storage"):
        codec = wavecodec.load(name)
        step = codec.quantization_step()
        step = step.view(1, -1, 1, 1) if torch.is_tensor(step) else step
        with torch.inference_mode():
            zs = [codec.bottleneck.expand(codec.dequantize(codec.quantize(codec.encode(x), step), step)) for x in images]
            floats = [pixels(codec, codec.decoder.linear(z) + codec.decoder.residual(z), x) for z, x in zip(zs, images)]
            exact = [psnr_of(y, x) for y, x in zip(floats, images)]
            calibration = codec.calibration_latents()
            rows = {}
            for label, (observer, float_additions, float_first) in VARIANTS.items():
                q = int8_residual(codec.decoder.residual, calibration, cpu_bfloat16(), observer, float_additions, float_first)
                ints = [pixels(codec, codec.decoder.linear(z) + q(z), x) for z, x in zip(zs, images)]
                change = [psnr_of(y, x) - e for y, x, e in zip(ints, images, exact)]
                apart = [psnr_of(y, f) for y, f in zip(ints, floats)]  # how far the int8 decode is from the float32 one
                times = {"float32": [], "int8": []}
                for _ in range(7):
                    for way, module in (("float32", codec.decoder.residual), ("int8", q)):
                        start = time.perf_counter()
                        module(zs[0])
                        times[way].append(time.perf_counter() - start)
                rows[label] = {"mean_db_change": statistics.mean(change), "worst_db_change": min(change),
                               "worst_psnr_against_float32_db": min(apart), "db_change": change,
                               "residual_speedup": statistics.median(times["float32"]) / statistics.median(times["int8"])}
                print(f"{name:12s} {label:38s} mean {rows[label]['mean_db_change']:+.4f} dB  worst {rows[label]['worst_db_change']:+.4f} dB"
                      f"  against float32 >= {rows[label]['worst_psnr_against_float32_db']:.1f} dB"
                      f"  {rows[label]['residual_speedup']:.2f}x", flush=True)
        report["models"][name] = {"float32_psnr_db": exact, "variants": rows}
        print(f"{name:12s} float32 PSNR of the crops: " + ", ".join(f"{e:.1f}" for e in exact), flush=True)
    print("wrote", write_json(RESULTS / "int8_calibration.json", report))


if __name__ == "__main__":
    main()

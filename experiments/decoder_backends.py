"""The `rgb-16x` decoder network on this CPU, two threads: which way of running it is fastest?

Times the decoder (latents of one 768x512 photo, 12 x 64 x 96) round-robin in one process:
float32 as shipped, ``torch.autocast`` bfloat16 on the residual (the former ``--fast``), the
shipped ``--fast`` (a bfloat16 copy of the residual cast once, channels-last), and that copy
frozen with TorchScript (oneDNN fusions) or compiled with ``torch.compile``; the largest
difference from float32 of each, and how long the compile took.

Run: ``.venv/bin/python experiments/decoder_backends.py`` (about a minute; needs a C++ compiler for
``torch.compile``). Writes ``experiments/results/decoder_backends.json``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import machine, write_json

RESULTS = Path(__file__).resolve().parent / "results"
ROUNDS = 12


def main() -> None:
    torch.set_num_threads(2)
    decoder = wavecodec.load("rgb-16x").decoder
    z = torch.randn(1, 12, 64, 96, generator=torch.Generator().manual_seed(0)) * 0.5
    copy = decoder._bfloat16_residual()
    channels_last = z.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        exact = decoder(z)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(copy, channels_last).eval()))
        start = time.perf_counter()
        compiled = torch.compile(copy)
        compiled(channels_last)
        compile_s = time.perf_counter() - start

    def residual_by(module: torch.nn.Module) -> torch.Tensor:
        return decoder.linear(z) + module(z.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()

    def autocast() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            residual = decoder.residual(z)
        return decoder.linear(z) + residual.float()

    ways = {"float32": lambda: decoder(z), "autocast bfloat16": autocast, "bfloat16 copy, channels-last (--fast)": lambda: decoder(z, precision="bfloat16"),
            "  + TorchScript freeze": lambda: residual_by(frozen), "  + torch.compile": lambda: residual_by(compiled)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    error: dict[str, float] = {}
    with torch.inference_mode():
        for name, way in ways.items():
            error[name] = float((way() - exact).abs().max())
        for _ in range(ROUNDS):
            for name, way in ways.items():
                start = time.perf_counter()
                way()
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["float32"])
    report = {"threads": 2, "latents": list(z.shape), "compile_seconds": compile_s, "machine": machine(),
              "ways": {name: {"median_ms": 1e3 * statistics.median(t), "speedup": base / statistics.median(t), "max_abs_difference": error[name]}
                       for name, t in times.items()}}
    path = write_json(RESULTS / "decoder_backends.json", report)
    for name, row in report["ways"].items():
        print(f"{name:40s} {row['median_ms']:6.1f} ms  {row['speedup']:.2f}x  max |diff| {row['max_abs_difference']:.4f}")
    print(f"torch.compile took {compile_s:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()

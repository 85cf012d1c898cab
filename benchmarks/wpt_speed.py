"""Speed of the wavelet packet transform: wavecodec vs pytorch_wavelets recursion vs PyWavelets.

Forward + inverse, J=3, CDF 9/7 (bior4.4), periodization, on a batch of 8 RGB 512x512 images.
The pytorch_wavelets variant is what the reference implementation does: one ``DWTForward``
level applied to all subbands (as channels), repeated J times, and ``DWTInverse`` likewise.
All three run in the same process on the same data; the JSON reports medians and ratios.

Run: ``.venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/wpt_speed.py``
"""

from __future__ import annotations

from pathlib import Path

import argparse
import warnings

import numpy as np
import pywt
import torch

from wavecodec.benchmarking import machine, time_call, write_json
from wavecodec import wpt

RESULTS = Path(__file__).resolve().parent / "results"


def reference_recursion(levels: int, wavelet: str):
    """Forward and inverse as the reference does it, with pytorch_wavelets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorch_wavelets import DWTForward, DWTInverse

    fwd = DWTForward(J=1, wave=wavelet, mode="periodization")
    inv = DWTInverse(wave=wavelet, mode="periodization")

    def forward(x: torch.Tensor) -> torch.Tensor:
        for _ in range(levels):
            low, high = fwd(x)
            b, c, h, w = low.shape
            x = torch.cat([low.unsqueeze(2), high[0]], dim=2).reshape(b, c * 4, h, w)
        return x

    def inverse(X: torch.Tensor) -> torch.Tensor:
        for _ in range(levels):
            b, c, h, w = X.shape
            X = X.reshape(b, c // 4, 4, h, w)
            X = inv((X[:, :, 0], [X[:, :, 1:]]))
        return X

    return forward, inverse


def pywavelets_roundtrip(x: np.ndarray, levels: int, wavelet: str) -> np.ndarray:
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            wp = pywt.WaveletPacket2D(x[b, c], wavelet, mode="periodization", maxlevel=levels)
            leaves = [node.path for node in wp.get_level(levels, "natural")]
            rec = pywt.WaveletPacket2D(None, wavelet, mode="periodization", maxlevel=levels)
            for path in leaves:
                rec[path] = wp[path].data
            out[b, c] = rec.reconstruct(update=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--wavelet", default="bior4.4")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size)
    J, w = args.levels, args.wavelet
    ref_fwd, ref_inv = reference_recursion(J, w)

    with torch.inference_mode():
        ours_X = wpt.analysis(x, J, w)
        ref_X = ref_fwd(x)
        ours_err = (wpt.synthesis(ours_X, J, w) - x).abs().max().item()
        ref_err = (ref_inv(ref_X) - x).abs().max().item()
        results = {
            "wavecodec": time_call(lambda: wpt.synthesis(wpt.analysis(x, J, w), J, w), args.repeats),
            "pytorch_wavelets_recursion": time_call(lambda: ref_inv(ref_fwd(x)), args.repeats),
        }
    xn = x.numpy().astype(np.float64)
    results["pywavelets"] = time_call(lambda: pywavelets_roundtrip(xn, J, w), max(1, args.repeats // 3), warmup=0)

    base = results["wavecodec"]["median_s"]
    megapixels = args.batch * args.size * args.size / 1e6
    for name, r in results.items():
        r["speedup_of_wavecodec"] = r["median_s"] / base
        r["megapixels_per_s"] = megapixels / r["median_s"]
    payload = {
        "benchmark": "wpt forward+inverse",
        "shape": [args.batch, 3, args.size, args.size],
        "levels": J,
        "wavelet": w,
        "max_reconstruction_error": {"wavecodec": ours_err, "pytorch_wavelets_recursion": ref_err},
        "results": results,
        "machine": machine(),
    }
    path = write_json(RESULTS / "wpt_speed.json", payload)
    print(f"{'method':30s} {'median s':>10s} {'MP/s':>8s} {'x slower than wavecodec':>24s}")
    for name, r in results.items():
        print(f"{name:30s} {r['median_s']:10.4f} {r['megapixels_per_s']:8.2f} {r['speedup_of_wavecodec']:24.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

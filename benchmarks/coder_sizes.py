"""File size and speed of the entropy coders on the dev evaluation photos.

For each photo and each coder (ans = context-model ANS, ans-iid = per-channel tables,
webp = the reference's lossless-WebP mosaic, raw = 8-bit latents), the size of the whole
.wvc file and the median time to code and decode the integer latents (the codec's
transform, encoder and decoder are excluded: they are the same for all coders).

The codecs are PCA-fitted linear codecs (wavecodec.fitting) with 12 and 48 channels, fitted
here on random crops of the training photos (Debian wallpapers, 4x Lanczos-downsampled), so
that both latent sizes are compared alike; the coders do not depend on a particular model.

Run: ``cd benchmarks && ../.venv/bin/python coder_sizes.py``
"""

from __future__ import annotations

from pathlib import Path

import argparse
import statistics
import time

import numpy as np
import torch

from wavecodec.benchmarking import dev_photos, machine, time_call, training_crops, write_json
from wavecodec import Codec, CodecConfig
from wavecodec.coders import decode_symbols, encode_symbols
from wavecodec.fitting import fit_entropy, pca_init

CODERS = ["ans", "ans-iid", "webp", "raw"]

RESULTS = Path(__file__).resolve().parent / "results"


def fitted_pca_codec(latent_dim: int, crops: torch.Tensor) -> Codec:
    codec = Codec(CodecConfig(latent_dim=latent_dim, decoder_width=0, decoder_depth=0, name=f"pca-rgb-{latent_dim}"))
    pca_init(codec, crops.split(32))
    fit_entropy(codec, crops.split(32))
    return codec.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.time()
    crops = training_crops(args.crops)
    photos = dev_photos()
    report = {"benchmark": "entropy coders on dev photos", "machine": machine(), "models": {}}
    for latent_dim in (12, 48):
        codec = fitted_pca_codec(latent_dim, crops)
        rows = []
        for name, img in photos.items():
            x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous()
            pixels = x.shape[2] * x.shape[3]
            with torch.inference_mode():
                q = codec.quantize(codec.encode(x)).numpy().astype(np.int64)
            row = {"photo": name, "pixels": pixels}
            for coder in CODERS:
                data = codec.compress(x, coder=coder)
                payload = encode_symbols(coder, q, codec)
                assert np.array_equal(decode_symbols(coder, payload, q.shape, codec), q)
                enc = time_call(lambda: encode_symbols(coder, q, codec), args.repeats, warmup=1)
                dec = time_call(lambda: decode_symbols(coder, payload, q.shape, codec), args.repeats, warmup=1)
                row[coder] = {
                    "file_bytes": len(data),
                    "bpp": 8 * len(data) / pixels,
                    "encode_s": enc["median_s"],
                    "decode_s": dec["median_s"],
                    "encode_mpix_s": pixels / 1e6 / enc["median_s"],
                    "decode_mpix_s": pixels / 1e6 / dec["median_s"],
                }
            row["ans_vs_webp"] = row["ans"]["file_bytes"] / row["webp"]["file_bytes"]
            rows.append(row)
            print(
                f"{latent_dim:3d}ch {name:24s} "
                + " ".join(f"{c} {row[c]['bpp']:.3f}" for c in CODERS)
                + f"  ans/webp {row['ans_vs_webp']:.3f}",
                flush=True,
            )
        summary = {
            coder: {
                "mean_bpp": statistics.mean(r[coder]["bpp"] for r in rows),
                "median_encode_mpix_s": statistics.median(r[coder]["encode_mpix_s"] for r in rows),
                "median_decode_mpix_s": statistics.median(r[coder]["decode_mpix_s"] for r in rows),
            }
            for coder in CODERS
        }
        summary["ans_vs_webp_size"] = {
            "mean": statistics.mean(r["ans_vs_webp"] for r in rows),
            "median": statistics.median(r["ans_vs_webp"] for r in rows),
            "max": max(r["ans_vs_webp"] for r in rows),
        }
        report["models"][codec.config.name] = {"latent_dim": latent_dim, "photos": rows, "summary": summary}
    report["seconds"] = time.time() - start
    path = write_json(RESULTS / "coder_sizes.json", report)
    for name, m in report["models"].items():
        s = m["summary"]
        print(f"\n{name}: ans/webp size mean {s['ans_vs_webp_size']['mean']:.3f} median {s['ans_vs_webp_size']['median']:.3f}")
        for coder in CODERS:
            print(
                f"  {coder:8s} mean bpp {s[coder]['mean_bpp']:.3f}  encode {s[coder]['median_encode_mpix_s']:.1f} MP/s"
                f"  decode {s[coder]['median_decode_mpix_s']:.1f} MP/s"
            )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

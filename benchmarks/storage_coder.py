"""Format 5's live-channel mask against format 4's coder on a variable-rate model's latents, quality by quality.

A variable-rate model leaves more of its latent channels all 0 the lower the quality (the step outgrows them).
Format 4's ``ans`` (now ``ans-all-channels``) coded their weights and symbols anyway; format 5's ``ans`` marks them
in a bit mask and codes the rest as format 4 does. For each quality: the mean number of live channels over the dev
photos, the mean bytes of the whole ``.wvc`` file with each coder, their ratio, and the median time to code and to
decode one photo's symbols with each (the transform and networks, the same for both, excluded).

Run: ``cd benchmarks && ../.venv/bin/python storage_coder.py [--model rgb-storage] [-o results/storage_coder.json]``
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

import wavecodec
from wavecodec.benchmarking import dev_photos, machine, photo_tensor, time_call, write_json
from wavecodec.coders import decode_symbols, encode_symbols
from wavecodec.interlaced import live_channels

RESULTS = Path(__file__).resolve().parent / "results"
CODERS = ("ans", "ans-all-channels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rgb-storage", help="a variable-rate model (name or weights)")
    parser.add_argument("--qualities", default="0,10,20,30,40,50,60,70,80,90,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "storage_coder.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    codec = wavecodec.load(args.model)
    gray = codec.config.channels == 1
    photos = dev_photos(gray)
    rows = []
    for quality in (float(q) for q in args.qualities.split(",")):
        sizes = {c: [] for c in CODERS}
        times = {f"{c} {k}": [] for c in CODERS for k in ("encode", "decode")}
        live = []
        for img in photos.values():
            x = photo_tensor(img)
            q = codec.quantize(codec.encode(x), codec.quantization_step(quality=quality)).numpy()
            live.append(int(live_channels(q).sum()))
            for coder in CODERS:
                sizes[coder].append(len(codec.compress(x, coder=coder, quality=quality)))
                payload = encode_symbols(coder, q, codec)
                assert np.array_equal(decode_symbols(coder, payload, q.shape, codec), q)
                times[f"{coder} encode"].append(time_call(lambda: encode_symbols(coder, q, codec), args.repeats)["median_s"])
                times[f"{coder} decode"].append(time_call(lambda: decode_symbols(coder, payload, q.shape, codec), args.repeats)["median_s"])
        row = {"quality": quality, "live_channels": float(np.mean(live)), "channels": codec.config.latent_dim,
               **{f"{c} bytes": float(np.mean(v)) for c, v in sizes.items()},
               "ratio": float(np.mean(sizes["ans"]) / np.mean(sizes["ans-all-channels"])),
               **{f"{k} s": statistics.median(v) for k, v in times.items()}}
        rows.append(row)
        print(f"quality {quality:5.1f}: live {row['live_channels']:5.1f}/{row['channels']}, "
              f"{row['ans bytes']:9.0f} B against {row['ans-all-channels bytes']:9.0f} B ({100 * (row['ratio'] - 1):+.1f}%), "
              f"decode {row['ans decode s'] * 1e3:.1f} ms against {row['ans-all-channels decode s'] * 1e3:.1f} ms", flush=True)
    path = write_json(args.output, {"benchmark": "format 5's channel mask against format 4", "model": args.model,
                                    "photos": list(photos), "rows": rows, "machine": machine()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

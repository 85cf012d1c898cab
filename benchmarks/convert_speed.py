"""Conversion throughput (items/s, source MB/s) with 1 and 2 workers, and dataset size as latents.

The dev evaluation photos (scikit-image photos written as PNG, opencv-doc photos as their
JPEG files), each copied ``--copies`` times so that there is enough work, converted with the
shipped image model into shards; the same inputs, the same process, one run per worker count.

Run: ``cd benchmarks && ../.venv/bin/python convert_speed.py``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

import wavecodec
from wavecodec.benchmarking import OPENCV_DIR, OPENCV_PHOTOS, SKIMAGE_PHOTOS, dev_photos, machine, write_json
from wavecodec.convert import convert

RESULTS = Path(__file__).resolve().parent / "results"


def make_source(root: Path, copies: int) -> None:
    photos = dev_photos()
    for c in range(copies):
        folder = root / f"copy{c}"
        folder.mkdir(parents=True)
        for name in SKIMAGE_PHOTOS:
            Image.fromarray(photos[name]).save(folder / f"{name}.png")
        for name in OPENCV_PHOTOS:
            if (OPENCV_DIR / name).exists():
                shutil.copy(OPENCV_DIR / name, folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    model = args.model or next(m.name for m in wavecodec.models() if m.modality == "image")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        make_source(src, args.copies)
        for workers in (1, 2):
            dst = Path(tmp) / f"dst{workers}"
            start = time.perf_counter()
            index = convert(str(src), str(dst), model, shard_size=10, workers=workers)
            seconds = time.perf_counter() - start
            runs[f"{workers}_workers"] = {
                "items": index["count"],
                "seconds": seconds,
                "items_per_s": index["count"] / seconds,
                "source_mb_per_s": index["source_bytes"] / 1e6 / seconds,
                "latent_bytes": index["bytes"],
                "shard_bytes": sum(p.stat().st_size for p in dst.glob("shard-*.tar")),
                "source_bytes": index["source_bytes"],
            }
            print(f"{workers} worker(s): {runs[f'{workers}_workers']['items_per_s']:.2f} items/s, "
                  f"{runs[f'{workers}_workers']['source_mb_per_s']:.2f} MB/s of sources", flush=True)
    one, two = runs["1_workers"], runs["2_workers"]
    report = {
        "benchmark": "dataset conversion", "model": model, "copies": args.copies, "runs": runs,
        "speedup_2_vs_1": one["seconds"] / two["seconds"],
        "size_ratio_source_vs_latents": one["source_bytes"] / one["latent_bytes"],
        "size_ratio_source_vs_shards": one["source_bytes"] / one["shard_bytes"],
        "machine": machine(),
    }
    path = write_json(RESULTS / "convert_speed.json", report)
    print(f"2 workers vs 1: {report['speedup_2_vs_1']:.2f}x; sources {one['source_bytes']:,} bytes, "
          f"latents {one['latent_bytes']:,} bytes ({report['size_ratio_source_vs_latents']:.1f}x smaller), "
          f"shards {one['shard_bytes']:,} bytes")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

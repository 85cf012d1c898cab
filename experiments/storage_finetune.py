"""Does longer training move the variable-rate `rgb-storage` model's curve? A fine-tune against the shipped model.

The shipped model trained for 6,000 steps (``recipes/rgb-storage.toml``); the fine-tune continues it
for ``recipes/rgb-storage-long.toml``'s steps (lower learning rate, fresh cosine schedule). Both are
measured on the dev photos (scikit-image's and opencv-doc's, never trained on) at qualities 0-100,
next to Pillow's JPEG and WebP curves computed in the same run, with ``benchmarks/image_rd.py``'s
quality measures and Bjontegaard deltas (PSNR, MS-SSIM, SSIMULACRA2).

Run: ``.venv/bin/python experiments/storage_finetune.py runs/rgb-storage-long.safetensors`` (after training
and exporting the recipe). Writes ``experiments/results/storage_finetune.json`` (``-o`` another file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import dev_photos, machine, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from image_rd import bjontegaard, codec_curve, curve_point, quality  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_QUALITIES = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("finetuned", help="the fine-tuned checkpoint")
    parser.add_argument("--shipped", default="rgb-storage@26cb895584e3651f")  # the first stage, which the later ones are measured against
    parser.add_argument("-o", "--output", default=str(RESULTS / "storage_finetune.json"), help="result file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    photos = dev_photos()
    curves: dict[str, list[dict]] = {}
    for name in ("jpeg", "webp"):
        curves[name] = codec_curve(name, photos)
        print(name, "done", flush=True)
    models = {"shipped": wavecodec.load(args.shipped), "finetuned": wavecodec.load(args.finetuned)}
    for label, codec in models.items():
        curves[label] = []
        for q in MODEL_QUALITIES:
            rows = []
            for img in photos.values():
                x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous()
                data = codec.compress(x, quality=q)
                rec = codec.decompress(data)[0].permute(1, 2, 0).numpy()
                rows.append({"bpp": 8 * len(data) / (img.shape[0] * img.shape[1]), **quality(img, rec)})
            curves[label].append({"quality": q, **curve_point(rows)})
            print(label, q, {k: round(v, 3) for k, v in curves[label][-1].items()}, flush=True)
    report = {
        "shipped": args.shipped, "finetuned": args.finetuned, "curves": curves,
        "bjontegaard": {label: {anchor: bjontegaard(curves[anchor], curves[label]) for anchor in ("jpeg", "webp", "shipped")
                                if anchor != label} for label in models},
        "machine": machine(),
    }
    path = write_json(Path(args.output), report)
    for label, deltas in report["bjontegaard"].items():
        for anchor, bd in deltas.items():
            print(label, "vs", anchor, {k: (round(v, 2) if v is not None else None) for k, v in bd.items()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

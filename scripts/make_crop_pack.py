"""Build a crop pack: training crops of the storage model's photos, small enough to carry to a GPU machine.

The storage recipes read the photo wallpapers from Debian packages and Lanczos-downsample them 4x
on the fly. A GPU machine has neither the packages nor time to spare, so this writes the same
downsampled pixels once, as square crops in lossless WebP (the training loader reads them with
``downscale = 1``), until a size budget is reached: crop ``k`` of every photo before crop ``k + 1``
of any, so a smaller budget keeps every photo. Deterministic (seeded), resumable (existing crops
are kept) and atomic per file. The pack folder is git-ignored (``/packs/``).

Run:    .venv/bin/python scripts/make_crop_pack.py                    (defaults: the rgb-storage photos,
        packs/rgb-photos, 320-pixel crops, 55 MB)
Needs:  apt-get install -y --no-install-recommends plasma-workspace-wallpapers mate-backgrounds
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from wavecodec.atomic import write_bytes
from wavecodec.training.data import list_files, load_image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["/usr/share/wallpapers/*/contents/images", "/usr/share/backgrounds/mate/nature"]  # as recipes/rgb-storage.toml
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def downsampled(path: Path, factor: int) -> np.ndarray:
    """The photo as RGB uint8, Lanczos-downsampled by ``factor``: the training loader's own reading of it."""
    return load_image(path, 3, factor)


def crop_at(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` square (the whole side where the photo is smaller)."""
    h, w = img.shape[:2]
    top, left = rng.integers(0, max(1, h - size + 1)), rng.integers(0, max(1, w - size + 1))
    return img[top : top + size, left : left + size]


def build(sources: list[str], out: Path, size: int, budget_mb: float, downscale: int, seed: int) -> tuple[int, int]:
    """Write crops into ``out`` until ``budget_mb``; returns ``(crops, bytes)`` of the whole pack."""
    files = list_files(sources, SUFFIXES)
    out.mkdir(parents=True, exist_ok=True)
    budget = int(budget_mb * 1e6)
    total = sum(p.stat().st_size for p in out.glob("*.webp"))
    images: dict[int, np.ndarray] = {}
    for round_ in range(64):  # a photo yields at most 64 crops
        wrote = False
        for index, path in enumerate(files):
            name = out / f"{index:04d}-{round_:02d}.webp"
            if name.exists():
                continue
            if index not in images:
                images[index] = downsampled(path, downscale)
            rng = np.random.default_rng([seed, index, round_])
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(crop_at(images[index], size, rng))).save(buf, "WEBP", lossless=True, quality=100)
            if total + buf.tell() > budget:
                return len(list(out.glob("*.webp"))), total
            write_bytes(name, buf.getvalue())
            total += buf.tell()
            wrote = True
        images.clear()
        if not wrote:
            break
    return len(list(out.glob("*.webp"))), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=PHOTOS, help="photo folders or glob patterns (default: the storage recipes')")
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "packs" / "rgb-photos")
    parser.add_argument("--size", type=int, default=320, help="crop side in pixels, after downsampling")
    parser.add_argument("--budget-mb", type=float, default=55.0, help="stop before the pack exceeds this many megabytes")
    parser.add_argument("--downscale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        crops, size = build(args.sources, args.out, args.size, args.budget_mb, args.downscale, args.seed)
    except Exception as exc:  # a script for people: one sentence, no traceback
        sys.exit(f"make_crop_pack: {exc}")
    print(f"{args.out}: {crops} crops of {args.size} pixels, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

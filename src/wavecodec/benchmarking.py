"""Helpers for the benchmark and experiment scripts: timing with medians, machine facts, JSON results, dev data.

The scripts in ``benchmarks/`` and ``experiments/`` import these from the library (no
``sys.path`` changes). The data helpers name the Debian packages the photos come from:
training = ``plasma-workspace-wallpapers`` and ``mate-backgrounds`` (JPEG/PNG sources,
downsampled with Lanczos); dev evaluation = the photos bundled with scikit-image and the
photos of ``opencv-doc``. Nothing else, so that evaluation stays honest.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .atomic import write_text
from .errors import InputError

TRAIN_GLOBS = [
    "/usr/share/wallpapers/*/contents/images/*.jpg",
    "/usr/share/wallpapers/*/contents/images/*.png",
    "/usr/share/backgrounds/mate/nature/*.jpg",
]
SKIMAGE_PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_PHOTOS = ["baboon.jpg", "fruits.jpg", "messi5.jpg", "butterfly.jpg", "home.jpg", "building.jpg"]


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return median/min/max seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def interleaved_ms(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function, timed round-robin (after one untimed call each) so that machine noise hits them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically; returns the path."""
    write_text(path, json.dumps(payload, indent=2) + "\n")
    return Path(path)


def decoder_macs_per_pixel(codec: Any) -> float:
    """Multiply-accumulates of the codec's decoder network per input sample position (its convolutions' weights
    per latent position, over the positions a latent covers)."""
    from .layers import macs_per_position

    return macs_per_position(codec.decoder) / codec.config.block ** codec.config.ndim


def training_files() -> list[str]:
    """The training photos (sorted paths); :class:`InputError` naming the packages when none are installed."""
    files = sorted({f for g in TRAIN_GLOBS for f in glob.glob(g)})
    if not files:
        raise InputError("no training photos found; install the Debian packages plasma-workspace-wallpapers and mate-backgrounds")
    return files


def training_crops(count: int, size: int = 256, factor: int = 4, max_files: int = 64, seed: int = 0) -> torch.Tensor:
    """``count`` random ``size`` crops (uint8, ``(N, 3, size, size)``) of Lanczos-downsampled training photos."""
    from PIL import Image

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


def dev_photos(gray: bool = False) -> dict[str, np.ndarray]:
    """The dev evaluation photos as ``(H, W, 3)`` uint8 arrays, by name; ``gray``: as ``(H, W)``, converted by Pillow (``L``)."""
    import skimage.data
    from PIL import Image

    photos = {name: getattr(skimage.data, name)()[:, :, :3] for name in SKIMAGE_PHOTOS}
    for name in OPENCV_PHOTOS:
        path = OPENCV_DIR / name
        if path.exists():
            with Image.open(path) as im:
                photos[f"opencv/{name}"] = np.asarray(im.convert("RGB"))
    if gray:
        photos = {name: np.asarray(Image.fromarray(img).convert("L")) for name, img in photos.items()}
    return photos


DEV_AUDIO_DIR = Path("/usr/share/hyperrogue/music")  # dev music (Debian hyperrogue-music): never trained on


def photo_tensor(img: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` or gray ``(H, W)`` photo (as :func:`dev_photos` gives them) as a ``(1, C, H, W)`` tensor."""
    t = torch.from_numpy(np.array(img))
    return (t[None] if t.ndim == 2 else t.permute(2, 0, 1))[None].contiguous()


def dev_audio(count: int, seconds: float, out: str | os.PathLike[str]) -> list[Path]:
    """``seconds`` from the middle of the first ``count`` dev tracks, as 16-bit FLAC files in ``out`` (made once).

    Raises:
        InputError: the dev music is not installed.
    """
    import soundfile as sf

    tracks = sorted(DEV_AUDIO_DIR.glob("*.ogg"))
    if not tracks:
        raise InputError(f"no dev audio in {DEV_AUDIO_DIR}; install the Debian package hyperrogue-music")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for track in tracks[:count]:
        path = folder / f"{track.stem}.flac"
        if not path.exists():
            info = sf.info(track)
            n = int(seconds * info.samplerate)
            data, rate = sf.read(track, start=max(0, (info.frames - n) // 2), frames=n, dtype="float32", always_2d=True)
            sf.write(path, data, rate, subtype="PCM_16")
        paths.append(path)
    return paths


def save_figure(fig: Any, path: str | os.PathLike[str], title: str, dpi: int = 110) -> None:
    """Title a Matplotlib figure, lay it out, write it as PNG and close it (the ending every plot script shares)."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)

"""Training data: folders of images or audio, sampled deterministically from (seed, index).

Item ``k`` of a :class:`CropDataset` is a random crop whose file, position and flip come from
a generator seeded with ``(seed, k)``, so the data of step ``s`` does not depend on what ran
before: resuming a run reproduces it exactly, and each distributed rank reads distinct items
(``k`` includes the rank). Unreadable files are skipped and counted, never fatal.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..audio import resample
from ..errors import InputError
from ..files import ARRAY_SUFFIXES, AUDIO_SUFFIXES, VOLUME_SUFFIXES, read_input, suffix_of
from ..images import IMAGE_SUFFIXES

_PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".ppm", ".pgm")


def list_files(roots: str | list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files with one of ``suffixes`` under each root: a directory (recursive) or a glob pattern.

    A clear error when a root does not exist or nothing usable is found.
    """
    files: set[Path] = set()
    for root in [roots] if isinstance(roots, (str, os.PathLike)) else roots:
        text = str(root)
        matches = [Path(p) for p in glob.glob(text)] if glob.has_magic(text) else [Path(text)]
        if not matches or not all(m.exists() for m in matches):
            raise InputError(f"{root} is not a directory")
        for m in matches:
            if m.is_dir():
                files.update(p for p in m.rglob("*") if p.is_file() and suffix_of(p) in suffixes)
            elif suffix_of(m) in suffixes:
                files.add(m)
    if not files:
        raise InputError(f"{roots} holds no usable files ({' '.join(suffixes)})")
    return sorted(files)


def load_image(path: Path, channels: int, downscale: int, normalize: str = "dtype") -> np.ndarray:
    """A training source as a channels-last array: uint8 for photos, float32 in [0, 1] otherwise.

    8-bit photos go through Pillow (gray or RGB, Lanczos downscale). Anything else (16-bit
    and multi-band TIFF, JPEG 2000, NIfTI volumes, ``.npy``) is read like an input file and
    scaled the way the codec will see it: per channel to its min..max (``normalize=
    "per_channel"``) or by its integer type's range.
    """
    if suffix_of(path) in _PHOTO_SUFFIXES and channels in (1, 3) and normalize == "dtype":
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if downscale > 1:
                im = im.resize((max(1, im.width // downscale), max(1, im.height // downscale)), Image.LANCZOS)
            arr = np.asarray(im)
        return arr[:, :, None] if arr.ndim == 2 else arr
    x, _ = read_input(path)
    if x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, *x.shape[2:])
    if x.shape[1] != channels:
        raise InputError(f"{path}: {x.shape[1]} channels, the codec takes {channels}")
    if normalize == "per_channel":
        from ..compression import normalize as per_channel

        u = per_channel(x, (0.0, 1.0))[0]
    elif x.is_floating_point():
        u = x.float()
    else:
        if x.dtype == torch.uint16:
            x = x.to(torch.int32)
            top = 65535.0
        elif x.dtype == torch.uint8:
            top = 255.0
        else:
            raise InputError(f"{path}: {x.dtype} samples need normalize = 'per_channel'")
        u = x.float() / top
    return np.ascontiguousarray(np.moveaxis(u[0].numpy(), 0, -1))


class ImageCache:
    """Downscaled copies of source images as ``.npy`` files, made once (resumably) per run."""

    def __init__(self, files: list[Path], cache_dir: Path | None, channels: int, downscale: int, normalize: str = "dtype") -> None:
        self.files, self.cache_dir, self.channels, self.downscale = files, cache_dir, channels, downscale
        self.normalize = normalize

    def path(self, index: int) -> Path | None:
        """Cache file of source ``index`` (``None`` without a cache folder)."""
        if self.cache_dir is None or (self.downscale == 1 and suffix_of(self.files[index]) in _PHOTO_SUFFIXES):
            return None  # photos at full size decode fast; everything else is cached as scaled float32
        return self.cache_dir / f"{index:06d}_{self.downscale}x_{self.channels}ch_{self.normalize}.npy"

    def get(self, index: int) -> np.ndarray:
        """Source ``index`` as an ``(*S, C)`` array, from the cache when present."""
        cached = self.path(index)
        if cached is not None and cached.exists():
            return np.load(cached)
        arr = load_image(self.files[index], self.channels, self.downscale, self.normalize)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, arr)
            os.replace(tmp, cached)
        return arr


class CropDataset(Dataset):
    """Map-style dataset over an unbounded index space: item ``k`` is the ``k``-th random crop."""

    def __init__(
        self,
        root: str | list[str],
        modality: str,
        channels: int,
        crop: int,
        seed: int = 0,
        downscale: int = 1,
        flips: bool = True,
        cache_dir: Path | None = None,
        sample_rate: int | None = None,
        length: int = 2**62,
        normalize: str = "dtype",
    ) -> None:
        self.modality, self.channels, self.crop, self.seed = modality, channels, crop, seed
        self.flips, self.sample_rate, self.length = flips, sample_rate, length
        suffixes = {"audio": AUDIO_SUFFIXES, "volume": VOLUME_SUFFIXES + ARRAY_SUFFIXES}.get(modality, IMAGE_SUFFIXES + ARRAY_SUFFIXES)
        self.files = list_files(root, suffixes)
        self.cache = ImageCache(self.files, cache_dir, channels, downscale, normalize)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> torch.Tensor | None:
        rng = np.random.default_rng([self.seed, k])
        index = int(rng.integers(len(self.files)))
        try:
            if self.modality == "audio":
                return self._audio(index, rng)
            return self._image(index, rng)
        except (OSError, UnidentifiedImageError, ValueError, RuntimeError, InputError, MemoryError):
            return None  # an unreadable file: the collate function drops and counts it

    def _image(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """A ``crop``-sided window along every spatial axis (images and volumes), reflect-padded when smaller."""
        arr = self.cache.get(index)
        c = self.crop
        spatial = arr.shape[:-1]
        if any(n < c for n in spatial):
            pads = [(0, max(0, c - n)) for n in spatial] + [(0, 0)]
            arr = np.pad(arr, pads, mode="reflect" if min(spatial) > 1 and all(c - n < n for n in spatial) else "edge")
            spatial = arr.shape[:-1]
        starts = [int(rng.integers(n - c + 1)) for n in spatial]
        out = arr[tuple(slice(s, s + c) for s in starts)]
        if self.flips and rng.random() < 0.5:
            out = out[..., ::-1, :]
        return torch.from_numpy(np.array(np.moveaxis(out, -1, 0), order="C"))  # a writable copy

    def _audio(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        import soundfile as sf

        path = self.files[index]
        info = sf.info(str(path))
        rate = self.sample_rate or info.samplerate
        need = int(np.ceil(self.crop * info.samplerate / rate))
        start = int(rng.integers(max(1, info.frames - need + 1)))
        data, _ = sf.read(str(path), start=start, frames=need, dtype="float32", always_2d=True)
        if info.samplerate != rate:
            data = resample(data, info.samplerate, rate, axis=0)
        data = data[: self.crop]
        if data.shape[0] < self.crop:
            data = np.pad(data, ((0, self.crop - data.shape[0]), (0, 0)))
        if data.shape[1] != self.channels:
            data = np.repeat(data.mean(axis=1, keepdims=True), self.channels, axis=1)
        return torch.from_numpy(np.ascontiguousarray(data.T))


def collate(items: list[torch.Tensor | None]) -> tuple[torch.Tensor | None, int]:
    """Stack the readable items; return the batch and how many were skipped."""
    good = [t for t in items if t is not None]
    return (torch.stack(good) if good else None), len(items) - len(good)

"""Reading and writing images as tensors (Pillow and NumPy, no torchvision)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import InputError, ShapeError
from . import paths

BUNDLED_PHOTO = paths.BUNDLED_PHOTO
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".ppm", ".pgm", ".jp2", ".j2k", ".jpx")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as an ``(H, W, C)`` uint8 or uint16 array (gray C=1, RGB C=3, RGBA C=4)."""
    if _png_bit_depth(path) == (16, True):  # Pillow would read 16-bit colour PNG as 8-bit without a word
        return _read_png16(path)
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise InputError(f"{path}: an animated image ({im.n_frames} frames); extract the frame to code first")
            im.load()
            arr = _pixels(im, path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable image") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.size == 0:
        raise InputError(f"{path}: the image is empty")
    return np.require(arr, requirements=["C", "W"])


def _pixels(im: Image.Image, name: object) -> np.ndarray:
    """A loaded Pillow image's pixels: uint8 gray/RGB/RGBA, or uint16 gray."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
    if im.mode in ("L", "RGB", "RGBA"):
        return np.asarray(im)
    if im.mode in ("LA", "P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV", "F"):
        target = "RGBA" if ("A" in im.mode or "transparency" in im.info) else "RGB"
        if im.mode in ("1", "F"):
            target = "L"
        return np.asarray(im.convert(target))
    raise InputError(f"{name}: unsupported image mode {im.mode}")


def read_image_object(im: Image.Image) -> np.ndarray:
    """A Pillow image in memory as an ``(H, W, C)`` uint8 or uint16 array (as :func:`read_image`)."""
    arr = _pixels(im, "the image")
    return np.require(arr[:, :, None] if arr.ndim == 2 else arr, requirements=["C", "W"])


def _png_bit_depth(path: str | os.PathLike[str]) -> tuple[int, bool] | None:
    """``(bit depth, colour)`` from a PNG's IHDR chunk, or ``None`` for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return None
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25] in (2, 6)  # colour types 2 (RGB) and 6 (RGBA)


def _read_png16(path: str | os.PathLike[str]) -> np.ndarray:
    """A 16-bit RGB(A) PNG as uint16 ``(H, W, C)`` (through imagecodecs, the ``formats`` extra)."""
    try:
        import imagecodecs
    except ImportError:
        raise InputError(f"{path}: 16-bit colour PNG needs imagecodecs: pip install 'wavecodec[formats]'") from None
    try:
        arr = np.asarray(imagecodecs.png_decode(Path(path).read_bytes()))
    except Exception:  # imagecodecs raises its own error types for broken files
        raise InputError(f"{path}: not a readable PNG") from None
    if arr.dtype != np.uint16 or arr.ndim != 3:
        raise InputError(f"{path}: not a readable 16-bit colour PNG")
    return np.ascontiguousarray(arr)


def write_image(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an ``(H, W, C)`` uint8/uint16 array; the format follows the suffix (PNG by default)."""
    from .atomic import atomic_write

    arr = array[:, :, 0] if array.shape[2] == 1 else array
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            raise InputError("16-bit images can only be written as single-channel PNG/TIFF here")
        im = Image.fromarray(arr.astype(np.uint16))
    else:
        im = Image.fromarray(arr)
    suffix = Path(path).suffix.lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP",
           ".jp2": "JPEG2000", ".j2k": "JPEG2000"}.get(suffix, "PNG")
    atomic_write(path, lambda tmp: im.save(tmp, format=fmt))


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` array to a ``(1, C, H, W)`` tensor of the same dtype."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` tensor to an ``(H, W, C)`` array."""
    return tensor[0].permute(1, 2, 0).cpu().numpy()


def as_signal(x: object, ndim: int) -> torch.Tensor:
    """A tensor ``(C, *S)`` or ``(B, C, *S)`` from a tensor, a NumPy array or a Pillow image, for an ``ndim``-D model.

    NumPy images in the ``(H, W, C)`` layout (the last axis 1-4 long, the first longer) are
    moved to ``(C, H, W)`` for 2-D models, and 2-D arrays get a channel axis; torch tensors
    are taken as they are (channels first, torch's convention).

    Raises:
        ShapeError: anything else.
    """
    if isinstance(x, Image.Image):
        x = read_image_object(x)
    if isinstance(x, np.ndarray):
        if ndim == 2 and x.ndim == 3 and x.shape[-1] <= 4 < x.shape[0]:
            x = np.moveaxis(x, -1, 0)
        elif ndim == 2 and x.ndim == 2:
            x = x[None]
        x = torch.from_numpy(np.require(x, requirements=["C", "W"]))  # a writable copy only when needed
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"expected a tensor, a NumPy array or a Pillow image, got {type(x).__name__}")
    return x

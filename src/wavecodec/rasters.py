"""Scientific rasters in and out: multi-band TIFF/GeoTIFF, JPEG 2000 and NIfTI volumes.

* TIFF through tifffile (any band count, 8/16-bit, float; compressed TIFFs need imagecodecs);
  the band axis is found from the file's own axes string (``SYX`` planar or ``YXS`` chunky).
* JPEG 2000 through Pillow (8-bit, 16-bit gray, RGB).
* NIfTI (``.nii``, ``.nii.gz``) through nibabel, as ``(1, C, D, H, W)`` in the stored dtype
  (scaled data become float32); the affine is kept so decoded volumes stay in place.

Every reader returns ``(1, C, *S)`` tensors in the file's own sample type.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_write
from .errors import InputError, need, reading

TIFF_SUFFIXES = (".tif", ".tiff")
JP2_SUFFIXES = (".jp2", ".j2k", ".jpx")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NATIVE = (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64)


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a NIfTI volume (``.nii`` or ``.nii.gz``)."""
    name = Path(path).name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def _native(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.type not in _NATIVE:
        if arr.dtype.kind == "f":
            return arr.astype(np.float32)
        if arr.dtype.kind == "b" or (arr.dtype.kind == "u" and arr.dtype.itemsize == 1):
            return arr.astype(np.uint8)
        if arr.dtype.kind in "ui" and arr.min(initial=0) >= 0 and arr.max(initial=0) <= 65535:
            return arr.astype(np.uint16)
        if arr.dtype.kind in "ui":
            return arr.astype(np.int32)
        raise InputError(f"unsupported sample type {arr.dtype}")
    return arr


def read_tiff(path: str | os.PathLike[str]) -> tuple[torch.Tensor, dict[str, Any]]:
    """``(1, bands, H, W)`` from a (Geo)TIFF, bands first whatever the file's layout."""
    import tifffile

    with reading(path, "not a readable TIFF (compressed TIFFs need: pip install imagecodecs)"):
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            arr, axes = series.asarray(), series.axes
    if arr.size == 0:
        raise InputError(f"{path}: the image is empty")
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3:
        band = next((axes.index(a) for a in "SCI" if a in axes), 0 if arr.shape[0] < arr.shape[2] else 2)
        arr = np.moveaxis(arr, band, 0)
    else:
        raise InputError(f"{path}: expected a 2-D image with bands, got axes {axes} {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(_native(arr)))[None], {"kind": "image"}


def read_jp2(path: str | os.PathLike[str]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read a JPEG 2000 image as ``(1, C, H, W)`` in its own sample type, plus facts."""
    from .images import read_image, to_tensor

    return to_tensor(read_image(path)), {"kind": "image"}


def read_nifti(path: str | os.PathLike[str]) -> tuple[torch.Tensor, dict[str, Any]]:
    """``(1, C, D, H, W)`` from a 3-D or 4-D NIfTI file (4-D: the last axis is the channel)."""
    nib = need("nibabel", "nifti", "reading NIfTI volumes")

    with reading(path, "not a readable NIfTI volume"):
        img = nib.load(str(path))
        scaled = img.dataobj.slope != 1 or img.dataobj.inter != 0
        arr = np.asanyarray(img.dataobj) if not scaled else np.asarray(img.get_fdata(dtype=np.float32))
    if arr.ndim == 3:
        arr = arr[None]
    elif arr.ndim == 4:
        arr = np.moveaxis(arr, 3, 0)
    else:
        raise InputError(f"{path}: expected a 3-D or 4-D volume, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{path}: the volume is empty")
    affine = [[float(v) for v in row] for row in img.affine]
    return torch.from_numpy(np.ascontiguousarray(_native(arr)))[None], {"kind": "volume", "affine": affine}


def write_tiff(path: str | os.PathLike[str], signal: torch.Tensor) -> None:
    """``(1, C, H, W)`` as a planar (bands first) TIFF with deflate compression when available."""
    import tifffile

    arr = signal[0].numpy()
    layout = {"planarconfig": "separate"} if arr.shape[0] > 1 else {}  # one band: a plain 2-D image
    if arr.shape[0] == 1:
        arr = arr[0]

    def save(tmp: str) -> None:
        try:
            tifffile.imwrite(tmp, arr, photometric="minisblack", compression="zlib", **layout)
        except Exception:  # no imagecodecs: uncompressed
            tifffile.imwrite(tmp, arr, photometric="minisblack", **layout)

    atomic_write(path, save)


def write_nifti(path: str | os.PathLike[str], signal: torch.Tensor, affine: list[list[float]] | None = None) -> None:
    """``(1, C, D, H, W)`` as NIfTI-1 (one channel: 3-D; several: 4-D with channels last)."""
    nib = need("nibabel", "nifti", "writing NIfTI volumes")
    arr = signal[0].numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, 3)
    image = nib.Nifti1Image(arr, np.array(affine) if affine else np.eye(4))
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else ".nii"

    def save(tmp: str) -> None:
        staged = tmp + suffix  # nibabel picks compression from the name
        nib.save(image, staged)
        os.replace(staged, tmp)

    atomic_write(path, save)

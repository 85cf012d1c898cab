"""Reading inputs and writing outputs by file type: images, audio, NumPy arrays.

Every reader returns a ``(1, C, *S)`` tensor in the file's own sample type (uint8/uint16
images, int16/float32 audio, any numeric ``.npy``) and a small dict of facts to keep
(sample rate). Every writer is atomic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_write
from .audio import AUDIO_SUFFIXES, read_audio, write_audio
from .errors import InputError
from .images import IMAGE_SUFFIXES, read_image, to_array, to_tensor, write_image
from .rasters import JP2_SUFFIXES, NIFTI_SUFFIXES, TIFF_SUFFIXES, read_jp2, read_nifti, read_tiff, write_nifti, write_tiff

ARRAY_SUFFIXES = (".npy",)
VOLUME_SUFFIXES = NIFTI_SUFFIXES
SUFFIXES = IMAGE_SUFFIXES + AUDIO_SUFFIXES + ARRAY_SUFFIXES + VOLUME_SUFFIXES


def suffix_of(path: str | os.PathLike[str]) -> str:
    """The lower-case suffix, ``.nii.gz`` counted as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def kind_of(path: str | os.PathLike[str]) -> str:
    """``"image"``, ``"audio"``, ``"volume"`` or ``"array"`` by suffix; :class:`InputError` otherwise."""
    suffix = suffix_of(path)
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VOLUME_SUFFIXES:
        return "volume"
    if suffix in ARRAY_SUFFIXES:
        return "array"
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; supported: {' '.join(SUFFIXES)}")


def read_input(path: str | os.PathLike[str]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read any supported input as a ``(1, C, *S)`` tensor plus facts to record."""
    kind = kind_of(path)
    if kind == "image" and suffix_of(path) in TIFF_SUFFIXES:
        return read_tiff(path)
    if kind == "image" and suffix_of(path) in JP2_SUFFIXES:
        return read_jp2(path)
    if kind == "image":
        return to_tensor(read_image(path)), {"kind": kind}
    if kind == "volume":
        return read_nifti(path)
    if kind == "audio":
        x, rate = read_audio(path)
        return x, {"kind": kind, "sample_rate": rate}
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path}: not a readable .npy array") from None
    if arr.ndim < 2 or arr.size == 0 or arr.dtype.kind not in "uif":
        raise InputError(f"{path}: expected a non-empty numeric (C, ...) array, got shape {arr.shape} {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr))[None], {"kind": kind}


def default_suffix(header: dict[str, Any]) -> str:
    """The output type a decoded file gets by default: PNG, WAV or NPY."""
    channels, dtype = header["input_channels"], header["dtype"]
    if header["modality"] == "image" and len(header["shape"]) == 2:
        if (dtype == "uint8" and channels in (1, 2, 3, 4)) or (dtype == "uint16" and channels == 1):
            return ".png"
        return ".tif"
    if header["modality"] == "volume" and len(header["shape"]) == 3:
        return ".nii.gz"
    if header["modality"] == "audio" and header.get("sample_rate"):
        return ".wav"
    return ".npy"


def write_output(path: str | os.PathLike[str], signal: torch.Tensor, header: dict[str, Any]) -> None:
    """Write one decoded signal ``(1, C, *S)`` as image, audio or ``.npy`` by ``path``'s suffix."""
    suffix = suffix_of(path)
    if suffix in TIFF_SUFFIXES and signal.dim() == 4:
        write_tiff(path, signal)
    elif suffix in VOLUME_SUFFIXES:
        if signal.dim() != 5:
            raise InputError(f"{path}: only 3-D volumes can be written as NIfTI; use .npy")
        write_nifti(path, signal, header.get("affine"))
    elif suffix in ARRAY_SUFFIXES:
        arr = signal[0].numpy()

        def save(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)

        atomic_write(path, save)
    elif suffix in IMAGE_SUFFIXES:
        if signal.dim() != 4:
            raise InputError(f"{path}: only 2-D signals can be written as images; use .npy")
        write_image(path, to_array(signal))
    elif suffix in AUDIO_SUFFIXES:
        if signal.dim() != 3 or not header.get("sample_rate"):
            raise InputError(f"{path}: only audio with a sample rate can be written as audio; use .npy")
        write_audio(path, signal[0].numpy(), header["sample_rate"], header.get("source_format"))
    else:
        raise InputError(f"{path}: cannot write {suffix or 'files without a suffix'}; use .png, .wav or .npy")

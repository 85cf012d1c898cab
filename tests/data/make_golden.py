"""Regenerate the golden files (only when the format changes on purpose).

    .venv/bin/python tests/data/make_golden.py

Writes golden_model.safetensors, golden.wvc and golden.json (SHA-256 of the decoded
integer latents and of the decoded uint8 pixels). The test decodes the committed file
with 1 and with several threads and compares both hashes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import wavecodec  # noqa: E402
from helpers import fitted_codec, synthetic_images  # noqa: E402
from wavecodec.coders import decode_symbols  # noqa: E402
from wavecodec.compression import decompress, read_header  # noqa: E402


def digests(codec, data: bytes) -> dict[str, str]:
    header = read_header(data)
    from wavecodec.container import unpack

    _, sections = unpack(data)
    q = decode_symbols(header["coder"], sections["latents"], (header["batch"], *header["latent_shape"]), codec)
    pixels = decompress(codec, data).signal.numpy()
    return {
        "latents_sha256": hashlib.sha256(np.ascontiguousarray(q, dtype="<i4").tobytes()).hexdigest(),
        "pixels_sha256": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
    }


def main() -> None:
    codec = fitted_codec(name="golden")
    wavecodec.save(codec, HERE / "golden_model.safetensors")
    codec = wavecodec.load(HERE / "golden_model.safetensors")
    x = synthetic_images(1, size=48, seed=42)[:, :, :45, :47].contiguous()
    data = codec.compress(x, coder="ans")
    (HERE / "golden.wvc").write_bytes(data)
    (HERE / "golden.json").write_text(json.dumps(digests(codec, data), indent=2) + "\n")
    print(f"wrote golden files: {len(data)} bytes")


if __name__ == "__main__":
    main()

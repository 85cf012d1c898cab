"""Write the golden file of the current format version (only when the format changes on purpose).

    .venv/bin/python tests/data/make_golden.py

Writes golden_v{VERSION}.wvc and golden_v{VERSION}.json (SHA-256 of the decoded integer
latents and of the decoded uint8 pixels) with the committed golden_model.safetensors. The
files of older versions (golden_v1.*) are never rewritten: they show that old files still
decode. The test decodes every committed version with 1 and with several threads.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import wavecodec  # noqa: E402
from helpers import fitted_codec, synthetic_images  # noqa: E402
from wavecodec.compression import decompress, open_latents  # noqa: E402
from wavecodec.container import VERSION  # noqa: E402


def digests(codec, data: bytes) -> dict[str, str]:
    q = open_latents(codec, data)[1].all()
    pixels = decompress(codec, data).signal.numpy()
    return {
        "latents_sha256": hashlib.sha256(np.ascontiguousarray(q, dtype="<i4").tobytes()).hexdigest(),
        "pixels_sha256": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
    }


def main() -> None:
    if not (HERE / "golden_model.safetensors").exists():
        wavecodec.save(fitted_codec(name="golden"), HERE / "golden_model.safetensors")
    codec = wavecodec.load(HERE / "golden_model.safetensors")
    x = synthetic_images(1, size=48, seed=42)[:, :, :45, :47].contiguous()
    data = codec.compress(x, coder="ans")
    (HERE / f"golden_v{VERSION}.wvc").write_bytes(data)
    (HERE / f"golden_v{VERSION}.json").write_text(json.dumps(digests(codec, data), indent=2) + "\n")
    print(f"wrote golden files of version {VERSION}: {len(data)} bytes")


if __name__ == "__main__":
    main()

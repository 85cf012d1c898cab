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


#: the quantization step of the current golden file: at 32 the golden model leaves latent channel 3 all 0, which
#: format 5 marks in its channel mask instead of coding it (versions 1-4 were written at step 1)
GOLDEN_STEP = 32.0


def golden_bytes(codec) -> bytes:
    """The current version's golden file: the golden image coded by the golden model."""
    x = synthetic_images(1, size=48, seed=42)[:, :, :45, :47].contiguous()
    return codec.compress(x, coder="ans", quant_step=GOLDEN_STEP)


def main() -> None:
    if not (HERE / "golden_model.safetensors").exists():
        wavecodec.save(fitted_codec(name="golden"), HERE / "golden_model.safetensors")
    codec = wavecodec.load(HERE / "golden_model.safetensors")
    data = golden_bytes(codec)
    (HERE / f"golden_v{VERSION}.wvc").write_bytes(data)
    (HERE / f"golden_v{VERSION}.json").write_text(json.dumps(digests(codec, data), indent=2) + "\n")
    print(f"wrote golden files of version {VERSION}: {len(data)} bytes")


if __name__ == "__main__":
    main()

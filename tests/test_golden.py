"""Golden files: a committed .wvc decodes to committed hashes, with 1 and several threads.

If this fails after an intended format change, regenerate with tests/data/make_golden.py
and say so in the change; if it fails otherwise, decoding is no longer bit-exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import wavecodec
import wavecodec.compression

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("threads", [1, 4])
def test_golden_file_decodes_bit_exactly(threads: int) -> None:
    from make_golden import digests  # tests/data is on sys.path (conftest)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        codec = wavecodec.load(DATA / "golden_model.safetensors")
        data = (DATA / "golden.wvc").read_bytes()
        assert digests(codec, data) == json.loads((DATA / "golden.json").read_text())
    finally:
        torch.set_num_threads(previous)


def test_golden_file_header_is_readable_without_a_model() -> None:
    header = wavecodec.compression.read_header((DATA / "golden.wvc").read_bytes())
    assert header["model"] == "golden" and header["shape"] == [45, 47] and header["coder"] == "ans"

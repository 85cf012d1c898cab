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
import wavecodec.container

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("threads", [1, 4])
def test_golden_file_decodes_bit_exactly(threads: int, version: int) -> None:
    from make_golden import digests  # tests/data is on sys.path (conftest)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        codec = wavecodec.load(DATA / "golden_model.safetensors")
        data = (DATA / f"golden_v{version}.wvc").read_bytes()
        assert digests(codec, data) == json.loads((DATA / f"golden_v{version}.json").read_text())
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize(("version", "coder"), [(1, "ans-wavefront"), (2, "ans-two-states"), (3, "ans-linear"), (4, "ans-all-channels"), (5, "ans")])
def test_golden_file_header_is_readable_without_a_model(version: int, coder: str) -> None:
    header = wavecodec.compression.read_header((DATA / f"golden_v{version}.wvc").read_bytes())
    assert header["model"] == "golden" and header["shape"] == [45, 47]
    assert header["format_version"] == version and header["coder"] == coder


def test_the_current_version_writes_the_current_golden_file() -> None:
    from make_golden import golden_bytes

    codec = wavecodec.load(DATA / "golden_model.safetensors")
    assert golden_bytes(codec) == (DATA / f"golden_v{wavecodec.container.VERSION}.wvc").read_bytes()


def test_the_current_golden_file_has_a_silent_channel_that_is_not_coded() -> None:
    from wavecodec.compression import open_latents

    codec = wavecodec.load(DATA / "golden_model.safetensors")
    data = (DATA / "golden_v5.wvc").read_bytes()
    q = open_latents(codec, data)[1].all()
    assert not q[:, 3].any() and all(q[:, c].any() for c in (0, 1, 2, 4, 5))
    assert wavecodec.container.unpack(data)[1]["latents"][0] == 0b110111  # the channel mask: channel 3 not coded

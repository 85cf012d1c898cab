"""Saving and loading codecs with safetensors, and the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import wavecodec
from wavecodec import CheckpointError, Codec
from wavecodec.checkpoint import read_metadata


def test_save_load_gives_identical_outputs(small_codec: Codec, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    wavecodec.save(small_codec, path)
    loaded = wavecodec.load(path)
    assert loaded.config == small_codec.config
    assert not loaded.training
    x = torch.rand(1, 3, 37, 29)
    assert torch.equal(loaded.reconstruct(x), small_codec.reconstruct(x))
    assert wavecodec.fingerprint(loaded) == wavecodec.fingerprint(small_codec)
    meta = read_metadata(path)
    assert meta["format"] == "wavecodec" and meta["format_version"] == "1"
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_checkpoint_contains_no_pickle(small_codec: Codec, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    wavecodec.save(small_codec, path)
    head = path.read_bytes()[:8]
    assert int.from_bytes(head, "little") < path.stat().st_size  # safetensors: u64 header length first


def test_corrupted_or_foreign_files_give_clear_errors(small_codec: Codec, tmp_path: Path) -> None:
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(CheckpointError, match="neither a shipped model"):
        wavecodec.load(missing)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        wavecodec.load(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a wavecodec checkpoint"):
        wavecodec.load(foreign)
    good = tmp_path / "good.safetensors"
    wavecodec.save(small_codec, good)
    data = bytearray(good.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last weight
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        wavecodec.load(bad)


def test_mismatched_weights_give_clear_error(small_codec: Codec, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    state = {k: v.contiguous() for k, v in small_codec.state_dict().items()}
    state.pop("encoder.proj.bias")
    save_file(state, path, metadata={"format": "wavecodec", "format_version": "1", "config": small_codec.config.to_json()})
    with pytest.raises(CheckpointError, match="does not match its config"):
        wavecodec.load(path)


def test_registry_lists_models_with_loadable_files() -> None:
    for info in wavecodec.models():
        assert info.path.is_file(), info.name
        codec = wavecodec.load(info.name)
        assert codec.config.name == info.name
    with pytest.raises(CheckpointError, match="neither a shipped model"):
        wavecodec.load("no-such-model")

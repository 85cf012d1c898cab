"""Retraining a shipped model under its name keeps every file made with its former weights decodable."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from helpers import synthetic_images

import wavecodec
from wavecodec import api, registry
from wavecodec.cli import main
from wavecodec.compression import read_header
from wavecodec.errors import CheckpointError


@pytest.fixture
def weights(fitted, tmp_path: Path, monkeypatch) -> Path:
    """A weights folder holding one shipped model, ``test-rgb``."""
    folder = tmp_path / "weights"
    folder.mkdir()
    codec = copy.deepcopy(fitted)
    codec.config = codec.config.replace(name="test-rgb")
    wavecodec.save(codec, folder / "test-rgb.safetensors")
    entry = {"name": "test-rgb", "file": "test-rgb.safetensors", "description": "", "modality": "image", "channels": 3, "figures": {}}
    (folder / "index.json").write_text(json.dumps({"models": [entry]}))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(registry, "INDEX_PATH", folder / "index.json")
    registry._index.cache_clear()
    api._shipped.cache_clear()
    yield folder
    registry._index.cache_clear()
    api._shipped.cache_clear()


def _retrain(folder: Path) -> None:
    """New weights under the same name, the old ones retired first."""
    registry.retire("test-rgb")
    codec = registry.load("test-rgb")
    with torch.no_grad():
        codec.decoder.linear.weight.mul_(1.01)
    wavecodec.save(codec, folder / "test-rgb.safetensors")
    api._shipped.cache_clear()  # the API keeps each model it loaded; weights never change under it outside a test


def test_files_of_a_retired_version_still_decode(weights: Path, tmp_path: Path) -> None:
    x = synthetic_images(1, size=48, seed=2)
    old = wavecodec.compress(x, "test-rgb")
    before = wavecodec.decompress(old)
    old_hash = read_header(old)["model_hash"]
    _retrain(weights)
    assert registry.load("test-rgb").fingerprint() != old_hash  # the name now loads the new weights
    assert registry.model_for_header(read_header(old)) == f"test-rgb@{old_hash}"
    assert torch.equal(wavecodec.decompress(old), before)  # the file opens the weights that made it
    new = wavecodec.compress(x, "test-rgb")
    assert registry.model_for_header(read_header(new)) == "test-rgb"
    assert not torch.equal(wavecodec.decompress(new), before)
    (tmp_path / "old.wvc").write_bytes(old)
    assert main(["decode", str(tmp_path / "old.wvc"), "-o", str(tmp_path / "old.png"), "--quiet"]) == 0
    assert (tmp_path / "old.png").exists()


def test_models_lists_the_retired_versions(weights: Path, capsys) -> None:
    digest = registry.load("test-rgb").fingerprint()
    _retrain(weights)
    assert main(["models"]) == 0 and f"older weights still decoded: {digest}" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["retired_versions"] == [digest]


def test_datasets_of_a_retired_version_name_it(weights: Path) -> None:
    old_hash = registry.load("test-rgb").fingerprint()
    _retrain(weights)
    ref = registry.model_for_dataset({"model": "test-rgb", "model_hash": old_hash})
    assert ref == f"test-rgb@{old_hash}" and registry.load(ref).fingerprint() == old_hash
    assert registry.model_for_dataset({"model": "test-rgb", "model_hash": "0" * 16}) == "test-rgb"


def test_retiring_keeps_the_entry_and_survives_a_new_registration(weights: Path) -> None:
    path = registry.retire("test-rgb")
    assert path.is_file() and path.parent.name == "retired"
    digest = registry.load("test-rgb").fingerprint()
    assert registry.get_info("test-rgb").retired == ((digest, f"retired/test-rgb-{digest}.safetensors"),)
    registry.register("test-rgb", "new weights", {"dev_bpp": 1.0})
    assert registry.get_info("test-rgb").retired  # registering the new figures keeps the old versions
    assert registry.retire("test-rgb") == path and len(registry.get_info("test-rgb").retired) == 1  # no duplicates


def test_the_current_version_can_be_pinned_by_its_hash(weights: Path) -> None:
    digest = registry.load("test-rgb").fingerprint()
    assert registry.load(f"test-rgb@{digest}").fingerprint() == digest
    _retrain(weights)
    assert registry.load(f"test-rgb@{digest}").fingerprint() == digest  # and stays valid once retired


def test_an_unknown_version_is_refused(weights: Path) -> None:
    with pytest.raises(CheckpointError, match="has no version"):
        registry.load("test-rgb@0123456789abcdef")
    with pytest.raises(CheckpointError, match="neither a shipped model"):
        registry.load("other@0123456789abcdef")

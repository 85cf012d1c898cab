"""The GPU training path: the crop pack (scripts/make_crop_pack.py) and the one-call script (scripts/gpu_train_storage.sh)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _pack_module():
    spec = importlib.util.spec_from_file_location("make_crop_pack", ROOT / "scripts" / "make_crop_pack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _photos(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        smooth = np.cumsum(rng.normal(0, 6, (600, 800, 3)), axis=1)
        Image.fromarray(np.clip(128 + smooth - smooth.mean(), 0, 255).astype(np.uint8)).save(folder / f"photo{i}.jpg", quality=95)
    return folder


def test_the_pack_holds_downsampled_crops_within_its_budget_and_rebuilds_the_same(tmp_path: Path) -> None:
    pack = _pack_module()
    photos = _photos(tmp_path / "photos")
    crops, size = pack.build([str(photos)], tmp_path / "pack", 96, 0.15, 4, 0)
    files = sorted((tmp_path / "pack").glob("*.webp"))
    assert crops == len(files) > 3 and size == sum(f.stat().st_size for f in files) <= 0.15e6
    assert {f.name[:4] for f in files} == {"0000", "0001", "0002"}, "every photo gives a crop before any gives two"
    first = np.asarray(Image.open(files[0]))
    source = pack.downsampled(sorted(photos.glob("*.jpg"))[0], 4)
    assert first.shape == (96, 96, 3) and source.shape == (150, 200, 3)
    rng = np.random.default_rng([0, 0, 0])
    assert np.array_equal(first, pack.crop_at(source, 96, rng)), "lossless: the crop is the downsampled photo's pixels"
    again = tmp_path / "again"
    pack.build([str(photos)], again, 96, 0.15, 4, 0)
    assert [f.read_bytes() for f in files] == [(again / f.name).read_bytes() for f in files]
    assert pack.build([str(photos)], tmp_path / "pack", 96, 0.15, 4, 0) == (crops, size), "a rerun keeps what is there"


@pytest.mark.slow
def test_the_gpu_script_trains_and_exports_a_storage_model_on_any_machine(tmp_path: Path) -> None:
    import torch

    import wavecodec

    pack = _pack_module()
    pack.build([str(_photos(tmp_path / "photos"))], tmp_path / "pack", 256, 2.0, 2, 0)
    env = {**os.environ, "PACK": str(tmp_path / "pack"), "RUN": str(tmp_path / "run"), "OUT": str(tmp_path / "out"),
           "BUDGET_S": "1", "PYTHON": sys.executable}
    subprocess.run(["bash", str(ROOT / "scripts" / "gpu_train_storage.sh")], cwd=ROOT, env=env, check=True, capture_output=True)
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 100  # the least the script trains
    codec = wavecodec.load(out / "rgb-storage-gpu.safetensors")
    assert codec.rates is not None and codec.config == wavecodec.load("rgb-storage").config.replace(name="rgb-storage-gpu")
    x = (torch.rand(1, 3, 64, 64) * 255).to(torch.uint8)
    assert codec.decompress(codec.compress(x, quality=50)).shape == x.shape


def test_the_gpu_recipe_trains_the_shipped_storage_design() -> None:
    import wavecodec
    from wavecodec.training import TrainConfig

    gpu, cpu = TrainConfig.load(ROOT / "recipes" / "rgb-storage-gpu.toml"), TrainConfig.load(ROOT / "recipes" / "rgb-storage-192.toml")
    assert gpu.codec == cpu.codec == wavecodec.load("rgb-storage").config
    same = ("pca_init", "pca_steps", "latent_scale", "rounded_decoder_input", "balance_rungs", "train_between_rungs")
    assert [getattr(gpu, k) for k in same] == [getattr(cpu, k) for k in same]

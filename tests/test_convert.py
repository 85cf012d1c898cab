"""Converting datasets to latent shards, and reading them back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import wavecodec
import wavecodec.convert as convert_module
from helpers import synthetic_images
from wavecodec import InputError
from wavecodec.cli import main
from wavecodec.convert import convert
from wavecodec.data import LatentDataset, LatentShards, OnTheFlyLatents


def make_tree(root: Path, per_class: int = 5) -> dict[str, np.ndarray]:
    """Two class folders of small generated photos (sizes vary) and one unreadable file."""
    images = {}
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i, img in enumerate(synthetic_images(per_class, size=48, seed=10 * c)):
            arr = img.permute(1, 2, 0).numpy()[: 40 + 2 * i, : 48 - i]
            path = root / name / f"{i}.png"
            Image.fromarray(arr).save(path)
            images[str(path)] = arr
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    return images


@pytest.fixture
def model_path(fitted, tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    wavecodec.save(fitted, path)
    return path


def sources_in(dst: Path) -> list[str]:
    found = []
    for shard in sorted(dst.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            found += [json.loads(tar.extractfile(m).read())["source"] for m in tar.getmembers() if m.name.endswith(".json")]
    return found


def test_convert_with_two_workers_and_read_back(fitted, model_path: Path, tmp_path: Path) -> None:
    images = make_tree(tmp_path / "src")
    dst = tmp_path / "dst"
    index = convert(str(tmp_path / "src"), str(dst), str(model_path), labels_from_folders=True, shard_size=3, workers=2,
                    shuffle_seed=None)
    assert index["count"] == 10 and len(index["failed"]) == 1 and "broken.png" in index["failed"][0]["path"]
    assert index["class_names"] == ["cats", "dogs"] and len(index["shards"]) == 4
    assert sum(s["count"] for s in index["shards"]) == 10
    assert sorted(sources_in(dst)) == sorted(images)
    ds = LatentDataset(dst, codec=fitted)
    assert len(ds) == 10 and ds.class_names == ["cats", "dogs"]
    ordered = sorted(images)  # samples are stored in sorted source order (shuffle_seed=None)
    for i, src in enumerate(ordered):
        z, label = ds[i]
        x = torch.from_numpy(images[src].copy()).permute(2, 0, 1)[None]
        expected = fitted.quantize(fitted.encode(x))[0]
        assert z.dtype == torch.float32 and torch.equal(z, expected.float())
        assert label == (0 if "/cats/" in src else 1)
    q, _ = LatentDataset(dst, codec=fitted, as_integers=True)[0]
    assert q.dtype == torch.int8
    pixels, _ = LatentDataset(dst, codec=fitted, decode=True)[0]
    assert pixels.dtype == torch.uint8 and pixels.shape[0] == 3
    crop, _ = LatentDataset(dst, codec=fitted, crop=4, seed=0)[0]
    assert crop.shape == (6, 4, 4)
    streamed = list(LatentShards(dst, codec=fitted))
    assert len(streamed) == 10 and all(torch.equal(a[0], b[0]) for a, b in zip(streamed, (ds[i] for i in range(10))))
    loader = torch.utils.data.DataLoader(LatentShards(dst, codec=fitted, shuffle=4), num_workers=2, batch_size=None)
    assert sorted(int(lbl) for _, lbl in loader) == sorted(ds[i][1] for i in range(10))
    import pickle  # DataLoader workers started by spawn get a pickled copy: it opens its own shard descriptors

    copy = pickle.loads(pickle.dumps(ds))
    assert all(torch.equal(copy[i][0], ds[i][0]) and copy[i][1] == ds[i][1] for i in range(10))
    name, offset, size, *_ = ds.entries[-1]
    with open(dst / name, "r+b") as f:  # a shard cut short after the dataset was opened
        f.truncate(offset + size // 2)
    with pytest.raises(wavecodec.FormatError, match="shorter than its index"):
        ds[len(ds) - 1]


def test_rerun_skips_finished_shards_and_resumes_a_crash(fitted, model_path: Path, tmp_path: Path, monkeypatch) -> None:
    images = make_tree(tmp_path / "src")
    dst = tmp_path / "dst"
    calls = {"n": 0}
    real_add = convert_module._add

    def crashing_add(tar, name, data):
        calls["n"] += 1
        if calls["n"] == 9:  # 2 members per sample, 3 samples per shard: inside the second shard
            raise KeyboardInterrupt
        real_add(tar, name, data)

    monkeypatch.setattr(convert_module, "_add", crashing_add)
    with pytest.raises(KeyboardInterrupt):
        convert(str(tmp_path / "src"), str(dst), str(model_path), shard_size=3, workers=1)
    assert (dst / "shard-000000.tar").exists() and not (dst / "shard-000001.tar").exists()
    assert len(list(dst.glob(".shard-000001.*.tar.tmp"))) == 1  # the half-written shard, never mistaken for a done one
    monkeypatch.setattr(convert_module, "_add", real_add)
    first = (dst / "shard-000000.tar").stat().st_mtime_ns
    index = convert(str(tmp_path / "src"), str(dst), str(model_path), shard_size=3, workers=1)
    assert (dst / "shard-000000.tar").stat().st_mtime_ns == first  # finished shards are not redone
    assert not list(dst.glob("*.tmp"))  # the killed run's temporary file is cleaned up
    assert index["count"] == 10 and sorted(sources_in(dst)) == sorted(images)
    with pytest.raises(InputError, match="other inputs"):
        convert(str(tmp_path / "src"), str(dst), str(model_path), shard_size=2)


def test_kill_9_mid_conversion_then_rerun_loses_and_duplicates_nothing(model_path: Path, tmp_path: Path) -> None:
    images = make_tree(tmp_path / "src", per_class=20)
    dst = tmp_path / "dst"
    cmd = [sys.executable, "-m", "wavecodec.cli", "convert", str(tmp_path / "src"), str(dst),
           "--model", str(model_path), "--shard-size", "2", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and len(list(dst.glob("shard-*.json"))) < 3:
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main(cmd[3:]) == 0
    index = json.loads((dst / "index.json").read_text())
    assert index["count"] == 40 and sorted(sources_in(dst)) == sorted(images)
    assert not list(dst.glob("*.tmp"))
    assert killed, "the conversion finished before it could be killed; the test did not exercise a crash"


def test_labels_csv_and_manifest(model_path: Path, tmp_path: Path) -> None:
    images = make_tree(tmp_path / "src")
    (tmp_path / "src" / "dogs" / "broken.png").unlink()
    rows = ["path,label"] + [f"{Path(p).relative_to(tmp_path / 'src')},{'odd' if int(Path(p).stem) % 2 else 'even'}" for p in images]
    (tmp_path / "src" / "labels.csv").write_text("\n".join(rows))
    index = convert(str(tmp_path / "src"), str(tmp_path / "d1"), str(model_path), labels=str(tmp_path / "src" / "labels.csv"), workers=1)
    assert index["class_names"] == ["even", "odd"] and index["count"] == 10
    manifest = tmp_path / "src" / "list.txt"
    manifest.write_text("\n".join(str(Path(p).relative_to(tmp_path / "src")) for p in list(images)[:4]))
    index = convert(str(manifest), str(tmp_path / "d2"), str(model_path), workers=1)
    assert index["count"] == 4
    with pytest.raises(InputError, match="no label"):
        (tmp_path / "src" / "labels.csv").write_text("path,label\ncats/0.png,x")
        convert(str(tmp_path / "src"), str(tmp_path / "d3"), str(model_path), labels=str(tmp_path / "src" / "labels.csv"))


def test_ray_engine_without_ray_says_how_to_install(model_path: Path, tmp_path: Path, monkeypatch) -> None:
    make_tree(tmp_path / "src")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'wavecodec\[ray\]'"):
        convert(str(tmp_path / "src"), str(tmp_path / "dst"), str(model_path), engine="ray")


def test_ray_engine_converts_on_a_local_ray_instance(model_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'wavecodec[ray]' (make test installs it)")
    images = make_tree(tmp_path / "src")
    index = convert(str(tmp_path / "src"), str(tmp_path / "dst"), str(model_path), engine="ray", workers=2, shard_size=4)
    assert index["count"] == 10 and sorted(sources_in(tmp_path / "dst")) == sorted(images)


def test_on_the_fly_latents_match_the_files(fitted) -> None:
    x = synthetic_images(2, size=32, seed=3)
    z = OnTheFlyLatents(fitted)(x)
    assert torch.equal(z, fitted.quantize(fitted.encode(x)).float())


def test_a_rerun_removes_every_temporary_file_a_killed_run_left(model_path: Path, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    left = [".shard-000001.json.k3x9.tmp", ".shard-000000.q2w8.tar.tmp", ".index.json.a1b2.tmp", ".plan.json.c3d4.tmp"]
    for name in left:  # what kill -9 leaves when it lands inside an atomic write
        (dst / name).write_text("partial")
    convert(str(tmp_path / "src"), str(dst), str(model_path), shard_size=3, workers=1)
    assert not list(dst.glob("*.tmp")) and (dst / "index.json").exists()

"""Hostile files and failing disks: crafted headers, bad inputs and file-system errors get one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import wavecodec
from helpers import synthetic_images
from wavecodec import CheckpointError, FormatError, ShapeError
from wavecodec.cli import main
from wavecodec.compression import compress, decompress, read_header
from wavecodec.container import pack, unpack


def _rewrite(data: bytes, edit) -> bytes:
    header, sections = unpack(data)
    header.pop("sections")
    header.pop("format_version")
    edit(header)
    return pack(header, sections)


@pytest.fixture(scope="module")
def audio_codec() -> wavecodec.Codec:
    torch.manual_seed(0)
    cfg = wavecodec.CodecConfig(channels=2, levels=2, latent_dim=4, decoder_width=4, decoder_depth=1, modality="audio",
                                sample_rate=8000, value_range=(-1.0, 1.0), name="test-hostile-audio")
    return wavecodec.Codec(cfg).eval()


def test_a_5000_digit_integer_in_any_header_field_is_a_format_error(fitted) -> None:
    import zlib

    data = fitted.compress(synthetic_images(1, size=32))
    length = int.from_bytes(data[10:14], "little")
    text = data[14 : 14 + length].decode()
    for field in ("batch", "channels", "latent_bits", "step"):
        header = json.loads(text)
        header[field] = 0
        raw = json.dumps(header, separators=(",", ":")).replace(f'"{field}":0', f'"{field}":{"9" * 5000}').encode()
        body = data[:10] + len(raw).to_bytes(4, "little") + raw + data[14 + length : -4]
        bad = body + zlib.crc32(body).to_bytes(4, "little")
        with pytest.raises(FormatError):
            read_header(bad)
        with pytest.raises(FormatError):
            decompress(fitted, bad)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda h: h.update(sample_rate=1), "sample rate"),
    (lambda h: h.update(source_rate=9_999_991), "source sample rate"),
    (lambda h: h.update(dtype="uint8"), "audio sample type"),
    (lambda h: h.update(dtype="bfloat16"), "unsupported dtype"),
    (lambda h: h.update(input_channels=3), "more input channels"),
])
def test_crafted_audio_headers_are_refused_before_any_work(audio_codec, edit, match) -> None:
    x = torch.zeros(1, 2, 4000)
    data = compress(audio_codec, x, sample_rate=8000)
    with pytest.raises(FormatError, match=match):
        decompress(audio_codec, _rewrite(data, edit))


def test_resampling_between_unrelated_rates_is_refused() -> None:
    from wavecodec.audio import resample

    with pytest.raises(wavecodec.InputError, match="too fine"):
        resample(np.zeros((1, 100), np.float32), 44_100, 44_101)
    assert resample(np.zeros((1, 441), np.float32), 44_100, 48_000).shape == (1, 480)


def test_bfloat16_nan_and_out_of_range_inputs_are_refused(fitted, audio_codec) -> None:
    x = synthetic_images(1, size=32).float() / 255
    with pytest.raises(ShapeError, match="unsupported dtype"):
        fitted.compress(x.to(torch.bfloat16))
    bad = x.clone()
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ShapeError, match="NaN"):
        fitted.compress(bad)
    with pytest.raises(ShapeError, match="outside the model's range"):
        fitted.compress(x * 3)
    fitted.compress(x * (1 + 1e-4))  # rounding noise past the range is fine
    with pytest.raises(ShapeError, match="audio is coded from"):
        compress(audio_codec, torch.zeros(1, 2, 64, dtype=torch.uint8), sample_rate=8000)


def test_a_checkpoint_asking_for_a_huge_decoder_is_refused_before_building_it(tmp_path: Path, fitted) -> None:
    from safetensors.torch import save_file

    cfg = json.loads(fitted.config.to_json())
    cfg["decoder_width"] = 1_000_000
    path = tmp_path / "huge.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "wavecodec", "format_version": "1", "config": json.dumps(cfg)})
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="decoder_width"):
        wavecodec.load(path)
    assert time.perf_counter() - start < 2


def test_the_file_never_makes_the_decoder_open_another_file(tmp_path: Path, fitted, capsys) -> None:
    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    data = fitted.compress(synthetic_images(1, size=32))
    crafted = _rewrite(data, lambda h: h.update(model=str(model)))  # names an existing checkpoint by path
    (tmp_path / "x.wvc").write_bytes(crafted)
    assert main(["decode", str(tmp_path / "x.wvc"), "-o", str(tmp_path / "x.png")]) == 2
    assert "not shipped; pass --model" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_single_channel_tiff_and_16_bit_colour_png(tmp_path: Path) -> None:
    from wavecodec.files import read_input, write_output

    gray = torch.randint(0, 65535, (1, 1, 9, 11)).to(torch.uint16)
    write_output(tmp_path / "g.tif", gray, {"sample_rate": None})
    back, _ = read_input(tmp_path / "g.tif")
    assert torch.equal(back, gray)
    imagecodecs = pytest.importorskip("imagecodecs")
    rgb = (np.random.default_rng(0).random((6, 5, 3)) * 65535).astype(np.uint16)
    (tmp_path / "c.png").write_bytes(imagecodecs.png_encode(rgb))
    x, _ = read_input(tmp_path / "c.png")
    assert x.dtype == torch.uint16 and np.array_equal(x[0].permute(1, 2, 0).numpy(), rgb)


def test_animated_images_are_refused_not_cut_to_a_frame(tmp_path: Path) -> None:
    from wavecodec.files import read_input

    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    with pytest.raises(wavecodec.InputError, match="animated"):
        read_input(tmp_path / "a.png")


def test_file_system_errors_are_one_line(tmp_path: Path, fitted, capsys) -> None:
    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    Image.fromarray(synthetic_images(1, size=32)[0].permute(1, 2, 0).numpy()).save(tmp_path / "p.png")
    (tmp_path / "dir.wvc").mkdir()
    assert main(["encode", str(tmp_path / "p.png"), "--model", str(model), "-o", str(tmp_path / "dir.wvc")]) == 2
    assert "is a directory" in capsys.readouterr().err
    # a folder nobody can create files in, even root: /proc refuses new files
    assert main(["encode", str(tmp_path / "p.png"), "--model", str(model), "-o", "/proc/wavecodec-test/p.wvc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "No such file" in err
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # as root, permissions do not bind and this part has nothing to test
            assert main(["encode", str(tmp_path / "p.png"), "--model", str(model), "-o", str(locked / "p.wvc")]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "Traceback" not in err and "ermission" in err
    finally:
        locked.chmod(0o700)


def test_resuming_with_a_changed_codec_names_the_field(tmp_path: Path) -> None:
    from wavecodec.training import TrainConfig, train

    folder = tmp_path / "img"
    folder.mkdir()
    for i, img in enumerate(synthetic_images(4, size=48, seed=3)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    base = dict(run_dir=str(tmp_path / "run"), train_data=str(folder), crop=32, batch_size=2, steps=4, workers=0, log_every=2,
                val_every=4, checkpoint_every=2, warmup=1, val_count=2, pca_batches=1,
                codec={"levels": 2, "latent_dim": 6, "decoder_width": 8, "decoder_depth": 1, "name": "tiny"})
    train(TrainConfig.from_dict(base), until=2)
    changed = {**base, "codec": {**base["codec"], "latent_dim": 5}}
    with pytest.raises(wavecodec.ConfigError, match="codec.latent_dim is 5 but the checkpoint"):
        train(TrainConfig.from_dict(changed), resume=True)


def _shard_src(tmp_path: Path, count: int = 6) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i, img in enumerate(synthetic_images(count, size=40, seed=5)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(src / f"{i}.png")
    return src


def test_a_second_conversion_into_the_same_folder_is_refused_and_stale_temps_go(tmp_path: Path, fitted) -> None:
    import fcntl

    from wavecodec.convert import convert

    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    src, dst = _shard_src(tmp_path), tmp_path / "dst"
    dst.mkdir()
    with open(dst / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(wavecodec.InputError, match="another conversion"):
            convert(str(src), str(dst), str(model), shard_size=2, workers=1)
    (dst / ".shard-000000.abc.tar.tmp").write_bytes(b"partial")
    index = convert(str(src), str(dst), str(model), shard_size=2, workers=1)
    assert index["count"] == 6 and not list(dst.glob("*.tmp"))


WORKER_SCRIPT = r"""
import os, sys, time, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from wavecodec.convert import _die_with_parent

def pid_then_sleep():
    return os.getpid()

def sleep():
    time.sleep(60)

if __name__ == "__main__":
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_die_with_parent) as pool:
        print(pool.submit(pid_then_sleep).result(), flush=True)
        pool.submit(sleep)
        time.sleep(60)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is a Linux feature")
def test_convert_workers_die_with_their_parent(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text(WORKER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the worker outlived its killed parent")


def test_chunks_too_small_to_bound_the_work_are_refused(audio_codec) -> None:
    x = torch.zeros(1, 2, 4000)
    with pytest.raises(ShapeError, match="chunk_frames"):
        compress(audio_codec, x, sample_rate=8000, chunk_frames=1)
    data = compress(audio_codec, torch.zeros(1, 2, 20_000), sample_rate=8000, chunk_frames=16)
    header = read_header(data)
    crafted = _rewrite(data, lambda h: h.update(chunk_frames=1, chunk_bytes=[len(unpack(data)[1]["latents"])] + [0] * 4999))
    with pytest.raises(FormatError, match="chunking"):
        decompress(audio_codec, crafted)
    assert header["chunk_frames"] == 16


def test_large_images_decode_in_tiles_that_join_without_seams(fitted) -> None:
    from wavecodec import compression

    x = synthetic_images(1, size=96, seed=4)
    data = fitted.compress(x)
    whole = fitted.decompress(data)
    before = compression.TILE
    compression.TILE = 7  # 24x24 latents in tiles of 7: every tile edge, wrap-around and image edge
    try:
        tiled = fitted.decompress(data)
    finally:
        compression.TILE = before
    assert tiled.shape == whole.shape and tiled.dtype == whole.dtype
    assert (tiled.int() - whole.int()).abs().max() <= 1  # float rounding only


def test_decoding_is_bit_exact_in_its_latents_and_within_a_level_in_its_pixels_across_threads(fitted) -> None:
    from wavecodec.compression import open_latents

    x = synthetic_images(1, size=256, seed=8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        data = fitted.compress(x)
        one = fitted.decompress(data)
        latents_one = open_latents(fitted, data)[1].all()
        torch.set_num_threads(2)
        two = fitted.decompress(data)
        latents_two = open_latents(fitted, data)[1].all()
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(latents_one, latents_two)
    assert (one.int() - two.int()).abs().max() <= 1


def test_convert_output_does_not_depend_on_the_worker_count(tmp_path: Path, fitted) -> None:
    import tarfile

    from wavecodec.convert import convert

    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    src = _shard_src(tmp_path, count=4)
    convert(str(src), str(tmp_path / "a"), str(model), shard_size=2, workers=1)
    convert(str(src), str(tmp_path / "b"), str(model), shard_size=2, workers=2)
    for shard in ("shard-000000.tar", "shard-000001.tar"):
        with tarfile.open(tmp_path / "a" / shard) as a, tarfile.open(tmp_path / "b" / shard) as b:
            wvc = [m.name for m in a.getmembers() if m.name.endswith(".wvc")]
            assert wvc and all(a.extractfile(n).read() == b.extractfile(n).read() for n in wvc)


def test_eval_reports_unreadable_files_and_goes_on(tmp_path: Path, fitted, capsys) -> None:
    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    src = _shard_src(tmp_path, count=2)
    (src / "broken.png").write_bytes(b"not a png")
    assert main(["eval", str(src), "--model", str(model), "-o", str(tmp_path / "r.json"), "--quiet"]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["files"]) == 2 and report["failed"][0]["file"].endswith("broken.png")
    assert "broken.png" in capsys.readouterr().err


def test_a_checkpoint_without_its_fingerprint_is_refused(tmp_path: Path, fitted) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    wavecodec.save(fitted, good)
    with safe_open(str(good), "pt") as f:
        meta = {k: v for k, v in (f.metadata() or {}).items() if k != "fingerprint"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["decoder.linear.bias"] = tensors["decoder.linear.bias"] + 1  # changed weights, no fingerprint to catch it
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="fingerprint"):
        wavecodec.load(tmp_path / "bad.safetensors")


def test_temporaries_of_killed_writers_are_cleaned_on_the_next_write(tmp_path: Path) -> None:
    from wavecodec.atomic import STALE_SECONDS, write_bytes

    old, fresh = tmp_path / ".out.bin.abc123.tmp", tmp_path / ".out.bin.def456.tmp"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"in progress")
    past = time.time() - STALE_SECONDS - 10
    os.utime(old, (past, past))
    write_bytes(tmp_path / "out.bin", b"done")
    assert (tmp_path / "out.bin").read_bytes() == b"done"
    assert not old.exists() and fresh.exists()  # a live writer's temporary is left alone


def test_large_images_encode_in_tiles_with_progress_and_the_same_latents(fitted) -> None:
    from wavecodec import compression
    from wavecodec.compression import open_latents

    x = synthetic_images(1, size=96, seed=6)
    whole = fitted.compress(x)
    calls: list[tuple[int, int]] = []
    before = compression.TILE
    compression.TILE = 7
    try:
        tiled = fitted.compress(x, progress=lambda done, total: calls.append((done, total)))
        decoded = []
        fitted.decompress(tiled)
        compression.decompress(fitted, tiled, progress=lambda done, total: decoded.append((done, total)))
    finally:
        compression.TILE = before
    a, b = open_latents(fitted, whole)[1].all(), open_latents(fitted, tiled)[1].all()
    assert (a != b).mean() < 1e-3  # float rounding may flip a latent on a rounding boundary, no more
    assert calls[-1] == (16, 16) and len(calls) == 16  # 24x24 latents in tiles of 7: 4 x 4 tiles
    assert decoded[-1] == (16, 16)

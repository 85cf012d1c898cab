"""The command line, through main(argv) and through a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import wavecodec.images
from wavecodec.cli import main


def test_demo_compresses_the_bundled_photo(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(1, 192, 64, 64)" in out
    assert float(out.split("max abs reconstruction error ")[1].split()[0]) < 1e-9
    size = (tmp_path / "astronaut.wvc").stat().st_size
    assert f"{size:,} bytes" in out
    psnr = float(out.split("decoded PSNR:")[1].split()[0])
    decoded = np.asarray(Image.open(tmp_path / "astronaut_decoded.png")).astype(float)
    original = np.asarray(Image.open(wavecodec.images.BUNDLED_PHOTO)).astype(float)
    assert abs(psnr - 10 * np.log10(255**2 / ((decoded - original) ** 2).mean())) < 0.01
    assert psnr > 20


def test_demo_on_user_image_and_missing_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 24, 3)) * 255).astype(np.uint8)).save(path)
    assert main(["demo", str(path), "--levels", "2", "--output-dir", str(tmp_path)]) == 0
    assert "(1, 48, 10, 6)" in capsys.readouterr().out
    assert (tmp_path / "photo_decoded.png").exists()
    assert main(["demo", str(tmp_path / "nope.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavecodec: error:") and "no such file" in err and "Traceback" not in err


def test_subprocess_help_and_user_error(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "wavecodec.cli", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "demo" in ok.stdout
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    res = subprocess.run([sys.executable, "-m", "wavecodec.cli", "demo", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "not a readable image" in res.stderr


# -- encode / decode / info / models ---------------------------------------------------
import json  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import wavecodec  # noqa: E402
from helpers import synthetic_images  # noqa: E402


@pytest.fixture
def model_path(fitted, tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    wavecodec.save(fitted, path)
    return path


def _photo(path: Path, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    arr = synthetic_images(1, size=40, seed=seed)[0].permute(1, 2, 0).numpy()[:37]
    img = Image.fromarray(arr).convert(mode)
    img.save(path)
    return np.asarray(img)


def test_encode_decode_info_round_trip(model_path: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "photo.png"
    original = _photo(src)
    assert main(["encode", str(src), "--model", str(model_path)]) == 0
    wvc = tmp_path / "photo.wvc"
    assert wvc.exists() and " bpp" in capsys.readouterr().out
    assert main(["decode", str(wvc), "--model", str(model_path)]) == 2  # would overwrite photo.png
    assert "exists; pass --force" in capsys.readouterr().err
    (tmp_path / "photo.png").rename(tmp_path / "original.png")
    assert main(["decode", str(wvc), "--model", str(model_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    decoded = np.asarray(Image.open(tmp_path / "photo.png"))
    assert decoded.shape == original.shape
    assert np.abs(decoded.astype(int) - original.astype(int)).mean() < 20
    assert main(["info", str(wvc), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bytes"] == wvc.stat().st_size and info["shape"] == [37, 40]
    assert info["bpp"] == pytest.approx(8 * info["bytes"] / (37 * 40))
    assert main(["info", str(wvc)]) == 0 and "compression_ratio" in capsys.readouterr().out


def test_refuses_to_overwrite_without_force(model_path: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "a.png"
    _photo(src)
    out = tmp_path / "a.wvc"
    out.write_bytes(b"keep me")
    assert main(["encode", str(src), "--model", str(model_path)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(["encode", str(src), "--model", str(model_path), "--force", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89WVC"


def test_gray_and_rgba_images_and_coders(model_path: Path, tmp_path: Path) -> None:
    for mode, coder in [("L", "webp"), ("RGBA", "raw"), ("RGB", "ans-iid")]:
        src = tmp_path / f"img_{mode}.png"
        original = _photo(src, mode=mode)
        assert main(["encode", str(src), "--model", str(model_path), "--coder", coder, "--quiet"]) == 0
        out = tmp_path / f"out_{mode}.png"
        assert main(["decode", str(src.with_suffix(".wvc")), "--model", str(model_path), "-o", str(out), "--quiet"]) == 0
        assert np.asarray(Image.open(out)).shape == original.shape


def test_directory_trees_are_mirrored(model_path: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    _photo(root / "one.png", 1)
    _photo(root / "sub" / "two.png", 2)
    (root / "notes.txt").write_text("ignored")
    (root / "sub" / "broken.png").write_bytes(b"not a png")
    assert main(["encode", str(root), "--model", str(model_path), "--quiet"]) == 1  # one bad file
    assert "broken.png" in capsys.readouterr().err
    out = tmp_path / "photos_wvc"
    assert (out / "one.wvc").exists() and (out / "sub" / "two.wvc").exists()  # one rule: the type suffix becomes .wvc
    assert main(["decode", str(out), "--model", str(model_path), "-o", str(tmp_path / "back"), "--quiet"]) == 0
    assert (tmp_path / "back" / "sub" / "two.png").exists()


def test_one_naming_rule_for_files_and_folders_and_lossless_outputs(model_path: Path, tmp_path: Path, capsys) -> None:
    from wavecodec.cli import decoded_name, encoded_name

    assert encoded_name(Path("a/photo.jpg")) == "photo.wvc" and encoded_name(Path("brain.nii.gz")) == "brain.wvc"
    image = {"modality": "image", "shape": [4, 4], "dtype": "uint8", "input_channels": 3}
    assert decoded_name(Path("photo.wvc"), image) == "photo.png"  # a JPEG source is not decoded to a second JPEG
    assert decoded_name(Path("photo.jpg.wvc"), image) == "photo.png"  # older names lose their type suffix too
    assert decoded_name(Path("photo.wvc"), image, "jpg") == "photo.jpg"
    volume = {"modality": "volume", "shape": [4, 4, 4], "dtype": "int16", "input_channels": 1}
    assert decoded_name(Path("brain.wvc"), volume) == "brain.nii.gz"
    root = tmp_path / "photos"
    root.mkdir()
    _photo(root / "x.png", 1)
    Image.open(root / "x.png").convert("RGB").save(root / "x.jpg")
    assert main(["encode", str(root), "--model", str(model_path), "--quiet"]) == 2  # x.png and x.jpg would collide
    assert "would both be written as" in capsys.readouterr().err
    (root / "x.jpg").unlink()
    _photo(tmp_path / "single.png", 3)
    assert main(["encode", str(tmp_path / "single.png"), "--model", str(model_path), "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "single.wvc"), "--model", str(model_path), "--format", "tif", "--quiet"]) == 0
    assert (tmp_path / "single.tif").exists()


def test_user_errors_are_one_line(model_path: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.wvc"
    bad.write_bytes(b"\x89WVC\r\n\x1a\n" + b"\x00" * 3)
    cases = [
        ["decode", str(bad), "--model", str(model_path)],
        ["info", str(tmp_path / "missing.wvc")],
        ["encode", str(tmp_path / "missing.png"), "--model", str(model_path)],
        ["encode", str(model_path), "--model", str(model_path)],
        ["encode", str(tmp_path / "x.png")],
    ]
    (tmp_path / "x.png").write_bytes(b"")
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("wavecodec: error:") and err.count("\n") == 1, err


def test_decode_needs_the_model_the_file_names(model_path: Path, fitted, tmp_path: Path, capsys) -> None:
    src = tmp_path / "p.png"
    _photo(src)
    main(["encode", str(src), "--model", str(model_path), "--quiet"])
    assert main(["decode", str(tmp_path / "p.wvc"), "-o", str(tmp_path / "o.png")]) == 2
    assert "not shipped; pass --model" in capsys.readouterr().err


def test_models_command(capsys) -> None:
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == [m.name for m in wavecodec.models()]
    assert "rgb-16x-linear" in [m["name"] for m in listed]
    assert main(["models"]) == 0 and "dev_psnr_db" in capsys.readouterr().out


def test_encode_without_model_uses_the_shipped_image_model(tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    _photo(src)
    assert main(["encode", str(src), "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "p.wvc"), "-o", str(tmp_path / "back.png"), "--quiet"]) == 0
    assert np.asarray(Image.open(tmp_path / "back.png")).shape == (37, 40, 3)


def test_subprocess_encode_decode(model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "s.png"
    _photo(src)
    run = lambda *a: subprocess.run([sys.executable, "-m", "wavecodec.cli", *a], capture_output=True, text=True)  # noqa: E731
    res = run("encode", str(src), "--model", str(model_path), "-o", str(tmp_path / "s.wvc"))
    assert res.returncode == 0, res.stderr
    res = run("decode", str(tmp_path / "s.wvc"), "--model", str(model_path), "-o", str(tmp_path / "s2.png"))
    assert res.returncode == 0 and (tmp_path / "s2.png").exists()
    res = run("encode", "--help")
    assert res.returncode == 0 and "--coder" in res.stdout


def test_eval_reports_real_sizes_and_quality(model_path: Path, fitted, tmp_path: Path, capsys) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    originals = {f"{i}.png": _photo(root / f"{i}.png", seed=i) for i in range(2)}
    out = tmp_path / "eval.json"
    assert main(["eval", str(root), "--model", str(model_path), "-o", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert len(report["files"]) == 2
    for row in report["files"]:
        x = torch.from_numpy(originals[Path(row["file"]).name].copy()).permute(2, 0, 1)[None]
        data = fitted.compress(x)
        assert row["bytes"] == len(data)
        assert row["bpp"] == pytest.approx(8 * len(data) / (37 * 40))
        y = fitted.decompress(data)
        mse = ((y.double() - x.double()) ** 2).mean().item()
        assert row["psnr"] == pytest.approx(10 * np.log10(255**2 / mse))
        assert 0 < row["ms_ssim"] <= 1 and row["dimension_reduction"] == 8
        from wavecodec.metrics import ssimulacra2

        assert row["ssimulacra2"] == pytest.approx(ssimulacra2(x, y)) and row["ssimulacra2"] < 100
    assert report["results"]["bpp"][0] == pytest.approx(np.mean([r["bpp"] for r in report["files"]]))
    assert main(["eval", str(root), "--model", str(model_path)]) == 0
    assert "SSIMU2" in capsys.readouterr().out
    assert main(["eval", str(root), "--model", str(model_path), "--no-perceptual", "-o", str(out), "--quiet"]) == 0
    assert "ssimulacra2" not in json.loads(out.read_text())["files"][0]
    assert "SSIMU2" not in capsys.readouterr().out


def test_encode_step_option_makes_smaller_files(model_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    _photo(src)
    assert main(["encode", str(src), "--model", str(model_path), "-o", str(tmp_path / "a.wvc"), "--quiet"]) == 0
    assert main(["encode", str(src), "--model", str(model_path), "-o", str(tmp_path / "b.wvc"), "--step", "4", "--quiet"]) == 0
    assert (tmp_path / "b.wvc").stat().st_size < (tmp_path / "a.wvc").stat().st_size
    assert main(["encode", str(src), "--model", str(model_path), "-o", str(tmp_path / "c.wvc"), "--step", "0.1"]) == 2


def test_decode_precision_flags(model_path: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "photo.png"
    _photo(src)
    assert main(["encode", str(src), "--model", str(model_path)]) == 0
    wvc = tmp_path / "photo.wvc"
    decoded = {}
    for flags in ([], ["--fast"], ["--int8"]):
        out = tmp_path / f"out{''.join(flags)}.png"
        assert main(["decode", str(wvc), "--model", str(model_path), "-o", str(out), *flags]) == 0
        decoded[tuple(flags)] = np.asarray(Image.open(out)).astype(int)
    for flags in (("--fast",), ("--int8",)):
        assert np.abs(decoded[flags] - decoded[()]).max() <= 4
    with pytest.raises(SystemExit) as exit_info:  # one precision at a time
        main(["decode", str(wvc), "--fast", "--int8"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    reports = {}
    for flags in ([], ["--int8"]):  # eval measures the decode it is asked for
        out = tmp_path / f"eval{''.join(flags)}.json"
        assert main(["eval", str(src), "--model", str(model_path), "-o", str(out), "--quiet", "--no-perceptual", *flags]) == 0
        reports[tuple(flags)] = json.loads(out.read_text())["files"][0]["psnr"]
    assert abs(reports[("--int8",)] - reports[()]) < 0.1

"""The command line, through main(argv) and through a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from wavecodec.cli import main


def test_demo_reports_perfect_reconstruction(capsys) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "(1, 192, 64, 64)" in out
    err = float(out.split("max abs error ")[1].split()[0])
    assert err < 1e-9


def test_demo_on_user_image_and_missing_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "gray.png"
    Image.fromarray((np.random.default_rng(0).random((40, 24)) * 255).astype(np.uint8)).save(path)
    assert main(["demo", str(path), "--levels", "2"]) == 0
    assert "(1, 16, 10, 6)" in capsys.readouterr().out
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

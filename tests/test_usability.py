"""What a new user meets first: the top-level API, everyday inputs, model names, units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import wavecodec
from helpers import synthetic_images
from wavecodec.cli import main


def test_numpy_hwc_and_pillow_images_are_coded_like_the_tensor(fitted) -> None:
    x = synthetic_images(1, size=40)[0]  # (3, 40, 40) uint8
    hwc = x.permute(1, 2, 0).numpy()
    expected = fitted.compress(x)
    assert fitted.compress(hwc) == expected
    assert fitted.compress(Image.fromarray(hwc)) == expected
    gray = hwc[:, :, 0]
    assert fitted.decompress(fitted.compress(gray)).shape == (1, 1, 40, 40)  # a 2-D array is one gray channel


def test_top_level_compress_and_decompress_pick_the_shipped_models() -> None:
    from wavecodec.compression import read_header
    from wavecodec.paths import BUNDLED_PHOTO

    photo = Image.open(BUNDLED_PHOTO)
    data = wavecodec.compress(photo)
    assert read_header(data)["model"] == "rgb-storage" and read_header(data)["quality"] == 75
    out = wavecodec.decompress(data)
    assert out.shape == (1, 3, photo.height, photo.width) and out.dtype == torch.uint8
    gray = wavecodec.compress(np.asarray(photo.convert("L")))
    assert read_header(gray)["model"] == "gray-storage" and read_header(gray)["quality"] == 75


def test_an_export_may_not_silently_take_a_shipped_models_name(tmp_path: Path, capsys) -> None:
    from test_training import tiny
    from wavecodec.training import train

    folder = tmp_path / "img"
    folder.mkdir()
    for i, img in enumerate(synthetic_images(4, size=48, seed=3)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    cfg = tiny(folder, tmp_path / "run", steps=2, codec={"levels": 2, "latent_dim": 6, "decoder_width": 8,
                                                           "decoder_depth": 1, "name": "rgb-16x"})
    train(cfg)
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "m.safetensors")]) == 2
    assert "name of a shipped model; pass --name" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "m.safetensors"), "--name", "mine", "--quiet"]) == 0
    assert wavecodec.load(tmp_path / "m.safetensors").config.name == "mine"


def test_rates_are_in_the_units_of_each_kind(tmp_path: Path, fitted, capsys) -> None:
    from wavecodec.cli import rate_of
    from wavecodec.compression import read_header

    image = read_header(fitted.compress(synthetic_images(1, size=32)))
    assert set(rate_of(1000, image)) == {"bpp"}
    audio = {**image, "modality": "audio", "sample_rate": 8000, "shape": [16000], "input_channels": 2, "batch": 1}
    rates = rate_of(1000, audio)
    assert rates["kbps"] == pytest.approx(8 * 1000 / 2.0 / 1000)
    volume = {**image, "modality": "volume", "shape": [4, 4, 4]}
    assert set(rate_of(1000, volume)) == {"bits_per_voxel"}


def test_a_same_named_model_mismatch_says_so(fitted) -> None:
    other = wavecodec.Codec(fitted.config).eval()  # same name, other weights
    with pytest.raises(wavecodec.FormatError, match="two different models carry that name"):
        other.decompress(fitted.compress(synthetic_images(1, size=32)))


@pytest.fixture(scope="module")
def two_class_shards(tmp_path_factory, fitted) -> Path:
    from wavecodec.convert import convert

    root = tmp_path_factory.mktemp("classes")
    for cls in ("a", "b"):
        (root / "src" / cls).mkdir(parents=True)
        for i, img in enumerate(synthetic_images(6, size=64, seed=ord(cls))):
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / "src" / cls / f"{i}.png")
    model = root / "m.safetensors"
    wavecodec.save(fitted, model)
    convert(str(root / "src"), str(root / "lat"), str(model), labels_from_folders=True, shard_size=3, workers=1)
    return root / "lat"


def test_shards_mix_the_classes(two_class_shards: Path) -> None:
    from wavecodec.data import LatentDataset

    ds = LatentDataset(two_class_shards)
    labels = [ds[i][1] for i in range(len(ds))]
    assert sorted(labels) == [0] * 6 + [1] * 6
    firsts = labels[:6]
    assert 0 < sum(firsts) < 6  # sorted by class, the first two shards would hold one class only


def test_random_crops_differ_between_workers_and_epochs_and_repeat_with_a_seed(two_class_shards: Path) -> None:
    from torch.utils.data import DataLoader

    from wavecodec.data import LatentDataset

    def epoch_crops(ds: LatentDataset, workers: int) -> list[torch.Tensor]:
        return [x for x, _ in DataLoader(ds, batch_size=1, num_workers=workers, shuffle=False)]

    ds = LatentDataset(two_class_shards, crop=4)
    one, two = epoch_crops(ds, 2), epoch_crops(ds, 2)  # each epoch draws new base seeds for its workers
    assert any(not torch.equal(a, b) for a, b in zip(one, two))
    seeded = LatentDataset(two_class_shards, crop=4, seed=7)
    first = [seeded[i][0] for i in range(len(seeded))]
    assert all(torch.equal(a, seeded[i][0]) for i, a in enumerate(first))  # a seed makes an epoch repeatable
    seeded.set_epoch(1)
    assert any(not torch.equal(a, seeded[i][0]) for i, a in enumerate(first))  # and the next epoch differs
    # two workers do not draw the same crops: the same item's generator, asked in each worker
    unseeded = LatentDataset(two_class_shards, crop=4)

    class Probe(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> float:
            return unseeded._rng(0).random()

    draws = [float(v) for v in DataLoader(Probe(), batch_size=1, num_workers=2)]
    assert draws[0] != draws[1]


def test_shard_streams_reshuffle_per_epoch_and_split_across_ranks(two_class_shards: Path, monkeypatch) -> None:
    from wavecodec import data

    stream = data.LatentShards(two_class_shards, shuffle=4, seed=3)
    orders = []
    for epoch in range(4):
        stream.set_epoch(epoch)
        orders.append(stream.shards())
    assert sorted(orders[0]) == sorted(s["name"] for s in data.read_index(two_class_shards)["shards"])
    assert len({tuple(o) for o in orders}) > 1  # the shard order changes between epochs
    stream.set_epoch(0)
    monkeypatch.setattr(data, "_rank", lambda: (0, 2))
    rank0 = stream.shards()
    monkeypatch.setattr(data, "_rank", lambda: (1, 2))
    rank1 = stream.shards()
    assert not set(rank0) & set(rank1) and sorted(rank0 + rank1) == sorted(orders[0])


def test_help_answers_without_importing_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, contextlib, io, wavecodec.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        wavecodec.cli.main(['--help'])\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-500:]


def test_a_missing_optional_dependency_names_its_extra() -> None:
    from wavecodec.errors import need

    with pytest.raises(wavecodec.InputError, match=r"drawing plots needs no_such_module: pip install 'wavecodec\[plots\]'"):
        need("no_such_module.sub", "plots", "drawing plots")
    assert need("json", "x", "y").dumps([1]) == "[1]"


def test_several_inputs_options_people_expect_and_help_with_defaults(fitted, tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    for i in range(3):
        Image.fromarray(synthetic_images(1, size=32, seed=i)[0].permute(1, 2, 0).numpy()).save(tmp_path / f"p{i}.png")
    inputs = [str(tmp_path / f"p{i}.png") for i in range(3)]
    assert main(["encode", *inputs, "--model", str(model), "-o", str(tmp_path / "coded"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "coded").iterdir()) == ["p0.wvc", "p1.wvc", "p2.wvc"]
    coded = [str(p) for p in sorted((tmp_path / "coded").iterdir())]
    assert main(["decode", *coded, "--model", str(model), "-o", str(tmp_path / "back"), "--quiet", "--device", "cpu"]) == 0
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert main(["decode", coded[0], "--model", str(model), "--device", "no-such-device", "--quiet", "--force"]) == 2
    assert "no such device" in capsys.readouterr().err
    assert main(["eval", inputs[0], "--model", str(model), "-o", str(tmp_path / "r.json"), "--quiet"]) == 0
    assert (tmp_path / "r.json").exists()
    from wavecodec.cli import build_parser

    parser = build_parser()
    for command, default in (("learn", "default: 10"), ("export", "default: 8")):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        assert default in " ".join(capsys.readouterr().out.split())
    assert parser.parse_args(["train", "-o", "runs/x"]).run_dir == "runs/x"
    assert parser.parse_args(["demo", "-o", "out/x"]).output_dir == "out/x"


def test_pipes_and_several_quantization_steps_in_one_eval(fitted, tmp_path: Path) -> None:
    import subprocess
    import sys

    model = tmp_path / "m.safetensors"
    wavecodec.save(fitted, model)
    Image.fromarray(synthetic_images(1, size=40, seed=2)[0].permute(1, 2, 0).numpy()).save(tmp_path / "p.png")
    cli = [sys.executable, "-m", "wavecodec.cli"]
    coded = subprocess.run(cli + ["encode", "-", "--model", str(model)], input=(tmp_path / "p.png").read_bytes(),
                           capture_output=True, timeout=120)
    assert coded.returncode == 0 and coded.stdout[:4] == b"\x89WVC"
    decoded = subprocess.run(cli + ["decode", "-", "--model", str(model)], input=coded.stdout, capture_output=True, timeout=120)
    assert decoded.returncode == 0 and decoded.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", str(tmp_path / "p.png"), "--model", str(model), "--quant-step", "1", "3", "-o",
                 str(tmp_path / "curve.json"), "--quiet"]) == 0
    import json

    curve = json.loads((tmp_path / "curve.json").read_text())["curve"]
    assert [r["quant_step"] for r in curve] == [1.0, 3.0] and curve[1]["results"]["bpp"][0] < curve[0]["results"]["bpp"][0]


def test_decoding_a_large_image_keeps_memory_near_one_tile(fitted, tmp_path: Path) -> None:
    """A 10-megapixel photo decoded in tiles: memory grows by far less than a float copy of the image (120 MB)."""
    import subprocess
    import sys

    code = f"""
import resource, torch, numpy as np, wavecodec
from wavecodec import compression
codec = wavecodec.load({str(tmp_path / 'm.safetensors')!r})
data = open({str(tmp_path / 'big.wvc')!r}, 'rb').read()
compression.open_latents(codec, data)[1].all()  # warm the coder: what follows is the decode itself
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = codec.decompress(data)
print(out.shape, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    wavecodec.save(fitted, tmp_path / "m.safetensors")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.repeat(np.repeat(rng.integers(0, 255, (3, 325, 250), dtype=np.uint8), 8, 1), 16, 2))[None]
    (tmp_path / "big.wvc").write_bytes(fitted.compress(x))  # 2600 x 4000 = 10.4 MP
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-800:]
    shape, grown_mb = out.stdout.rsplit(" ", 1)
    assert "2600, 4000" in shape
    assert float(grown_mb) < 100  # the uint8 output is 31 MB; the image as floats would be 125 MB, its subbands more

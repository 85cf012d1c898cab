"""Variable-rate models: the quality knob, its file field, the bit-rate search, and training at every rung."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import wavecodec
from helpers import synthetic_images
from wavecodec import CodecConfig, ConfigError, FormatError, ShapeError
from wavecodec.cli import main
from wavecodec.compression import compress_to_bpp, decompress, read_header
from wavecodec.container import pack, unpack
from wavecodec.fitting import pca_init
from wavecodec.model import Codec


@pytest.fixture(scope="module")
def ladder() -> Codec:
    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, latent_bits=10, decoder_width=8, decoder_depth=1,
                              rate_lambdas=(0.001, 0.01, 0.1), name="test-ladder"))
    pca_init(codec, synthetic_images(16, seed=1).split(8))
    with torch.no_grad():  # rungs 1x, 8x and 64x coarser, channel 5 coarser still (a trained ladder looks like this)
        codec.rates.log_steps.copy_(torch.log(torch.tensor([[1.0], [8.0], [64.0]])).repeat(1, 6))
        codec.rates.log_steps[:, 5] += 1.0
    return codec.eval()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(255.0**2 / ((a.double() - b.double()) ** 2).mean()))


def test_quality_moves_rate_and_distortion_the_same_way(ladder: Codec) -> None:
    x = synthetic_images(1, size=64, seed=3)
    sizes, scores = [], []
    for q in (0, 30, 60, 75, 100):
        data = ladder.compress(x, quality=q)
        assert read_header(data)["quality"] == q
        y = ladder.decompress(data)
        sizes.append(len(data))
        scores.append(psnr(x, y))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert scores[-1] > scores[0] + 3
    # no quality given: the default, recorded in the file
    assert read_header(ladder.compress(x))["quality"] == wavecodec.rates.DEFAULT_QUALITY


def test_steps_interpolate_geometrically_between_rungs(ladder: Codec) -> None:
    assert torch.allclose(ladder.quantization_step(1.0, 100), torch.tensor([1.0] * 5 + [np.e]))
    assert torch.allclose(ladder.quantization_step(1.0, 50)[:5], torch.full((5,), 8.0))
    assert torch.allclose(ladder.quantization_step(1.0, 75)[:5], torch.full((5,), 8**0.5))  # halfway in log
    assert torch.allclose(ladder.quantization_step(2.0, 0)[:5], torch.full((5,), 128.0))  # --step multiplies
    for bad in (-1, 100.5, "high", True):
        with pytest.raises(ShapeError, match="quality must be a number from 0 to 100"):
            ladder.quantization_step(1.0, bad)


def test_a_fixed_rate_model_refuses_a_quality(fitted: Codec) -> None:
    x = synthetic_images(1, size=32)
    with pytest.raises(ShapeError, match="single rate"):
        fitted.compress(x, quality=50)
    with pytest.raises(ShapeError, match="single rate"):
        compress_to_bpp(fitted, x, 1.0)
    assert "quality" not in read_header(fitted.compress(x))  # fixed-rate files stay as they were


def test_the_quality_field_is_checked(ladder: Codec, fitted: Codec) -> None:
    x = synthetic_images(1, size=32)
    header, sections = unpack(ladder.compress(x, quality=40))
    for bad in (101, -3, "40", None):
        forged = dict(header)
        if bad is None:
            del forged["quality"]
        else:
            forged["quality"] = bad
        with pytest.raises(FormatError):
            decompress(ladder, pack(forged, sections))
    header, sections = unpack(fitted.compress(x))
    with pytest.raises(FormatError, match="quality"):
        decompress(fitted, pack({**header, "quality": 50.0}, sections))


def test_bpp_search_lands_within_three_percent(ladder: Codec) -> None:
    x = synthetic_images(1, size=96, seed=5)
    low = 8 * len(ladder.compress(x, quality=0)) / 96**2
    high = 8 * len(ladder.compress(x, quality=100)) / 96**2
    for target in (low + 0.3 * (high - low), low + 0.7 * (high - low)):
        data, quality = compress_to_bpp(ladder, x, target)
        assert abs(8 * len(data) / 96**2 - target) <= 0.03 * target
        assert read_header(data)["quality"] == pytest.approx(quality)
        assert decompress(ladder, data).signal.shape == x.shape
    with pytest.raises(ShapeError, match="outside what model"):
        compress_to_bpp(ladder, x, 10 * high)


def test_cli_quality_and_bpp(ladder: Codec, fitted: Codec, tmp_path: Path, capsys) -> None:
    model, fixed = tmp_path / "ladder.safetensors", tmp_path / "fixed.safetensors"
    wavecodec.save(ladder, model)
    wavecodec.save(fitted, fixed)
    src = tmp_path / "p.png"
    Image.fromarray(synthetic_images(1, size=96, seed=2)[0].permute(1, 2, 0).numpy()).save(src)
    out = {q: tmp_path / f"q{q}.wvc" for q in (20, 90)}
    for q, path in out.items():
        assert main(["encode", str(src), "--model", str(model), "-o", str(path), "--quality", str(q), "--quiet"]) == 0
        assert read_header(path.read_bytes())["quality"] == q
    assert out[20].stat().st_size < out[90].stat().st_size
    target = 8 * (out[20].stat().st_size + out[90].stat().st_size) / 2 / 96**2
    assert main(["encode", str(src), "--model", str(model), "-o", str(tmp_path / "b.wvc"), "--bpp", f"{target:.4f}", "--quiet"]) == 0
    assert abs(8 * (tmp_path / "b.wvc").stat().st_size / 96**2 - target) <= 0.03 * target
    assert main(["decode", str(tmp_path / "b.wvc"), "--model", str(model), "-o", str(tmp_path / "b.png"), "--quiet"]) == 0
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == (96, 96, 3)
    capsys.readouterr()
    assert main(["encode", str(src), "--model", str(fixed), "-o", str(tmp_path / "f.wvc"), "--quality", "50"]) == 2
    err = capsys.readouterr().err.strip()
    assert "single rate" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_config_checks_the_ladder() -> None:
    for bad in ((0.01, 0.001), (0.001, 0.001), (-1.0,), ("a",)):
        with pytest.raises(ConfigError, match="rate_lambdas"):
            CodecConfig(rate_lambdas=bad)
    assert "rate_lambdas" not in CodecConfig().to_dict()  # fixed-rate configs (and fingerprints) are unchanged
    cfg = CodecConfig(rate_lambdas=[0.001, 0.01])
    assert CodecConfig.from_json(json.dumps(cfg.to_dict())) == cfg


def test_training_visits_every_rung_with_its_lambda(tmp_path: Path) -> None:
    from wavecodec.training import TrainConfig, export, train

    data = tmp_path / "photos"
    data.mkdir()
    for i, img in enumerate(synthetic_images(6, size=64, seed=4)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(data / f"{i}.png")
    cfg = TrainConfig.from_dict({
        "run_dir": str(tmp_path / "run"), "train_data": str(data), "crop": 32, "batch_size": 2, "steps": 6, "workers": 0,
        "log_every": 1, "val_every": 100, "checkpoint_every": 100, "pca_batches": 1, "val_count": 2,
        "codec": {"channels": 3, "levels": 2, "latent_dim": 4, "latent_bits": 10, "decoder_width": 8, "decoder_depth": 1,
                  "rate_lambdas": [0.001, 0.01, 0.1], "name": "t"}})
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    rungs = [r["rung"] for r in rows if r["kind"] == "train"]
    assert sorted(set(rungs)) == [0, 1, 2]
    codec = export(tmp_path / "run", tmp_path / "t.safetensors", fit_batches=1)
    assert wavecodec.load(tmp_path / "t.safetensors").config.rate_lambdas == (0.001, 0.01, 0.1)
    assert codec.rates is not None and not torch.allclose(codec.rates.log_steps[0], codec.rates.log_steps[2])


def test_an_int8_decoder_is_calibrated_at_both_ends_of_the_ladder(ladder: Codec) -> None:
    from wavecodec.quantized import SEEDS

    latents = ladder.calibration_latents()
    assert len(latents) == 3 * SEEDS  # quality 0, the default and 100 for each signal
    coarsest, finest = latents[0], latents[2]
    assert torch.unique(coarsest[:, 0]).numel() < torch.unique(finest[:, 0]).numel()


def _gained() -> Codec:
    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, latent_bits=10, decoder_width=8, decoder_depth=1,
                              rate_lambdas=(0.001, 0.01, 0.1), rate_gains=True, name="test-gains"))
    pca_init(codec, synthetic_images(16, seed=1).split(8))
    with torch.no_grad():
        codec.rates.log_steps.copy_(torch.log(torch.tensor([[1.0], [8.0], [64.0]])).repeat(1, 6))
    return codec.eval()


def test_rate_gains_scale_what_the_decoder_gets_not_the_symbols() -> None:
    with pytest.raises(ConfigError, match="rate_gains"):
        CodecConfig(rate_gains=True)  # gains belong to rungs
    for bad in ({"rate_model": "laplace"}, {"rate_model": "gauss", "rate_lambdas": [0.01]}):
        with pytest.raises(ConfigError, match="rate_model"):
            CodecConfig(**bad)
    assert "rate_model" not in CodecConfig(rate_lambdas=[0.01]).to_dict()
    assert "rate_gains" not in CodecConfig(rate_lambdas=[0.01]).to_dict()  # ladders without gains keep their fingerprints
    first, codec = _gained(), _gained()
    x = synthetic_images(1, size=32, seed=5)
    plain = first.compress(x, quality=50)
    with torch.no_grad():
        codec.rates.log_gains[1].fill_(math.log(0.5))  # the middle rung halves every latent on the way to the decoder
    assert torch.allclose(codec.reconstruction_step(quality=50), 0.5 * codec.quantization_step(quality=50))
    assert torch.allclose(codec.reconstruction_step(quality=100), codec.quantization_step(quality=100))
    halved = codec.compress(x, quality=50)
    q = decompress_symbols(codec, halved)
    assert torch.equal(q, decompress_symbols(first, plain))  # the same symbols: gains act on decoding only
    expected = codec.decode(codec.dequantize(q, codec.reconstruction_step(quality=50)), size=x.shape[2:], dtype=x.dtype)
    assert torch.equal(codec.decompress(halved), expected)
    assert not torch.equal(codec.decompress(halved), codec.decode(codec.dequantize(q, codec.quantization_step(quality=50)),
                                                                    size=x.shape[2:], dtype=x.dtype))


def decompress_symbols(codec: Codec, data: bytes) -> torch.Tensor:
    from wavecodec.compression import open_latents

    return torch.from_numpy(open_latents(codec, data)[1].all())


def test_rounded_decoder_input_rounds_for_the_decoder_and_lets_gradients_through() -> None:
    codec = _gained().train()
    with torch.no_grad():  # a rate model that is not flat, so that noise changes the rate
        for entropy in codec.rates.entropy:
            entropy.logits.copy_(torch.randn(entropy.logits.shape, generator=torch.Generator().manual_seed(3)))
    x = synthetic_images(2, size=32, seed=6).float() / 255
    torch.manual_seed(1)
    a, la = codec(x, rung=1, rounded=True)
    torch.manual_seed(2)
    b, lb = codec(x, rung=1, rounded=True)
    assert torch.equal(a, b) and not torch.equal(la["bpp"], lb["bpp"])  # the decoder sees rounding, the rate noise
    c, _ = codec(x, rung=1)
    assert not torch.equal(a, c)
    with torch.no_grad():  # what the decoder saw: the latents of eval mode, rounded at the rung's step
        step = codec.quantization_step(quality=50)
        latents = codec.encode(x)
        y = codec.decode(codec.dequantize(codec.quantize(latents, step), codec.reconstruction_step(quality=50)), size=(32, 32))
    assert torch.allclose(a.detach().clamp(0, 1), y, atol=1e-5)  # (training output is unclamped)
    (la["mse"] + 0.01 * la["bpp"]).backward()
    assert codec.encoder.proj.weight.grad.abs().sum() > 0 and codec.rates.log_gains.grad[1].abs().sum() > 0
    assert codec.rates.log_gains.grad[0].abs().sum() == 0  # other rungs' gains are untouched


def test_balanced_rungs_scale_each_loss_by_its_own_error(tmp_path: Path) -> None:
    from wavecodec.entropy import LaplaceRate
    from wavecodec.training import TrainConfig, export, train
    from wavecodec.training.loop import BALANCED_MSE

    data = tmp_path / "photos"
    data.mkdir()
    for i, img in enumerate(synthetic_images(4, size=64, seed=7)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(data / f"{i}.png")
    lambdas = [0.001, 0.01, 0.1]
    cfg = TrainConfig.from_dict({
        "run_dir": str(tmp_path / "run"), "train_data": str(data), "crop": 32, "batch_size": 2, "steps": 6, "workers": 0,
        "log_every": 1, "val_every": 100, "checkpoint_every": 100, "pca_batches": 1, "val_count": 2,
        "balance_rungs": True, "rounded_decoder_input": True,
        "codec": {"channels": 3, "levels": 2, "latent_dim": 4, "latent_bits": 10, "decoder_width": 8, "decoder_depth": 1,
                  "rate_lambdas": lambdas, "rate_gains": True, "rate_model": "laplace", "name": "t"}})
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert len(train_rows) == 6
    for r in train_rows:
        unbalanced = r["mse"] + lambdas[r["rung"]] * r["bpp"]
        assert r["loss"] == pytest.approx(unbalanced * BALANCED_MSE / r["mse"], rel=1e-4)
    codec = export(tmp_path / "run", tmp_path / "t.safetensors", fit_batches=1)
    scales = [float(m.log_scale.detach().exp().mean()) for m in codec.rates.entropy]
    assert isinstance(codec.rates.entropy[0], LaplaceRate) and scales[0] > scales[1] > scales[2]  # coarser steps, narrower symbols


def test_training_between_rungs_interpolates_like_the_quality_knob() -> None:
    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, latent_bits=10, decoder_width=8, decoder_depth=1,
                              rate_lambdas=(0.001, 0.01, 0.1), rate_gains=True, rate_model="laplace", name="between"))
    with torch.no_grad():
        codec.rates.log_steps.copy_(torch.log(torch.tensor([[1.0], [8.0], [64.0]])).repeat(1, 6))
        codec.rates.log_gains.normal_(0, 0.2)
        for k, m in enumerate(codec.rates.entropy):
            m.log_scale.fill_(3.0 - k)
    steps, gains, lmbda, bits = codec.rates.at(1.5)  # quality 25 on a three-rung ladder
    assert torch.allclose(steps, codec.quantization_step(quality=25))
    assert torch.allclose(steps * gains, codec.reconstruction_step(quality=25))
    assert lmbda == pytest.approx(0.01 * 10 ** 0.5)
    v = torch.zeros(1, 6, 2, 2)
    assert bits(v).mean() < codec.rates.entropy[1].bits_noisy(v).mean()  # between a wider and a narrower rate model
    assert bits(v).mean() > codec.rates.entropy[2].bits_noisy(v).mean()
    x = synthetic_images(2, size=32, seed=8).float() / 255
    _, losses = codec.train()(x, rung=1.5, rounded=True)
    assert float(losses["lmbda"]) == pytest.approx(lmbda)
    losses["bpp"].backward()
    assert codec.rates.log_steps.grad[1:].abs().sum() > 0 and codec.rates.log_steps.grad[0].abs().sum() == 0
    table = Codec(CodecConfig(latent_dim=4, rate_lambdas=(0.001, 0.01)))
    with pytest.raises(ConfigError, match="rate_model = 'laplace'"):
        table.rates.at(0.5)
    from wavecodec.training import TrainConfig

    with pytest.raises(ConfigError, match="train_between_rungs needs"):  # refused before a run starts, not at its first odd step
        TrainConfig.from_dict({"train_between_rungs": True, "codec": {"latent_dim": 4, "rate_lambdas": [0.001, 0.01]}})


def test_between_rung_points_are_a_function_of_the_step(ladder: Codec) -> None:
    from wavecodec.training.loop import _rung

    points = [_rung(ladder, s, between=True) for s in range(40)]
    assert points == [_rung(ladder, s, between=True) for s in range(40)]  # a resumed run sees the same points
    assert all(p == s % 3 for s, p in enumerate(points) if s % 2 == 0)
    odd = [p for s, p in enumerate(points) if s % 2]
    assert all(0 <= p <= 2 for p in odd) and len({round(p, 6) for p in odd}) == len(odd)
    assert min(odd) < 0.5 and max(odd) > 1.5  # they cover the ladder


def test_uniform_ladder_steps_give_every_channel_the_same_step_in_the_subbands() -> None:
    from wavecodec.fitting import uniform_ladder_steps

    torch.manual_seed(0)
    lambdas = (0.0003, 0.003, 0.03)
    codec = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, latent_bits=10, decoder_width=0, decoder_depth=0,
                              rate_lambdas=lambdas, name="t"))
    pca_init(codec, synthetic_images(16, seed=1).split(8), latent_scale=0.05)
    steps = uniform_ladder_steps(codec)
    cfg = codec.config
    # lambda = step^2 * positions * ln 2 / (6 * subbands): the high-rate slope of MSE against bpp
    assert steps == pytest.approx([math.sqrt(v * 6 * cfg.subbands / (cfg.block**2 * math.log(2))) for v in lambdas])
    with torch.no_grad():
        zero = codec.decoder.linear(torch.zeros(1, 6, 1, 1))
        for rung, step in enumerate(steps):
            one = torch.eye(6, dtype=torch.int16).reshape(6, 6, 1, 1)  # one symbol of 1 in each channel in turn
            z = codec.bottleneck.expand(codec.dequantize(one, codec.rates.rung_steps(rung)))
            moved = (codec.decoder.linear(z) - zero).flatten(1).norm(dim=1)
            # one step of any channel moves the subbands alike (within the companding's curvature at coarse steps)
            assert moved.numpy() == pytest.approx([step] * 6, rel=0.05)
    fixed = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, decoder_width=0, decoder_depth=0))
    with pytest.raises(ConfigError, match="variable-rate"):
        uniform_ladder_steps(fixed)


def test_pca_steps_needs_a_ladder_and_a_pca_start() -> None:
    from wavecodec.training import TrainConfig

    codec = {"channels": 3, "levels": 2, "latent_dim": 4, "rate_lambdas": [0.001, 0.01]}
    assert TrainConfig.from_dict({"pca_steps": True, "codec": codec}).pca_steps
    for bad in ({"pca_steps": True, "codec": {**codec, "rate_lambdas": []}},
                {"pca_steps": True, "pca_init": False, "codec": codec}):
        with pytest.raises(ConfigError, match="pca_steps"):
            TrainConfig.from_dict(bad)


def test_export_floors_steps_under_which_symbols_would_clip() -> None:
    from wavecodec.fitting import STEP_MARGIN, floor_ladder_steps

    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=3, levels=2, latent_dim=6, latent_bits=10, decoder_width=8, decoder_depth=1,
                              rate_lambdas=(0.001, 0.01), name="test-floor"))
    batches = list(synthetic_images(16, seed=1).split(8))
    pca_init(codec, batches)
    codec.eval()
    largest = torch.cat([codec.encode(x) for x in batches]).abs().amax((0, 2, 3))
    with torch.no_grad():  # rung 0: channel 0 far too fine for its latents (it would clip), the rest fine
        codec.rates.log_steps.copy_((2 * largest / codec.bottleneck.max_symbol).log().repeat(2, 1))
        codec.rates.log_steps[0, 0] = math.log(0.1 * float(largest[0]) / codec.bottleneck.max_symbol)
    before = codec.rates.log_steps.detach().clone()
    clipped = codec.quantize(codec.encode(batches[0]), codec.rates.rung_steps(0).detach())
    assert int(clipped[:, 0].abs().max()) == codec.bottleneck.max_symbol  # the symbols hit the range's end
    assert floor_ladder_steps(codec, batches) == 1
    after = codec.rates.log_steps.detach()
    assert torch.equal(after[:, 1:], before[:, 1:]) and torch.equal(after[1], before[1])
    assert float(after[0, 0].exp()) == pytest.approx(STEP_MARGIN * float(largest[0]) / codec.bottleneck.max_symbol, rel=1e-5)
    symbols = codec.quantize(codec.encode(batches[0]), codec.rates.rung_steps(0).detach())
    assert int(symbols.abs().max()) < codec.bottleneck.max_symbol


def test_rate_calibration_prices_a_predictable_channel_below_a_noisy_one(ladder: Codec) -> None:
    from wavecodec.training.calibration import rate_calibration

    x = torch.from_numpy(np.repeat(np.linspace(0, 255, 64), 64).reshape(1, 1, 64, 64)).repeat(2, 3, 1, 1).to(torch.uint8)
    x[1] = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 64, 64))).to(torch.uint8)  # one smooth crop, one noise
    ratios = rate_calibration(ladder.train(), x)
    assert ladder.training  # the mode it was in is restored
    ladder.eval()
    assert ratios.shape == (3, 6) and bool(((ratios > 0) & (ratios <= 4)).all())
    with torch.no_grad():
        latents = ladder.encode(x)
        q = ladder.quantize(latents, ladder.rates.rung_steps(0).view(1, -1, 1, 1))
        estimate = ladder.rates.entropy[0].bits_integer(q.to(torch.int32)).sum((0, 2, 3)).float()
    measured = estimate >= 64
    assert measured.sum() >= 2
    # relative: the rung's total estimate is what it was, only its split between the channels moves
    assert float((ratios[0, measured] * estimate[measured]).sum()) == pytest.approx(float(estimate[measured].sum()), rel=1e-3)
    assert float(ratios[0, measured].max() / ratios[0, measured].min()) > 1.05  # the coder's context helps channels unequally


def test_calibrated_training_resumes_exactly(tmp_path: Path) -> None:
    from wavecodec.training import TrainConfig, train
    from safetensors.torch import load_file

    data = tmp_path / "photos"
    data.mkdir()
    for i, img in enumerate(synthetic_images(6, size=64, seed=4)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(data / f"{i}.png")

    def cfg(name: str) -> TrainConfig:
        return TrainConfig.from_dict({
            "run_dir": str(tmp_path / name), "train_data": str(data), "crop": 32, "batch_size": 2, "steps": 8, "workers": 0,
            "log_every": 1, "val_every": 100, "checkpoint_every": 100, "pca_batches": 1, "val_count": 2,
            "calibrate_rate_every": 3,
            "codec": {"channels": 3, "levels": 2, "latent_dim": 4, "latent_bits": 10, "decoder_width": 8, "decoder_depth": 1,
                      "rate_lambdas": [0.001, 0.01, 0.1], "rate_model": "laplace", "name": "t"}})

    train(cfg("a"))
    train(cfg("b"), until=4)  # between two calibrations: the resumed run must reuse the stored one
    stored = load_file(tmp_path / "b" / "checkpoint.safetensors")["extra.rate_calibration"]
    assert stored.shape == (3, 4)
    train(cfg("b"), resume=True)
    rows = {name: [json.loads(line)["loss"] for line in (tmp_path / name / "log.jsonl").read_text().splitlines()
                   if json.loads(line)["kind"] == "train"] for name in "ab"}
    assert rows["a"] == rows["b"]
    with pytest.raises(ConfigError, match="calibrate_rate_every needs a variable-rate codec"):
        TrainConfig.from_dict({"calibrate_rate_every": 10})

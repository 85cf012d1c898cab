"""Training: loss goes down, PCA beats random init, exact resume, export, DDP with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from PIL import Image

import wavecodec
import wavecodec.cli
from helpers import synthetic_images
from wavecodec import CodecConfig, ConfigError, InputError
from wavecodec.training import TrainConfig, export, train
from wavecodec.training.loop import lr_factor


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    (root / "nested").mkdir()
    for i, img in enumerate(synthetic_images(6, size=72, seed=21)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / ("nested" if i % 2 else ".") / f"{i}.png")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def tiny(folder: Path, run_dir: Path, **changes) -> TrainConfig:
    base = dict(
        run_dir=str(run_dir), train_data=str(folder), crop=32, batch_size=4, steps=30, workers=0,
        log_every=5, val_every=10, checkpoint_every=10, warmup=5, val_count=4, pca_batches=2,
        codec={"levels": 2, "latent_dim": 6, "decoder_width": 8, "decoder_depth": 1, "name": "tiny"},
    )
    base.update(changes)
    return TrainConfig.from_dict(base)


def train_rows(run_dir: Path) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def test_training_from_random_init_lowers_the_loss(image_folder: Path, tmp_path: Path) -> None:
    summary = train(tiny(image_folder, tmp_path / "run", pca_init=False, lr=3e-3))
    assert summary["final_val"]["mse"] < 0.5 * summary["random_init"]["mse"]
    rows = train_rows(tmp_path / "run")
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert summary["skipped_files"] > 0  # the broken file was sampled, skipped and counted
    for name in ("curves.png", "reconstructions.png", "config.json", "summary.json", "checkpoint.safetensors"):
        assert (tmp_path / "run" / name).exists(), name


def test_pca_init_beats_random_init_at_step_zero(image_folder: Path, tmp_path: Path) -> None:
    summary = train(tiny(image_folder, tmp_path / "run", steps=1))
    assert summary["pca_init"]["psnr"] > summary["random_init"]["psnr"] + 10


def test_resume_reproduces_an_uninterrupted_run(image_folder: Path, tmp_path: Path) -> None:
    cfg_a = tiny(image_folder, tmp_path / "a", steps=20, lmbda=1e-4, ema=0.9)
    train(cfg_a)
    cfg_b = tiny(image_folder, tmp_path / "b", steps=20, lmbda=1e-4, ema=0.9)
    train(cfg_b, until=10)
    with pytest.raises(ConfigError, match="already holds a run; resume it"):
        train(cfg_b)
    train(cfg_b, resume=True)
    a, b = train_rows(tmp_path / "a"), train_rows(tmp_path / "b")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa = wavecodec.fingerprint(export(tmp_path / "a", tmp_path / "a.safetensors"))
    wb = wavecodec.fingerprint(export(tmp_path / "b", tmp_path / "b.safetensors"))
    assert wa == wb


def test_cli_train_until_stops_with_a_checkpoint_that_resume_finishes(image_folder: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train_data": str(image_folder), "crop": 32, "batch_size": 2, "steps": 6, "workers": 0,
                                  "log_every": 1, "val_every": 100, "checkpoint_every": 100, "val_count": 2, "pca_batches": 1,
                                  "codec": {"levels": 2, "latent_dim": 6, "decoder_width": 8, "decoder_depth": 1}}))
    run = tmp_path / "run"
    base = ["train", "--config", str(config), "--run-dir", str(run), "--quiet"]
    assert wavecodec.cli.main(base + ["--until", "9"]) == 2  # beyond the configured steps: one clear line
    assert "--until must be a step in 1..6" in capsys.readouterr().err
    assert wavecodec.cli.main(base + ["--until", "3"]) == 0
    assert [r["step"] for r in train_rows(run)][-1] == 3 and (run / "checkpoint.safetensors").exists()
    assert wavecodec.cli.main(base + ["--resume"]) == 0
    assert [r["step"] for r in train_rows(run)] == [1, 2, 3, 4, 5, 6]


def test_export_gives_a_working_codec(image_folder: Path, tmp_path: Path) -> None:
    train(tiny(image_folder, tmp_path / "run", steps=10, workers=2))
    out = tmp_path / "model.safetensors"
    assert wavecodec.cli.main(["export", str(tmp_path / "run"), "-o", str(out), "--name", "exported", "--quiet"]) == 0
    codec = wavecodec.load(out)
    assert codec.config.name == "exported"
    x = synthetic_images(1, size=40, seed=99)
    assert codec.decompress(codec.compress(x)).shape == x.shape
    assert int(codec.context.tables.sum()) > 0


def test_config_round_trips_and_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 7\nlmbda = 0.001\n[codec]\nlatent_dim = 48\nname = "rgb-4x"\n')
    cfg = TrainConfig.load(toml, ["batch_size=3", "codec.decoder_width=16", "run_dir=/tmp/x"])
    assert (cfg.steps, cfg.batch_size, cfg.codec.latent_dim, cfg.codec.decoder_width) == (7, 3, 48, 16)
    js = tmp_path / "c.json"
    js.write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.load(js) == cfg
    with pytest.raises(ConfigError, match="unknown training config field"):
        TrainConfig.load("", ["stepz=3"])
    with pytest.raises(ConfigError, match="key=value"):
        TrainConfig.load("", ["steps"])
    with pytest.raises(ConfigError, match="not valid TOML"):
        bad = tmp_path / "bad.toml"
        bad.write_text("steps = = 3")
        TrainConfig.load(bad)


def test_schedule_warms_up_then_decays() -> None:
    cfg = TrainConfig(steps=100, warmup=10, min_lr_ratio=0.1)
    factors = [lr_factor(s, cfg) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1, abs=0.01)


def test_empty_or_missing_folders_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable files"):
        train(tiny(tmp_path / "empty", tmp_path / "r1"))
    with pytest.raises(InputError, match="not a directory"):
        train(tiny(tmp_path / "missing", tmp_path / "r2"))
    with pytest.raises(ConfigError, match="train_data"):
        train(TrainConfig(run_dir=str(tmp_path / "r3")))


def test_two_process_gloo_torchrun_keeps_ranks_identical(image_folder: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
        "-m", "wavecodec.cli", "train", "--quiet", "--run-dir", str(tmp_path / "ddp"),
        "--set", f"train_data={image_folder}", "--set", "steps=6", "--set", "crop=32", "--set", "batch_size=2",
        "--set", "workers=0", "--set", "val_count=2", "--set", "pca_batches=1", "--set", "warmup=2",
        "--set", 'codec={"levels": 2, "latent_dim": 6, "decoder_width": 8, "decoder_depth": 1}',
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    prints = [line.split() for line in res.stdout.splitlines() if line.startswith("rank ")]
    assert sorted(p[1] for p in prints) == ["0", "1"]
    assert prints[0][3] == prints[1][3]
    assert (tmp_path / "ddp" / "checkpoint.safetensors").exists()



def test_spectral_losses_are_zero_for_a_copy_and_grow_with_lost_high_bands() -> None:
    import torch

    from wavecodec.training.losses import MelLoss, MultiResolutionSTFTLoss

    torch.manual_seed(0)
    t = torch.arange(16000) / 16000
    x = torch.stack([torch.sin(2 * torch.pi * 300 * t) + 0.1 * torch.sin(2 * torch.pi * 5000 * t),
                     0.3 * torch.randn(16000)])[None]
    lowpassed = torch.nn.functional.avg_pool1d(x, 9, stride=1, padding=4)  # removes the quiet 5 kHz tone and the hiss
    stft, mel = MultiResolutionSTFTLoss(), MelLoss(16000)
    for loss in (stft, mel):
        assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
        assert loss(lowpassed, x).item() > 10 * loss(0.99 * x, x).item() > 0  # a lost band costs more than a 1% gain change
    # an MSE-small error in the quiet band costs little MSE but much spectral loss: the point of these losses
    y = x.clone().requires_grad_(True)
    stft(y, x.detach() * 1.01).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_audio_training_with_spectral_losses_logs_them(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    folder = tmp_path / "music"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(8000 * 2) / 8000
    for i in range(3):
        clip = np.stack([0.4 * np.sin(2 * np.pi * (200 + 90 * i) * t), 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)])
        sf.write(folder / f"{i}.wav", clip.T, 8000, subtype="PCM_16")
    codec = {"levels": 3, "latent_dim": 6, "channels": 2, "decoder_width": 8, "decoder_depth": 1, "name": "tiny-audio",
             "modality": "audio", "sample_rate": 8000, "value_range": [-1.0, 1.0]}
    cfg = tiny(folder, tmp_path / "run", crop=2048, steps=10, codec=codec, stft_weight=0.1, mel_weight=0.05, pca_init=False)
    train(cfg)
    rows = train_rows(tmp_path / "run")
    assert rows and all(r["stft"] > 0 and r["mel"] > 0 for r in rows)
    assert all(r["loss"] > r["mse"] + 0.1 * r["stft"] for r in rows)  # the spectral terms are in the objective
    with pytest.raises(ConfigError, match="audio"):
        tiny(folder, tmp_path / "run2", stft_weight=0.1)  # an image codec
    with pytest.raises(ConfigError, match=">= 0"):
        tiny(folder, tmp_path / "run3", codec=codec, mel_weight=-1.0)
    with pytest.raises(ConfigError, match="noise-fill"):
        tiny(folder, tmp_path / "run4", codec=codec, mel_weight=0.05, noise_free_mse=True)  # no noise fill to spare
    with pytest.raises(ConfigError, match="noise_level_start"):
        tiny(folder, tmp_path / "run4", codec={**codec, "noise_fill": True}, noise_level_start=0.01)  # nothing to start from
    with pytest.raises(ConfigError, match="pca_split_hz"):
        tiny(folder, tmp_path / "run4", pca_split_hz=1000.0, pca_low_channels=2)  # an image codec
    with pytest.raises(ConfigError, match="pca_low_channels"):
        tiny(folder, tmp_path / "run4", codec=codec, pca_split_hz=1000.0, pca_low_channels=6)  # no channel left for a band
    # a band-split PCA start: 4 channels below 2 kHz, one for each of 2 bands above
    split = train(tiny(folder, tmp_path / "split", crop=2048, steps=2, codec=codec, pca_split_hz=2000.0, pca_low_channels=4))
    plain = train(tiny(folder, tmp_path / "plain", crop=2048, steps=2, codec=codec))
    assert 0 < split["pca"]["explained_variance"] < plain["pca"]["explained_variance"]
    # noise fill trained by the spectral loss alone: the MSE term sees the decode without its noise
    noisy = {**codec, "noise_fill": True}
    train(tiny(folder, tmp_path / "run5", crop=2048, steps=10, codec=noisy, mel_weight=0.05, pca_init=False, noise_free_mse=True))
    trained = export(tmp_path / "run5", tmp_path / "run5.safetensors")
    trained.train()
    x = torch.from_numpy(np.stack([np.sin(np.arange(2048) / 7.0)] * 2)[None]).float() * 0.5
    _, losses = trained(x, without_noise=True)
    assert losses["mse_without_noise"] != losses["mse"]  # the noise is in the output, not in the first
    z = torch.randn(1, 6, 256)
    clean, noise = trained.decoder(z, split_noise=True)
    assert torch.allclose(clean + noise, trained.decoder(z)) and noise.abs().sum() > 0
    # from trained weights, the noise may start at a level the spectral loss can feel
    summary = train(tiny(folder, tmp_path / "run6", crop=2048, steps=0, codec=noisy, mel_weight=0.05, noise_free_mse=True,
                         init_weights=str(tmp_path / "run5.safetensors"), noise_level_start=0.05))
    assert summary["init_weights"]["psnr"] < train(tiny(folder, tmp_path / "run7", crop=2048, steps=0, codec=noisy,
                                                        init_weights=str(tmp_path / "run5.safetensors")))["init_weights"]["psnr"]


def test_training_can_start_from_trained_weights(image_folder: Path, tmp_path: Path) -> None:
    train(tiny(image_folder, tmp_path / "a", steps=20))
    start = export(tmp_path / "a", tmp_path / "a.safetensors")
    summary = train(tiny(image_folder, tmp_path / "b", steps=5, init_weights=str(tmp_path / "a.safetensors")))
    assert summary["init_weights"]["psnr"] > summary["random_init"]["psnr"] + 1  # it starts where the first run ended
    assert "pca" not in summary
    other = {"levels": 2, "latent_dim": 4, "decoder_width": 8, "decoder_depth": 1, "name": "tiny"}
    with pytest.raises(ConfigError, match="architecture"):
        train(tiny(image_folder, tmp_path / "c", steps=5, codec=other, init_weights=str(tmp_path / "a.safetensors")))
    assert wavecodec.fingerprint(start) != wavecodec.fingerprint(export(tmp_path / "b", tmp_path / "b.safetensors"))
    # noise fill may be added to trained weights (its level starts silent, and learns)
    noisy = {"levels": 2, "latent_dim": 6, "decoder_width": 8, "decoder_depth": 1, "name": "tiny", "noise_fill": True}
    summary = train(tiny(image_folder, tmp_path / "d", steps=10, codec=noisy, init_weights=str(tmp_path / "a.safetensors")))
    assert abs(summary["init_weights"]["psnr"] - train(tiny(image_folder, tmp_path / "e", steps=0,
               init_weights=str(tmp_path / "a.safetensors")))["init_weights"]["psnr"]) < 0.01
    noisy_codec = export(tmp_path / "d", tmp_path / "d.safetensors")
    assert noisy_codec.decoder.noise is not None and float(noisy_codec.decoder.noise.level.bias.detach().mean()) != -8.0


def test_noise_fill_is_local_deterministic_and_off_by_default() -> None:
    from wavecodec.decoder import NoiseFill

    assert "noise_fill" not in CodecConfig().to_dict()  # models without it keep their fingerprints
    cfg = CodecConfig(channels=2, levels=3, latent_dim=4, modality="audio", sample_rate=8000, value_range=(-1, 1), noise_fill=True)
    fill = NoiseFill(cfg)
    with torch.no_grad():
        fill.level.bias.fill_(0.0)
        z = torch.randn(2, 4, 64, generator=torch.Generator().manual_seed(1))
        n = fill(z)
        assert n.shape == (2, 16, 64)
        other = NoiseFill(cfg)
        other.level.bias.fill_(0.0)
        assert torch.equal(other(z), n)  # no random state: another decoder makes the same noise
        assert torch.allclose(n[..., 10:30], fill(z[..., 10:30]))  # each position's noise depends on its own latents only
        level = torch.nn.functional.softplus(torch.tensor(0.0))
        assert 0.7 < float(n.pow(2).mean() / level**2) < 1.3  # unit power times the level
        assert abs(float(torch.corrcoef(n.reshape(-1, 64))[0, 1])) < 0.5


def test_an_ms_ssim_term_is_logged_and_counted_in_the_loss(image_folder: Path, tmp_path: Path) -> None:
    base = dict(crop=48, steps=12, lr=3e-3, log_every=4, val_every=100, pca_init=True)
    train(tiny(image_folder, tmp_path / "mse", **base))
    train(tiny(image_folder, tmp_path / "perceptual", ms_ssim_weight=0.5, **base))
    plain, tuned = train_rows(tmp_path / "mse"), train_rows(tmp_path / "perceptual")
    assert all("ms_ssim" not in r for r in plain)
    assert all(0 < r["ms_ssim"] <= 1 and r["loss"] > r["mse"] + 0.5 * (1 - r["ms_ssim"]) - 1e-6 for r in tuned)
    with pytest.raises(ConfigError, match="image loss"):
        tiny(image_folder, tmp_path / "bad", ms_ssim_weight=-1.0)


def test_a_decoder_only_ssimulacra2_tuning_keeps_the_files(image_folder: Path, tmp_path: Path) -> None:
    rgb = {"levels": 2, "latent_dim": 6, "decoder_width": 8, "decoder_depth": 1, "name": "tiny",
           "rate_lambdas": [0.001, 0.01], "rate_gains": True, "rate_model": "laplace"}
    base = dict(crop=64, log_every=4, val_every=100, codec=rgb)
    train(tiny(image_folder, tmp_path / "a", steps=10, **base))
    start = export(tmp_path / "a", tmp_path / "a.safetensors")
    train(tiny(image_folder, tmp_path / "b", steps=12, lr=3e-3, init_weights=str(tmp_path / "a.safetensors"),
               train_only="decoder", ssimulacra2_weight=1e-3, **base))
    tuned = export(tmp_path / "b", tmp_path / "b.safetensors")
    rows = train_rows(tmp_path / "b")
    assert all(r["ssimulacra2_distance"] > 0 and r["loss"] > 1e-3 * r["ssimulacra2_distance"] for r in rows)
    before, after = start.state_dict(), tuned.state_dict()
    for name in ("encoder.proj.weight", "rates.log_steps", "rates.entropy.0.log_scale"):
        assert torch.equal(before[name], after[name]), name  # what the files depend on stayed
    assert not torch.equal(before["rates.log_gains"], after["rates.log_gains"])
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    with pytest.raises(ConfigError, match="init_weights"):
        tiny(image_folder, tmp_path / "bad", train_only="decoder")
    with pytest.raises(ConfigError, match="RGB image loss"):
        tiny(image_folder, tmp_path / "bad", ssimulacra2_weight=1e-3, codec={**rgb, "channels": 1})

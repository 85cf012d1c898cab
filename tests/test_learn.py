"""Compressed-domain learning: heads, matched baselines, tiny classification and colorization runs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import wavecodec
from helpers import fitted_codec, synthetic_images
from wavecodec import Codec, CodecConfig, InputError
from wavecodec.cli import main
from wavecodec.data import OnTheFlyLatents
from wavecodec.fitting import fit_entropy, pca_init
from wavecodec.learn import (Classifier, MatchedInput, DenseHead, classifier_pair, count_parameters, downsample, fit_classifier,
                             fit_dense, matched_pixels, matched_samples, tokens)
from wavecodec.learn.colorize import LatentColorizer, PixelColorizer, chroma, gray
from wavecodec.learn.classify import load_classifier


def stripes(count: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gray ``(N, 1, size, size)`` uint8 images of horizontal (label 0) or vertical (label 1) stripes, noisy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    grid = np.arange(size)
    out = np.empty((count, 1, size, size), dtype=np.uint8)
    for n, label in enumerate(labels):
        period, phase = rng.uniform(3, 6), rng.uniform(0, 6.28)
        wave = 0.5 + 0.35 * np.sin(2 * np.pi * grid / period + phase)
        img = wave[:, None].repeat(size, 1) if label == 0 else wave[None, :].repeat(size, 0)
        out[n, 0] = np.clip((img + rng.normal(0, 0.08, img.shape)) * 255, 0, 255)
    return torch.from_numpy(out), torch.from_numpy(labels).long()


def gray_codec(images: torch.Tensor, latent_dim: int = 4) -> Codec:
    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=1, levels=2, latent_dim=latent_dim, decoder_width=0, decoder_depth=0, name=f"test-gray-{latent_dim}"))
    pca_init(codec, images.split(64))
    fit_entropy(codec, images.split(64))
    return codec.eval()


@pytest.mark.parametrize("shape,channels,side,patch", [((4, 7, 7), 1, 14, 2), ((1, 7, 7), 1, 7, 1), ((12, 32, 32), 3, 64, 2)])
def test_matched_pixels_have_the_same_values_and_tokens(shape, channels, side, patch) -> None:
    m = matched_pixels(shape, channels)
    assert (m.side, m.patch) == (side, patch)
    assert channels * m.side**2 == m.values == int(np.prod(shape))
    assert tokens((channels, m.side, m.side), m.patch) == m.tokens == shape[1] * shape[2]


def test_matched_pixels_refuses_what_cannot_match() -> None:
    with pytest.raises(InputError):
        matched_pixels((3, 7, 7), 1)  # 147 values: no square image
    with pytest.raises(InputError):
        tokens((1, 10, 10), 4)


def test_classifier_pair_sees_equal_token_grids_with_similar_size() -> None:
    latent, pixels, m = classifier_pair((4, 7, 7), 1, 10, width=32, depth=2)
    grids = [model.embed(x).shape[2:] for model, x in ((latent, torch.zeros(2, 4, 7, 7)), (pixels, torch.zeros(2, 1, 14, 14)))]
    assert grids[0] == grids[1] == (7, 7)
    assert m.tokens == 49
    assert abs(count_parameters(latent) - count_parameters(pixels)) / count_parameters(latent) < 0.05
    assert latent(torch.randn(2, 4, 7, 7)).shape == (2, 10)


@pytest.mark.parametrize("kind", ["conv", "transformer"])
def test_heads_take_any_grid(kind: str) -> None:
    model = Classifier(3, 5, patch=2, width=32, depth=1, kind=kind)
    assert model(torch.randn(2, 3, 8, 12)).shape == (2, 5)
    dense = DenseHead(1, 3, patch=4, out_patch=4, width=32, depth=1, kind=kind)
    assert dense(torch.randn(2, 1, 16, 8)).shape == (2, 3, 16, 8)
    with pytest.raises(ValueError):
        Classifier(3, 5, kind="mlp")


@pytest.mark.parametrize("kind", ["conv", "transformer"])
def test_sequence_heads_match_latent_and_sample_token_counts(kind: str) -> None:
    m = matched_samples((27, 40), 2)  # 27 latent channels over 2 audio channels: 13.5 -> 14 samples a token
    assert (m.patch, m.side, m.tokens, m.values) == (14, 560, 40, 1120) and m.values >= 27 * 40
    assert matched_samples((27, 40), 2, latent_patch=2) == MatchedInput(side=540, patch=27, tokens=20, values=1080)
    with pytest.raises(InputError):
        matched_samples((27, 41), 2, latent_patch=2)
    latent = Classifier(27, 6, patch=1, width=32, depth=1, kind=kind, dims=1)
    samples = Classifier(2, 6, patch=m.patch, width=32, depth=1, kind=kind, dims=1)
    assert latent.embed(torch.zeros(2, 27, 40)).shape == samples.embed(torch.zeros(2, 2, m.side)).shape == (2, 32, 40)
    assert latent(torch.randn(3, 27, 40)).shape == samples(torch.randn(3, 2, m.side)).shape == (3, 6)
    with pytest.raises(ValueError):
        Classifier(2, 6, dims=3)


def test_a_sequence_classifier_learns_which_channel_carries_a_tone() -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (192,), generator=gen)
    x = 0.3 * torch.randn(192, 2, 64, generator=gen)
    x[torch.arange(192), y] += torch.sin(torch.arange(64) * 0.7)  # the label says which channel holds the tone
    torch.manual_seed(0)
    model = Classifier(2, 2, patch=4, width=16, depth=1, dims=1)
    history = fit_classifier(model, x[:128], y[:128], x[128:], y[128:], epochs=6, batch_size=16, lr=3e-3)
    assert history.accuracy[-1] >= 0.9  # chance is 0.5


def test_downsample_is_an_area_average() -> None:
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) * 10
    y = downsample(x, 2)
    assert torch.allclose(y[0, 0, 0, 0], (x[0, 0, :2, :2].float() / 255).mean())


def test_tiny_classification_on_latents_beats_chance() -> None:
    x, y = stripes(384)
    codec = gray_codec(x[:256])
    z = OnTheFlyLatents(codec)(x)
    assert z.shape == (384, 4, 4, 4) and torch.equal(z, z.round())
    torch.manual_seed(0)
    model = Classifier(4, 2, width=32, depth=2)
    history = fit_classifier(model, z[:256], y[:256], z[256:], y[256:], epochs=4, batch_size=32, lr=3e-3)
    assert len(history.accuracy) == 4 and all(s > 0 for s in history.epoch_seconds)
    assert history.accuracy[-1] >= 0.9  # chance is 0.5


def test_tiny_colorization_improves_over_the_identity() -> None:
    rng = np.random.default_rng(1)
    luma = synthetic_images(64, size=32, channels=1, seed=3).float()
    tint = torch.tensor([1.15, 0.95, 0.6]).view(1, 3, 1, 1)  # a color that is a function of luma: learnable
    rgb = (luma * tint + torch.from_numpy(rng.normal(0, 1, (64, 3, 32, 32))).float()).clamp(0, 255).round().to(torch.uint8)
    codec = fitted_codec()
    model = LatentColorizer(codec, width=32, depth=2)
    g_test, target_test = model.pair(rgb[48:])
    identity = F.mse_loss(torch.zeros_like(target_test), target_test).item()  # gray latents unchanged
    torch.manual_seed(0)
    losses = fit_dense(model.head, lambda s: model.pair(rgb[(s % 6) * 8 : (s % 6) * 8 + 8]), 60, lr=3e-3)
    assert len(losses) == 60
    model.head.eval()
    with torch.no_grad():
        learned = F.mse_loss(model.head(g_test), target_test).item()
    assert learned < 0.5 * identity
    out = model(rgb[48:])
    assert out.shape == (16, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    z = model.predict_latents(rgb[48:])
    assert torch.equal(z, z.round()) and z.abs().max() <= codec.bottleneck.max_symbol
    # the chroma of the colorized images is closer to the truth than the gray image's
    truth = rgb[48:].float()
    gray3 = gray(rgb[48:]).float().expand(-1, 3, -1, -1)
    assert (chroma(out * 255) - chroma(truth)).abs().mean() < (chroma(gray3) - chroma(truth)).abs().mean()
    pixel = PixelColorizer(patch=4, width=32, depth=1)
    assert pixel(rgb[:2]).shape == (2, 3, 32, 32)


def write_stripe_tree(root: Path, count: int = 48) -> None:
    x, y = stripes(count, seed=5)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = root / ("horizontal" if label == 0 else "vertical")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy()).save(folder / f"{i:03d}.png")


def test_learn_cli_trains_on_a_converted_dataset(tmp_path: Path, capsys) -> None:
    x, _ = stripes(256, seed=9)
    model_path = tmp_path / "gray.safetensors"
    wavecodec.save(gray_codec(x), model_path)
    write_stripe_tree(tmp_path / "src", count=96)
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "lat"), "--model", str(model_path),
                 "--labels-from-folders", "--workers", "1", "--quiet"]) == 0
    out = tmp_path / "clf"
    assert main(["learn", str(tmp_path / "lat"), "-o", str(out), "--epochs", "10", "--batch-size", "8",
                 "--width", "32", "--depth", "2", "--test-fraction", "0.25", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_samples"] == 24 and metrics["train_samples"] == 72
    assert metrics["class_names"] == ["horizontal", "vertical"]
    assert metrics["final_accuracy"] >= 0.75
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    clf, names = load_classifier(out / "classifier.safetensors")
    assert names == ["horizontal", "vertical"] and clf(torch.zeros(1, 4, 4, 4)).shape == (1, 2)


def test_learn_cli_needs_labels(tmp_path: Path, capsys) -> None:
    x, _ = stripes(64, seed=2)
    model_path = tmp_path / "gray.safetensors"
    wavecodec.save(gray_codec(x), model_path)
    write_stripe_tree(tmp_path / "src", count=8)
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "lat"), "--model", str(model_path), "--workers", "1", "--quiet"]) == 0
    assert main(["learn", str(tmp_path / "lat"), "-o", str(tmp_path / "clf"), "--quiet"]) == 2
    assert "no labels" in capsys.readouterr().err
    assert main(["learn", str(tmp_path / "missing"), "--quiet"]) == 2

"""The codec model: shapes, ranges, padding, quantization, training pass."""

from __future__ import annotations

import pytest
import torch

from wavecodec import Codec, CodecConfig, ConfigError, ShapeError


def test_forward_on_odd_size_returns_input_size(small_codec: Codec) -> None:
    x = torch.rand(1, 3, 333, 517)
    x_hat, losses = small_codec(x)
    assert x_hat.shape == x.shape
    assert set(losses) >= {"mse", "subband_mse"}
    assert torch.isfinite(losses["mse"]) and losses["mse"] > 0


def test_tiny_input_smaller_than_a_block(small_codec: Codec) -> None:
    x = torch.rand(1, 3, 3, 2)
    assert small_codec.reconstruct(x).shape == x.shape


def test_eval_latents_are_bounded_integers(small_codec: Codec) -> None:
    x = torch.rand(2, 3, 64, 40) * 50 - 25  # far outside the value range: still bounded
    q = small_codec.quantize(small_codec.encode(x))
    assert q.dtype == torch.int8
    assert q.shape == (2, 6, 16, 10)
    m = 2 ** (small_codec.config.latent_bits - 1) - 1
    assert int(q.min()) >= -m and int(q.max()) <= m
    assert int(q.abs().max()) == m  # saturating input reaches the top symbol


def test_training_adds_noise_eval_rounds(small_codec: Codec) -> None:
    x = torch.rand(1, 3, 32, 32)
    small_codec.eval()
    a, _ = small_codec(x)
    b, _ = small_codec(x)
    assert torch.equal(a, b)
    small_codec.train()
    torch.manual_seed(1)
    c, _ = small_codec(x)
    assert not torch.equal(a, c)


def test_uint8_in_uint8_out_and_float_range(small_codec: Codec) -> None:
    x8 = (torch.rand(1, 3, 20, 24) * 255).to(torch.uint8)
    y8 = small_codec.reconstruct(x8)
    assert y8.dtype == torch.uint8 and y8.shape == x8.shape
    y = small_codec.reconstruct(x8.float() / 255)
    assert y.dtype == torch.float32 and 0 <= y.min() and y.max() <= 1
    # the uint8 path is the float path, rounded
    assert (y8.float() - y * 255).abs().max() <= 0.5 + 1e-3


def test_decode_of_integers_equals_decode_of_their_float_values(small_codec: Codec) -> None:
    x = torch.rand(1, 3, 32, 32)
    q = small_codec.quantize(small_codec.encode(x))
    assert torch.equal(small_codec.decode(q), small_codec.decode(q.float()))


def test_gradients_reach_encoder_and_decoder(small_config: CodecConfig) -> None:
    codec = Codec(small_config).train()
    _, losses = codec(torch.rand(2, 3, 32, 32))
    losses["mse"].backward()
    assert codec.encoder.proj.weight.grad.abs().sum() > 0
    assert codec.decoder.linear.weight.grad.abs().sum() > 0


def test_audio_and_volume_codecs_run() -> None:
    audio = Codec(CodecConfig(modality="audio", channels=2, levels=4, latent_dim=8, value_range=(-1, 1))).eval()
    x = torch.rand(1, 2, 1001) * 2 - 1
    assert audio.reconstruct(x).shape == x.shape
    pcm = (torch.rand(1, 2, 100) * 60000 - 30000).to(torch.int16)
    assert audio.reconstruct(pcm).dtype == torch.int16
    volume = Codec(CodecConfig(modality="volume", channels=1, levels=1, latent_dim=4)).eval()
    v = torch.rand(1, 1, 9, 10, 7)
    assert volume.reconstruct(v).shape == v.shape


def test_wrong_input_shapes_give_clear_errors(small_codec: Codec) -> None:
    with pytest.raises(ShapeError, match=r"takes \(B, 3, H, W\)"):
        small_codec.encode(torch.rand(1, 1, 32, 32))
    with pytest.raises(ShapeError, match=r"takes \(B, 3, H, W\)"):
        small_codec.encode(torch.rand(3, 32, 32))
    with pytest.raises(ShapeError, match="empty"):
        small_codec.encode(torch.rand(0, 3, 32, 32))
    with pytest.raises(ShapeError, match="latents of shape"):
        small_codec.decode(torch.zeros(1, 5, 4, 4))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 1000, "levels": 1}, "exceeds"),
        ({"latent_bits": 17}, "latent_bits"),
        ({"levels": 0}, "levels"),
        ({"modality": "video"}, "modality"),
        ({"wavelet": "nope"}, "unknown wavelet"),
        ({"value_range": (1, 0)}, "value_range"),
        ({"decoder_kernel": 2}, "decoder_kernel"),
        ({"channels": 2.5}, "channels"),
        ({"modality": "signal"}, "ndim"),
    ],
)
def test_bad_config_gives_clear_error(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        CodecConfig(**kwargs)


def test_config_round_trips_through_json_and_rejects_unknown_fields(small_config: CodecConfig) -> None:
    assert CodecConfig.from_json(small_config.to_json()) == small_config
    with pytest.raises(ConfigError, match="unknown config field"):
        CodecConfig.from_dict({**small_config.to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="version"):
        CodecConfig.from_dict({**small_config.to_dict(), "config_version": 99})


def test_reduction_and_subbands() -> None:
    c = CodecConfig(channels=3, levels=3, latent_dim=12)
    assert c.subbands == 192 and c.reduction == 16
    a = CodecConfig(modality="audio", channels=2, levels=8, latent_dim=108)
    assert a.ndim == 1 and a.subbands == 512


def _with_a_residual_that_matters(fitted: Codec) -> Codec:
    import copy

    fitted = copy.deepcopy(fitted)  # the fixture is shared
    with torch.no_grad():
        for p in fitted.decoder.residual.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return fitted


@pytest.mark.parametrize("precision, db, levels", [("bfloat16", 0.01, 2), ("int8", 0.05, 8)])
def test_lower_precision_decodes_stay_close_to_float32(fitted, precision: str, db: float, levels: int) -> None:
    from helpers import synthetic_images
    from wavecodec.metrics import psnr

    fitted = _with_a_residual_that_matters(fitted)
    x = synthetic_images(1, size=64)
    data = fitted.compress(x)
    exact = fitted.decompress(data)
    fitted.decoder_precision = precision
    low = fitted.decompress(data)
    assert not torch.equal(low, exact)  # the lower precision really ran
    assert abs(psnr(x, exact, 255.0) - psnr(x, low, 255.0)) < db
    assert (exact.int() - low.int()).abs().max() <= levels
    assert torch.equal(fitted.decompress(data), low)  # and repeats itself


def test_an_int8_decode_does_not_depend_on_the_tiling(fitted) -> None:
    from helpers import synthetic_images
    from wavecodec import compression

    fitted = _with_a_residual_that_matters(fitted)
    fitted.decoder_precision = "int8"
    data = fitted.compress(synthetic_images(1, size=96, seed=4))
    whole = fitted.decompress(data)
    before = compression.TILE
    compression.TILE = 7  # the scales are fixed by the calibration, not by what each tile holds
    try:
        tiled = fitted.decompress(data)
    finally:
        compression.TILE = before
    assert (tiled.int() - whole.int()).abs().max() <= 1


def test_an_unknown_decoder_precision_is_refused(fitted) -> None:
    import copy

    fitted = copy.deepcopy(fitted)
    fitted.decoder_precision = "float16"
    with pytest.raises(ConfigError, match="precision must be one of"):
        fitted.decompress(fitted.compress(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)))


@pytest.mark.parametrize("kind", ["bfloat16", "int8"])
def test_the_lower_precision_copies_are_made_once_and_follow_weight_changes(fitted, kind: str) -> None:
    import copy

    codec = copy.deepcopy(fitted)
    decoder = codec.decoder
    make = decoder._bfloat16_residual if kind == "bfloat16" else lambda: decoder._int8_residual(codec.calibration_latents)
    z = codec.calibration_latents()[0]
    first = make()
    assert make() is first  # made once, not per call
    weight = decoder.residual[0].weight
    with torch.no_grad():
        before = first(z.to(torch.bfloat16) if kind == "bfloat16" else z).float()
        weight.add_(1.0)
    second = make()
    assert second is not first
    with torch.no_grad():
        after = second(z.to(torch.bfloat16) if kind == "bfloat16" else z).float()
    assert not torch.allclose(before, after)  # the new copy has the new weights
    assert set(decoder.state_dict()) == set(fitted.decoder.state_dict())  # the copies are neither saved nor trained


def test_calibration_latents_are_fixed(fitted) -> None:
    first, second = fitted.calibration_latents(), fitted.calibration_latents()
    assert len(first) >= 4 and all(torch.equal(a, b) for a, b in zip(first, second))
    assert all(z.shape[1] == fitted.config.latent_dim and z.abs().max() > 0 for z in first)


def test_inference_encode_in_scratch_equals_the_plain_composition(small_codec: Codec) -> None:
    x = torch.randint(0, 256, (1, 3, 40, 36), dtype=torch.uint8)
    with torch.no_grad():
        plain = small_codec.bottleneck.compand(small_codec.encoder(small_codec.wpt(small_codec.pad(small_codec.to_unit(x)))))
        first = small_codec.encode(x)
        small_codec.encode(torch.zeros_like(x))  # reuses the buffers: the first result must not change
    assert torch.equal(first, plain)
    assert torch.equal(small_codec.to_unit(x, out=torch.empty(x.shape)), small_codec.to_unit(x))


def test_to_unit_never_writes_to_a_float_input(small_codec: Codec) -> None:
    x = torch.rand(1, 3, 8, 8)
    kept = x.clone()
    small_codec.to_unit(x)
    assert torch.equal(x, kept)

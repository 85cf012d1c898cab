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


def test_fast_decode_stays_within_a_hundredth_of_a_db(fitted) -> None:
    import copy

    from helpers import synthetic_images
    from wavecodec.metrics import psnr

    fitted = copy.deepcopy(fitted)  # the fixture is shared
    x = synthetic_images(1, size=64)
    with torch.no_grad():
        for p in fitted.decoder.residual.parameters():  # a residual that matters
            p.add_(0.05 * torch.randn_like(p))
    data = fitted.compress(x)
    exact = fitted.decompress(data)
    fitted.fast_decode = True
    try:
        fast = fitted.decompress(data)
    finally:
        fitted.fast_decode = False
    assert abs(psnr(x, exact, 255.0) - psnr(x, fast, 255.0)) < 0.01
    assert (exact.int() - fast.int()).abs().max() <= 2


def test_the_bfloat16_residual_is_cast_once_and_follows_weight_changes(fitted) -> None:
    import copy

    decoder = copy.deepcopy(fitted.decoder)
    first = decoder._bfloat16_residual()
    assert decoder._bfloat16_residual() is first  # cast once, not per call
    weight = next(decoder.residual.parameters())
    with torch.no_grad():
        weight.add_(1.0)
    second = decoder._bfloat16_residual()
    assert second is not first and torch.equal(next(second.parameters()), weight.to(torch.bfloat16))
    assert set(decoder.state_dict()) == set(fitted.decoder.state_dict())  # the copy is neither saved nor trained


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

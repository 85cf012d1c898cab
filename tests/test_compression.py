"""The compression API and the .wvc container: round trips, header checks, limits."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import torch

from helpers import fitted_codec, synthetic_images
from wavecodec import Codec, FormatError, ShapeError
from wavecodec.compression import DTYPES, ModelMismatchError, bits_per_sample, decompress, read_header
from wavecodec.container import MAGIC, pack, unpack


@pytest.mark.parametrize("coder", ["ans", "ans-iid", "webp", "raw"])
def test_decompress_equals_decode_of_quantized_latents(fitted: Codec, coder: str) -> None:
    x = synthetic_images(1, size=64, seed=3)[:, :, :61, :45].contiguous()
    data = fitted.compress(x, coder=coder)
    expected = fitted.decode(fitted.quantize(fitted.encode(x)), size=x.shape[2:], dtype=x.dtype)
    out = fitted.decompress(data)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out, expected)
    header = read_header(data)
    assert header["coder"] == coder and header["shape"] == [61, 45] and header["padding"] == [3, 3]


def test_bits_per_pixel_counts_the_whole_file(fitted: Codec) -> None:
    x = synthetic_images(1, size=64, seed=4)
    data = fitted.compress(x)
    assert bits_per_sample(len(data), read_header(data)) == pytest.approx(8 * len(data) / 64**2)


def test_ans_files_are_smaller_than_raw_latents(fitted: Codec) -> None:
    x = synthetic_images(1, size=128, seed=6)
    assert len(fitted.compress(x, coder="ans")) < 0.9 * len(fitted.compress(x, coder="raw"))


def test_gray_rgba_float_and_uint16_inputs(fitted: Codec) -> None:
    rgb = synthetic_images(1, size=32, seed=7)
    gray = rgb[:, :1]
    out = fitted.decompress(fitted.compress(gray))
    assert out.shape == gray.shape and out.dtype == torch.uint8
    assert (out.float() - gray.float()).abs().mean() < 40
    rgba = torch.cat([rgb, torch.randint(0, 256, (1, 1, 32, 32), dtype=torch.uint8)], 1)
    out = fitted.decompress(fitted.compress(rgba))
    assert out.shape == rgba.shape and torch.equal(out[:, 3], rgba[:, 3])  # alpha is lossless
    f = rgb.float() / 255
    assert fitted.decompress(fitted.compress(f)).dtype == torch.float32
    u16 = rgb.to(torch.int32).mul(257).to(torch.uint16)
    out16 = fitted.decompress(fitted.compress(u16))
    assert out16.dtype == torch.uint16 and int(out16.to(torch.int32).max()) > 255
    unbatched = fitted.decompress(fitted.compress(rgb[0]))
    assert unbatched.shape == rgb.shape


def test_batches_round_trip(fitted: Codec) -> None:
    x = synthetic_images(3, size=32, seed=8)
    assert fitted.decompress(fitted.compress(x)).shape == x.shape


def test_wrong_model_is_refused(fitted: Codec) -> None:
    other = fitted_codec(seed=1, name="other")
    data = fitted.compress(synthetic_images(1, size=32))
    with pytest.raises(ModelMismatchError, match="made with model 'test-fitted'"):
        decompress(other, data)


def test_bad_inputs_to_compress(fitted: Codec) -> None:
    with pytest.raises(ShapeError):
        fitted.compress(torch.zeros(1, 3, 0, 5))
    with pytest.raises(ShapeError, match="codes 3-channel signals, the input has 5"):
        fitted.compress(torch.zeros(1, 5, 8, 8))
    with pytest.raises(FormatError, match="unknown coder"):
        fitted.compress(torch.zeros(1, 3, 8, 8), coder="zip")


def _rewrite_header(data: bytes, edit) -> bytes:
    header, sections = unpack(data)
    header.pop("sections")
    edit(header)
    return pack(header, sections)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda h: h.update(shape=[2**20, 2**20]), "above the limit"),
        (lambda h: h.update(batch=10**9), "above the limit"),
        (lambda h: h.update(shape=[-1, 4]), "shape"),
        (lambda h: h.update(shape="big"), "shape"),
        (lambda h: h.update(dtype="complex128"), "dtype"),
        (lambda h: h.update(coder="lzma"), "coder"),
        (lambda h: h.update(modality="smell"), "modality"),
        (lambda h: h.pop("model_hash"), "model_hash"),
        (lambda h: h.update(latent_shape=[6, 99, 99]), "shapes do not match"),
        (lambda h: h.update(shape=[64, 64, 64]), "shapes do not match"),
        (lambda h: h.update(alpha=True), "sections|input channels"),
        (lambda h: h.update(sample_rate=-5), "sample rate"),
        (lambda h: h.update(model_hash="0" * 16), "made with model"),
    ],
)
def test_header_edits_give_clear_errors(fitted: Codec, edit, match) -> None:
    data = fitted.compress(synthetic_images(1, size=32))
    with pytest.raises(FormatError, match=match):
        decompress(fitted, _rewrite_header(data, edit))


def test_container_structure_errors(fitted: Codec) -> None:
    data = fitted.compress(synthetic_images(1, size=32))
    cases = {
        b"": "empty",
        b"PK\x03\x04" + data[4:]: "magic",
        data[:5]: "truncated",
        data[:-1]: "CRC32|truncated",
        data + b"\x00": "CRC32",
        data[:8] + struct.pack("<H", 9) + data[10:]: "version 9",
        data[:10] + struct.pack("<I", 2**31) + data[14:]: "exceeds",
    }
    for blob, match in cases.items():
        with pytest.raises(FormatError, match=match):
            unpack(blob)
    # a consistent CRC over a lying section list is still caught
    body = bytearray(data[:-4])
    header_len = struct.unpack_from("<I", body, 10)[0]
    header = json.loads(body[14 : 14 + header_len])
    header["sections"][0][1] += 1
    text = json.dumps(header).encode()
    forged = bytes(body[:10]) + struct.pack("<I", len(text)) + text + bytes(body[14 + header_len :])
    forged += struct.pack("<I", zlib.crc32(forged))
    with pytest.raises(FormatError, match="do not add up"):
        unpack(forged)
    assert MAGIC == data[:8]


def test_every_dtype_name_is_a_torch_dtype() -> None:
    assert all(isinstance(v, torch.dtype) for v in DTYPES.values())
    assert np.dtype("uint16").itemsize == torch.empty((), dtype=DTYPES["uint16"]).element_size()


@pytest.mark.parametrize("coder", ["ans", "ans-iid", "webp", "raw"])
def test_quantization_step_trades_bits_for_quality(fitted: Codec, coder: str) -> None:
    x = synthetic_images(1, size=64, seed=12)
    sizes = []
    for step in (1.0, 2.0, 4.0):
        data = fitted.compress(x, coder=coder, quant_step=step)
        v = fitted.encode(x)
        expected = fitted.decode(fitted.quantize(v / step).float() * step, size=x.shape[2:], dtype=x.dtype)
        assert torch.equal(fitted.decompress(data), expected)
        assert read_header(data)["step"] == step
        sizes.append(len(data))
    if coder == "raw":  # fixed 8 bits a symbol, whatever the step
        assert sizes[0] == sizes[1] == sizes[2]
    else:
        assert sizes[0] > sizes[1] > sizes[2]
    with pytest.raises(ShapeError, match="quant_step"):
        fitted.compress(x, quant_step=0.5)


@pytest.mark.parametrize("step", [0, 0.99, 65, "2", None])
def test_bad_step_in_header_is_refused(fitted: Codec, step) -> None:
    data = fitted.compress(synthetic_images(1, size=32))
    with pytest.raises(FormatError, match="quantization step"):
        decompress(fitted, _rewrite_header(data, lambda h: h.update(step=step)))

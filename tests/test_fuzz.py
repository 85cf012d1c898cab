"""Fuzzing the decoder: mutated, truncated and extended files give WavecodecError or a valid decode.

Every run checks well over 2,000 files within a time and memory bound; the slow test runs a
longer hypothesis search (``pytest -m slow tests/test_fuzz.py``).
"""

from __future__ import annotations

import json
import random
import resource
import struct
import time
import zlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import synthetic_images
from wavecodec import Codec, WavecodecError
from wavecodec.compression import decompress

_PREFIX = 14  # magic (8) + version (2) + header length (4)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _header_span(data: bytes) -> tuple[int, int]:
    return _PREFIX, _PREFIX + struct.unpack_from("<I", data, 10)[0]


def _json_edit(data: bytes, rng: random.Random) -> bytes:
    start, end = _header_span(data)
    header = json.loads(data[start:end])
    key = rng.choice(sorted(header))
    header[key] = rng.choice(
        [None, -1, 0, 1, 2**31, 2**63, 1.5, "", "x" * 50, [], [0], [2**24, 2**24], [1, 1, 1, 1], {}, True, [[]], [["latents", 2**40]]]
    )
    text = json.dumps(header).encode()
    return _with_crc(data[:10] + struct.pack("<I", len(text)) + text + data[end:-4])


def mutants(data: bytes, count: int, seed: int):
    """Yield ``count`` mutated versions of the valid file ``data``."""
    rng = random.Random(seed)
    start, end = _header_span(data)
    boundaries = sorted({0, 1, 7, 8, 9, 10, 13, start, end - 1, end, end + 1, len(data) - 5, len(data) - 4, len(data) - 1})
    produced = 0
    for cut in boundaries:  # truncation at every header boundary
        yield data[:cut]
        produced += 1
    for extra in (b"\x00", b"\xff" * 7, data):  # extension
        yield data + extra
        produced += 1
    while produced < count:
        kind = produced % 6
        buf = bytearray(data)
        if kind == 0:  # raw bit flips: the CRC must catch them
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            out = bytes(buf)
        elif kind == 1:  # byte edits anywhere, CRC fixed up so the edit reaches the parser
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(len(buf) - 4)] = rng.randrange(256)
            out = _with_crc(bytes(buf[:-4]))
        elif kind == 2:  # payload-only edits with a valid CRC: reaches the entropy decoders
            for _ in range(rng.randint(1, 16)):
                buf[rng.randrange(end, len(buf) - 4)] = rng.randrange(256)
            out = _with_crc(bytes(buf[:-4]))
        elif kind == 3:  # header JSON field edits
            out = _json_edit(data, rng)
        elif kind == 4:  # random truncation, with or without a fixed-up CRC
            cut = rng.randrange(len(data))
            out = data[:cut] if rng.random() < 0.5 else _with_crc(data[: max(0, cut - 4)])
        else:  # random insertion or deletion inside the payload, CRC fixed up
            pos = rng.randrange(end, len(data) - 4)
            body = data[:pos] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 8))) + data[pos + rng.randint(0, 8) :]
            out = _with_crc(body[:-4])
        yield out
        produced += 1


def _check(codec: Codec, blob: bytes) -> str:
    try:
        out = decompress(codec, blob)
    except WavecodecError:
        return "error"
    assert out.signal.dtype == torch.uint8 and out.signal.dim() == 4
    return "decoded"


@pytest.fixture(scope="module")
def base_files(fitted: Codec) -> list[bytes]:
    x = synthetic_images(1, size=32, seed=11)
    rgba = torch.cat([x, x[:, :1]], 1)
    return [fitted.compress(x, coder=c) for c in ("ans", "ans-iid", "webp", "raw")] + [fitted.compress(rgba)]


def test_fuzz_2500_mutants_fail_cleanly_within_bounds(fitted: Codec, base_files: list[bytes]) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outcomes = {"error": 0, "decoded": 0}
    slowest = 0.0
    for i, data in enumerate(base_files):
        for blob in mutants(data, 500, seed=i):
            t = time.perf_counter()
            outcomes[_check(fitted, blob)] += 1
            slowest = max(slowest, time.perf_counter() - t)
    total = sum(outcomes.values())
    assert total >= 2500
    assert outcomes["error"] > total // 2  # most mutants are caught, not silently decoded
    assert slowest < 2.0
    assert time.perf_counter() - start < 120
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 500


@pytest.mark.slow
@settings(max_examples=50000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_hypothesis_long(data) -> None:
    codec, files = _long_fuzz_setup()
    base = files[data.draw(st.integers(0, len(files) - 1))]
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), max_size=8))
    buf = bytearray(base)
    for pos, val in edits:
        buf[pos] = val
    cut = data.draw(st.integers(0, len(buf)))
    blob = bytes(buf[:cut])
    if data.draw(st.booleans()):
        blob = _with_crc(blob[:-4]) if len(blob) >= 4 else blob
    _check(codec, blob)


_LONG: dict = {}


def _long_fuzz_setup():
    if not _LONG:
        from helpers import fitted_codec

        codec = fitted_codec()
        x = synthetic_images(1, size=32, seed=11)
        _LONG["v"] = (codec, [codec.compress(x, coder=c) for c in ("ans", "ans-iid", "webp", "raw")])
    return _LONG["v"]


#: hostile values for every header field: huge, negative, long, wrong type, nested
HOSTILE = [None, -1, 0, 1, 7, 2**31, 2**63, "HUGE", -(2**63), 1.5, -0.0, 1e308, "", "x" * 5000, "../../etc/passwd",
           "rgb-16x", [], [0], [-1, 5], [2**24, 2**24], [16384, 16384], [1, 1, 1, 1], [[1, 2]] * 4, {}, {"a": 1}, True, False]


def _field_edit(data: bytes, key: str, value) -> bytes:
    """``data`` with header field ``key`` set to ``value`` (``"HUGE"``: a 5,000-digit integer), CRC fixed up."""
    start, end = _header_span(data)
    try:
        header = json.loads(data[start:end])
    except ValueError:  # already holds a 5,000-digit integer: leave it as the last edit
        return data
    header[key] = 0 if value == "HUGE" else value
    text = json.dumps(header)
    if value == "HUGE":  # Python refuses to print such an integer; write its digits directly
        text = text.replace(f'"{key}": 0', f'"{key}": {"9" * 5000}', 1)
    raw = text.encode()
    return _with_crc(data[:10] + struct.pack("<I", len(raw)) + raw + data[end:-4])


#: edits that keep each field plausible but make the fields disagree with each other or with the payload
INCONSISTENT = [
    {"shape": [16384, 16384], "latent_shape": [6, 4096, 4096], "padding": [0, 0]},  # a huge image from a tiny payload
    {"shape": [8, 8], "latent_shape": [6, 2, 2], "padding": [0, 0]},
    {"latent_shape": [6, 9, 9]},
    {"channels": 1}, {"input_channels": 4}, {"alpha": True}, {"batch": 2}, {"latent_bits": 16},
    {"coder": "raw"}, {"coder": "webp"}, {"coder": "ans-iid"}, {"coder": "ans-wavefront"},
    {"chunk_frames": 1, "chunk_bytes": [1]}, {"value_range": [[0, 1]]}, {"value_range": [[1, 0]] * 3},
    {"modality": "audio", "sample_rate": 1}, {"modality": "audio", "dtype": "uint8"}, {"dtype": "float64"},
    {"step": 64.0}, {"model_hash": "0" * 16},
]


def _check_consistent(codec: Codec, blob: bytes) -> str:
    """A clean error, or a decode whose shape and dtype are what its (edited) header declares."""
    from wavecodec.compression import DTYPES

    try:
        out = decompress(codec, blob)
    except WavecodecError:
        return "error"
    h = out.header
    assert out.signal.dtype == DTYPES[h["dtype"]]
    assert tuple(out.signal.shape) == (h["batch"], h["input_channels"], *h["shape"])
    return "decoded"


def test_structured_header_fuzz_every_field_every_hostile_value(fitted: Codec, base_files: list[bytes]) -> None:
    """Each header field of each file type set to each hostile value, and fields made to disagree: a clean
    error or a valid decode, each within 2 s, and memory bounded by what the payloads can hold."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, checked, slowest = time.perf_counter(), 0, 0.0
    for data in base_files:
        begin, end = _header_span(data)
        for key in sorted(json.loads(data[begin:end])):
            if key == "sections":
                continue
            for value in HOSTILE:
                t = time.perf_counter()
                _check_consistent(fitted, _field_edit(data, key, value))
                slowest = max(slowest, time.perf_counter() - t)
                checked += 1
        for edits in INCONSISTENT:
            blob = data
            for key, value in edits.items():
                blob = _field_edit(blob, key, value)
            t = time.perf_counter()
            _check_consistent(fitted, blob)
            slowest = max(slowest, time.perf_counter() - t)
            checked += 1
    assert checked > 1500
    assert slowest < 2.0
    assert time.perf_counter() - start < 60
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 300  # the payloads are a few hundred bytes: no declared size gets past that


def test_a_tiny_file_declaring_a_huge_image_is_refused_at_once(fitted: Codec, base_files: list[bytes]) -> None:
    blob = base_files[0]
    for key, value in {"shape": [16384, 16384], "latent_shape": [6, 4096, 4096], "padding": [0, 0]}.items():
        blob = _field_edit(blob, key, value)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(WavecodecError, match="too short|model"):
        decompress(fitted, blob)
    assert time.perf_counter() - start < 0.5
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024 < 50


@pytest.mark.slow
@settings(max_examples=20000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_structured_header_fuzz_long(data) -> None:
    """Several fields at once, each set to a hostile value or to another field's value."""
    codec, files = _long_fuzz_setup()
    blob = files[data.draw(st.integers(0, len(files) - 1))]
    begin, end = _header_span(blob)
    keys = sorted(k for k in json.loads(blob[begin:end]) if k != "sections")
    for _ in range(data.draw(st.integers(1, 4))):
        blob = _field_edit(blob, data.draw(st.sampled_from(keys)), data.draw(st.sampled_from(HOSTILE)))
    _check_consistent(codec, blob)

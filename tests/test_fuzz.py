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

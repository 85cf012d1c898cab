"""The default coder (format versions 2-5): interlaced context coding in whole-tensor passes, with either magnitude model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import synthetic_images
from wavecodec import FormatError
from wavecodec import interlaced, rans

#: every form of the coder: format 5 (a live-channel mask, then format 4), format 4 with each magnitude model, format 3
#: (linear, int16 weights) and format 2 (two states)
FORMS = pytest.mark.parametrize("form", [(5, None), (4, interlaced.LOG), (4, interlaced.LINEAR), (3, None), (2, None)],
                                ids=["v5", "v4-log", "v4-linear", "v3", "v2"])


def enc(q: np.ndarray, max_symbol: int, form: tuple[int, str | None]) -> bytes:
    return interlaced.encode(q, max_symbol, version=form[0], model=form[1])


def dec(data: bytes, shape: tuple[int, ...], max_symbol: int, form: tuple[int, str | None]) -> np.ndarray:
    return interlaced.decode(data, shape, max_symbol, version=form[0])


def smooth_latents(shape: tuple[int, ...], bits: int = 8, seed: int = 0, passes: int = 1) -> np.ndarray:
    """Spatially correlated integer latents, like a codec's: smoothed noise, channel 0 the largest."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, shape)
    for _ in range(passes):
        for axis in range(2, len(shape)):
            x = (x + np.roll(x, 1, axis) + np.roll(x, -1, axis)) / 3
    scale = np.array([40.0] + [8.0] * (shape[1] - 1)).reshape(1, -1, *([1] * (len(shape) - 2)))
    m = 2 ** (bits - 1) - 1
    return np.clip(np.round(x * scale * (m / 127)), -m, m).astype(np.int64)


@FORMS
@pytest.mark.parametrize("shape", [(1, 12, 64, 96), (2, 3, 17, 23), (1, 1, 7, 7), (1, 4, 1, 1), (1, 5, 300), (1, 2, 5, 6, 7), (3, 6, 9, 1)])
def test_round_trip_of_any_shape(shape: tuple[int, ...], form: tuple[int, str | None]) -> None:
    q = smooth_latents(shape)
    assert np.array_equal(dec(enc(q, 127, form), shape, 127, form), q)


@FORMS
def test_every_size_modulo_the_lattice_round_trips(form: tuple[int, str | None]) -> None:
    """The decoder keeps each step's positions in planes of their own: each of the 64 pairs of sizes modulo 8 lays them out differently."""
    for rows in range(9, 17):
        for cols in range(1, 9):
            q = smooth_latents((1, 3, rows, cols + 8 * (rows % 2)), seed=rows * 17 + cols)
            assert np.array_equal(dec(enc(q, 127, form), q.shape, 127, form), q), q.shape


@FORMS
def test_round_trip_of_16_bit_latents_with_escapes(form: tuple[int, str | None]) -> None:
    q = smooth_latents((1, 4, 20, 30), bits=16)
    q[0, 1, 5, 5], q[0, 2, 0, 0], q[0, 3, -1, -1] = 32767, -32767, 30000  # far outside any table window
    assert np.array_equal(dec(enc(q, 32767, form), q.shape, 32767, form), q)


def test_context_coding_beats_the_value_entropy_of_smooth_latents() -> None:
    q = smooth_latents((1, 6, 48, 64), passes=4)
    bits = 8 * len(interlaced.encode(q, 127))
    entropy = 0.0
    for c in range(q.shape[1]):
        _, counts = np.unique(q[0, c], return_counts=True)
        p = counts / counts.sum()
        entropy -= counts @ np.log2(p)
    assert bits < 0.8 * entropy  # the neighbours predict the values


def test_the_weights_adapt_and_stay_int16() -> None:
    q = smooth_latents((1, 3, 32, 32))
    w = interlaced._fit(q[0], 127, model=interlaced.LINEAR)
    assert w.shape == (3, interlaced.WEIGHTS) and np.abs(w).max() <= 32767
    assert (w[:, 1:3] > 0).all()  # smooth latents: positive prediction weights on the diagonal pairs
    w = interlaced._fit(q[0], 127)
    assert w.shape == (3, rans.LOG_WEIGHTS) and np.abs(w).max() <= 32767
    assert (w[:, 2:4] > 0).all() and (w[:, 9:11] > 0).all()  # the same predictions, in the log-linear layout


def test_the_log_linear_model_follows_magnitudes_that_move_together_across_channels() -> None:
    """Where every channel is loud or quiet together (edges, texture), the earlier channels' residuals at a
    position tell a later channel's magnitude: format 4's model uses them, the linear one cannot."""
    rng = np.random.default_rng(3)
    loudness = np.exp(rng.normal(0, 1.2, (1, 1, 48, 64)))
    q = np.clip(np.round(rng.laplace(0, 1, (1, 8, 48, 64)) * 6 * loudness), -127, 127).astype(np.int64)
    log, linear = (len(interlaced.encode(q, 127, model=m)) for m in (interlaced.LOG, interlaced.LINEAR))
    assert log < 0.93 * linear and len(interlaced.encode(q, 127, version=3)) > linear  # format 3: the same model, int16 weights
    w = interlaced._fit(q[0], 127)
    assert (w[1:, 8] > 0).all() and (w[1:, 15] > 0).all()  # every later channel's slope on Y, centres and edges


def test_the_integer_logarithm_is_mitchells_and_the_table_offset_is_the_ladders() -> None:
    f = np.concatenate([np.arange(70000), 2 ** np.arange(17, 62) - 1, 2 ** np.arange(17, 62)]).astype(np.int64)
    ours = rans.log_features(f)
    v = f.astype(object) + 1  # exact: the bit length and the 8 bits below the top one
    n = np.array([x.bit_length() - 1 for x in v])
    expected = n * 256 + np.array([((x << 8) >> int(k)) & 255 for x, k in zip(v, n)])
    assert np.array_equal(ours, expected.astype(np.int64))
    assert np.abs(ours[:70000] / 256 - np.log2(1.0 + np.arange(70000))).max() < 0.09  # within 0.09 of log2
    shift = rans.LOG_UNIT + rans.SLOPE_SHIFT
    assert interlaced.LOG_K0 == round(-4 * np.log2(interlaced.LADDER_MIN) * 2**shift) + 2 ** (shift - 1)


@FORMS
def test_every_truncation_and_many_corruptions_are_refused_or_decode_in_range(form: tuple[int, str | None]) -> None:
    q = smooth_latents((1, 3, 12, 14))
    data = enc(q, 127, form)
    for n in range(0, len(data), 7):
        try:
            out = dec(data[:n], q.shape, 127, form)
        except FormatError:
            continue
        assert out.shape == q.shape and np.abs(out).max() <= 127
    rng = np.random.default_rng(0)
    for _ in range(200):
        bad = bytearray(data)
        bad[rng.integers(len(bad))] ^= 1 << int(rng.integers(8))
        try:
            out = dec(bytes(bad), q.shape, 127, form)
        except FormatError:
            continue
        assert out.shape == q.shape and np.abs(out).max() <= 127


def test_the_frozen_ladder_is_what_build_ladder_computes() -> None:
    radii, tables, edges = interlaced.build_ladder()
    with np.load(interlaced.LADDER_PATH) as f:
        assert np.array_equal(f["radii"], radii) and np.array_equal(f["tables"], tables) and np.array_equal(f["edges"], edges)
    assert (tables[np.arange(len(radii)), 2 * radii + 1] >= 1).all()  # every table keeps an escape
    assert all(tables[k, : 2 * r + 2].sum() == 2**16 for k, r in enumerate(radii))


def test_a_codec_file_uses_it_and_is_identical_across_thread_counts(fitted) -> None:
    x = synthetic_images(2, size=40)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fitted.compress(x)
        torch.set_num_threads(4)
        four = fitted.compress(x)
    finally:
        torch.set_num_threads(before)
    assert one == four
    from wavecodec.compression import open_latents, read_header

    assert read_header(one)["coder"] == "ans" and read_header(one)["format_version"] == 5
    with torch.no_grad():
        expected = fitted.quantize(fitted.encode(x)).numpy()
    assert np.array_equal(open_latents(fitted, one)[1].all(), expected)


@FORMS
def test_silent_and_constant_channels_fit_finite_weights_and_round_trip(form: tuple[int, str | None]) -> None:
    q = smooth_latents((1, 4, 24, 32))
    q[0, 1] = 0  # silent: every magnitude feature is zero
    q[0, 2] = 3  # constant: its spread and residuals vanish
    model = form[1] or interlaced.LINEAR
    w = interlaced._fit(q[0], 127, model=model)
    alphas = slice(2, 4) if model == interlaced.LOG else slice(1, 3)
    assert np.all(np.abs(w) <= 32767) and np.all(w[1, alphas] == 0)  # nothing to predict from in a silent channel
    assert np.array_equal(dec(enc(q, 127, form), q.shape, 127, form), q)


def test_results_never_share_the_reused_buffers() -> None:
    a, b = smooth_latents((1, 3, 16, 16), seed=1), smooth_latents((1, 3, 16, 16), seed=2)
    data_a, data_b = interlaced.encode(a, 127), interlaced.encode(b, 127)
    assert data_a != data_b
    first = interlaced.decode(data_a, a.shape, 127)
    second = interlaced.decode(data_b, b.shape, 127)  # reuses the same scratch planes
    assert np.array_equal(first, a) and np.array_equal(second, b)
    assert interlaced.encode(a, 127) == data_a  # the encoder, too, starts from clean buffers


@FORMS
@pytest.mark.parametrize("channels,max_symbol", [(48, 2047), (40, 8191), (10, 16383)])
def test_activity_summed_over_many_loud_channels_round_trips(channels: int, max_symbol: int, form: tuple[int, str | None]) -> None:
    # values sit in int16 planes, but their sum over the channels does not fit int16
    q = np.random.default_rng(0).choice([-max_symbol, max_symbol], (1, channels, 16, 16))
    assert np.array_equal(dec(enc(q, max_symbol, form), q.shape, max_symbol, form), q)


def test_format_4_picks_the_smaller_model_for_quiet_latents_and_the_log_linear_one_for_loud_ones() -> None:
    quiet = np.clip(np.round(np.random.default_rng(5).laplace(0, 0.3, (1, 16, 32, 32))), -511, 511).astype(np.int64)
    both = [interlaced.encode(quiet, 511, version=4, model=m) for m in interlaced.MODEL_IDS]
    auto = interlaced.encode(quiet, 511, version=4)
    assert len(auto) == min(map(len, both)) and auto in both
    assert np.array_equal(interlaced.decode(auto, quiet.shape, 511, version=4), quiet)
    loud = 3 * smooth_latents((1, 6, 24, 32))
    assert np.abs(loud).mean() >= interlaced.LOG_ABOVE and interlaced.encode(loud, 127, version=4)[0] == interlaced.MODEL_IDS.index(interlaced.LOG)
    for bad in (b"", bytes([len(interlaced.MODEL_IDS)]) + auto[1:]):
        with pytest.raises(FormatError, match="magnitude model"):
            interlaced.decode(bad, quiet.shape, 511, version=4)


def test_variable_length_weights_round_trip_and_malformed_ones_are_refused() -> None:
    w = np.array([0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, 32767, -32767], dtype=np.int64)
    data = interlaced.pack_weights(w)
    assert len(data) == 1 + 1 + 1 + 1 + 1 + 2 + 2 + 2 + 2 + 3 + 3 + 3 + 3
    back, end = interlaced.unpack_weights(b"x" + data + b"rest", 1, w.size)
    assert np.array_equal(back, w) and end == 1 + len(data)
    for bad, count, why in ((data[:-1], w.size, "cut off"), (bytes([0x80, 0x80, 0x80, 0x01, 0x00]), 2, "malformed"),
                            (bytes([0xFF, 0xFF, 0x03]), 1, "out of range")):
        with pytest.raises(FormatError, match=why):
            interlaced.unpack_weights(bad, 0, count)


def test_format_4_pads_its_weights_to_keep_the_words_aligned_and_refuses_a_nonzero_pad() -> None:
    padded = 0
    for seed in range(8):
        q = smooth_latents((1, 3, 12, 14), seed=seed)
        for model in interlaced.MODEL_IDS:
            data = interlaced.encode(q, 127, version=4, model=model)
            count = 3 * (rans.LOG_WEIGHTS if model == interlaced.LOG else interlaced.WEIGHTS)
            weights, end = interlaced.unpack_weights(data, 1, count)
            assert end % 2 == 0 and (len(data) - end) % 2 == 0
            if rans.pack_varints(weights, np.empty(3 * count, np.uint8)) % 2 == 0:  # padded: a nonzero pad is refused
                padded += 1
                bad = bytearray(data)
                bad[end - 1] = 1
                with pytest.raises(FormatError, match="malformed"):
                    interlaced.decode(bytes(bad), q.shape, 127, version=4)
    assert padded


def test_format_5_codes_only_the_live_channels_behind_a_mask() -> None:
    q = smooth_latents((2, 12, 20, 24))
    q[:, [1, 2, 5, 6, 7, 8, 9, 11]] = 0  # a variable-rate model's latents at a low quality: most channels silent
    q[1, 3] = 0  # silent in one item only: still live
    data = interlaced.encode(q, 127, version=5)
    live = [0, 3, 4, 10]
    assert data[:2] == np.packbits(np.isin(np.arange(12), live), bitorder="little").tobytes()
    assert data[2:] == interlaced.encode(np.ascontiguousarray(q[:, live]), 127, version=4)  # then format 4 of those alone
    assert np.array_equal(interlaced.decode(data, q.shape, 127, version=5), q)
    assert len(data) < 0.92 * len(interlaced.encode(q, 127, version=4))  # 8 of 12 channels' weights and symbols saved
    silent = np.zeros((1, 9, 16, 16), np.int64)  # all silent: channel 0 stays marked, so a payload bounds its latents
    data = interlaced.encode(silent, 127, version=5)
    assert data[:2] == b"\x01\x00" and np.array_equal(interlaced.decode(data, silent.shape, 127, version=5), silent)


def test_format_5_refuses_a_malformed_mask() -> None:
    q = smooth_latents((1, 10, 8, 8))
    data = interlaced.encode(q, 127, version=5)
    assert data[:2] == b"\xff\x03"
    for bad, why in ((data[:1], "cut off"), (b"\xff\x07" + data[2:], "mask is malformed"), (b"\xfe\x03" + data[2:], "mask is malformed")):
        with pytest.raises(FormatError, match=why):
            interlaced.decode(bad, q.shape, 127, version=5)


def test_channel_bits_add_up_to_the_payload_and_follow_each_channel() -> None:
    q = smooth_latents((1, 4, 48, 64), passes=2)
    q[:, 2] = 0  # a channel format 5 leaves out
    q[:, 3] = np.random.default_rng(3).integers(-60, 61, q[:, 3].shape)  # loud and unpredictable
    bits = interlaced.channel_bits(q, 127)
    payload = interlaced.encode(q, 127)
    assert bits[2] == 0
    assert bits[3] > 4 * bits[1]  # the noise costs what the smooth channel saves
    assert 0.97 * 8 * len(payload) < bits.sum() < 8 * len(payload)  # all but the weights and the flush

"""Entropy model, context model and coders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import synthetic_images
from wavecodec import Codec, FormatError
from wavecodec.coders import raw_decode, raw_encode, webp_decode, webp_encode
from wavecodec.context import ContextModel, ctx_decode, ctx_encode, schedule
from wavecodec.entropy import TOTAL, EntropyModel, LaplaceRate, ans_decode, ans_encode, quantize_pmf


def test_quantize_pmf_sums_exactly_and_keeps_every_symbol() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((5, 300)) ** 8
    probs[0, :10] = 0
    freq = quantize_pmf(probs)
    assert freq.dtype == np.int32
    assert np.all(freq.sum(1) == TOTAL) and freq.min() >= 1
    # large probabilities are kept closely
    top = probs[1].argmax()
    assert abs(freq[1, top] / TOTAL - probs[1, top] / probs[1].sum()) < 1e-3


def test_learned_rate_is_differentiable_and_matches_frozen_tables() -> None:
    ent = EntropyModel(3, 8)
    q = torch.randint(-20, 21, (2, 3, 8, 8))
    ent.fit(q)
    v = q.float().requires_grad_()
    bits = ent.bits_noisy(v)
    bits.sum().backward()
    assert ent.logits.grad is not None and ent.logits.grad.abs().sum() > 0
    assert v.grad is not None and torch.isfinite(v.grad).all()
    exact = ent.bits_integer(q)
    assert torch.allclose(bits.detach().double(), exact, atol=0.01)
    assert exact.mean() < 6.0  # fitted on a 41-value range: well below 8 bits


def test_escape_handles_values_beyond_the_table() -> None:
    ent = EntropyModel(2, 12)
    assert ent.table_radius == 255 and ent.max_symbol == 2047
    q = torch.tensor([0, 5, 300, -2047, 2047, -256]).reshape(1, 2, 3)
    pmf = ent.pmf.numpy()
    data = ans_encode(q.numpy(), pmf, ent.table_radius, ent.max_symbol)
    assert np.array_equal(ans_decode(data, tuple(q.shape), pmf, ent.table_radius, ent.max_symbol), q.numpy())
    assert torch.isfinite(ent.bits_integer(q)).all()


@pytest.mark.parametrize("bits", [4, 8, 10])
def test_all_coders_round_trip(bits: int) -> None:
    rng = np.random.default_rng(bits)
    m = 2 ** (bits - 1) - 1
    q = np.clip(np.round(rng.laplace(0, m / 8, (2, 5, 9, 7))), -m, m).astype(np.int64)
    q[0, 0, 0, 0] = m
    q[1, 4, 8, 6] = -m
    ent = EntropyModel(5, bits)
    ctx = ContextModel(5, bits)
    ent.fit(torch.from_numpy(q))
    ctx.fit(torch.from_numpy(q))
    params = ctx.numpy_params()
    assert np.array_equal(ans_decode(ans_encode(q, ent.pmf.numpy(), ent.table_radius, m), q.shape, ent.pmf.numpy(), ent.table_radius, m), q)
    assert np.array_equal(ctx_decode(ctx_encode(q, params, ctx.residual_radius, m), q.shape, params, ctx.residual_radius, m), q)
    assert np.array_equal(raw_decode(raw_encode(q, m), q.shape, m), q)
    if bits <= 8:
        assert np.array_equal(webp_decode(webp_encode(q, m), q.shape, m), q)
    else:
        with pytest.raises(FormatError, match="8-bit"):
            webp_encode(q, m)


def test_context_coder_on_1d_and_3d_latent_shapes() -> None:
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 50), (1, 2, 3, 4, 5)]:
        q = np.cumsum(rng.integers(-3, 4, shape), axis=-1).clip(-127, 127)
        ctx = ContextModel(shape[1], 8)
        ctx.fit(torch.from_numpy(q))
        p = ctx.numpy_params()
        assert np.array_equal(ctx_decode(ctx_encode(q, p, ctx.residual_radius, 127), shape, p, ctx.residual_radius, 127), q)


def test_schedule_decodes_every_neighbour_first() -> None:
    from wavecodec.context import NEIGHBOURS, PREV_BOX

    channels, rows, cols = 3, 5, 7
    order = {}
    for step, (c, i, j) in enumerate(schedule(channels, rows, cols)):
        for key in zip(c.tolist(), i.tolist(), j.tolist()):
            assert key not in order
            order[key] = step
    assert len(order) == channels * rows * cols
    for (c, i, j), step in order.items():
        for di, dj in NEIGHBOURS:
            if 0 <= i + di < rows and 0 <= j + dj < cols:
                assert order[(c, i + di, j + dj)] < step
        for di, dj in PREV_BOX:
            if c and 0 <= i + di < rows and 0 <= j + dj < cols:
                assert order[(c - 1, i + di, j + dj)] < step


def test_context_model_beats_iid_tables_on_correlated_latents(fitted: Codec) -> None:
    x = synthetic_images(2, size=128, seed=5)
    with torch.no_grad():
        q = fitted.quantize(fitted.encode(x)).numpy().astype(np.int64)
    ent, ctx = fitted.entropy, fitted.context
    iid = ans_encode(q, ent.pmf.numpy(), ent.table_radius, ent.max_symbol)
    context = ctx_encode(q, ctx.numpy_params(), ctx.residual_radius, ctx.max_symbol)
    assert len(context) < 0.95 * len(iid)


def test_decoders_reject_garbage_cleanly() -> None:
    ctx = ContextModel(2, 8)
    p = ctx.numpy_params()
    for data in [b"", b"\x00" * 4, b"abc", bytes(range(256)) * 3]:
        try:
            out = ctx_decode(data, (1, 2, 4, 4), p, ctx.residual_radius, 127)
            assert out.shape == (1, 2, 4, 4) and np.abs(out).max() <= 127
        except FormatError:
            pass
    with pytest.raises(FormatError):
        webp_decode(b"RIFF0000WEBPjunk", (1, 2, 4, 4), 127)
    with pytest.raises(FormatError, match="wrong length"):
        raw_decode(b"\x00" * 5, (1, 2, 4, 4), 127)


def test_laplace_rate_is_a_distribution_and_charges_a_dead_channel_nothing() -> None:
    torch.manual_seed(0)
    symbols = torch.cat([torch.zeros(1, 1, 4000), torch.distributions.Laplace(0.0, 6.0).sample((1, 1, 4000)).round()], 1)
    rate = LaplaceRate(2)
    rate.fit(symbols)
    scales = rate.log_scale.detach().exp()
    assert float(scales[0]) == pytest.approx(LaplaceRate.MIN_SCALE) and 5 < float(scales[1]) < 7
    k = torch.arange(-300, 301).view(1, 1, -1).expand(1, 2, -1)
    assert torch.allclose((2.0 ** -rate.bits_integer(k)).sum(-1), torch.ones(1, 2, dtype=torch.float64))
    noisy = symbols + torch.rand_like(symbols) - 0.5
    bits = rate.bits_noisy(noisy).mean(-1)[0].detach()
    assert bits[0] < 0.05  # a channel at zero: what the files spend on it, about nothing
    table = EntropyModel(2, 10)
    table.fit(symbols.to(torch.int32))
    assert table.bits_noisy(noisy).mean(-1)[0, 0] > 0.2  # the unit-cell table charges it a floor
    # on the live channel the estimate is near the empirical entropy of the symbols
    _, counts = symbols[0, 1].unique(return_counts=True)
    p = counts.double() / counts.sum()
    assert float(bits[1]) == pytest.approx(float(-(p * p.log2()).sum()), abs=0.15)
    noisy.requires_grad_(True)
    rate.bits_noisy(noisy).sum().backward()
    assert noisy.grad[0, 1].abs().sum() > 0

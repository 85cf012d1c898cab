"""The wavelet packet transform against PyWavelets, and its basic properties."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from wavecodec import ShapeError, wpt

WAVELETS = ["bior4.4", "haar", "db2", "sym5", "coif1", "bior2.2"]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def pywt_packets_1d(x: np.ndarray, wavelet: str, levels: int) -> np.ndarray:
    wp = pywt.WaveletPacket(x, wavelet, mode="periodization", maxlevel=levels)
    return np.stack([node.data for node in wp.get_level(levels, "natural")])


def pywt_packets_2d(x: np.ndarray, wavelet: str, levels: int) -> np.ndarray:
    wp = pywt.WaveletPacket2D(x, wavelet, mode="periodization", maxlevel=levels)
    return np.stack([node.data for node in wp.get_level(levels, "natural")])


def pywt_packets_3d(x: np.ndarray, wavelet: str, levels: int) -> np.ndarray:
    """Full packet tree from pywt.dwtn, ordered by our documented 3-D digit 4*W + 2*H + D."""
    nodes = [x]
    for _ in range(levels):
        nxt = []
        for node in nodes:
            coeffs = pywt.dwtn(node, wavelet, mode="periodization")
            for digit in range(8):
                key = "".join("ad"[(digit >> bit) & 1] for bit in (0, 1, 2))  # axis order D, H, W
                nxt.append(coeffs[key])
        nodes = nxt
    return np.stack(nodes)


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_1d_matches_pywavelets_and_reconstructs(wavelet: str, levels: int, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(levels)
    x = rng.standard_normal((2, 3, 64))
    X = wpt.analysis(torch.tensor(x, dtype=dtype), levels, wavelet)
    assert X.shape == (2, 3 * 2**levels, 64 // 2**levels)
    ref = np.stack([np.concatenate([pywt_packets_1d(x[b, c], wavelet, levels) for c in range(3)]) for b in range(2)])
    assert np.abs(X.double().numpy() - ref).max() <= TOL[dtype]
    x_rec = wpt.synthesis(X, levels, wavelet)
    assert x_rec.dtype == dtype
    assert np.abs(x_rec.double().numpy() - x).max() <= TOL[dtype]


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_2d_matches_pywavelets_and_reconstructs(wavelet: str, levels: int, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(10 + levels)
    x = rng.uniform(-0.5, 0.5, (2, 2, 32, 48))
    X = wpt.analysis(torch.tensor(x, dtype=dtype), levels, wavelet)
    assert X.shape == (2, 2 * 4**levels, 32 // 2**levels, 48 // 2**levels)
    ref = np.stack([np.concatenate([pywt_packets_2d(x[b, c], wavelet, levels) for c in range(2)]) for b in range(2)])
    assert np.abs(X.double().numpy() - ref).max() <= TOL[dtype]
    x_rec = wpt.synthesis(X, levels, wavelet)
    assert np.abs(x_rec.double().numpy() - x).max() <= TOL[dtype]


@pytest.mark.parametrize("levels", [1, 2])
def test_3d_matches_pywavelets_dwtn_packets(levels: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 8, 16, 12))
    X = wpt.analysis(torch.tensor(x), levels)
    assert X.shape == (1, 8**levels, 8 // 2**levels, 16 // 2**levels, 12 // 2**levels)
    assert np.abs(X[0].numpy() - pywt_packets_3d(x[0, 0], "bior4.4", levels)).max() <= 1e-10
    assert np.abs(wpt.synthesis(X, levels).numpy() - x).max() <= 1e-10


def test_channel_order_first_band_is_approximation() -> None:
    # a constant image puts all its energy into the approximation band of each channel
    x = torch.ones(1, 3, 16, 16, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).double()
    X = wpt.analysis(x, 2)
    energy = X.pow(2).sum(dim=(2, 3))[0]
    for c in range(3):
        block = energy[c * 16 : (c + 1) * 16]
        assert block[0] > 0
        assert torch.all(block[1:] < 1e-20)
        assert torch.allclose(X[0, c * 16], torch.full((4, 4), 4.0 * (c + 1), dtype=torch.float64))


def test_channel_order_horizontal_edge_lands_in_h_band() -> None:
    # variation along H only (rows differ) is pywt's 'h' band (index 1) at level 1
    x = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    x[:, :, ::2] = 1.0
    X = wpt.analysis(x, 1)
    energy = X.pow(2).sum(dim=(2, 3))[0]
    assert energy[1] > 1.0 and energy[2] < 1e-20 and energy[3] < 1e-20


def test_orthogonal_wavelet_preserves_energy() -> None:
    x = torch.randn(2, 1, 64, 64, dtype=torch.float64)
    X = wpt.analysis(x, 3, "db4")
    assert torch.allclose(X.pow(2).sum(), x.pow(2).sum())


def test_gradients_flow_through_both_directions() -> None:
    x = torch.randn(1, 2, 16, 16, requires_grad=True)
    X = wpt.analysis(x, 2)
    weight = torch.randn_like(X)
    (wpt.synthesis(X * weight, 2) ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda t: wpt.synthesis(wpt.analysis(t, 2) ** 2, 2), (torch.randn(1, 1, 8, 8, dtype=torch.float64, requires_grad=True),))


def test_bfloat16_runs_and_roughly_reconstructs() -> None:
    x = torch.rand(1, 3, 32, 32)
    X = wpt.analysis(x.bfloat16(), 2)
    assert X.dtype == torch.bfloat16
    rec = wpt.synthesis(X, 2).float()
    assert (rec - x).abs().max() < 0.1


def test_levels_zero_is_identity() -> None:
    x = torch.randn(1, 1, 10)
    assert torch.equal(wpt.analysis(x, 0), x)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_output_stays_on_the_input_device(device: str) -> None:
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    X = wpt.analysis(x.to(device), 3)
    assert X.device.type == device
    assert torch.allclose(X.cpu(), wpt.analysis(x, 3), atol=1e-10)
    assert torch.allclose(wpt.synthesis(X, 3).cpu(), x, atol=1e-10)


@pytest.mark.parametrize(
    "shape,levels,match",
    [
        ((1, 1, 30, 32), 2, "not a positive multiple"),
        ((1, 1, 36), 3, "not a positive multiple"),
        ((1, 1), 1, "expected a"),
        ((1, 1, 2, 2, 2, 2), 1, "expected a"),
    ],
)
def test_clear_errors_for_bad_shapes(shape, levels, match) -> None:
    with pytest.raises(ShapeError, match=match):
        wpt.analysis(torch.zeros(shape), levels)


def test_clear_errors_for_bad_arguments() -> None:
    with pytest.raises(ShapeError, match="floating-point"):
        wpt.analysis(torch.zeros(1, 1, 8, dtype=torch.int32), 1)
    with pytest.raises(ShapeError, match="unknown wavelet"):
        wpt.analysis(torch.zeros(1, 1, 8), 1, "nope")
    with pytest.raises(ShapeError, match="multiple of the 16 subbands"):
        wpt.synthesis(torch.zeros(1, 8, 4, 4), 2)


@pytest.mark.parametrize(("shape", "levels"), [((2, 3, 24, 40), 3), ((1, 2, 2048), 8), ((1, 1, 4096), 5), ((1, 3, 64, 64), 4),
                                               ((1, 2, 8, 16, 24), 3), ((1, 3, 8, 8), 3), ((1, 1, 16, 16, 16), 2)])
def test_fused_filter_banks_equal_the_level_by_level_transform(shape: tuple[int, ...], levels: int) -> None:
    """One composite bank per axis (in stages past three levels) computes the same as the two-filter tree."""
    x = torch.randn(*shape, dtype=torch.float64)
    X = wpt._convolution_analysis(x, levels, "bior4.4")
    assert torch.allclose(X, wpt._levelwise_analysis(x, levels, "bior4.4"), atol=1e-12)
    x_rec = wpt._convolution_synthesis(X, levels, "bior4.4")
    assert torch.allclose(x_rec, wpt._levelwise_synthesis(X, levels, "bior4.4"), atol=1e-12)
    assert torch.allclose(x_rec, x, atol=1e-9)


@pytest.mark.parametrize("shape,levels", [((2, 3, 64, 96), 3), ((1, 2, 1024), 8), ((1, 1, 16, 32, 8), 2), ((1, 1, 8, 8), 3), ((1, 3, 2), 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lifting_equals_the_convolution_form(shape: tuple[int, ...], levels: int, dtype: torch.dtype) -> None:
    # tensors that need no gradient go through lifting.py; the differentiable path must agree with it
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(levels)).to(dtype)
    kept = x.clone()
    X = wpt.analysis(x, levels)
    assert wpt.by_lifting(x, "bior4.4") and torch.equal(x, kept)  # lifting ran, and left its input alone
    X_conv = wpt._convolution_analysis(x, levels, "bior4.4")
    tol = TOL[dtype]
    assert (X - X_conv).abs().max().item() <= tol
    X_kept = X.clone()
    x_rec = wpt.synthesis(X, levels)
    assert torch.equal(X, X_kept)
    assert (x_rec - wpt._convolution_synthesis(X, levels, "bior4.4")).abs().max().item() <= tol
    assert (x_rec - x).abs().max().item() <= tol
    # with a gradient wanted the convolution form runs, and gives the same values
    xg = x.clone().requires_grad_()
    assert not wpt.by_lifting(xg, "bior4.4")
    assert (wpt.analysis(xg, levels).detach() - X).abs().max().item() <= tol


@pytest.mark.parametrize("shape,levels", [((2, 3, 32, 48), 3), ((1, 2, 64), 4), ((1, 1, 8, 8, 8), 2), ((1, 3, 8, 8), 0)])
def test_analysis_into_equals_analysis(shape: tuple[int, ...], levels: int) -> None:
    x = torch.rand(*shape)
    expected = wpt.analysis(x, levels)
    out = torch.empty_like(expected)
    assert wpt.analysis_into(x.clone(), levels, out) is out and torch.equal(out, expected)

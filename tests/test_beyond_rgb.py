"""Beyond RGB: N channels, 16-bit and float samples, multi-band TIFF, JPEG 2000, NIfTI volumes, the 3-D WPT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pywt
import torch
from PIL import Image

import wavecodec
from wavecodec import Codec, CodecConfig, FormatError, wpt
from wavecodec.cli import main
from wavecodec.compression import normalize, read_header
from wavecodec.container import pack, unpack
from wavecodec.files import read_input
from wavecodec.fitting import fit_entropy, pca_init


def per_channel_codec(channels: int, ndim: int = 2, latent_dim: int | None = None) -> Codec:
    torch.manual_seed(0)
    modality = {2: "image", 3: "volume"}[ndim]
    cfg = CodecConfig(channels=channels, levels=2, latent_dim=latent_dim or 4 * channels, decoder_width=8, decoder_depth=1,
                      modality=modality, normalize="per_channel", name=f"test-{channels}ch-{ndim}d")
    codec = Codec(cfg)
    rng = np.random.default_rng(0)
    shape = (4, channels) + (16,) * ndim
    smooth = torch.from_numpy(rng.normal(size=shape)).float()
    for axis in range(2, 2 + ndim):
        smooth = smooth.cumsum(axis)
    data = normalize(smooth, (0.0, 1.0))[0]
    pca_init(codec, [data])
    fit_entropy(codec, [data])
    return codec.eval()


def smooth_field(shape: tuple[int, ...], lo: float, hi: float, seed: int = 0) -> np.ndarray:
    """A smooth random field scaled to [lo, hi] (float64)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=shape)
    for axis in range(-1, -min(3, len(shape)) - 1, -1):
        f = np.cumsum(f, axis=axis)
    f = (f - f.min()) / (f.max() - f.min())
    return lo + f * (hi - lo)


def test_16bit_multiband_round_trip_keeps_dtype_and_range() -> None:
    codec = per_channel_codec(5)
    x = torch.from_numpy(np.stack([smooth_field((37, 29), 1000 + 500 * c, 9000 + 3000 * c, seed=c) for c in range(5)])
                         .round().astype(np.uint16))[None]
    data = codec.compress(x)
    header = read_header(data)
    assert header["dtype"] == "uint16" and header["input_channels"] == 5
    ranges = np.array(header["value_range"])
    ref = x[0].to(torch.int32).numpy()
    assert np.array_equal(ranges[:, 0], ref.reshape(5, -1).min(1)) and np.array_equal(ranges[:, 1], ref.reshape(5, -1).max(1))
    y = codec.decompress(data)
    assert y.dtype == torch.uint16 and y.shape == x.shape
    out = y[0].to(torch.int32).numpy()
    for c in range(5):  # decoded values stay inside each band's recorded range
        assert ranges[c, 0] <= out[c].min() and out[c].max() <= ranges[c, 1]
    # relative error is what normalisation keeps comparable across bands of different ranges
    rel = np.abs(out - ref).mean(axis=(1, 2)) / (ranges[:, 1] - ranges[:, 0])
    assert rel.max() < 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.int16, torch.uint8])
def test_other_sample_types_come_back_in_kind(dtype: torch.dtype) -> None:
    codec = per_channel_codec(2)
    f = smooth_field((2, 24, 40), -3.0 if dtype.is_floating_point else 0.0, 200.0)
    x = torch.from_numpy(f).to(dtype)[None]
    y = codec.decompress(codec.compress(x))
    assert y.dtype == dtype and y.shape == x.shape


@pytest.mark.parametrize("channels", [1, 2, 4, 7])
def test_n_channel_shapes_with_odd_sizes(channels: int) -> None:
    codec = per_channel_codec(channels)
    x = torch.from_numpy(smooth_field((1, channels, 21, 35), 0, 1)).float()
    latents = codec.encode(x)
    assert latents.shape == (1, 4 * channels, 6, 9)
    assert codec.decompress(codec.compress(x)).shape == x.shape


def test_bad_value_ranges_are_refused() -> None:
    codec = per_channel_codec(2)
    header, sections = unpack(codec.compress(torch.rand(1, 2, 16, 16)))
    for bad in ([[0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], [["a", 1], [0, 1]], [[0.0, float("inf")], [0.0, 1.0]]):
        header["value_range"] = bad
        with pytest.raises(FormatError):
            codec.decompress(pack(header, sections))
    with pytest.raises(wavecodec.ShapeError):
        codec.compress(torch.tensor([[[[float("nan")] * 4] * 4] * 2]))


def test_multiband_tiff_through_the_cli(tmp_path: Path) -> None:
    import tifffile

    codec = per_channel_codec(7)
    model = tmp_path / "ms.safetensors"
    wavecodec.save(codec, model)
    stack = np.stack([smooth_field((40, 44), 500, 20000, seed=c) for c in range(7)]).round().astype(np.uint16)
    src = tmp_path / "scene.tif"
    tifffile.imwrite(src, stack, photometric="minisblack", planarconfig="separate")
    x, facts = read_input(src)
    assert x.shape == (1, 7, 40, 44) and x.dtype == torch.uint16 and facts["kind"] == "image"
    assert main(["encode", str(src), "--model", str(model), "-o", str(tmp_path / "coded" / "scene.wvc"), "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "coded" / "scene.wvc"), "--model", str(model), "--quiet"]) == 0
    out = tifffile.imread(tmp_path / "coded" / "scene.tif")  # the default output type for 16-bit multi-band is TIFF
    assert out.shape == (7, 40, 44) and out.dtype == np.uint16


def test_chunky_tiff_is_read_bands_first(tmp_path: Path) -> None:
    import tifffile

    arr = np.arange(5 * 6 * 4, dtype=np.uint16).reshape(5, 6, 4)  # (H, W, bands)
    tifffile.imwrite(tmp_path / "c.tif", arr, photometric="minisblack", planarconfig="contig")
    x, _ = read_input(tmp_path / "c.tif")
    assert x.shape == (1, 4, 5, 6) and torch.equal(x[0].permute(1, 2, 0), torch.from_numpy(arr))


def test_jpeg2000_16bit_input(tmp_path: Path) -> None:
    band = smooth_field((32, 48), 0, 4000).round().astype(np.uint16)
    Image.fromarray(band).save(tmp_path / "b.jp2", format="JPEG2000", irreversible=False)
    x, _ = read_input(tmp_path / "b.jp2")
    assert x.shape == (1, 1, 32, 48) and x.dtype == torch.uint16
    assert np.array_equal(x[0, 0].numpy(), band)  # reversible JPEG 2000 is lossless


def test_nifti_volume_of_odd_size_round_trip(tmp_path: Path) -> None:
    import nibabel as nib

    codec = per_channel_codec(1, ndim=3, latent_dim=16)
    vol = smooth_field((13, 17, 11), -50, 900).astype(np.int16)
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    nib.save(nib.Nifti1Image(vol, affine), tmp_path / "v.nii.gz")
    x, facts = read_input(tmp_path / "v.nii.gz")
    assert x.shape == (1, 1, 13, 17, 11) and x.dtype == torch.int16 and facts["kind"] == "volume"
    model = tmp_path / "vol.safetensors"
    wavecodec.save(codec, model)
    assert main(["encode", str(tmp_path / "v.nii.gz"), "--model", str(model), "--quiet"]) == 0
    wvc = tmp_path / "v.wvc"  # brain.nii.gz -> brain.wvc: the whole type suffix goes
    assert wvc.exists()
    assert read_header(wvc.read_bytes())["affine"] == affine.tolist()
    out = tmp_path / "decoded.nii.gz"
    assert main(["decode", str(wvc), "--model", str(model), "-o", str(out), "--quiet"]) == 0
    img = nib.load(out)
    dec = np.asanyarray(img.dataobj)
    assert dec.shape == vol.shape and dec.dtype == np.int16 and np.allclose(img.affine, affine)
    assert np.abs(dec.astype(np.float64) - vol).mean() < 0.1 * (vol.max() - vol.min())


def _wavedecn_packets(x: np.ndarray, wavelet: str, levels: int) -> list[np.ndarray]:
    """Full 3-D packet tree built from one-level ``pywt.wavedecn`` calls, in our documented order."""
    nodes = [x]
    for _ in range(levels):
        nxt = []
        for node in nodes:
            approx, details = pywt.wavedecn(node, wavelet, mode="periodization", level=1)
            bands = {"aaa": approx, **details}
            for digit in range(8):  # 4*bit(W) + 2*bit(H) + bit(D)
                key = "".join("d" if (digit >> bit) & 1 else "a" for bit in (0, 1, 2))
                nxt.append(bands[key])
        nodes = nxt
    return nodes


@pytest.mark.filterwarnings("ignore:Level value")  # pywt warns that 8 samples are short for a 10-tap filter
@pytest.mark.parametrize("levels", [1, 2])
def test_3d_wpt_matches_wavedecn_packets(levels: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 8, 12))
    X = wpt.analysis(torch.from_numpy(x)[None], levels)
    assert X.shape == (1, 2 * 8**levels, 16 >> levels, 8 >> levels, 12 >> levels)
    ref = np.concatenate([np.stack(_wavedecn_packets(x[c], "bior4.4", levels)) for c in range(2)])
    assert np.allclose(X[0].numpy(), ref, atol=1e-10)
    assert torch.allclose(wpt.synthesis(X, levels)[0], torch.from_numpy(x), atol=1e-10)


def test_registry_picks_the_model_made_for_each_input() -> None:
    from wavecodec.cli import _Models
    from wavecodec.registry import default_model, models

    assert default_model("image") == default_model("image", 3) == "rgb-storage"  # files: the variable-rate model
    assert default_model("image", 3, "latents") == "rgb-16x"  # datasets of latents: a fixed rate and shape
    assert default_model("image", 1) == "gray-storage" and default_model("image", 1, "latents") == "gray-16x"
    assert default_model("image", 7) == "ms7-16x"
    assert default_model("volume") == "mri-16x"
    assert default_model("audio") == "stereo-5x"
    assert _Models(None).for_input("image", 4).config.name == "rgb-storage"  # RGBA: RGB plus lossless alpha
    assert _Models(None).for_input("audio", 1).config.name == "stereo-5x"  # mono through the stereo model
    assert _Models(None).for_input("volume", 1).config.name == "mri-16x"
    for info in models():  # every entry loads, and its listed figures describe the weights
        codec = wavecodec.load(info.name)
        assert codec.config.name == info.name and codec.config.modality == info.modality
        assert info.figures["channels"] == codec.config.channels and info.figures["latent_dim"] == codec.config.latent_dim
        if info.task:
            assert default_model(info.modality, codec.config.channels) != info.name

"""The house's structure: one decode path, layers that point one way, model selection in the registry."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import wavecodec
from wavecodec import Codec, CodecConfig
from wavecodec.compression import open_latents
from wavecodec.convert import convert
from wavecodec.data import LatentDataset, LatentShards
from wavecodec.fitting import fit_entropy, pca_init

PACKAGE = Path(wavecodec.__file__).resolve().parent
MODULES = sorted(
    ".".join(("wavecodec",) + p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
)
#: the stages: they compute, and know nothing of files, bitstreams or commands
CORE = ["atomic", "bottleneck", "config", "context", "decoder", "encoder", "entropy", "errors", "layers", "lifting", "rates",
        "schedule", "wpt"]
OUTER = {"compression", "coders", "container", "streaming", "files", "audio", "audio_coding", "images", "rasters", "cli",
         "convert", "data", "evaluation", "registry", "checkpoint", "training", "learn", "progress"}


def _imports(module: str) -> set[str]:
    """Every wavecodec module ``module`` imports, at any depth of its code (relative imports resolved)."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            if target.startswith("wavecodec"):
                if node.module:  # `from . import x` imports the submodule x, not the package's own code
                    found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("wavecodec"))
    return {m for m in found if m in MODULES and m != module}


def test_each_module_imports_alone() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def fresh(module: str) -> tuple[str, subprocess.CompletedProcess]:
        return module, subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(4) as pool:
        failed = {m: r.stderr[-800:] for m, r in pool.map(fresh, MODULES) if r.returncode != 0}
    assert not failed, failed


@pytest.mark.parametrize("name", CORE)
def test_core_modules_do_not_reach_outward(name: str) -> None:
    reached = {m.split(".")[1] for m in _imports(f"wavecodec.{name}")}
    assert not reached & OUTER, f"wavecodec.{name} imports {sorted(reached & OUTER)}"


def test_no_import_circle() -> None:
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if n.startswith(m + "."):
                continue  # a package importing its own submodules is not a circle
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail + [m, n]))
            if n not in state:
                visit(n, trail + [m])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, [])


@pytest.fixture(scope="module")
def stereo_codec() -> Codec:
    torch.manual_seed(0)
    cfg = CodecConfig(channels=2, levels=2, latent_dim=5, decoder_width=8, decoder_depth=1, modality="audio",
                      sample_rate=8000, value_range=(-1.0, 1.0), name="test-long-stereo")
    codec = Codec(cfg)
    rng = np.random.default_rng(1)
    batches = [torch.from_numpy(rng.normal(0, 0.2, (4, 2, 512))).float() for _ in range(3)]
    pca_init(codec, batches)
    fit_entropy(codec, batches)
    return codec.eval()


@pytest.mark.parametrize("coder", ["ans", "raw"])
@pytest.mark.parametrize("quant_step", [1.0, 2.0])
def test_dataset_latents_of_a_long_chunked_signal_equal_encode_and_quantize(stereo_codec: Codec, tmp_path: Path,
                                                                            coder: str, quant_step: float) -> None:
    # 3.3 chunks of 1,024 latent frames at J=2: the file is coded in chunks
    rng = np.random.default_rng(2)
    t = np.arange(13_500) / 8000
    x = (0.4 * np.sin(2 * np.pi * 440 * t)[None] * np.array([[1.0], [0.6]]) + rng.normal(0, 0.05, (2, t.size))).astype(np.float32)
    data = stereo_codec.compress(torch.from_numpy(x), coder=coder, quant_step=quant_step, sample_rate=8000)
    header, symbols, _ = open_latents(stereo_codec, data)
    assert header["chunk_frames"] == 1024 and len(header["chunk_bytes"]) == 4
    with torch.no_grad():
        expected = stereo_codec.quantize(stereo_codec.encode(torch.from_numpy(x)[None]), quant_step)[0]
    assert np.array_equal(symbols.all()[0], expected.numpy())
    # through a converted dataset, as a user reads it
    (tmp_path / "src").mkdir()
    sf.write(tmp_path / "src" / "long.wav", x.T, 8000, subtype="FLOAT")
    model = tmp_path / "m.safetensors"
    wavecodec.save(stereo_codec, model)
    if coder != "ans":
        return
    convert(str(tmp_path / "src"), str(tmp_path / "lat"), str(model), workers=1, coder=coder)
    with torch.no_grad():
        direct = stereo_codec.quantize(stereo_codec.encode(torch.from_numpy(x)[None]))[0]
    ints, _ = LatentDataset(tmp_path / "lat", as_integers=True)[0]
    floats, _ = LatentDataset(tmp_path / "lat")[0]
    streamed, _ = next(iter(LatentShards(tmp_path / "lat", as_integers=True)))
    assert torch.equal(ints.long(), direct.long()) and torch.equal(streamed.long(), direct.long())
    assert torch.equal(floats, direct.float())


def test_dataset_floats_are_dequantized_with_the_files_step(tmp_path: Path, fitted: Codec) -> None:
    from helpers import synthetic_images
    from PIL import Image

    (tmp_path / "src").mkdir()
    for i, img in enumerate(synthetic_images(2, size=48)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / "src" / f"{i}.png")
    data = fitted.compress(synthetic_images(1, size=48), quant_step=3.0)
    header, symbols, _ = open_latents(fitted, data)
    assert torch.equal(symbols.latents(), torch.from_numpy(symbols.all()).float() * 3.0)


def test_registry_selects_models_for_inputs_and_files() -> None:
    from wavecodec.registry import model_for, model_for_header, models

    assert model_for("image", 3) == "rgb-storage" and model_for("image", 3, "latents") == "rgb-16x"
    assert model_for("image", 1) == "gray-storage" and model_for("image", 1, "latents") == "gray-16x" and model_for("image", 7) == "ms7-16x"
    assert model_for("image", 4) == model_for("image", 2) == "rgb-storage"  # RGBA and gray+alpha through RGB
    assert model_for("audio", 1) == model_for("audio", 2) == "stereo-5x"
    assert model_for("volume", 1) == "mri-16x"
    with pytest.raises(wavecodec.CheckpointError, match="arrays have no default"):
        model_for("array", 3)
    with pytest.raises(wavecodec.CheckpointError, match="no shipped model codes 5-channel image"):
        model_for("image", 5)
    assert all(m.channels >= 1 for m in models())
    assert model_for_header({"model": "rgb-4x"}) == "rgb-4x"
    with pytest.raises(wavecodec.CheckpointError, match="not shipped"):
        model_for_header({"model": str(PACKAGE / "weights" / "rgb-4x.safetensors")})  # a file never names a path to open


def test_library_errors_name_arguments_not_flags() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = ast.unparse(node.exc)
                if " --" in text or "'--" in text or '"--' in text:
                    offenders.append(f"{path.name}: {text[:80]}")
    assert not offenders, offenders


def test_register_keeps_the_order_and_the_description(tmp_path: Path, monkeypatch) -> None:
    import json as _json

    from wavecodec import registry

    index = tmp_path / "index.json"
    index.write_text(registry.INDEX_PATH.read_text())
    monkeypatch.setattr(registry, "INDEX_PATH", index)
    registry._index.cache_clear()
    try:
        before = _json.loads(index.read_text())["models"]
        registry.register("rgb-16x", "", {"dev_bpp": 9.99})
        after = _json.loads(index.read_text())["models"]
        assert [m["name"] for m in after] == [m["name"] for m in before]  # the first RGB model stays the default
        assert after[0]["description"] == before[0]["description"] and after[0]["figures"]["dev_bpp"] == 9.99
    finally:
        registry._index.cache_clear()


@pytest.mark.parametrize(("kind", "size"), [("dilated", 96), ("convnext", 96), ("downup", 96), ("downup", 84)])
def test_other_decoder_blocks_code_whole_and_in_tiles_alike(kind: str, size: int) -> None:
    from helpers import synthetic_images
    from wavecodec import CodecConfig, compression
    from wavecodec.fitting import pca_init
    from wavecodec.model import Codec
    from wavecodec.streaming import decoder_reach

    torch.manual_seed(0)
    codec = Codec(CodecConfig(levels=2, latent_dim=6, decoder_width=8, decoder_depth=2, decoder_block=kind))
    pca_init(codec, synthetic_images(8, seed=1).split(4))
    with torch.no_grad():
        for p in codec.decoder.residual.parameters():
            p.add_(0.05 * torch.randn_like(p))
    codec.eval()
    reach = {"dilated": 1 + 2 * (1 + 2), "convnext": 1 + 2 * 3, "downup": 1 + 2 * (2 * 2) + 1}  # the wider views are counted
    assert decoder_reach(codec) == reach[kind]
    assert "decoder_block" in codec.config.to_dict()  # a new kind is part of the fingerprint
    data = codec.compress(synthetic_images(1, size=size, seed=4))  # 84: an odd number (21) of latent positions a side
    whole = codec.decompress(data)
    before = compression.TILE
    compression.TILE = 7
    try:
        tiled = codec.decompress(data)
    finally:
        compression.TILE = before
    assert (tiled.int() - whole.int()).abs().max() <= 1
    if kind == "downup":  # the half-resolution stage is exercised, and its windows must be aligned to match the whole
        from wavecodec import streaming

        assert streaming.decoder_alignment(codec) == 2
        original = streaming.decoder_alignment
        streaming.decoder_alignment = lambda codec: 1
        compression.TILE = 7
        try:
            misaligned = codec.decompress(data)
        finally:
            compression.TILE, streaming.decoder_alignment = before, original
        assert (misaligned.int() - whole.int()).abs().max() > 1


def test_the_down_up_stage_costs_what_the_blocks_it_replaces_cost() -> None:
    from wavecodec import CodecConfig
    from wavecodec.benchmarking import decoder_macs_per_pixel
    from wavecodec.model import Codec

    plain, downup = (Codec(CodecConfig(latent_dim=12, decoder_width=96, decoder_depth=4, decoder_block=k)) for k in ("residual", "downup"))
    ratio = decoder_macs_per_pixel(downup) / decoder_macs_per_pixel(plain)
    assert 0.95 < ratio <= 1.0
    x = torch.randn(1, 12, 9, 11)
    assert torch.equal(downup.decoder(x), downup.decoder.linear(x)), "the residual starts at zero"


def test_the_default_decoder_block_leaves_fingerprints_alone() -> None:
    from wavecodec import CodecConfig, ConfigError

    assert "decoder_block" not in CodecConfig().to_dict()  # shipped models keep their hashes
    with pytest.raises(ConfigError, match="decoder_block must be one of"):
        CodecConfig(decoder_block="transformer")


def test_pca_start_on_data_of_lower_rank_than_the_latent_keeps_sane_weights() -> None:
    """Components without variance get the variance floor: finite weights, the decoder's as small as the data's."""
    from wavecodec import CodecConfig
    from wavecodec.fitting import pca_init
    from wavecodec.model import Codec

    codec = Codec(CodecConfig(channels=1, levels=2, latent_dim=8, decoder_width=8, decoder_depth=1))
    x = torch.zeros(2, 1, 32, 32)
    x[:, :, :, :16] = 1.0  # two distinct values: far fewer than 8 components carry variance
    assert pca_init(codec, [x])["explained_variance"] == pytest.approx(1.0)
    enc, dec = codec.encoder.proj.weight, codec.decoder.linear.weight
    assert torch.isfinite(enc).all() and torch.isfinite(dec).all()
    assert dec.abs().max() < 10  # unit-range subbands back from unit-scale latents; without the floor: ~1e15
    with torch.no_grad():
        assert (codec.decode(codec.encode(x)) - x).abs().max() < 0.02

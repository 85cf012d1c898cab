"""The compressed-domain data path against the pixel path it replaces, all in one process.

On the dev photos (scikit-image's and opencv-doc's), each cropped to 3:2 and resized to
768x512 with Lanczos (the JPEGs are saved at quality 90 and are the pixel path's input):

1. one sample read on one thread: ``LatentDataset[i]`` (rgb-16x, rgb-4x shards) vs Pillow's
   JPEG decode of the same photo; and the latents of the format-1 coder for reference;
2. whole-codec speed, megapixels/s on one and on two threads: ``compress`` (uint8 pixels to
   ``.wvc`` bytes) and ``decompress`` (float32, bfloat16 and int8 ``decoder_precision``) of rgb-16x and rgb-4x next
   to JPEG (q90), WebP (q75, default method), AVIF (Pillow default) and JPEG XL (imagecodecs,
   if installed) encode and decode;
3. the stages against what they replace, same data, same process: the fused wavelet packet
   transform vs the level-by-level one (2-D J=3 768x512 RGB, 1-D J=8 stereo, 3-D J=2), the
   interlaced coder vs the format-1 wavefront coder (decode time and file size), the decoder
   network in float32 vs its bfloat16 and int8 residuals;
4. samples/s through a ``DataLoader`` (0, 1, 2 workers) for ``LatentDataset``, ``LatentShards``
   and a folder-of-JPEGs dataset, alone and feeding a small classifier for one epoch.

Writes ``benchmarks/results/data_path.json`` and ``data_path.png``.

Run: ``.venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/data_path.py``
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

import wavecodec
from wavecodec import wpt
from wavecodec.benchmarking import decoder_macs_per_pixel, dev_photos, interleaved_ms, machine, write_json
from wavecodec.coders import decode_symbols, encode_symbols
from wavecodec.compression import open_latents
from wavecodec.convert import convert
from wavecodec.data import LatentDataset, LatentShards
from wavecodec.learn import Classifier
from wavecodec.metrics import psnr
from wavecodec.registry import version_of

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = (768, 512)


def prepared_photos() -> dict[str, np.ndarray]:
    """The dev photos as 768x512 RGB arrays (centre crop to 3:2, Lanczos)."""
    out = {}
    for name, img in dev_photos().items():
        im = Image.fromarray(img)
        w, h = im.size
        tw = min(w, int(h * 1.5))
        th = int(tw / 1.5)
        left, top = (w - tw) // 2, (h - th) // 2
        out[name.replace("/", "_").removesuffix(".jpg")] = np.asarray(im.crop((left, top, left + tw, top + th)).resize(SIZE, Image.LANCZOS))
    return out


# -- 1 and 2: codecs ------------------------------------------------------------------------
def standard_codecs() -> dict[str, tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray]]]:
    def pillow(fmt: str, **opts: Any):
        def enc(img: np.ndarray) -> bytes:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format=fmt, **opts)
            return buf.getvalue()

        def dec(data: bytes) -> np.ndarray:
            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"))

        return enc, dec

    codecs = {"JPEG q90": pillow("JPEG", quality=90), "WebP q75": pillow("WEBP", quality=75)}
    try:
        pillow("AVIF")[0](np.zeros((16, 16, 3), np.uint8))
        codecs["AVIF (Pillow default)"] = pillow("AVIF")
    except Exception:  # noqa: BLE001 - a Pillow without AVIF
        pass
    try:
        import imagecodecs

        if imagecodecs.JPEGXL.available:
            codecs["JPEG XL (distance 1)"] = (lambda img: imagecodecs.jpegxl_encode(img, distance=1.0),
                                              lambda data: imagecodecs.jpegxl_decode(data))
    except ImportError:
        pass
    return codecs


PRECISIONS = ("float32", "bfloat16", "int8")  # the decoder precisions timed (Codec.decoder_precision)


def decompress_in(codec: wavecodec.Codec, data: bytes, precision: str) -> torch.Tensor:
    """``codec.decompress(data)`` with the decoder network in ``precision``."""
    codec.decoder_precision = precision
    try:
        return codec.decompress(data)
    finally:
        codec.decoder_precision = "float32"


def codec_speeds(photos: dict[str, np.ndarray], models: dict[str, wavecodec.Codec], repeats: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    pixels = SIZE[0] * SIZE[1]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        table: dict[str, dict[str, float]] = {}
        for name, (enc, dec) in standard_codecs().items():
            e, d, bpp = [], [], []
            for img in photos.values():
                data = enc(img)
                t = interleaved_ms({"e": lambda: enc(img), "d": lambda: dec(data)}, repeats)
                e.append(t["e"])
                d.append(t["d"])
                bpp.append(8 * len(data) / pixels)
            table[name] = {"encode_mpix_s": pixels / 1e3 / statistics.median(e), "decode_mpix_s": pixels / 1e3 / statistics.median(d),
                           "bpp": statistics.mean(bpp)}
        for name, codec in models.items():
            times: dict[str, list[float]] = {"e": [], **{p: [] for p in PRECISIONS}}
            bpp, db = [], {p: [] for p in PRECISIONS}
            for img in photos.values():
                x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous()
                data = codec.compress(x)
                for p in PRECISIONS:
                    db[p].append(psnr(x, decompress_in(codec, data, p), 255.0))  # also makes the int8 copy
                t = interleaved_ms({"e": lambda: codec.compress(x), **{p: (lambda p=p: decompress_in(codec, data, p)) for p in PRECISIONS}},
                                   repeats)
                for k in times:
                    times[k].append(t[k])
                bpp.append(8 * len(data) / pixels)
            table[name] = {"encode_mpix_s": pixels / 1e3 / statistics.median(times["e"]),
                           "decode_mpix_s": pixels / 1e3 / statistics.median(times["float32"]),
                           "decode_fast_mpix_s": pixels / 1e3 / statistics.median(times["bfloat16"]),
                           "decode_int8_mpix_s": pixels / 1e3 / statistics.median(times["int8"]), "bpp": statistics.mean(bpp),
                           "psnr_exact_db": statistics.mean(db["float32"]), "psnr_fast_db": statistics.mean(db["bfloat16"]),
                           "psnr_int8_db": statistics.mean(db["int8"]),
                           "int8_worst_db_change": min(b - a for a, b in zip(db["float32"], db["int8"]))}
        webp = table["WebP q75"]
        for name in models:
            table[name]["encode_vs_webp"] = table[name]["encode_mpix_s"] / webp["encode_mpix_s"]
            table[name]["decode_vs_webp"] = table[name]["decode_mpix_s"] / webp["decode_mpix_s"]
        rows[f"{threads}_thread"] = table
    torch.set_num_threads(1)
    return rows


# -- 3: the stages against what they replace -------------------------------------------------
def storage_sizes(photos: dict[str, np.ndarray], qualities: tuple[int, ...] = (10, 50, 75, 95)) -> tuple[str, dict[str, float]]:
    """The hash of the ``rgb-storage`` weights measured, and the payload bytes of format 4's coder over format 3's on
    their latents of ``photos``, per quality: quiet latents, where format 4 may pick the linear model."""
    codec = wavecodec.load("rgb-storage")
    ratios: dict[str, float] = {}
    for quality in qualities:
        sizes = {"ans": 0, "ans-linear": 0}
        for img in photos.values():
            x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous()
            q = open_latents(codec, codec.compress(x, quality=quality))[1].all()
            for name in sizes:
                sizes[name] += len(encode_symbols(name, q, codec))
        ratios[str(quality)] = sizes["ans"] / sizes["ans-linear"]
    return codec.fingerprint(), ratios


def stage_speeds(photos: dict[str, np.ndarray], models: dict[str, wavecodec.Codec], repeats: int) -> dict[str, Any]:
    codec = models["rgb-16x"]
    out: dict[str, Any] = {}
    torch.manual_seed(0)
    for label, shape, levels in (("2-D J=3 3x512x768", (1, 3, 512, 768), 3), ("1-D J=8 2x262144", (1, 2, 262144), 8),
                                 ("3-D J=2 1x64^3", (1, 1, 64, 64, 64), 2)):
        x = torch.rand(*shape)
        X = wpt.analysis(x, levels)
        t = interleaved_ms({"lifting_analysis": lambda: wpt.analysis(x, levels),
                            "fused_analysis": lambda: wpt._convolution_analysis(x, levels, "bior4.4"),
                            "levelwise_analysis": lambda: wpt._levelwise_analysis(x, levels, "bior4.4"),
                            "lifting_synthesis": lambda: wpt.synthesis(X, levels),
                            "fused_synthesis": lambda: wpt._convolution_synthesis(X, levels, "bior4.4"),
                            "levelwise_synthesis": lambda: wpt._levelwise_synthesis(X, levels, "bior4.4")}, repeats)
        # speedups against the level-by-level transform (what the codec ran before the fused banks and lifting)
        out[f"wpt {label}"] = {**t, **{f"{way}_{side}_speedup": t[f"levelwise_{side}"] / t[f"{way}_{side}"]
                                       for way in ("lifting", "fused") for side in ("analysis", "synthesis")}}
    sizes: dict[str, list[float]] = {"ans": [], "ans-linear": [], "ans-two-states": [], "ans-wavefront": [], "webp": []}
    dec_ms: dict[str, list[float]] = {"ans": [], "ans-linear": [], "ans-two-states": [], "ans-wavefront": []}
    for img in photos.values():
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous()
        with torch.no_grad():
            q = codec.quantize(codec.encode(x)).numpy().astype(np.int64)
        coded = {name: encode_symbols(name, q, codec) for name in sizes}
        for name in sizes:
            sizes[name].append(len(coded[name]))
        # the two interlaced forms round-robin with each other; the 100x slower wavefront coder on its own, as
        # what runs just before a decode (a cache-thrashing 90 ms one) changes its speed
        t = interleaved_ms({name: (lambda n=name: decode_symbols(n, coded[n], q.shape, codec)) for name in ("ans", "ans-linear", "ans-two-states")},
                          repeats)
        t.update(interleaved_ms({"ans-wavefront": lambda: decode_symbols("ans-wavefront", coded["ans-wavefront"], q.shape, codec)}, 3))
        for name in dec_ms:
            dec_ms[name].append(t[name])
    out["coder"] = {
        "payload_bytes": {k: sum(v) for k, v in sizes.items()},
        "ans_vs_wavefront_size": sum(sizes["ans"]) / sum(sizes["ans-wavefront"]),
        "ans_vs_webp_mosaic_size": sum(sizes["ans"]) / sum(sizes["webp"]),
        "decode_ms_median": {k: statistics.median(v) for k, v in dec_ms.items()},
        "decode_speedup": statistics.median(dec_ms["ans-wavefront"]) / statistics.median(dec_ms["ans"]),
        "four_states_decode_speedup": statistics.median(dec_ms["ans-two-states"]) / statistics.median(dec_ms["ans-linear"]),
        "log_model_size_ratio": sum(sizes["ans"]) / sum(sizes["ans-linear"]),
        "log_model_decode_ratio": statistics.median(dec_ms["ans"]) / statistics.median(dec_ms["ans-linear"]),
    }
    out["coder"]["storage_model_hash"], out["coder"]["storage_v4_vs_v3_size"] = storage_sizes(photos)
    x = torch.from_numpy(next(iter(photos.values())).copy()).permute(2, 0, 1)[None].contiguous()
    for name, model in models.items():  # where a compress spends its time: transform and encoder, then the entropy coder
        with torch.inference_mode():
            q = model.quantize(model.encode(x)).numpy()

        def transform(m: wavecodec.Codec = model) -> torch.Tensor:
            with torch.inference_mode():
                return m.quantize(m.encode(x))

        out[f"compress stages {name}"] = interleaved_ms({"wavelets_encoder_quantize": transform,
                                                         "entropy_coder": lambda m=model, q=q: encode_symbols("ans", q, m),
                                                         "whole_compress": lambda m=model: m.compress(x)}, repeats)
    return out


def decoder_speeds(photos: dict[str, np.ndarray], codec: wavecodec.Codec, repeats: int) -> dict[str, Any]:
    """The decoder network alone on one photo's latents, in each precision, on one and two threads."""
    out: dict[str, Any] = {}
    x = torch.from_numpy(next(iter(photos.values())).copy()).permute(2, 0, 1)[None].contiguous()
    with torch.inference_mode():
        z = codec.bottleneck.expand(codec.dequantize(codec.quantize(codec.encode(x))))

        def net(precision: str) -> torch.Tensor:
            return codec.decoder(z, precision=precision, calibration=codec.calibration_latents)

        latent_positions = z.shape[2] * z.shape[3]
        for threads, key in ((1, "decoder_network"), (2, "decoder_network_2_threads")):
            torch.set_num_threads(threads)
            net("int8")  # the int8 copy is made (calibrated) once, outside the timing
            t = interleaved_ms({"float32": lambda: net("float32"), "bfloat16_residual": lambda: net("bfloat16"),
                                "int8_residual": lambda: net("int8")}, repeats)
            out[key] = {**t, "speedup": t["float32"] / t["bfloat16_residual"], "speedup_int8": t["float32"] / t["int8_residual"],
                        "macs_per_pixel": decoder_macs_per_pixel(codec),
                        "megapixels_s_float32": latent_positions * codec.config.block**2 / 1e3 / t["float32"]}
        torch.set_num_threads(1)
    return out


# -- 1 and 4: datasets -------------------------------------------------------------------------
class JpegFolder(Dataset):
    """The pixel path: a folder of JPEGs decoded with Pillow to uint8 ``(3, H, W)``."""

    def __init__(self, root: Path) -> None:
        self.files = sorted(root.rglob("*.jpg"))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.files[i]) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1), 0


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def loader_rate(dataset: Dataset, workers: int, model: torch.nn.Module | None, epochs: int) -> float:
    """Samples/s through a DataLoader (batch 8), optionally with a training step of ``model`` per batch."""
    loader = DataLoader(dataset, batch_size=8, num_workers=workers, worker_init_fn=_worker_init if workers else None,
                        persistent_workers=workers > 0, shuffle=not isinstance(dataset, LatentShards))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3) if model is not None else None
    for batch, _ in loader:  # warm-up epoch (worker start, first compilation)
        break
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch, _labels in loader:
            if model is not None:
                loss = model(batch.float()).logsumexp(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            count += batch.shape[0]
    return count / (time.perf_counter() - start)


def dataset_rates(root: Path, copies: int, epochs: int) -> dict[str, Any]:
    rates: dict[str, Any] = {}
    torch.set_num_threads(1)
    latent_model = Classifier(12, 10, patch=1, width=32, depth=2)
    pixel_model = Classifier(3, 10, patch=8, width=32, depth=2)  # the same 64x96 token grid
    sources = {
        "LatentDataset (rgb-16x)": lambda: LatentDataset(root / "lat16"),
        "LatentShards (rgb-16x)": lambda: LatentShards(root / "lat16"),
        "JPEG folder (Pillow)": lambda: JpegFolder(root / "src"),
    }
    for name, make in sources.items():
        for workers in (0, 1, 2):
            rates[f"{name}, {workers} workers"] = loader_rate(make(), workers, None, epochs)
        model = pixel_model if "JPEG" in name else latent_model
        rates[f"{name} + classifier step, 2 workers"] = loader_rate(make(), 2, model, 1)
    rates["samples"] = copies * 10
    return rates


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def read_times(root: Path, repeats: int) -> dict[str, Any]:
    """Each latent reader timed round-robin with the JPEG decode of the same photo, pair by pair.

    Pairs, not all readers in one round: what runs between two JPEG decodes changes their
    speed (the allocator's state decides whether the decode's buffers fault in afresh), so each
    reader is compared with the JPEG decode it alternated with. Page faults per call are recorded too.
    """
    torch.set_num_threads(1)
    jpegs = [p.read_bytes() for p in sorted((root / "one").glob("*.jpg"))]
    sets = {name: LatentDataset(root / name) for name in ("lat16-one", "lat4", "lat16-v3", "lat16-v1")}
    sets["lat16-int"] = LatentDataset(root / "lat16-one", as_integers=True)  # int8 symbols: dequantized where the model runs
    for ds in sets.values():  # compiled code loaded before anything is counted (its pages are not the read's)
        ds[0]
    out: dict[str, Any] = {}
    for name, ds in sets.items():
        per: dict[str, list[float]] = {"jpeg": [], name: []}
        faults = {"jpeg": 0, name: 0}

        def counted(key: str, fn: Callable[[], Any]) -> Callable[[], Any]:
            def call() -> Any:
                before = _faults()
                result = fn()
                faults[key] += _faults() - before
                return result
            return call

        for i, data in enumerate(jpegs):
            t = interleaved_ms({"jpeg": counted("jpeg", lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))),
                                name: counted(name, lambda: ds[i])}, repeats)
            for key, ms in t.items():
                per[key].append(ms)
        calls = len(jpegs) * (repeats + 1)
        jpeg, ours = statistics.median(per["jpeg"]), statistics.median(per[name])
        out[name] = {"median_ms": ours, "jpeg_median_ms": jpeg, "vs_jpeg_decode": ours / jpeg,
                     "page_faults_per_call": faults[name] / calls, "jpeg_page_faults_per_call": faults["jpeg"] / calls}
    return out


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    rates = {k: v for k, v in report["dataloader_samples_per_s"].items() if k != "samples"}
    axes[0].barh(list(rates), list(rates.values()), color=["tab:blue" if "Latent" in k else "tab:gray" for k in rates])
    axes[0].set_xlabel("samples/s (768x512 photos, batch 8)")
    axes[0].set_title("DataLoader throughput")
    axes[0].invert_yaxis()
    table = report["codec_speed"]["1_thread"]
    names = list(table)
    y = np.arange(len(names))
    axes[1].barh(y - 0.2, [table[n]["encode_mpix_s"] for n in names], height=0.4, label="encode")
    axes[1].barh(y + 0.2, [table[n]["decode_mpix_s"] for n in names], height=0.4, label="decode")
    axes[1].set_yticks(y, names)
    axes[1].set_xlabel("megapixels/s, one thread")
    axes[1].set_title("Whole codec speed")
    axes[1].invert_yaxis()
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def headroom_paragraph(r: dict[str, Any]) -> str:
    """What ``experiments/coder_headroom.py`` and ``learned_context.py`` measured (their saved results), or nothing before they have run."""
    path = Path(__file__).resolve().parents[1] / "experiments" / "results" / "coder_headroom.json"
    if not path.exists():
        return ""
    h = json.loads(path.read_text())
    return f"""
What would it take? `.venv/bin/python experiments/coder_headroom.py` (`experiments/results/coder_headroom.json`) measures
upper bounds of the cheap levers on the same latents, as shares of the payload: the best generalised-Gaussian shape per
channel instead of the Laplace tables (an oracle, its side information free) {100 * h['shape_saving_share']:.2f}%; predicting
each symbol also from the residuals of the channels decoded before it at the same position (least squares, at the spacing-2
centres and edges, three quarters of the symbols) {100 * h['cross_channel_saving_share']:.2f}%; the whole header, escapes and rANS flush
{100 * h['header_escape_flush_share']:.2f}%. All three together, with no header at all, would give
{h['all_levers_ans_vs_webp_mosaic']:.3f}x the mosaic: the 5% target needs a stronger model of the latents than a context fitted
per file, not a tuned coder.{learned_context_paragraph(r)}"""


def learned_context_paragraph(r: dict[str, Any]) -> str:
    """What ``experiments/learned_context.py`` measured (its saved results), against this run's read budget."""
    results = Path(__file__).resolve().parents[1] / "experiments" / "results"
    paths = [results / f"learned_context{suffix}.json" for suffix in ("", "_in_sample", "_factor2")]
    if not all(p.exists() for p in paths):
        return ""
    trained, inside, factor2 = (json.loads(p.read_text()) for p in paths)
    lin, cnn, ins, lin2 = trained["kinds"]["linear"], trained["kinds"]["cnn"], inside["kinds"]["linear"], factor2["kinds"]["linear"]
    budget, decode = r["sample_read"]["lat16-one"]["jpeg_median_ms"] / 2, r["stages"]["coder"]["decode_ms_median"]["ans"]
    net = r["stages"]["decoder_network"]
    rate = net["macs_per_pixel"] * net["megapixels_s_float32"] * 1e6  # multiply-accumulates per second, one thread
    symbols = sum(step["symbols"] for step in lin["steps"]) / len(trained["dev_photos"])  # per photo

    def ms(kind: dict[str, Any]) -> float:
        return 1e3 * kind["macs_per_symbol"] * symbols / rate

    return f"""

Nor does a learned context model get there. `.venv/bin/python experiments/learned_context.py`
(`experiments/results/learned_context*.json`) trains a context model per step of the same schedule on the latents of 384 training crops
and costs the dev photos' latents under it, as ideal code lengths (no header, no tables): a linear map of every value decoded
within two lattice steps in all channels and of the residuals of the channels before at the same position gives
{lin['vs_webp_mosaic']:.3f}x the mosaic ({lin['vs_payload']:.3f}x the payload; {lin2['vs_webp_mosaic']:.3f}x trained on
photos downsampled 2x instead of 4x), three 48-wide convolutions {cnn['vs_webp_mosaic']:.3f}x: fitted to other photos they
barely beat a context fitted to the photo itself. Only the linear map fitted to the ten photos it codes (`--in-sample`: its
{ins['macs_per_symbol'] * trained['train_latents'][1]:,.0f} weights a step free, where a coder would have to send them) reaches {ins['vs_webp_mosaic']:.3f}x. And at {lin['macs_per_symbol']:,.0f} (linear) and
{cnn['macs_per_symbol']:,.0f} (network) multiply-accumulates per symbol, one photo's contexts alone would take {ms(lin):.1f} and
{ms(cnn):.1f} ms even at the {rate / 1e9:.0f} billion per second the decoder network reaches on one thread ({lin['context_ms']:.0f} and
{cnn['context_ms']:.0f} ms as PyTorch convolutions over whole tensors), where the whole read may take half a JPEG decode
({budget:.2f} ms; the interlaced coder decodes in {decode:.2f} ms): on these latents the two targets conflict."""


def write_doc(r: dict[str, Any], path: Path) -> None:
    """``docs/data_path.md`` from a report: every figure in it comes from this run's JSON."""
    sr, cs, st, dl = r["sample_read"], r["codec_speed"], r["stages"], r["dataloader_samples_per_s"]
    c, d, d2 = st["coder"], st["decoder_network"], st["decoder_network_2_threads"]
    s16, s4, s1, si, s3 = sr["lat16-one"], sr["lat4"], sr["lat16-v1"], sr["lat16-int"], sr["lat16-v3"]
    lines = [f"""# The compressed-domain data path: speed against the pixel path

All figures below come from one run of `benchmarks/data_path.py` on this project's 2-core CPU
(AMD EPYC with AVX-512), with its result file `benchmarks/results/data_path.json` and the plot
`benchmarks/results/data_path.png`; the script writes this page too. Regenerate them with:

```
.venv/bin/pip install -e '.[bench]'
cd benchmarks && ../.venv/bin/python data_path.py
```

The photos are the 10 dev evaluation photos (scikit-image's astronaut, chelsea, coffee, rocket;
opencv-doc's baboon, fruits, messi5, butterfly, home, building), each cropped to 3:2 and resized to
768x512 with Lanczos; the pixel path reads them as JPEG (quality 90). Times are medians, and every
comparison was timed round-robin in the same process, so machine noise hits both sides alike. This
machine is shared and noisy: runs of the same script differ by up to 30% in absolute speed.

![data path](../benchmarks/results/data_path.png)

## One sample, one thread

Each latent reader alternated with Pillow's JPEG decode of the same photo (pair by pair: what runs
between two JPEG decodes changes their speed, mostly through page faults, counted below).

| read one 768x512 sample | median ms | JPEG decode in the same pairing, ms | relative | page faults per call (ours / JPEG) |
| --- | ---: | ---: | ---: | ---: |
| `LatentDataset[i]`, `rgb-16x` latents (format 4, interlaced coder) | {s16['median_ms']:.2f} | {s16['jpeg_median_ms']:.2f} | {s16['vs_jpeg_decode']:.2f} | {s16['page_faults_per_call']:.0f} / {s16['jpeg_page_faults_per_call']:.0f} |
| `LatentDataset(..., as_integers=True)[i]`, `rgb-16x` latents as int8 symbols | {si['median_ms']:.2f} | {si['jpeg_median_ms']:.2f} | {si['vs_jpeg_decode']:.2f} | {si['page_faults_per_call']:.0f} / {si['jpeg_page_faults_per_call']:.0f} |
| `LatentDataset[i]`, `rgb-4x` latents (format 4) | {s4['median_ms']:.2f} | {s4['jpeg_median_ms']:.2f} | {s4['vs_jpeg_decode']:.2f} | {s4['page_faults_per_call']:.0f} / {s4['jpeg_page_faults_per_call']:.0f} |
| `LatentDataset[i]`, `rgb-16x` latents (format 3's coder, `ans-linear`) | {s3['median_ms']:.2f} | {s3['jpeg_median_ms']:.2f} | {s3['vs_jpeg_decode']:.2f} | {s3['page_faults_per_call']:.0f} / {s3['jpeg_page_faults_per_call']:.0f} |
| `LatentDataset[i]`, `rgb-16x` latents (format 1's coder, `ans-wavefront`) | {s1['median_ms']:.1f} | {s1['jpeg_median_ms']:.2f} | {s1['vs_jpeg_decode']:.1f} | {s1['page_faults_per_call']:.0f} / {s1['jpeg_page_faults_per_call']:.0f} |

Reading a `rgb-16x` sample takes {s16['vs_jpeg_decode']:.2f}x the JPEG decode time (target: at most half, {"met" if s16['vs_jpeg_decode'] <= 0.5 else "not met"}) and is
{s1['median_ms'] / s16['median_ms']:.0f}x faster than with the format-1 coder; as int8 symbols ({si['vs_jpeg_decode']:.2f}x) it leaves out the float32
sample, a quarter of the bytes to copy to an accelerator (which dequantizes them as
`q.float() * step`). A sample is decoded into memory that an earlier sample used once nothing holds that one any
more (`wavecodec.scratch.output`), so reads cost no page faults, and its bytes come through a shard descriptor kept
open (a positioned read, instead of opening the shard for every sample). Most of a read is the
compiled decoding kernel. Its context arithmetic runs on planes of their own per step (each step's positions zero-padded, so
every neighbour is read with unit stride and the loops vectorise). Its rANS loop is a function of its own over flat
tables (a coarse slot lookup gives an interval's index, the index gives the decoded value), so its few live values stay
in registers, and it renormalises without a branch. Then the loop is bound by its states' dependency chains, so format
version 3 interleaves four rANS states instead of two: `.venv/bin/python experiments/rans_states.py` times the loop alone,
and the section below the whole decode.

"""]
    lines.append(f"""## The coder against the one it replaced

On the `rgb-16x` latents of the 10 photos (payload bytes, no header):

| coder | payload bytes | relative to `ans-wavefront` | decode ms (median per photo) |
| --- | ---: | ---: | ---: |
| `ans` (format 4: interlaced, 10 passes, log-linear magnitudes, varint weights, compiled rANS, 4 states) | {c['payload_bytes']['ans']:,} | {c['ans_vs_wavefront_size']:.3f} | {c['decode_ms_median']['ans']:.2f} |
| `ans-linear` (format 3's `ans`: linear magnitudes from the neighbours alone, int16 weights) | {c['payload_bytes']['ans-linear']:,} | {c['payload_bytes']['ans-linear'] / c['payload_bytes']['ans-wavefront']:.3f} | {c['decode_ms_median']['ans-linear']:.2f} |
| `ans-two-states` (format 2's `ans`: `ans-linear` with 2 states) | {c['payload_bytes']['ans-two-states']:,} | {c['payload_bytes']['ans-two-states'] / c['payload_bytes']['ans-wavefront']:.3f} | {c['decode_ms_median']['ans-two-states']:.2f} |
| `ans-wavefront` (format 1's context coder) | {c['payload_bytes']['ans-wavefront']:,} | 1.000 | {c['decode_ms_median']['ans-wavefront']:.1f} |
| `webp` (lossless WebP mosaic of the latents) | {c['payload_bytes']['webp']:,} | {c['payload_bytes']['webp'] / c['payload_bytes']['ans-wavefront']:.3f} | |

The interlaced coder decodes {c['decode_speedup']:.0f}x faster than the format-1 coder. Format 4's log-linear magnitudes, which
also read the channels decoded before at the same position, and its variable-length weights make payloads {100 * (1 - c['log_model_size_ratio']):.1f}% smaller than format 3's
linear ones and decode in {c['log_model_decode_ratio']:.2f}x their time; four rANS states decode {c['four_states_decode_speedup']:.2f}x as fast as two (format 2)
for {c['payload_bytes']['ans-linear'] - c['payload_bytes']['ans-two-states']:+} bytes in all. The payloads are {100 * (c['ans_vs_wavefront_size'] - 1):.1f}% larger than the format-1
coder's (target: at most 3%, {"met" if c['ans_vs_wavefront_size'] <= 1.03 else "not met"}) and {100 * (c['ans_vs_webp_mosaic_size'] - 1):+.1f}% against the WebP mosaic (target: at least 5%
smaller, {"met" if c['ans_vs_webp_mosaic_size'] <= 0.95 else "not met"}); on these 768x512 photos the format-1 coder itself is only {100 * (1 - c['payload_bytes']['ans-wavefront'] / c['payload_bytes']['webp']):.1f}% smaller than the mosaic.
(These latents are loud, so format 4 codes all of them with the log-linear model; for quiet latents it also tries
the linear one and keeps the smaller payload.) On `{version_of("rgb-storage", c.get("storage_model_hash"))}`'s latents of the same photos, format 4's payloads are
{", ".join(f"{r:.3f}" for r in c['storage_v4_vs_v3_size'].values())} times format 3's at quality
{", ".join(c['storage_v4_vs_v3_size'])}.
Format 5 (the current one) puts a bit per latent channel in front of format 4's payload and codes only the
channels that are not all 0: latents with every channel live, such as `rgb-16x`'s and `rgb-4x`'s, get format 4's
payload plus those bytes (2 and 6); a storage model's quiet latents get much smaller files
([benchmarks](benchmarks.md#the-variable-rate-storage-model)).
{headroom_paragraph(r)}

## The whole codec next to JPEG, WebP, AVIF and JPEG XL

Megapixels/s on 768x512 photos; `compress` is uint8 pixels to `.wvc` bytes, `decompress` the
reverse (exact float32; `bf16` runs the decoder's residual in bfloat16, `decode --fast`; `int8` in int8,
`decode --int8`).

| codec | bpp | one thread: encode | decode | decode bf16 | decode int8 | two threads: encode | decode | decode bf16 | decode int8 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
""")
    for name in cs["1_thread"]:
        a, b = cs["1_thread"][name], cs["2_thread"][name]
        low = [f"{r[k]:.1f}" if k in r else "" for r in (a, b) for k in ("decode_fast_mpix_s", "decode_int8_mpix_s")]
        lines.append(f"| {name} | {a['bpp']:.3f} | {a['encode_mpix_s']:.1f} | {a['decode_mpix_s']:.1f} | {low[0]} | {low[1]} | "
                     f"{b['encode_mpix_s']:.1f} | {b['decode_mpix_s']:.1f} | {low[2]} | {low[3]} |\n")
    a, a4 = cs["1_thread"]["rgb-16x"], cs["1_thread"]["rgb-4x"]

    def verdict(ratio: float) -> str:
        return "met" if ratio >= 2 else "missed"

    lines.append(f"""
On one thread `rgb-16x` encodes at {a['encode_vs_webp']:.2f}x WebP's speed and `rgb-4x` at {a4['encode_vs_webp']:.2f}x (target: 2x,
{verdict(a['encode_vs_webp'])} and {verdict(a4['encode_vs_webp'])}); on two threads {cs['2_thread']['rgb-16x']['encode_vs_webp']:.2f}x and
{cs['2_thread']['rgb-4x']['encode_vs_webp']:.2f}x. The encode is the lifting wavelet transform, the 1x1 encoder and the
interlaced coder's compiled passes (two fitting passes that leave every symbol's context behind, one coding pass, then rANS).
Of a `rgb-16x` compress ({st['compress stages rgb-16x']['whole_compress']:.1f} ms), the wavelets, encoder and rounding take {st['compress stages rgb-16x']['wavelets_encoder_quantize']:.1f} ms and the
entropy coder {st['compress stages rgb-16x']['entropy_coder']:.1f} ms; of a `rgb-4x` one ({st['compress stages rgb-4x']['whole_compress']:.1f} ms), {st['compress stages rgb-4x']['wavelets_encoder_quantize']:.1f} ms and {st['compress stages rgb-4x']['entropy_coder']:.1f} ms (4x the symbols).
The encoder's intermediates live in per-thread buffers reused from call to call (`wavecodec.scratch`): on this
virtual machine a page fault costs microseconds, and faulting in a few fresh megabytes per photo cost more than the coding.
On `rgb-16x` the bfloat16 decode keeps the mean PSNR within 0.01 dB ({a['psnr_exact_db']:.3f} vs {a['psnr_fast_db']:.3f} dB) and the int8 one
within {abs(a['int8_worst_db_change']):.3f} dB on every photo ({a['psnr_int8_db']:.3f} dB mean; `rgb-4x`: {abs(a4['int8_worst_db_change']):.3f} dB at worst);
their pixels depend on the CPU, so the exact float32 decode stays the default.

## Stages against what they replaced

| stage | before (ms) | fused filter banks (ms) | lifting (ms) | speed-up of lifting |
| --- | ---: | ---: | ---: | ---: |
""")
    for key in [k for k in st if k.startswith("wpt")]:
        v = st[key]
        for side in ("analysis", "synthesis"):
            lines.append(f"| {key}, {side} (level by level -> fused banks -> lifting) | {v[f'levelwise_{side}']:.1f} | "
                         f"{v[f'fused_{side}']:.1f} | {v[f'lifting_{side}']:.1f} | {v[f'lifting_{side}_speedup']:.2f}x |\n")
    lines.append(f"""
The decoder network costs {d['macs_per_pixel']:,.0f} multiply-accumulates per pixel ({d['megapixels_s_float32']:.1f} MP/s in float32 on one
thread, near this core's float32 peak, which is why a channels-last layout gained under 10% when
tried). Its bfloat16 residual (a copy cast once, run channels-last, where oneDNN's bfloat16
convolutions need no reorder between layers) gives {d['speedup']:.2f}x on one thread ({d['float32']:.1f} -> {d['bfloat16_residual']:.1f} ms for one
768x512 photo) and {d2['speedup']:.2f}x on two ({d2['float32']:.1f} -> {d2['bfloat16_residual']:.1f} ms): bfloat16 runs at about twice float32's
multiply-accumulates per cycle on this CPU. Its int8 residual (`wavecodec.quantized`: PyTorch's x86 int8 convolutions, which
use AVX512-VNNI, per-channel weights, activation scales from min/max over latents of pink noise, the residual additions and
the last 1x1 convolution in floating point) gives **{d['speedup_int8']:.2f}x on one thread ({d['int8_residual']:.1f} ms) and {d2['speedup_int8']:.2f}x on two
({d2['int8_residual']:.1f} ms; target 2.5x)**. The whole decompress on two threads runs at
{cs['2_thread']['rgb-16x']['decode_mpix_s']:.1f} MP/s exact, {cs['2_thread']['rgb-16x']['decode_fast_mpix_s']:.1f} MP/s in bfloat16 and {cs['2_thread']['rgb-16x']['decode_int8_mpix_s']:.1f} MP/s in int8.

## Through a DataLoader

Samples/s, batch 8, {dl['samples']} samples (the 10 photos, 8 copies each) per epoch, one torch thread per
process; "+ classifier step" adds a forward and backward pass of a small conv classifier (width 32,
2 blocks) on the same 64x96 token grid: 1x1 patches of `rgb-16x` latents, or 8x8 pixel patches.

| source | 0 workers | 1 worker | 2 workers | 2 workers + classifier step |
| --- | ---: | ---: | ---: | ---: |
""")
    for src in ("LatentDataset (rgb-16x)", "LatentShards (rgb-16x)", "JPEG folder (Pillow)"):
        lines.append(f"| {src} | {dl[src + ', 0 workers']:.0f} | {dl[src + ', 1 workers']:.0f} | {dl[src + ', 2 workers']:.0f} | "
                     f"{dl[src + ' + classifier step, 2 workers']:.0f} |\n")
    path.write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--copies", type=int, default=8, help="copies of the photos in the DataLoader datasets")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--doc-only", action="store_true", help="rewrite docs/data_path.md from the saved results")
    parser.add_argument("--read-only", action="store_true", help="rerun only the one-sample reads into the saved results")
    parser.add_argument("--decode-only", action="store_true",
                        help="rerun only the whole-codec speeds and the decoder network into the saved results")
    args = parser.parse_args()
    doc = Path(__file__).resolve().parents[1] / "docs" / "data_path.md"
    if args.doc_only:
        write_doc(json.loads((RESULTS / "data_path.json").read_text()), doc)
        return
    torch.set_num_threads(1)
    photos = prepared_photos()
    models = {name: wavecodec.load(name) for name in ("rgb-16x", "rgb-4x")}
    if args.decode_only:
        report = json.loads((RESULTS / "data_path.json").read_text())
        report["codec_speed"] = codec_speeds(photos, models, args.repeats)
        report["stages"].update(decoder_speeds(photos, models["rgb-16x"], args.repeats))
        finish(report, doc)
        return
    root = Path(tempfile.mkdtemp(prefix="wavecodec-datapath-"))
    try:
        one = root / "one"
        one.mkdir()
        for name, img in photos.items():
            Image.fromarray(img).save(one / f"{name}.jpg", quality=90)
        convert(str(one), str(root / "lat16-one"), "rgb-16x", workers=2)
        convert(str(one), str(root / "lat4"), "rgb-4x", workers=2)
        convert(str(one), str(root / "lat16-v1"), "rgb-16x", workers=2, coder="ans-wavefront")
        convert(str(one), str(root / "lat16-v3"), "rgb-16x", workers=2, coder="ans-linear")
        if args.read_only:  # the reads again, into the saved results
            report = json.loads((RESULTS / "data_path.json").read_text())
            report["sample_read"] = read_times(root, args.repeats)
            print(report["sample_read"], flush=True)
        else:
            (root / "src").mkdir()
            for name, img in photos.items():
                for k in range(args.copies):
                    Image.fromarray(img).save(root / "src" / f"{name}-{k}.jpg", quality=90)
            convert(str(root / "src"), str(root / "lat16"), "rgb-16x", workers=2)
            print("reading one sample ...", flush=True)
            report = {"photos": list(photos), "size": list(SIZE), "machine": machine()}
            report["sample_read"] = read_times(root, args.repeats)
            print(report["sample_read"], flush=True)
            print("codec speeds ...", flush=True)
            report["codec_speed"] = codec_speeds(photos, models, args.repeats)
            print("stages ...", flush=True)
            report["stages"] = stage_speeds(photos, models, args.repeats)
            report["stages"].update(decoder_speeds(photos, models["rgb-16x"], args.repeats))
            print("data loaders ...", flush=True)
            report["dataloader_samples_per_s"] = dataset_rates(root, args.copies, args.epochs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    finish(report, doc)


def finish(report: dict[str, Any], doc: Path) -> None:
    """Write the results, their plot and the write-up."""
    path = write_json(RESULTS / "data_path.json", report)
    plot(report, RESULTS / "data_path.png")
    write_doc(report, doc)
    print(f"wrote {path}, {RESULTS / 'data_path.png'} and {doc}")


if __name__ == "__main__":
    main()

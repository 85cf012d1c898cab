"""Audio rate-quality and speed: our stereo codecs against Opus, Vorbis and MP3, in one run.

Dev audio: excerpts of the ``hyperrogue-music`` tracks (never trained on), written once as
16-bit FLAC. Every codec codes the same excerpts; rates come from the real bytes, quality
from the decoded float samples (``wavecodec.audio_metrics``: SNR, PSNR, SI-SDR, multi-
resolution STFT distance, mel distance, ViSQOL v3 MOS-LQO in audio mode). Opus, Vorbis and MP3 go through soundfile
(libsndfile) at several ``compression_level`` settings; libsndfile's Opus runs at 48 kHz
only, so its input is resampled 44.1 -> 48 kHz and its output back (the round trip alone is
far below the codec's error). Our models run at several quantisation steps (``--step``).
The table gives each baseline's quality interpolated at our bitrates. Speed: seconds of
audio coded per second (x real time), with 1 and 2 torch threads for ours.

Run: ``cd benchmarks && ../.venv/bin/python audio_rd.py``
Writes ``results/audio_rd.json`` and ``results/audio_rd.png``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from wavecodec.benchmarking import dev_audio, machine, save_figure, write_json
from wavecodec.registry import register
import wavecodec
from wavecodec.audio import resample
from wavecodec.audio_coding import decode_array, encode_file
from wavecodec.audio_metrics import all_metrics, visqol

METRICS = ("snr", "psnr", "si_sdr", "stft_distance", "mel_distance", "visqol")
BASELINES = {  # name: (format, subtype, coding rate)
    "Opus": ("OGG", "OPUS", 48000),
    "Vorbis": ("OGG", "VORBIS", None),
    "MP3": ("MP3", "MPEG_LAYER_III", None),
}

RESULTS = Path(__file__).resolve().parent / "results"


def run_baseline(name: str, level: float, audio: list[tuple[np.ndarray, int]]) -> dict:
    fmt, subtype, coding_rate = BASELINES[name]
    rows, enc_t, dec_t, total_s = [], 0.0, 0.0, 0.0
    for x, rate in audio:
        src = resample(x, rate, coding_rate) if coding_rate and coding_rate != rate else x
        r = coding_rate or rate
        buf = io.BytesIO()
        start = time.perf_counter()
        sf.write(buf, src.T, r, format=fmt, subtype=subtype, compression_level=level)
        enc_t += time.perf_counter() - start
        data = buf.getvalue()
        start = time.perf_counter()
        y, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        dec_t += time.perf_counter() - start
        y = y.T
        if coding_rate and coding_rate != rate:
            y = resample(y, coding_rate, rate)
        n = min(x.shape[1], y.shape[1])
        seconds = x.shape[1] / rate
        total_s += seconds
        rows.append({"kbps": 8 * len(data) / seconds / 1000, **all_metrics(x[:, :n], y[:, :n], rate),
                     "visqol": visqol(x[:, :n], y[:, :n], rate)})
    return {"codec": name, "setting": level, **{k: statistics.mean(r[k] for r in rows) for k in rows[0]},
            "encode_realtime": total_s / enc_t, "decode_realtime": total_s / dec_t}


def run_ours(codec: wavecodec.Codec, step: float, paths: list[Path], audio: list[tuple[np.ndarray, int]]) -> dict:
    rows, enc_t, dec_t, total_s = [], 0.0, 0.0, 0.0
    for path, (x, rate) in zip(paths, audio):
        start = time.perf_counter()
        data = encode_file(codec, path, quant_step=step)
        enc_t += time.perf_counter() - start
        start = time.perf_counter()
        y, _ = decode_array(codec, data)
        dec_t += time.perf_counter() - start
        seconds = x.shape[1] / rate
        total_s += seconds
        rows.append({"kbps": 8 * len(data) / seconds / 1000, **all_metrics(x, y[:, : x.shape[1]], rate),
                     "visqol": visqol(x, y[:, : x.shape[1]], rate)})
    return {"codec": codec.config.name, "setting": step, **{k: statistics.mean(r[k] for r in rows) for k in rows[0]},
            "encode_realtime": total_s / enc_t, "decode_realtime": total_s / dec_t}


def interpolate(curve: list[dict], kbps: float, key: str) -> float | None:
    pts = sorted((r["kbps"], r[key]) for r in curve)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if not xs[0] <= kbps <= xs[-1]:
        return None
    return float(np.interp(kbps, xs, ys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["stereo-5x", "stereo-20x"], help="shipped names or checkpoint paths (none: baselines only)")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES))
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "audio_rd.json", help="the JSON (the PNG goes beside it)")
    parser.add_argument("--steps", nargs="+", type=float, default=[1, 2, 4])
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--levels", nargs="+", type=float, default=[0.0, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99])
    parser.add_argument("--register", action="store_true", help="record the step-1 figures in the model registry")
    args = parser.parse_args()
    torch.set_num_threads(2)
    paths = dev_audio(args.tracks, args.seconds, Path("../runs/audio-dev"))
    audio = [(np.ascontiguousarray(d.T), r) for d, r in (sf.read(p, dtype="float32", always_2d=True) for p in paths)]
    baselines = {name: [run_baseline(name, level, audio) for level in args.levels] for name in args.baselines}
    for name, curve in baselines.items():
        for r in curve:
            print(f"{name:8s} level {r['setting']:.2f}: {r['kbps']:7.1f} kbps  SNR {r['snr']:6.2f} dB  mel {r['mel_distance']:.3f}"
                  f"  MOS-LQO {r['visqol']:.2f}", flush=True)
    ours, labels = {}, {}
    for ref in args.models:
        codec = wavecodec.load(ref)
        labels[ref] = label = ref if "@" in ref else codec.config.name  # a pinned version keeps its hash in the results
        ours[label] = [run_ours(codec, step, paths, audio) for step in args.steps]
        for r in ours[label]:
            print(f"{label:10s} step {r['setting']:g}: {r['kbps']:7.1f} kbps  SNR {r['snr']:6.2f} dB  mel {r['mel_distance']:.3f}"
                  f"  MOS-LQO {r['visqol']:.2f}", flush=True)
        torch.set_num_threads(1)  # the one-core encode figure
        start = time.perf_counter()
        for p in paths:
            encode_file(codec, p)
        ours[label][0]["encode_realtime_1_thread"] = len(paths) * args.seconds / (time.perf_counter() - start)
        torch.set_num_threads(2)
    table = []
    for name, curve in ours.items():
        for r in curve:
            row = {"model": name, "step": r["setting"], "kbps": r["kbps"], "snr": r["snr"], "mel_distance": r["mel_distance"],
                   "stft_distance": r["stft_distance"], "visqol": r["visqol"]}
            for base, bcurve in baselines.items():
                for key in ("snr", "mel_distance", "visqol"):
                    row[f"{base}_{key}"] = interpolate(bcurve, r["kbps"], key)
            table.append(row)
    speed = {name: {"encode_realtime": statistics.median(r["encode_realtime"] for r in curve),
                    "decode_realtime": statistics.median(r["decode_realtime"] for r in curve)}
             for name, curve in {**baselines, **ours}.items()}
    path = write_json(args.output, {"dev_audio": [str(p) for p in paths], "seconds_each": args.seconds, "baselines": baselines,
                                   "ours": ours, "table_at_our_kbps": table, "speed": speed, "machine": machine()})
    plot(baselines, ours, args.output.with_suffix(".png"))
    for row in table:
        parts = " ".join(f"{b}: SNR {row[f'{b}_snr']:.2f} MOS {row[f'{b}_visqol']:.2f}" if row[f"{b}_snr"] is not None
                         else f"{b}: (out of range)" for b in baselines)
        print(f"{row['model']:10s} step {row['step']:g} {row['kbps']:6.1f} kbps SNR {row['snr']:.2f} MOS {row['visqol']:.2f} | {parts}")
    print(f"wrote {path}")
    if args.register:
        for ref in (r for r in args.models if "@" not in r):  # a pinned (retired) version's figures are not the model's
            codec = wavecodec.load(ref)
            first = ours[labels[ref]][0]
            figures = {"sample_rate": codec.config.sample_rate, "input": "stereo (mono folded), any rate (resampled)",
                       "dev_kbps": round(first["kbps"], 2), "dev_snr_db": round(first["snr"], 3), "dev_psnr_db": round(first["psnr"], 3),
                       "dev_mel_distance": round(first["mel_distance"], 4), "dev_visqol_moslqo": round(first["visqol"], 3),
                       "encode_realtime_1_thread": round(first["encode_realtime_1_thread"], 1),
                       "measured_with": "benchmarks/audio_rd.py (8 x 20 s of hyperrogue-music, step 1)"}
            description = (f"stereo 44.1 kHz music codec: J=8, {codec.config.latent_dim} latent channels "
                           f"({codec.config.reduction:.2f}x fewer values), 8-bit latents, 1-D decoder "
                           f"{codec.config.decoder_width} x {codec.config.decoder_depth}; trained on wesnoth-1.16-music")
            register(ref, description, figures)


def plot(baselines: dict, ours: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 4, figsize=(21, 4.5))
    for ax, key, label in zip(axes, ("snr", "visqol", "mel_distance", "stft_distance"),
                              ("SNR (dB), higher is better", "ViSQOL MOS-LQO, higher is better", "mel distance, lower is better",
                               "multi-resolution STFT distance, lower is better")):
        for name, curve in {**baselines, **ours}.items():
            pts = sorted((r["kbps"], r[key]) for r in curve)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if name in ours else ".",
                    linewidth=2.5 if name in ours else 1.2, label=name)
        ax.set_xlabel("kbps")
        ax.set_ylabel(label)
        ax.set_xscale("log")
        ax.set_xticks([20, 50, 100, 200, 500], ["20", "50", "100", "200", "500"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3)
    axes[0].legend()
    save_figure(fig, path, "Stereo 44.1 kHz music (hyperrogue-music excerpts)")


if __name__ == "__main__":
    main()

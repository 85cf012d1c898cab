"""Listening samples: spectrograms of dev music clips through the stereo codecs, before and after the spectral losses.

For a few excerpts of the dev music (Debian ``hyperrogue-music``, never trained on), writes
the original and each model's decoded clip as FLAC (``runs/listening/``, to listen to), and
one PNG per clip with log-magnitude spectrograms side by side
(``docs/listening/<clip>.png``), plus each decoding's kbps, SNR, mel distance and ViSQOL
MOS-LQO (``docs/listening/listening.json``).

Run: ``.venv/bin/python experiments/audio_listening.py --models stereo-20x runs/audio_losses/mse+stft.safetensors``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import wavecodec
from wavecodec.audio_coding import decode_array, encode_file
from wavecodec.audio_metrics import all_metrics, visqol
from wavecodec.benchmarking import dev_audio, write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "listening"


def spectrogram(x: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Log10 power ``(bins, frames)`` of the channels' mean, Hann window."""
    mono = x.mean(axis=0)
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)) ** 2
    return np.log10(power.T + 1e-10)


def label(ref: str | Path) -> str:
    return Path(str(ref)).stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["stereo-20x", "stereo-5x"], help="shipped names or checkpoint paths")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = dev_audio(args.clips, args.seconds, ROOT / "runs" / "listening" / "clips")
    codecs = {label(m): wavecodec.load(m) for m in args.models}
    OUT.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for path in paths:
        ref, rate = sf.read(path, dtype="float32", always_2d=True)
        ref = np.ascontiguousarray(ref.T)
        decoded = {"original": ref}
        figures[path.stem] = {}
        for name, codec in codecs.items():
            data = encode_file(codec, path)
            out, _ = decode_array(codec, data)
            out = out[:, : ref.shape[1]]
            decoded[name] = out
            sf.write(ROOT / "runs" / "listening" / f"{path.stem}.{name}.flac", out.T, rate, subtype="PCM_16")
            metrics = all_metrics(ref, out, rate)
            figures[path.stem][name] = {"kbps": 8 * len(data) / (ref.shape[1] / rate) / 1000, "snr": metrics["snr"],
                                        "mel_distance": metrics["mel_distance"], "visqol": visqol(ref, out, rate)}
        fig, axes = plt.subplots(1, len(decoded), figsize=(4.2 * len(decoded), 3.6), sharey=True)
        spec_ref = spectrogram(ref)
        vmax = spec_ref.max()
        for ax, (name, x) in zip(axes, decoded.items()):
            spec = spectrogram(x)
            ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 9, vmax=vmax,
                      extent=(0, x.shape[1] / rate, 0, rate / 2000))
            title = name if name == "original" else (f"{name}\n{figures[path.stem][name]['kbps']:.0f} kbps, "
                                                     f"MOS-LQO {figures[path.stem][name]['visqol']:.2f}")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("s")
        axes[0].set_ylabel("kHz")
        fig.suptitle(f"{path.stem} (log power, 90 dB range)", fontsize=10)
        fig.tight_layout()
        fig.savefig(OUT / f"{path.stem}.png", dpi=70)
        plt.close(fig)
    write_json(OUT / "listening.json", {"clips": [str(p) for p in paths], "models": args.models, "figures": figures})
    for clip, rows in figures.items():
        for name, r in rows.items():
            print(f"{clip:28s} {name:24s} {r['kbps']:6.1f} kbps  SNR {r['snr']:6.2f} dB  mel {r['mel_distance']:.3f}  MOS-LQO {r['visqol']:.2f}")


if __name__ == "__main__":
    main()

"""Where a stereo model's decode loses energy: per frequency band, decoded against source, on dev music.

For each model (shipped name or checkpoint path) and each dev excerpt (``hyperrogue-music``,
the middle of each track, as ``audio_rd.py`` cuts them), the energy of the decoded left channel
relative to the original in six bands (Hann-windowed 2048-sample frames), in dB; the JSON keeps
every excerpt and the mean over excerpts.

Run: ``.venv/bin/python benchmarks/audio_bands.py stereo-20x runs/stereo-20x-mel.safetensors``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import wavecodec
from wavecodec.benchmarking import dev_audio, machine, write_json

RESULTS = Path(__file__).resolve().parent / "results"
BANDS_HZ = ((0, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (8000, 16000))
FRAME = 2048


def band_energies(x: np.ndarray, rate: int) -> np.ndarray:
    """Energy of a mono signal in each of :data:`BANDS_HZ`."""
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(FRAME, 1 / rate)
    return np.array([power[:, (freqs >= lo) & (freqs < hi)].sum() for lo, hi in BANDS_HZ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="shipped names or checkpoint paths")
    parser.add_argument("--tracks", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "audio_bands.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = dev_audio(args.tracks, args.seconds, Path(__file__).resolve().parents[1] / "runs" / "audio-dev")
    report = {"bands_hz": BANDS_HZ, "clips": [c.name for c in clips], "models": {}, "machine": machine()}
    for ref in args.models:
        codec = wavecodec.load(ref)
        per_clip = []
        for clip in clips:
            x, rate = sf.read(clip, dtype="float32", always_2d=True)
            y = codec.decompress(codec.compress(torch.from_numpy(x.T.copy())[None], sample_rate=rate))[0].numpy().T
            per_clip.append((10 * np.log10(band_energies(y[: len(x), 0], rate) / band_energies(x[:, 0], rate))).tolist())
        mean = np.mean(per_clip, axis=0).tolist()
        report["models"][codec.config.name or ref] = {"per_clip_db": per_clip, "mean_db": mean}
        print(f"{codec.config.name or ref:24s} " + "  ".join(f"{lo / 1000:g}-{hi / 1000:g} kHz {v:+.1f} dB" for (lo, hi), v in zip(BANDS_HZ, mean)))
    print(f"wrote {write_json(args.output, report)}")


if __name__ == "__main__":
    main()

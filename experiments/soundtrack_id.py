"""Soundtrack identification: which game's soundtrack is a 3 s stereo clip from? Latents vs equal-size audio.

Six game soundtracks packaged by Debian; the split is by track (no track gives clips to both
train and test), so the classifier must learn each soundtrack's instruments and production,
not memorise pieces. Timbre sits in the upper bands that resampling to a low rate removes.
Inputs, all with the same 258-token sequence for the classifier:

* ``stereo-5x`` latents (108 x 516) vs audio resampled to 1/4.74 of the rate (2 x 27,864 samples, 9.3 kHz);
* ``stereo-20x`` latents (27 x 516) vs audio resampled to 1/18.96 of the rate (2 x 6,966 samples, 2.3 kHz);
* full-rate audio (2 x 132,096 samples at 44.1 kHz).

Clips are drawn from a seed (the same on every machine), written as 16-bit FLAC, converted
with ``wavecodec convert`` and read back with ``LatentDataset``. Note: ``stereo-5x`` and
``stereo-20x`` were trained on the Wesnoth soundtrack, one of the six classes.

Needs (Debian): the packages in ``SOUNDTRACKS``.
Run (CPU, about 15 minutes on 2 cores with the defaults; ``--quick`` for a smoke run):
    .venv/bin/python experiments/soundtrack_id.py
Writes ``experiments/results/soundtrack_id.{json,png}`` and prints the tables of ``docs/learning.md``;
``--plot-only`` redraws the plot and the tables from the JSON.
"""

from __future__ import annotations

import json
import os
import random
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample as fft_resample

import _detail
from wavecodec.audio import read_float, resample
import wavecodec
from wavecodec.data import LatentDataset, LatentShards, OnTheFlyLatents
from wavecodec.learn import matched_samples

SOUNDTRACKS = {  # name: (Debian package, tracks)
    "wesnoth": ("wesnoth-1.16-music", "/usr/share/games/wesnoth/1.16/data/core/music/*.ogg"),
    "hyperrogue": ("hyperrogue-music", "/usr/share/hyperrogue/music/*.ogg"),
    "drascula": ("drascula-music", "/usr/share/scummvm/drascula/audio/*.ogg"),
    "planetblupi": ("planetblupi-music-ogg", "/usr/share/planetblupi/music/*.ogg"),
    "singularity": ("singularity-music", "/usr/share/games/singularity/music/*.ogg"),
    "pushover": ("pushover-data", "/usr/share/pushover/themes/*.ogg"),
}
RATE = 44100
LENGTH = 516 * 256  # 132,096 samples (3.0 s): whole latent frames of the J=8 stereo models
LATENT_PATCH = 2
MIN_RMS = 0.01  # clips quieter than this (silence between pieces) are drawn again


def tracks_by_split(seed: int, test_share: float = 0.3) -> dict[str, dict[str, list[str]]]:
    """``{soundtrack: {"train": [...], "test": [...]}}``: each track in one split only (at least 2 in each)."""
    out = {}
    for name, (package, pattern) in SOUNDTRACKS.items():
        tracks = sorted(str(p) for p in Path(pattern).parent.glob(Path(pattern).name))
        if len(tracks) < 4:
            raise SystemExit(f"soundtrack {name} not found; run: apt-get install -y --no-install-recommends {package}")
        random.Random(f"{seed}:{name}").shuffle(tracks)
        n_test = max(2, round(test_share * len(tracks)))
        out[name] = {"test": sorted(tracks[:n_test]), "train": sorted(tracks[n_test:])}
    return out


def _track(path: str) -> np.ndarray:
    """A whole track as float32 ``(2, T)`` at 44.1 kHz."""
    x, rate = read_float(path)
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    return resample(x, rate, RATE) if rate != RATE else x


def build(root: Path, per_class: dict[str, int], seed: int) -> Path:
    """Write ``root/{split}/{soundtrack}/{track}-{i}.flac`` (once: a rerun with the same counts and seed reuses them)."""
    recipe = {"per_class": per_class, "seed": seed}
    if _detail.up_to_date(root, recipe):
        return root
    splits = tracks_by_split(seed)
    for name, by_split in splits.items():
        for split, count in per_class.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            tracks = by_split[split]
            for t, path in enumerate(tracks):
                audio = _track(path)
                rng = random.Random(f"{seed}:{split}:{name}:{t}")
                for i in range(t, count, len(tracks)):  # clips spread round-robin over the split's tracks
                    for _ in range(50):
                        start = rng.randrange(max(1, audio.shape[1] - LENGTH))
                        clip = audio[:, start : start + LENGTH]
                        if clip.shape[1] == LENGTH and float(np.sqrt((clip**2).mean())) >= MIN_RMS:
                            break
                    if clip.shape[1] < LENGTH:
                        clip = np.pad(clip, ((0, 0), (0, LENGTH - clip.shape[1])))
                    sf.write(folder / f"{Path(path).stem.replace(' ', '_')}-{i:04d}.flac", clip.T, RATE, subtype="PCM_16")
    _detail.mark_complete(root, recipe, tracks={n: {s: [Path(p).name for p in v] for s, v in d.items()} for n, d in splits.items()})
    return root


def reduce(x: torch.Tensor, length: int) -> torch.Tensor:
    """Band-limited (FFT) resampling of ``(..., T)`` audio to ``length`` samples."""
    if x.shape[-1] == length:
        return x
    return torch.from_numpy(fft_resample(x.numpy(), length, axis=-1).astype(np.float32))


def read_clip(path: Path) -> np.ndarray:
    """A clip as float32 ``(2, LENGTH)``."""
    return np.ascontiguousarray(sf.read(path, dtype="float32", always_2d=True)[0].T)


def resampled_clip(path: Path, length: int) -> torch.Tensor:
    """What an audio model trains from: the clip decoded and resampled to ``length`` samples."""
    return reduce(torch.from_numpy(read_clip(path)), length)


def read_audio_split(root: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """All clips of a split as float ``(N, 2, LENGTH)`` with labels in ``names``' order."""
    return _detail.read_split(root, names, ".flac", read_clip)


def main() -> None:
    args = _detail.arguments(__doc__, "soundtrack_id", "clips", train=120, test=50, epochs=10, batch_size=32, quick_train=8)
    title = "Soundtrack identification (6 game soundtracks, 3 s stereo clips): same classifier on latents vs audio"
    full = "audio 44.1 kHz"
    if args.plot_only:
        payload = json.loads(args.out.read_text())
        _detail.report(payload, args.out, title, payload["pairs"], full)
        return
    flac, build_seconds = _detail.build_sources(args, build, "flac")

    variants: dict[str, _detail.Variant] = {}
    codecs, reduced_lengths = {}, {}
    labels: dict[str, torch.Tensor] = {}
    for model in ("stereo-5x", "stereo-20x"):
        x, x_test, y_train, y_test, names, codecs[model] = _detail.latents(flac, args.work, model)
        labels = {"train": y_train, "test": y_test}
        variants[f"latents {model}"] = _detail.Variant(x, x_test, LATENT_PATCH,
                                                       f"{model} latents {tuple(x.shape[1:])}, patches of {LATENT_PATCH} frames", "latents")
        m = matched_samples(tuple(x.shape[1:]), 2, LATENT_PATCH)
        reduced_lengths[model] = m
        variants[f"audio 1/{LENGTH / m.side:.2f} rate"] = (model, m)
    a_train, y_a = read_audio_split(flac / "train", names)
    a_test, y_a_test = read_audio_split(flac / "test", names)
    assert torch.equal(y_a, labels["train"]) and torch.equal(y_a_test, labels["test"])
    for name, v in list(variants.items()):
        if isinstance(v, tuple):
            model, m = v
            rate = RATE * m.side / LENGTH
            variants[name] = _detail.Variant(reduce(a_train, m.side), reduce(a_test, m.side), m.patch,
                                             f"audio resampled to {rate / 1000:.1f} kHz (as many values as {model}), "
                                             f"patches of {m.patch} samples", "reduced")
    variants["audio 44.1 kHz"] = _detail.Variant(a_train, a_test, LENGTH // (516 // LATENT_PATCH),
                                                 "full-rate audio, patches of 512 samples", "full")
    # the same stereo-5x latents before rounding: does the rounding noise of low-variance channels cost accuracy?
    unrounded = OnTheFlyLatents(wavecodec.load("stereo-5x"), quantize=False)
    variants["unrounded latents stereo-5x"] = _detail.Variant(
        torch.cat([unrounded(a_train[i : i + 64]) for i in range(0, len(a_train), 64)]),
        torch.cat([unrounded(a_test[i : i + 64]) for i in range(0, len(a_test), 64)]), LATENT_PATCH,
        "stereo-5x latents before rounding (codec.encode), patches of 2 frames", "latents")
    order = ["latents stereo-5x", f"audio 1/{LENGTH / reduced_lengths['stereo-5x'].side:.2f} rate",
             "latents stereo-20x", f"audio 1/{LENGTH / reduced_lengths['stereo-20x'].side:.2f} rate", "audio 44.1 kHz",
             "unrounded latents stereo-5x"]
    if _detail.rerun_only(args, variants, order, labels["train"], labels["test"], len(names), title, full):
        return
    variants = {k: variants[k] for k in order}

    results = _detail.run_variants(variants, labels["train"], labels["test"], len(names), args.heads, args.seeds,
                                   args.epochs, args.width, args.depth, args.batch_size)

    loaders = {}
    for workers in (0, 1, 2):
        n = min(640, len(labels["train"]))
        loaders[f"{workers} workers"] = {
            "LatentDataset stereo-5x": _detail.loader_rate(_detail.Limited(LatentDataset(args.work / "stereo-5x" / "train"), n), workers, limit=n),
            "LatentShards stereo-5x": _detail.loader_rate(LatentShards(args.work / "stereo-5x" / "train"), workers, limit=n),
            "LatentDataset stereo-20x": _detail.loader_rate(_detail.Limited(LatentDataset(args.work / "stereo-20x" / "train"), n), workers, limit=n),
            "FLAC files -> 1/4.74 rate": _detail.loader_rate(_detail.Limited(_detail.SourceFolder(flac / "train", ".flac", partial(resampled_clip, length=reduced_lengths["stereo-5x"].side)), n), workers, limit=n),
            "FLAC files -> 44.1 kHz": _detail.loader_rate(_detail.Limited(_detail.SourceFolder(flac / "train", ".flac", partial(resampled_clip, length=LENGTH)), n), workers, limit=n),
        }
    pairs = {model: order[order.index(f"latents {model}") + 1] for model in ("stereo-5x", "stereo-20x")}
    tracks = json.loads((flac / ".complete").read_text())["tracks"]
    payload = {"task": "soundtrack identification", "config": {k: str(v) for k, v in vars(args).items()},
               "soundtracks": {n: {"package": SOUNDTRACKS[n][0], "tracks": tracks[n]} for n in SOUNDTRACKS},
               "num_classes": len(names), "class_names": names, "train_samples": len(labels["train"]),
               "test_samples": len(labels["test"]), "build_seconds": build_seconds, "codecs": codecs,
               "results": results, "pairs": pairs,
               "loader_samples_per_s": loaders,
               "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}}
    _detail.report(payload, args.out, title, pairs, full)


if __name__ == "__main__":
    main()

"""Font identification: which of 20 font families set a 256x256 crop of words? Latents vs equal-size pixels.

The label lives in stroke detail (serifs, terminals, x-height, stroke contrast) of text set
at 11-24 px, the detail an area-downsampled image loses first. Inputs, all with the same
256-token grid for the classifier:

* ``gray-16x`` latents (4 x 32 x 32, 4,096 values) vs pixels area-downsampled to 64 x 64 (4,096);
* ``gray-4x`` latents (16 x 32 x 32, 16,384 values) vs pixels at 128 x 128 (16,384);
* full-resolution pixels (256 x 256).

Words come from ``wamerican``; each split has its own words (no word is in both), every crop
is rendered from a seed, so the dataset is the same on every machine. The crops are written
as PNG, converted with ``wavecodec convert`` and read back with ``LatentDataset``.

Needs (Debian): wamerican and the font packages in ``FONT_PACKAGES``.
Run (CPU, about 75 minutes on 2 cores with the defaults; ``--quick`` for a smoke run):
    .venv/bin/python experiments/font_id.py
Writes ``experiments/results/font_id.{json,png}`` and prints the tables of ``docs/learning.md``;
``--plot-only`` redraws the plot and the tables from the JSON.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import _detail
import wavecodec
from wavecodec.data import LatentDataset, LatentShards
from wavecodec.learn import downsample, matched_pixels

FONT_PACKAGES = ("fonts-dejavu-core fonts-liberation fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine "
                 "fonts-cantarell fonts-open-sans fonts-lato fonts-roboto-unhinted fonts-comic-neue fonts-ebgaramond "
                 "fonts-go fonts-oldstandard fonts-urw-base35")
# Upright regular faces; near-clones of one design (Liberation Sans / Nimbus Sans / FreeSans) are left out.
FAMILIES = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Liberation Sans", "Liberation Serif", "Liberation Mono",
            "Carlito", "Caladea", "Linux Libertine O", "Linux Biolinum O", "Cantarell", "Open Sans", "Lato", "Roboto",
            "Comic Neue", "EB Garamond", "Go", "Old Standard TT", "C059", "P052")
WORDS = Path("/usr/share/dict/american-english")
SIDE = 256
SIZES = (11, 24)  # text height in pixels, drawn uniformly


def font_file(family: str) -> str:
    """The file fontconfig has for ``family``'s regular face; exits with the packages to install if missing."""
    out = subprocess.run(["fc-match", "-f", "%{family[0]}|%{file}", f"{family}:style=Regular"], capture_output=True, text=True)
    found, _, path = out.stdout.partition("|")
    if out.returncode or found != family:
        raise SystemExit(f"font {family!r} not found; run: apt-get install -y --no-install-recommends {FONT_PACKAGES}")
    return path


def words_by_split(seed: int) -> dict[str, list[str]]:
    """Lower-case dictionary words of 3-10 letters, shuffled and cut in two disjoint halves."""
    if not WORDS.exists():
        raise SystemExit("no word list; run: apt-get install -y --no-install-recommends wamerican")
    words = sorted({w for w in WORDS.read_text().split() if w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 10})
    random.Random(seed).shuffle(words)
    half = len(words) // 2
    return {"train": words[:half], "test": words[half:]}


def render(words: list[str], font: ImageFont.FreeTypeFont, rng: random.Random) -> Image.Image:
    """Lines of random words filling a ``SIDE`` x ``SIDE`` grey crop (dark text on a light ground)."""
    background, ink = rng.randint(200, 255), rng.randint(0, 70)
    img = Image.new("L", (SIDE, SIDE), background)
    draw = ImageDraw.Draw(img)
    ascent, descent = font.getmetrics()
    y = rng.randint(-ascent // 2, 4)
    while y < SIDE:
        x = rng.randint(-30, 6)
        while x < SIDE:
            word = rng.choice(words)
            draw.text((x, y), word, font=font, fill=ink)
            x += int(font.getlength(word + " "))
        y += int((ascent + descent) * rng.uniform(1.0, 1.3))
    return img


def build(root: Path, per_class: dict[str, int], seed: int) -> Path:
    """Write ``root/{split}/{family}/{i}.png`` (once: a rerun with the same counts and seed reuses them)."""
    recipe = {"per_class": per_class, "seed": seed}
    if _detail.up_to_date(root, recipe):
        return root
    files = {family: font_file(family) for family in FAMILIES}
    words = words_by_split(seed)
    for split, count in per_class.items():
        for k, family in enumerate(FAMILIES):
            folder = root / split / family.replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                rng = random.Random(f"{seed}:{split}:{family}:{i}")
                font = ImageFont.truetype(files[family], rng.randint(*SIZES))
                render(words[split], font, rng).save(folder / f"{i:05d}.png")
    _detail.mark_complete(root, recipe)
    return root


def read_gray(path: Path) -> np.ndarray:
    """A crop as uint8 ``(H, W)``."""
    return np.asarray(Image.open(path).convert("L"))


def reduced_gray(path: Path, side: int) -> torch.Tensor:
    """What a pixel model trains from: the crop decoded and area-reduced to ``side`` (unit-range float ``(1, side, side)``)."""
    return downsample(torch.from_numpy(read_gray(path))[None, None], side)[0]


def read_pixels(root: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """All crops of a split as uint8 ``(N, 1, SIDE, SIDE)`` with labels in ``names``' order."""
    x, y = _detail.read_split(root, names, ".png", read_gray)
    return x[:, None], y


def low_band_share(model: str) -> dict[str, float]:
    """How much of a gray codec's encoder looks at what area-downsampling to the same number of values keeps.

    For a 16x codec (J=3, 64 subbands) that is the 4 lowest subbands (the frequencies a 4x area
    reduction keeps): the share of the 1x1 encoder's weight energy on them, against the share
    an even spread would give, and (as a check of which subbands those are) the share of a
    band-limited noise image's energy they hold.
    """
    codec = wavecodec.load(model)
    weights = codec.encoder.proj.weight.detach().double().flatten(1)
    subbands = weights.shape[1]
    side = 2 ** codec.config.levels
    keep = codec.config.latent_dim  # as many subbands as latent channels: the same number of values
    factor = side / math.isqrt(keep)  # the area reduction with as many values: sqrt(keep) subbands a side
    energy = weights**2 / (weights**2).sum(dim=1, keepdim=True)
    noise = torch.randn(1, 1, 256, 256, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    freqs = torch.fft.fftfreq(256).abs()
    mask = (freqs[:, None] < 0.5 / factor) & (freqs[None, :] < 0.5 / factor)
    limited = torch.fft.ifft2(torch.fft.fft2(noise) * mask).real.float()
    band = (codec.wpt(limited).double() ** 2).sum(dim=(0, 2, 3))
    return {"subbands": subbands, "kept_subbands": keep, "weight_energy_share": float(energy[:, :keep].sum(1).mean()),
            "even_spread_share": keep / subbands, "band_limited_energy_share": float(band[:keep].sum() / band.sum())}


def main() -> None:
    args = _detail.arguments(__doc__, "font_id", "crops", train=200, test=50, epochs=12, batch_size=64, quick_train=12)
    title = "Font identification (20 families, 256x256 crops): same classifier on codec latents vs pixels"
    pairs, full = {"gray-16x": "pixels 64x64", "gray-4x": "pixels 128x128"}, "pixels 256x256"
    if args.plot_only:
        payload = json.loads(args.out.read_text())
        payload["encoder_low_band_share"] = {m: low_band_share(m) for m in pairs}
        _detail.report(payload, args.out, title, pairs, full)
        return
    png, build_seconds = _detail.build_sources(args, build, "png")

    variants: dict[str, _detail.Variant] = {}
    codecs = {}
    for model in ("gray-16x", "gray-4x"):
        x, x_test, y_train, y_test, names, codecs[model] = _detail.latents(png, args.work, model)
        variants[f"latents {model}"] = _detail.Variant(x, x_test, 2, f"{model} latents {tuple(x.shape[1:])}, 2x2 patches", "latents")
        side = matched_pixels(tuple(x.shape[1:]), 1).side
        variants[f"pixels {side}x{side}"] = (side, model)  # filled below, once the pixels are read
    px_train, y_px = read_pixels(png / "train", names)
    px_test, y_px_test = read_pixels(png / "test", names)
    assert torch.equal(y_px, y_train) and torch.equal(y_px_test, y_test)  # one label vector for every input
    for name, v in list(variants.items()):
        if isinstance(v, tuple):
            side, model = v
            patch = 2 * (side // 32)
            variants[name] = _detail.Variant(downsample(px_train, side), downsample(px_test, side), patch,
                                             f"pixels area-reduced to {side}x{side} (as many values as {model}), {patch}x{patch} patches",
                                             "reduced")
    variants["pixels 256x256"] = _detail.Variant(downsample(px_train, SIDE), downsample(px_test, SIDE), 16,
                                                 "full-resolution pixels, 16x16 patches", "full")
    order = ["latents gray-16x", "pixels 64x64", "latents gray-4x", "pixels 128x128", "pixels 256x256"]
    if _detail.rerun_only(args, variants, order, y_train, y_test, len(FAMILIES), title, full):
        return
    variants = {k: variants[k] for k in order}

    results = _detail.run_variants(variants, y_train, y_test, len(FAMILIES), args.heads, args.seeds, args.epochs,
                                   args.width, args.depth, args.batch_size)

    loaders = {}
    for workers in (0, 1, 2):
        loaders[f"{workers} workers"] = {
            "LatentDataset gray-16x": _detail.loader_rate(_detail.Limited(LatentDataset(args.work / "gray-16x" / "train"), 2000), workers),
            "LatentShards gray-16x": _detail.loader_rate(LatentShards(args.work / "gray-16x" / "train"), workers),
            "LatentDataset gray-4x": _detail.loader_rate(_detail.Limited(LatentDataset(args.work / "gray-4x" / "train"), 2000), workers),
            "PNG files -> 64x64": _detail.loader_rate(_detail.Limited(_detail.SourceFolder(png / "train", ".png", partial(reduced_gray, side=64)), 2000), workers),
            "PNG files -> 128x128": _detail.loader_rate(_detail.Limited(_detail.SourceFolder(png / "train", ".png", partial(reduced_gray, side=128)), 2000), workers),
            "PNG files -> 256x256": _detail.loader_rate(_detail.Limited(_detail.SourceFolder(png / "train", ".png", partial(reduced_gray, side=SIDE)), 2000), workers),
        }
    payload = {"task": "font identification", "config": {k: str(v) for k, v in vars(args).items()},
               "families": list(FAMILIES), "num_classes": len(FAMILIES), "train_samples": len(y_train),
               "test_samples": len(y_test), "build_seconds": build_seconds, "codecs": codecs,
               "results": results, "loader_samples_per_s": loaders,
               "encoder_low_band_share": {m: low_band_share(m) for m in pairs},
               "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}}
    _detail.report(payload, args.out, title, pairs, full)


if __name__ == "__main__":
    main()

"""Does SSIMULACRA2 want another split of bits between luma and chroma than MSE training chose?

``rgb-storage``'s encoder (PCA-started) keeps colour apart: each of its 192 latent channels lies
almost wholly along the grey axis (R = G = B) of the subbands or across it (median share of the
grey axis 0.011, quartiles 0.003 and 0.987). MSE on RGB counts an error across the grey axis as much
as one along it, while SSIMULACRA2 (in XYB) weighs luma detail most. This moves the two groups to
different points of the quality knob (luma channels' steps and gains taken at ``quality + luma``,
chroma channels' at ``quality - chroma``) at encode and decode alike, and scores the dev photos at
qualities 40-90 with JPEG's curve from the same run: BD-rates at equal PSNR and at equal
SSIMULACRA2 against the unshifted model and against JPEG.

Run: ``.venv/bin/python experiments/chroma_steps.py`` (about 15 minutes on 2 cores).
Writes ``experiments/results/chroma_steps.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import dev_photos, machine, photo_tensor, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from image_rd import bjontegaard, codec_curve, curve_point, quality  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUALITIES = (40, 50, 60, 70, 80, 90)
SHIFTS = ((0, 0), (0, 10), (5, 5), (10, 10), (-5, -5))  # (luma, chroma): quality points up for luma, down for chroma


def grey_share(codec: wavecodec.Codec) -> torch.Tensor:
    """Per latent channel, the share of its encoder weights along the grey axis of each subband's three colours."""
    w = codec.encoder.proj.weight.detach().reshape(codec.config.latent_dim, 3, -1)  # the WPT's channels are colour-major
    grey = (w.sum(1) / 3 ** 0.5) ** 2
    return grey.sum(1) / (w ** 2).sum((1, 2))


def shift_groups(codec: wavecodec.Codec, luma: torch.Tensor, shift: dict[str, float]) -> None:
    """Make the codec's ladder give the ``luma`` channels the steps and gains of ``quality + shift["luma"]`` and the
    others those of ``quality - shift["chroma"]`` (for this experiment; encode and decode both read them)."""
    rates = codec.rates

    def grouped(fn):  # type: ignore[no-untyped-def]
        clip = lambda q: min(100.0, max(0.0, q))  # noqa: E731
        return lambda q: torch.where(luma, fn(clip(q + shift["luma"])), fn(clip(q - shift["chroma"])))

    rates.steps, rates.gains = grouped(rates.steps), grouped(rates.gains)  # reconstruction_steps multiplies the two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rgb-storage")
    parser.add_argument("-o", "--output", default=str(RESULTS / "chroma_steps.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    photos = dev_photos()
    codec = wavecodec.load(args.model).eval()
    share = grey_share(codec)
    shift = {"luma": 0.0, "chroma": 0.0}
    shift_groups(codec, share > 0.5, shift)
    jpeg = codec_curve("jpeg", photos)
    curves: dict[str, list[dict]] = {}
    for luma, chroma in SHIFTS:
        shift.update(luma=luma, chroma=chroma)
        label = f"luma {luma:+d}, chroma {-chroma:+d}"
        curves[label] = []
        for q in QUALITIES:
            rows = []
            for img in photos.values():
                with torch.no_grad():
                    data = codec.compress(photo_tensor(img), quality=q)
                    rec = codec.decompress(data)[0].permute(1, 2, 0).numpy()
                rows.append({"bpp": 8 * len(data) / (img.shape[0] * img.shape[1]), **quality(img, rec)})
            curves[label].append({"quality": q, **curve_point(rows)})
            print(label, q, {k: round(v, 3) for k, v in curves[label][-1].items()}, flush=True)
    unshifted = curves["luma +0, chroma +0"]
    report = {
        "model": args.model,
        "grey_share_quartiles": [round(float(v), 4) for v in torch.quantile(share, torch.tensor([0.25, 0.5, 0.75]))],
        "luma_channels": int((share > 0.5).sum()),
        "curves": {"jpeg": jpeg, **curves},
        "bjontegaard": {label: {"unshifted": bjontegaard(unshifted, c), "jpeg": bjontegaard(jpeg, c)}
                        for label, c in curves.items()},
        "machine": machine(),
    }
    path = write_json(Path(args.output), report)
    for label, bd in report["bjontegaard"].items():
        print(label, {a: {k: (round(v, 2) if v is not None else None) for k, v in d.items()} for a, d in bd.items()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

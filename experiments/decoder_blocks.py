"""Decoder quality per compute: residual, dilated, ConvNeXt-style and down-up blocks at equal multiply-accumulates per pixel.

Three `rgb-16x` decoders (12 latent channels, the same linear encoder) of about 10,860
multiply-accumulates per pixel each, trained the same way from the PCA start on the training
photos (``recipes/rgb-16x.toml`` with ``--set steps=STEPS``, MSE only):

* ``residual``: 96 wide, 4 blocks of two 3 x 3 convolutions (the shipped design), reach 9 latent positions;
* ``dilated``: the same, the second convolution of each block dilated 2x, reach 13;
* ``convnext``: 96 wide, 16 blocks of a depthwise 7 x 7 convolution and a 2x wide 1 x 1 bottleneck, reach 49;
* ``downup``: 96 wide, one residual block at full resolution on each side of a half-resolution stage (2 x 2
  positions folded into channels, two residual blocks 176 wide, unfolded back), 3% fewer multiply-accumulates, reach 14.

Each is evaluated on the 10 dev photos (whole ``.wvc`` files: bpp, PSNR) and timed (decoder
network on the latents of the first dev photo, scikit-image's 512x512 astronaut, two threads, float32 and int8). Training is resumable:
rerunning skips finished runs.

Run: ``.venv/bin/python experiments/decoder_blocks.py [--steps 1500]`` (about 10 minutes a variant on
this 2-core CPU). Writes ``experiments/results/decoder_blocks.{json,png}``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import torch

import wavecodec
from wavecodec.benchmarking import decoder_macs_per_pixel, dev_photos, interleaved_ms, machine, save_figure, write_json
from wavecodec.evaluation import evaluate_image
from wavecodec.streaming import decoder_reach

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
VARIANTS = {"residual": ["codec.decoder_depth=4"], "dilated": ["codec.decoder_depth=4", "codec.decoder_block=dilated"],
            "convnext": ["codec.decoder_depth=16", "codec.decoder_block=convnext"],
            "downup": ["codec.decoder_depth=4", "codec.decoder_block=downup"]}


def train(name: str, steps: int) -> Path:
    """Train (or resume) and export one variant; returns its model file."""
    run, model = ROOT / "runs" / f"blocks-{name}", ROOT / "runs" / f"blocks-{name}.safetensors"
    if not model.exists():
        sets = [f"steps={steps}", "val_every=100000", f"codec.name=blocks-{name}", *VARIANTS[name]]
        cmd = [sys.executable, "-m", "wavecodec.cli", "train", "--config", str(ROOT / "recipes" / "rgb-16x.toml"), "--run-dir", str(run)]
        cmd += [a for s in sets for a in ("--set", s)] + (["--resume"] if (run / "checkpoint.safetensors").exists() else [])
        subprocess.run(cmd, check=True, cwd=ROOT)
        subprocess.run([sys.executable, "-m", "wavecodec.cli", "export", str(run), "-o", str(model), "--quiet"], check=True, cwd=ROOT)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    models = {name: train(name, args.steps) for name in VARIANTS}
    torch.set_num_threads(2)
    photos = dev_photos()
    report = {"steps": args.steps, "machine": machine(), "variants": {}}
    for name, path in models.items():
        codec = wavecodec.load(path)
        rows = [evaluate_image(codec, torch.from_numpy(img.copy()).permute(2, 0, 1)[None].contiguous(), k, perceptual=False)
                for k, img in photos.items()]
        x = torch.from_numpy(next(iter(photos.values()))[:512, :768].copy()).permute(2, 0, 1)[None].contiguous()
        with torch.inference_mode():
            z = codec.bottleneck.expand(codec.dequantize(codec.quantize(codec.encode(x))))
            net = {p: (lambda p=p: codec.decoder(z, precision=p, calibration=codec.calibration_latents)) for p in ("float32", "int8")}
            net["int8"]()  # calibrate once, untimed
            ms = interleaved_ms(net, 7)
        report["variants"][name] = {"macs_per_pixel": decoder_macs_per_pixel(codec), "parameters": codec.num_parameters("decoder"), "reach": decoder_reach(codec),
                                    "dev_bpp": statistics.mean(r["bpp"] for r in rows), "dev_psnr_db": statistics.mean(r["psnr"] for r in rows),
                                    "decoder_ms_float32": ms["float32"], "decoder_ms_int8": ms["int8"]}
        v = report["variants"][name]
        print(f"{name:9s} {v['macs_per_pixel']:8,.0f} MAC/px  reach {v['reach']:2d}  {v['dev_bpp']:.3f} bpp  {v['dev_psnr_db']:.2f} dB"
              f"  decoder {v['decoder_ms_float32']:.1f} ms (int8 {v['decoder_ms_int8']:.1f})", flush=True)
    write_json(RESULTS / "decoder_blocks.json", report)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, v in report["variants"].items():
        ax.scatter(v["decoder_ms_float32"], v["dev_psnr_db"], s=40)
        ax.annotate(f"{name} ({v['macs_per_pixel']:,.0f} MAC/px)", (v["decoder_ms_float32"], v["dev_psnr_db"]), fontsize=8)
    ax.set_xlabel("decoder network, ms per 512x512 photo (2 threads, float32)")
    ax.set_ylabel("dev PSNR (dB)")
    save_figure(fig, RESULTS / "decoder_blocks.png", f"rgb-16x decoders at equal MAC/pixel, {args.steps} steps each")
    print("wrote", RESULTS / "decoder_blocks.json")


if __name__ == "__main__":
    main()

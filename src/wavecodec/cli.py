"""The ``wavecodec`` command line.

Every subcommand is a function taking parsed arguments; :func:`main` turns user errors
(:class:`WavecodecError`, missing files) into one line on stderr and exit status 2, so a
user never sees a traceback for a mistake of theirs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import torch

from . import __version__, wpt
from .config import CodecConfig
from .errors import WavecodecError
from .images import BUNDLED_PHOTO, read_image, to_tensor
from .model import Codec


def _psnr(mse: float) -> float:
    return float("inf") if mse == 0 else -10.0 * torch.log10(torch.tensor(mse)).item()


def cmd_demo(args: argparse.Namespace) -> int:
    """Analyse and synthesise a photo; show the latent shape of the default image codec."""
    image = read_image(args.image)
    x = to_tensor(image).double() / 255.0
    block = 2**args.levels
    h, w = (x.shape[2] // block) * block, (x.shape[3] // block) * block
    x = x[:, :, :h, :w]
    X = wpt.analysis(x, args.levels)
    x_rec = wpt.synthesis(X, args.levels)
    err = (x_rec - x).abs().max().item()
    energy = X.pow(2).flatten(2).sum(-1)[0]
    top = energy.sort(descending=True).values
    share = (top[: max(1, X.shape[1] // 16)].sum() / top.sum()).item()
    config = CodecConfig(channels=x.shape[1], levels=args.levels, latent_dim=max(1, x.shape[1] * 4**args.levels // 16))
    codec = Codec(config).eval()
    with torch.inference_mode():
        latents = codec.quantize(codec.encode(x.float()))
    print(f"image:            {args.image} ({image.shape[1]}x{image.shape[0]}, {image.shape[2]} channels)")
    print(f"wavelet packets:  J={args.levels} bior4.4 -> {tuple(X.shape)}")
    print(f"reconstruction:   max abs error {err:.2e} (float64), PSNR {_psnr(((x_rec - x) ** 2).mean().item()):.1f} dB")
    print(f"energy:           {100 * share:.1f}% in the top 1/16 of subbands")
    print(f"codec latents:    {tuple(latents.shape)} {latents.dtype} ({config.reduction:g}x fewer values than pixels)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wavecodec", description="Learned wavelet compression.")
    parser.add_argument("--version", action="version", version=f"wavecodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="transform a bundled photo and report the reconstruction error")
    p.add_argument("image", nargs="?", default=str(BUNDLED_PHOTO), help="image file (default: bundled photo)")
    p.add_argument("--levels", type=int, default=3, help="wavelet packet levels J (default 3)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WavecodecError as exc:
        print(f"wavecodec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wavecodec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

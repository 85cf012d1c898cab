"""The reference architecture (pip ``walloc`` 1.2.1, ``Codec2D``) trained with our data and budget.

Fairness: the reference model is trained by this script with exactly what our trainer uses for
the recipe it is compared with: the same crops in the same order (``CropDataset`` with the
recipe's seed), batch size, step count, AdamW, warm-up + cosine schedule, gradient clipping
and objective (pixel MSE, lambda = 0). Only the architecture differs: the reference's
fixed-scale Gaussian companding, its random initialisation and its diffusers decoder
(``block_out_channels=(Nd,)``, two ResNet layers per block plus attention). Its latents are
stored as the reference does, a lossless WebP mosaic (our ``webp`` coder writes the same
mosaic); bpp counts those bytes only, while ours counts the whole ``.wvc`` file.

walloc needs ``diffusers`` and imports ``torchvision`` for two PIL helpers that ``Codec2D``
never calls; torchvision is not installed (DEVELOPERS.md), so a stand-in module is registered
before the import. It runs in its own virtual environment (``make bench-walloc``):

    .venv-walloc/bin/python benchmarks/walloc_reference.py --recipe recipes/rgb-16x.toml --nd 64 --steps 2000

With ``--ours MODEL [MODEL ...]`` our models trained with the same recipe and budget are evaluated in the
same process on the same photos at several quantisation steps, and our PSNR is interpolated
at the reference's bpp. ``--eval-only`` re-evaluates the saved reference model.

Writes ``benchmarks/results/walloc_reference_nd64.json`` (and the run in ``runs/walloc-nd64``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from wavecodec.benchmarking import dev_photos, machine, time_call, write_json
from wavecodec.coders import webp_decode, webp_encode
from wavecodec.metrics import psnr_from_mse
from wavecodec.training.config import TrainConfig
from wavecodec.training.data import CropDataset, collate
from wavecodec.training.loop import StepSampler, lr_factor

RESULTS = Path(__file__).resolve().parent / "results"


def import_walloc() -> type:
    """``walloc.walloc.Codec2D``, with a stand-in for the torchvision helpers it never calls here."""
    import diffusers.models.autoencoders  # noqa: F401  (diffusers probes torchvision first: import it before the stand-in)

    class _Unavailable:
        def __init__(self, *args, **kwargs) -> None:
            raise RuntimeError("torchvision is not installed; Codec2D does not need it")

    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToPILImage = transforms.PILToTensor = _Unavailable
    package = types.ModuleType("torchvision")
    package.transforms = transforms
    sys.modules.setdefault("torchvision", package)
    sys.modules.setdefault("torchvision.transforms", transforms)
    from walloc.walloc import Codec2D

    return Codec2D


def train_reference(model: torch.nn.Module, cfg, run_dir: Path) -> list[dict]:
    """Our training recipe (data order, optimiser, schedule, clipping, objective) on the reference model."""
    data = CropDataset(cfg.train_data, modality="image", channels=3, crop=cfg.crop, seed=cfg.seed,
                       downscale=cfg.downscale, flips=cfg.flips, cache_dir=run_dir / "cache")
    loader = DataLoader(data, batch_sampler=StepSampler(0, cfg.steps, cfg.batch_size, 0, 1), num_workers=cfg.workers,
                        collate_fn=collate, prefetch_factor=4 if cfg.workers else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    torch.manual_seed(cfg.seed * 1000)
    model.train()
    log, t0 = [], time.perf_counter()
    from tqdm import tqdm

    for step, (batch, _) in enumerate(tqdm(loader, total=cfg.steps, unit="step")):
        x = batch.float() / 255 - 0.5
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg)
        _, mse, _ = model(x)
        optimizer.zero_grad(set_to_none=True)
        mse.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if (step + 1) % 50 == 0:
            log.append({"step": step + 1, "psnr": psnr_from_mse(mse.item()), "seconds": time.perf_counter() - t0})
    return log


class ReferenceCodec:
    """Compress/decompress an ``(H, W, 3)`` uint8 photo with a trained ``Codec2D`` and the WebP mosaic."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.multiple = 2**model.J

    @torch.no_grad()
    def compress(self, img: np.ndarray) -> tuple[bytes, tuple[int, ...], tuple[int, int]]:
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 - 0.5
        h, w = x.shape[2:]
        m = self.multiple
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")
        q = self.model.encoder(self.model.wavelet_analysis(x, J=self.model.J)).round().to(torch.int32).numpy()
        return webp_encode(q, 127), q.shape, (h, w)

    @torch.no_grad()
    def decompress(self, packed: tuple[bytes, tuple[int, ...], tuple[int, int]]) -> np.ndarray:
        data, shape, (h, w) = packed
        q = torch.from_numpy(webp_decode(data, shape, 127)).float()
        x = self.model.wavelet_synthesis(self.model.decoder(q), J=self.model.J)[0, :, :h, :w]
        return ((x + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def evaluate(codec: ReferenceCodec, repeats: int) -> list[dict]:
    rows = []
    for name, img in dev_photos().items():
        img = np.ascontiguousarray(img)
        packed = codec.compress(img)
        y = codec.decompress(packed)
        mse = float(((y.astype(np.float64) - img) ** 2).mean()) / 255**2
        pixels = img.shape[0] * img.shape[1]
        enc = time_call(lambda: codec.compress(img), repeats, warmup=1)["median_s"]
        dec = time_call(lambda: codec.decompress(packed), repeats, warmup=1)["median_s"]
        rows.append({"photo": name, "bytes": len(packed[0]), "bpp": 8 * len(packed[0]) / pixels,
                     "psnr": psnr_from_mse(mse), "encode_mpix_s": pixels / 1e6 / enc, "decode_mpix_s": pixels / 1e6 / dec})
        print(f"{name:24s} bpp {rows[-1]['bpp']:.3f}  PSNR {rows[-1]['psnr']:.2f} dB", flush=True)
    return rows


def evaluate_ours(path: str, steps: list[float], repeats: int) -> list[dict]:
    """Our matched model on the same photos at several quantisation steps (whole .wvc files)."""
    import wavecodec

    codec = wavecodec.load(path)
    curve = []
    for step in steps:
        rows = []
        for name, img in dev_photos().items():
            x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None]
            data = codec.compress(x, quant_step=step)
            y = codec.decompress(data)
            mse = float(((y.double() - x.double()) ** 2).mean()) / 255**2
            pixels = x.shape[2] * x.shape[3]
            row = {"photo": name, "bpp": 8 * len(data) / pixels, "psnr": psnr_from_mse(mse)}
            if step == steps[0]:
                row["encode_mpix_s"] = pixels / 1e6 / time_call(lambda: codec.compress(x, quant_step=step), repeats, warmup=1)["median_s"]
                row["decode_mpix_s"] = pixels / 1e6 / time_call(lambda: codec.decompress(data), repeats, warmup=1)["median_s"]
            rows.append(row)
        point = {"step": step, "dev_bpp": statistics.mean(r["bpp"] for r in rows), "dev_psnr_db": statistics.mean(r["psnr"] for r in rows)}
        if step == steps[0]:
            point["encode_mpix_s"] = statistics.median(r["encode_mpix_s"] for r in rows)
            point["decode_mpix_s"] = statistics.median(r["decode_mpix_s"] for r in rows)
        print(f"ours step {step:g}: {point['dev_bpp']:.3f} bpp {point['dev_psnr_db']:.2f} dB", flush=True)
        curve.append(point)
    return {"model": path, "parameters": codec.num_parameters(),
            "decoder_parameters": sum(p.numel() for p in codec.decoder.parameters()), "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/rgb-16x.toml", help="our recipe whose data and budget are used")
    parser.add_argument("--nd", type=int, default=64, help="reference decoder width (a multiple of 32)")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step count (both sides)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", nargs="+", default=[], help="our models trained with the same recipe and budget, evaluated beside it")
    parser.add_argument("--our-steps", nargs="+", type=float, default=[1, 2, 3, 4, 6, 8, 12, 16, 24])
    parser.add_argument("--eval-only", action="store_true", help="evaluate the reference model saved by an earlier run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = TrainConfig.load(args.recipe, [f"steps={args.steps}"] if args.steps is not None else [])
    Codec2D = import_walloc()
    torch.manual_seed(cfg.seed)
    c = cfg.codec
    model = Codec2D(c.channels, c.levels, 0, args.nd, c.latent_dim, c.latent_bits, True)
    run_dir = Path("runs") / f"walloc-nd{args.nd}"
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = {}
    if args.eval_only:
        model.load_state_dict(torch.load(run_dir / "model.pt"))
        previous = json.loads((RESULTS / f"walloc_reference_nd{args.nd}.json").read_text())
        log, seconds = previous["train_log"], previous["summary"]["train_seconds"]
    else:
        t0 = time.perf_counter()
        log = train_reference(model, cfg, run_dir)
        seconds = time.perf_counter() - t0
        torch.save(model.state_dict(), run_dir / "model.pt")
    rows = evaluate(ReferenceCodec(model), args.repeats)
    summary = {
        "architecture": f"walloc 1.2.1 Codec2D(J={c.levels}, latent_dim={c.latent_dim}, latent_bits={c.latent_bits}, "
                        f"Nd={args.nd}, lightweight_encode=True)",
        "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "recipe": args.recipe, "steps": cfg.steps, "batch_size": cfg.batch_size, "crop": cfg.crop,
        "train_seconds": round(seconds, 1), "steps_per_s": round(cfg.steps / seconds, 3),
        "final_train_psnr_db": log[-1]["psnr"] if log else None,
        "dev_bpp": round(statistics.mean(r["bpp"] for r in rows), 4),
        "dev_psnr_db": round(statistics.mean(r["psnr"] for r in rows), 3),
        "encode_mpix_s": round(statistics.median(r["encode_mpix_s"] for r in rows), 3),
        "decode_mpix_s": round(statistics.median(r["decode_mpix_s"] for r in rows), 3),
    }
    payload = {"summary": summary, "photos": rows, "train_log": log, "machine": machine()}
    payload["ours"] = []
    for model in args.ours:
        ours = evaluate_ours(model, args.our_steps, args.repeats)
        pts = sorted((p["dev_bpp"], p["dev_psnr_db"]) for p in ours["curve"])
        at = float(np.interp(summary["dev_bpp"], [p[0] for p in pts], [p[1] for p in pts])) if pts[0][0] <= summary["dev_bpp"] <= pts[-1][0] else None
        first = ours["curve"][0]
        ours["comparison"] = {
            "reference_bpp": summary["dev_bpp"], "reference_psnr_db": summary["dev_psnr_db"],
            "ours_psnr_db_at_reference_bpp": at, "psnr_gain_db": None if at is None else at - summary["dev_psnr_db"],
            "decode_speedup": first["decode_mpix_s"] / summary["decode_mpix_s"],
            "encode_speedup": first["encode_mpix_s"] / summary["encode_mpix_s"],
        }
        payload["ours"].append(ours)
        print(ours["comparison"])
    print(summary)
    path = write_json(RESULTS / f"walloc_reference_nd{args.nd}.json", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

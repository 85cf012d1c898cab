"""The training loop: PCA initialisation, AdamW with warm-up and cosine decay, checkpoints,
exact resume, logs and plots, and DistributedDataParallel under ``torchrun``."""

from __future__ import annotations

import json
import math
import os
import resource
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from ..atomic import atomic_write
from ..checkpoint import save
from ..errors import ConfigError, InputError
from ..entropy import LaplaceRate
from ..fitting import fit_entropy, floor_ladder_steps, pca_init, uniform_ladder_steps
from ..metrics import psnr_from_mse
from ..model import Codec
from ..rates import RateLadder
from ..registry import is_shipped, load
from ..schedule import warmup_cosine
from .config import TrainConfig
from .data import CropDataset, collate
from .losses import MelLoss, MultiResolutionSTFTLoss
from .plots import plot_curves, plot_reconstructions
from .calibration import rate_calibration
from .state import CHECKPOINT, load_state, load_weights, read_run_config, save_state

PCA_OFFSET = 2**60  # item indices used for PCA, disjoint from the training steps'
VAL_SEED_OFFSET = 7919


class StepSampler(Sampler[list[int]]):
    """Batches of item indices for steps ``start..steps-1`` of one rank: ``((s * world + rank) * B + i)``."""

    def __init__(self, start: int, steps: int, batch: int, rank: int, world: int) -> None:
        self.start, self.steps, self.batch, self.rank, self.world = start, steps, batch, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.steps):
            base = (s * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(0, self.steps - self.start)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank, world


def _device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(name)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The schedule's factor at ``step`` (:func:`wavecodec.schedule.warmup_cosine` with the config's settings)."""
    return warmup_cosine(step, cfg.steps, cfg.warmup, cfg.min_lr_ratio)


def _datasets(cfg: TrainConfig, run_dir: Path) -> tuple[CropDataset, CropDataset]:
    if not cfg.train_data:
        raise ConfigError("train_data is not set; point it at a folder of images or audio")
    c = cfg.codec
    common = dict(modality=c.modality, channels=c.channels, crop=cfg.crop, downscale=cfg.downscale,
                  cache_dir=run_dir / "cache", sample_rate=c.sample_rate, normalize=c.normalize)
    train = CropDataset(cfg.train_data, seed=cfg.seed, flips=cfg.flips, **common)
    val = CropDataset(cfg.val_data or cfg.train_data, seed=cfg.seed + VAL_SEED_OFFSET, flips=False, **common)
    if cfg.val_data:
        val.cache.cache_dir = run_dir / "cache-val"
    return train, val


def _batch_of(ds: CropDataset, indices: list[int]) -> torch.Tensor:
    batch, _ = collate([ds[k] for k in indices])
    if batch is None:
        raise InputError("none of the sampled files could be read")
    return batch


@torch.no_grad()
def evaluate(codec: Codec, batch: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    """PSNR (unit range) and estimated bpp with real rounding and the i.i.d. tables as they would freeze now.

    Leaves the model as it found it (tables included), so ranks stay identical.
    """
    was = codec.training
    kept = codec.entropy.pmf.clone()
    codec.eval()
    codec.entropy.freeze()
    x_hat, losses = codec(batch)
    codec.entropy.pmf.copy_(kept)
    codec.train(was)
    mse = losses["mse"].item()
    return {"psnr": psnr_from_mse(max(mse, 1e-12)), "bpp": losses["bpp"].item(), "mse": mse}, x_hat


def _open_run(cfg: TrainConfig, rank: int, resume: bool) -> Path:
    """Check the run folder against ``resume``; rank 0 creates it and records the config."""
    run_dir = Path(cfg.run_dir)
    ckpt = run_dir / CHECKPOINT
    if ckpt.exists() and not resume:
        raise ConfigError(f"{run_dir} already holds a run; resume it or choose another run_dir")
    if resume and not ckpt.exists():
        raise ConfigError(f"{run_dir} holds no checkpoint to resume")
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(cfg.to_dict(), indent=2)))
    return run_dir


def _initialise(codec: Codec, cfg: TrainConfig, train_ds: CropDataset, val_batch: torch.Tensor, device: torch.device) -> dict[str, Any]:
    """Weights to start from, or a PCA start and fitted tables (when configured); returns the validation figures."""
    summary: dict[str, Any] = {"random_init": evaluate(codec, val_batch)[0]}
    if cfg.init_weights:  # fine-tuning: longer training, or another loss, from a trained model
        start = load(cfg.init_weights, device)
        adding_noise = cfg.codec.noise_fill and not start.config.noise_fill  # its new levels start silent
        try:  # shapes that differ raise even when keys may be missing
            missing, unexpected = codec.load_state_dict(start.state_dict(), strict=False)
        except RuntimeError:
            missing, unexpected = [], ["?"]
        if unexpected or any(not (adding_noise and k.startswith("decoder.noise.")) for k in missing):
            raise ConfigError(f"init_weights {cfg.init_weights!r} has another architecture than the configured codec")
        if cfg.noise_level_start:  # a level the spectral loss can feel (near silence, its gradient vanishes)
            with torch.no_grad():
                codec.decoder.noise.level.weight.zero_()
                codec.decoder.noise.level.bias.fill_(math.log(math.expm1(cfg.noise_level_start)))
        summary["init_weights"] = evaluate(codec, val_batch)[0]
    elif cfg.pca_init:
        pca = [_batch_of(train_ds, list(range(PCA_OFFSET + i * cfg.batch_size, PCA_OFFSET + (i + 1) * cfg.batch_size))).to(device)
               for i in range(cfg.pca_batches)]
        summary["pca"] = pca_init(codec, pca, cfg.latent_scale, cfg.pca_split_hz, cfg.pca_low_channels)
        if cfg.pca_steps:
            summary["pca"]["rung_steps"] = uniform_ladder_steps(codec)
        fit_entropy(codec, pca, context=False)
        codec.eval()
        summary["pca_init"] = evaluate(codec, val_batch)[0]
    return summary


def _loader(cfg: TrainConfig, train_ds: CropDataset, start: int, stop: int, rank: int, world: int) -> DataLoader:
    return DataLoader(
        train_ds,
        batch_sampler=StepSampler(start, stop, cfg.batch_size, rank, world),
        num_workers=cfg.workers,
        collate_fn=collate,
        persistent_workers=False,
        prefetch_factor=4 if cfg.workers else None,
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG (training noise) untouched
    )


_GOLDEN = (math.sqrt(5) - 1) / 2


def _rung(codec: Codec, step: int, between: bool = False) -> int | float | None:
    """The rung a variable-rate model trains at ``step`` (they take turns); ``None`` for a fixed-rate model.

    With ``between``, odd steps train at a point between rungs instead, from a low-discrepancy
    sequence (the golden ratio's multiples, a function of the step alone, so a resumed run sees the same points).
    """
    if codec.rates is None:
        return None
    if between and step % 2:
        return (step * _GOLDEN) % 1.0 * (codec.rates.rungs - 1)
    return step % codec.rates.rungs


BALANCED_MSE = 1e-3  # a balanced rung's loss is scaled as if its MSE were this (30 dB), to keep gradients near the usual size
FAST_LR_SCALE = 20.0  # log-scale parameters (rung steps, noise levels) move this much faster than the weights


def _freeze_all_but_decoder(codec: Codec) -> None:
    """``TrainConfig.train_only = "decoder"``: only the decoder and the rungs' reconstruction gains keep gradients."""
    for name, p in codec.named_parameters():
        p.requires_grad_(name.startswith("decoder.") or name == "rates.log_gains")


def _parameter_groups(codec: Codec) -> list[dict[str, Any]]:
    """The optimiser's groups (parameters that train): log-scale parameters get a larger learning rate.

    A variable-rate model's rung steps and a noise fill's levels are a few numbers on a log
    scale that must travel several units (the coarsest rung ends up tens of times coarser
    than the finest; the noise starts 70 dB down) in a few thousand steps; at the weights'
    learning rate they would still be moving when training ends.
    """
    ladder = codec.rates
    fast = (_ladder_scales(ladder) if ladder is not None else []) + (
        list(codec.decoder.noise.level.parameters()) if codec.decoder.noise is not None else [])
    fast = [p for p in fast if p.requires_grad]
    ids = {id(p) for p in fast}
    groups: list[dict[str, Any]] = [{"params": [p for p in codec.parameters() if id(p) not in ids and p.requires_grad]}]
    return groups + ([{"params": fast, "lr_scale": FAST_LR_SCALE}] if fast else [])


def _ladder_scales(ladder: RateLadder) -> list[torch.nn.Parameter]:
    """A ladder's log-scale parameters: the steps, the gains and Laplace rate models' scales (which follow the steps)."""
    scales = [ladder.log_steps] + ([ladder.log_gains] if ladder.log_gains is not None else [])
    return scales + [m.log_scale for m in ladder.entropy if isinstance(m, LaplaceRate)]


class _Stepper:
    """One optimisation step: schedule, loss, (scaled) backward, clipping, EMA."""

    def __init__(self, cfg: TrainConfig, codec: Codec, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 device: torch.device, ema: dict[str, torch.Tensor] | None, calibration_batch: torch.Tensor,
                 calibration: torch.Tensor | None = None) -> None:
        self.cfg, self.codec, self.model, self.optimizer, self.ema = cfg, codec, model, optimizer, ema
        #: per rung and channel, the file coder's bits over the estimate's (TrainConfig.calibrate_rate_every), and the
        #: crops it is measured on
        self.calibration, self.calibration_batch = calibration, calibration_batch
        self.device = device
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.use_amp = self.amp_dtype is not None and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.stft = MultiResolutionSTFTLoss().to(device) if cfg.stft_weight else None
        self.mel = MelLoss(cfg.codec.sample_rate).to(device) if cfg.mel_weight else None

    def __call__(self, step: int, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg) * group.get("lr_scale", 1.0)
        rung = _rung(self.codec, step, cfg.train_between_rungs)
        if cfg.calibrate_rate_every and (self.calibration is None or step % cfg.calibrate_rate_every == 0):
            self.calibration = rate_calibration(self.codec, self.calibration_batch)
        rate_scale = None
        if self.calibration is not None and rung is not None:  # between rungs, interpolated as the steps are
            rate_scale = torch.exp(self.codec.rates.mix(self.calibration.log(), rung)).to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            x_hat, losses = self.model(batch, rung, without_noise=cfg.noise_free_mse, ms_ssim=cfg.ms_ssim_weight > 0,
                                       rounded=cfg.rounded_decoder_input, ssimulacra2=cfg.ssimulacra2_weight > 0,
                                       rate_scale=rate_scale)
            waveform = losses["mse_without_noise"] if cfg.noise_free_mse else losses["mse"]
            loss = waveform + losses.get("lmbda", cfg.lmbda) * losses["bpp"]  # a rung brings its own lambda
            if cfg.subband_weight:
                loss = loss + cfg.subband_weight * losses["subband_mse"]
            if self.stft is not None:
                losses["stft"] = self.stft(x_hat, batch)
                loss = loss + cfg.stft_weight * losses["stft"]
            if self.mel is not None:
                losses["mel"] = self.mel(x_hat, batch)
                loss = loss + cfg.mel_weight * losses["mel"]
            if cfg.ms_ssim_weight:
                loss = loss + cfg.ms_ssim_weight * (1 - losses["ms_ssim"])
            if cfg.ssimulacra2_weight:
                loss = loss + cfg.ssimulacra2_weight * losses["ssimulacra2_distance"]
            if cfg.balance_rungs and rung is not None:  # every rung weighs the same in dB (see TrainConfig.balance_rungs)
                loss = loss * (BALANCED_MSE / waveform.detach().clamp_min(1e-8))
            objective = loss + 1e-3 * losses["entropy_fit"]  # fits the tables, leaves the latents alone
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(objective).backward()
        self.scaler.unscale_(self.optimizer)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.codec.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            with torch.no_grad():
                for k, v in self.codec.state_dict().items():
                    if k in self.ema:
                        self.ema[k].lerp_(v, 1 - cfg.ema)
        return loss, losses

    def extra_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps of the stepper so that a resumed run continues exactly: the rate calibration."""
        return {} if self.calibration is None else {"rate_calibration": self.calibration}


def train(cfg: TrainConfig, resume: bool = False, progress: Callable[[int, int], None] | None = None,
          until: int | None = None) -> dict[str, Any]:
    """Run (or resume) training as configured.

    Args:
        cfg: the training config. resume: continue the run in ``cfg.run_dir``.
        progress: called as ``progress(steps_done, steps)`` on rank 0.
        until: stop after that step with a checkpoint, as an interruption would; a later
            ``resume=True`` call continues to ``cfg.steps`` exactly as an uninterrupted run.

    Returns:
        A summary: validation figures at the start and end, time, memory, this rank's
        ``rank`` and the fingerprint of its final ``weights`` (equal on every rank).

    Raises:
        ConfigError: a run folder that does not match ``resume``, or no training data.
    """
    t_start = time.perf_counter()
    rank, world = _distributed()
    device = _device(cfg.device)
    run_dir = _open_run(cfg, rank, resume)
    ckpt, log_path = run_dir / CHECKPOINT, run_dir / "log.jsonl"
    train_ds, val_ds = _datasets(cfg, run_dir)
    val_batch = _batch_of(val_ds, list(range(cfg.val_count))).to(device)

    torch.manual_seed(cfg.seed)
    codec = Codec(cfg.codec).to(device)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "world_size": world, "rank": rank}
    start = 0
    if cfg.train_only == "decoder":
        _freeze_all_but_decoder(codec)
    optimizer = torch.optim.AdamW(_parameter_groups(codec), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema: dict[str, torch.Tensor] | None = None
    extra: dict[str, torch.Tensor] = {}
    if resume:
        start, ema, extra = load_state(ckpt, codec, optimizer, device)
        if rank == 0 and log_path.exists():  # drop log lines past the checkpoint
            kept = [ln for ln in log_path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= start]
            atomic_write(log_path, lambda tmp: Path(tmp).write_text("".join(k + "\n" for k in kept)))
    else:
        summary.update(_initialise(codec, cfg, train_ds, val_batch, device))
        if cfg.ema:
            ema = {k: v.detach().clone() for k, v in codec.state_dict().items() if v.is_floating_point()}
        torch.manual_seed(cfg.seed * 1000 + rank)  # training noise differs per rank
        if rank == 0:
            log_path.unlink(missing_ok=True)
    codec.train()
    model: torch.nn.Module = codec
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(codec, device_ids=[device.index] if device.type == "cuda" else None)
    stepper = _Stepper(cfg, codec, model, optimizer, device, ema, val_batch, extra.get("rate_calibration"))
    loader = _loader(cfg, train_ds, start, min(cfg.steps, until or cfg.steps), rank, world)
    skipped = 0
    t_last, step_last = time.perf_counter(), start
    log = open(log_path, "a") if rank == 0 else None
    try:
        for step, (batch, n_bad) in enumerate(loader, start=start):
            skipped += n_bad
            if batch is None:
                continue
            loss, losses = stepper(step, batch.to(device, non_blocking=True))
            done = step + 1
            if rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps):
                now = time.perf_counter()
                rate = (done - step_last) / max(now - t_last, 1e-9)
                t_last, step_last = now, done
                mse = losses["mse"].item()
                row = {"kind": "train", "step": done, "loss": loss.item(), "mse": mse, "psnr": psnr_from_mse(max(mse, 1e-12)),
                       "bpp": losses["bpp"].item(), "lr": optimizer.param_groups[0]["lr"], "steps_per_s": rate, "skipped": skipped}
                row.update({k: losses[k].item() for k in ("stft", "mel", "ms_ssim", "ssimulacra2_distance") if k in losses})
                if (rung := _rung(codec, step, cfg.train_between_rungs)) is not None:
                    row["rung"] = rung
                log.write(json.dumps(row) + "\n")
                log.flush()
            if rank == 0 and (done % cfg.val_every == 0 or done == cfg.steps):
                metrics, recon = evaluate(codec, val_batch)
                log.write(json.dumps({"kind": "val", "step": done, **metrics, "loss": metrics["mse"] + cfg.lmbda * metrics["bpp"]}) + "\n")
                log.flush()
                _plots(run_dir, val_batch, recon, codec, done)
            if rank == 0 and (done % cfg.checkpoint_every == 0 or done in (cfg.steps, until)):
                save_state(ckpt, codec, optimizer, done, cfg.to_dict(), ema, stepper.extra_state())
            if rank == 0 and progress is not None:
                progress(done, cfg.steps)
    finally:
        if log is not None:
            log.close()
    if rank == 0 and not ckpt.exists():  # steps=0 (PCA only) still leaves an exportable run
        save_state(ckpt, codec, optimizer, start, cfg.to_dict(), ema, stepper.extra_state())
    if world > 1:
        dist.barrier()
    summary.update(
        steps=cfg.steps,
        skipped_files=skipped,
        final_val=evaluate(codec, val_batch)[0],
        weights=codec.fingerprint(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        peak_rss_workers_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        seconds=time.perf_counter() - t_start,
    )
    if rank == 0:
        plot_curves(log_path, run_dir / "curves.png")
        atomic_write(run_dir / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    return summary


def _plots(run_dir: Path, originals: torch.Tensor, recon: torch.Tensor, codec: Codec, step: int) -> None:
    plot_curves(run_dir / "log.jsonl", run_dir / "curves.png")
    if originals.dim() == 4:
        lo, hi = codec.config.value_range
        to_unit = (lambda t: t.float() / 255) if originals.dtype == torch.uint8 else (lambda t: (t.float() - lo) / (hi - lo))
        plot_reconstructions(to_unit(originals), to_unit(recon.cpu()), run_dir / "reconstructions.png", f"step {step}")


def export(run_dir: str | Path, out: str | Path, name: str | None = None, fit_batches: int = 8, use_ema: bool = True) -> Codec:
    """Write a loadable model from a run: (EMA) weights, frozen tables, a fitted context model."""
    run_dir = Path(run_dir)
    ckpt = run_dir / CHECKPOINT
    if not ckpt.exists():
        raise InputError(f"{run_dir} holds no training checkpoint")
    cfg = TrainConfig.from_dict(read_run_config(ckpt))
    if name:
        cfg.codec = cfg.codec.replace(name=name)
    elif is_shipped(cfg.codec.name):  # files would name a shipped model they were not made with
        raise ConfigError(f"the run's model is called {cfg.codec.name!r}, the name of a shipped model; give the export a "
                          "name of its own (or that name again, explicitly, to replace the shipped model)")
    codec = Codec(cfg.codec)
    load_weights(ckpt, codec, use_ema)
    codec.eval()
    codec.entropy.freeze()
    train_ds, _ = _datasets(cfg, run_dir)
    batches = [_batch_of(train_ds, list(range(PCA_OFFSET + i * cfg.batch_size, PCA_OFFSET + (i + 1) * cfg.batch_size)))
               for i in range(fit_batches)]
    floor_ladder_steps(codec, batches)  # before the tables are fitted at the steps
    fit_entropy(codec, batches, iid=False)  # the i.i.d. tables stay the learned ones, frozen above
    save(codec, out)
    return codec


__all__ = ["train", "export", "evaluate", "lr_factor", "StepSampler"]

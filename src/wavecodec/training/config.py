"""Training configuration: a dataclass whose every field has a default, loaded from TOML or
JSON and overridden from the command line with ``--set key=value`` (``codec.latent_dim=48``)."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import CodecConfig, build_dataclass
from ..errors import ConfigError


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.json`` in the run directory."""

    run_dir: str = "runs/default"
    codec: CodecConfig = field(default_factory=lambda: CodecConfig(name="rgb-16x"))
    # data
    train_data: str | list[str] = ""  # folders or glob patterns (recursive)
    val_data: str | list[str] = ""
    crop: int = 256  # pixels a side for images, samples for audio
    downscale: int = 1  # Lanczos downscale factor applied to source images first
    flips: bool = True
    mono: bool = False  # audio: mix to mono before coding (else keep/duplicate channels)
    val_count: int = 8  # validation crops
    workers: int = 2
    # objective
    lmbda: float = 0.0  # rate weight: loss = mse + lmbda * bpp (0 reproduces the reference recipe)
    subband_weight: float = 0.0  # extra weight of the wavelet-domain MSE
    stft_weight: float = 0.0  # audio: weight of the multi-resolution STFT loss (training/losses.py)
    mel_weight: float = 0.0  # audio: weight of the log-mel L1 loss
    ms_ssim_weight: float = 0.0  # images: weight of 1 - MS-SSIM, a perceptual tuning (SSIMULACRA2 punishes blur more than PSNR)
    ssimulacra2_weight: float = 0.0  # RGB images: weight of SSIMULACRA2's error sum (wavecodec.perceptual), which punishes blur
    # "decoder": only the decoder and the rungs' reconstruction gains train; the encoder, the steps and the rate
    # models stay as init_weights has them, so the files a model writes do not change, only how they decode
    train_only: str = ""
    # the decoder trains on rounded latents (straight-through gradients) while the rate sees the noisy ones
    # ("mixed" quantization): at coarse steps uniform noise is far from what rounding does to a latent
    rounded_decoder_input: bool = False
    # variable-rate models: each batch's loss is divided by its (detached) MSE, so the weights the rungs share
    # follow d(log MSE) + lambda * dR / MSE: every rung counts the same in dB. Unbalanced, the coarse rungs, whose
    # errors are 10-20x larger, train the shared decoder almost alone and cap the fine rungs. Each rung's own
    # trade-off (its steps, gains) is unchanged: both of its terms are scaled alike.
    balance_rungs: bool = False
    # variable-rate models with Laplace rate models: every other batch trains at a point between two rungs (steps,
    # gains, lambda and rate model interpolated as the quality knob does), so qualities between rungs work as well
    train_between_rungs: bool = False
    # variable-rate models: every this many steps, measure per rung and channel how many bits the file coder
    # (wavecodec.interlaced) spends against the rate estimate, on the validation crops, and scale each channel's
    # estimated bits by that (wavecodec.training.calibration); 0 = off
    calibrate_rate_every: int = 0
    noise_free_mse: bool = False  # noise-fill decoders: the MSE term sees the decode without its noise, so only the spectral losses train the noise
    noise_level_start: float = 0.0  # > 0: a noise-fill decoder (with init_weights) starts every subband's noise at this level (unit range)
    # initialisation
    init_weights: str = ""  # start from these weights (shipped name or checkpoint path; same architecture) instead of PCA
    pca_init: bool = True
    pca_batches: int = 8
    latent_scale: float = 0.25
    pca_split_hz: float = 0.0  # audio: > 0 gives the PCA start pca_low_channels components below this frequency and one per log-spaced band above
    pca_low_channels: int = 0
    # variable-rate models started from PCA: each rung's steps start equal in the subbands for every channel,
    # at the step its lambda asks for at high rate (wavecodec.fitting.uniform_ladder_steps), not equal in the latents
    pca_steps: bool = False
    # optimisation
    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 50
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema: float = 0.0  # EMA decay of the weights (0 = off)
    amp: str = "none"  # none | bf16 | fp16 (GPU only)
    device: str = "auto"
    seed: int = 0
    # bookkeeping
    log_every: int = 10
    val_every: int = 200
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.codec, dict):
            self.codec = CodecConfig.from_dict(self.codec)
        checks = [
            (self.steps >= 0, "steps must be >= 0"),
            (not self.train_between_rungs or self.codec.rate_model == "laplace",
             "train_between_rungs needs a variable-rate codec with rate_model = 'laplace' (tables do not interpolate)"),
            (not self.pca_steps or (self.pca_init and self.codec.rate_lambdas),
             "pca_steps needs pca_init and a variable-rate codec (codec.rate_lambdas)"),
            (self.calibrate_rate_every >= 0 and (not self.calibrate_rate_every or self.codec.rate_lambdas),
             "calibrate_rate_every needs a variable-rate codec (codec.rate_lambdas) and must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.crop >= 1, "crop must be >= 1"),
            (self.downscale >= 1, "downscale must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.lmbda >= 0, "lmbda must be >= 0"),
            (self.stft_weight >= 0 and self.mel_weight >= 0, "stft_weight and mel_weight must be >= 0"),
            (not (self.stft_weight or self.mel_weight) or self.codec.modality == "audio",
             "stft_weight and mel_weight are audio losses; use them with an audio codec"),
            (self.noise_level_start >= 0 and (not self.noise_level_start or (self.codec.noise_fill and self.init_weights)),
             "noise_level_start needs a noise-fill codec (noise_fill = true) started from init_weights, and must be >= 0"),
            (not self.noise_free_mse or (self.codec.noise_fill and (self.stft_weight or self.mel_weight)),
             "noise_free_mse needs a noise-fill codec (noise_fill = true) and a spectral loss (stft_weight or mel_weight)"),
            (self.ms_ssim_weight >= 0 and (not self.ms_ssim_weight or self.codec.ndim == 2),
             "ms_ssim_weight is an image loss (>= 0); use it with an image codec"),
            (self.ssimulacra2_weight >= 0 and (not self.ssimulacra2_weight or (self.codec.ndim == 2 and self.codec.channels == 3)),
             "ssimulacra2_weight is an RGB image loss (>= 0); use it with a 3-channel image codec"),
            (self.train_only in ("", "decoder") and (not self.train_only or self.init_weights),
             "train_only must be '' or 'decoder', and 'decoder' needs init_weights (a trained model whose decoder to tune)"),
            (self.pca_split_hz >= 0 and (not self.pca_split_hz or (self.codec.modality == "audio" and 0 < self.pca_low_channels < self.codec.latent_dim)),
             "pca_split_hz needs an audio codec and 0 < pca_low_channels < codec.latent_dim"),
            (0 <= self.ema < 1, "ema must be in [0, 1)"),
            (self.amp in ("none", "bf16", "fp16"), "amp must be none, bf16 or fp16"),
            (self.checkpoint_every >= 1 and self.log_every >= 1 and self.val_every >= 1, "intervals must be >= 1"),
            (self.workers >= 0, "workers must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (the codec config nested)."""
        d = dataclasses.asdict(self)
        d["codec"] = self.codec.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """A config from a dict; :class:`ConfigError` for unknown or invalid fields."""
        return build_dataclass(cls, data, "training config")

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> "TrainConfig":
        """Read a TOML or JSON file (or start from defaults if ``path`` is empty), then apply ``key=value`` overrides."""
        data: dict[str, Any] = {}
        if path:
            p = Path(path)
            try:
                text = p.read_text()
            except OSError:
                raise ConfigError(f"cannot read the config file {p}") from None
            try:
                data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
            except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from None
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``a.b=value`` in a nested dict; the value is parsed as JSON when it can be."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"an override must look like key=value, got {item!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"cannot set {key}: {part} is not a section")
    target[parts[-1]] = value

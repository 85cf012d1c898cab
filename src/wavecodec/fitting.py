"""Closed-form fitting: PCA initialisation of the linear codec and histogram entropy tables.

PCA of the wavelet coefficients gives the optimal linear codec for MSE: the encoder
projects onto the top ``latent_dim`` principal components, each scaled to unit variance
(so that the Gaussian-CDF companding spreads it over the whole integer range), and the
decoder's linear path maps back. Training then only refines this starting point.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from .errors import ConfigError
from .model import Codec


@torch.no_grad()
def subband_moments(codec: Codec, batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean and covariance (float64) of the wavelet coefficients of ``batches``."""
    total = None
    outer = None
    count = 0
    for x in batches:
        X = codec.wpt(codec.pad(codec.to_unit(x)))
        flat = X.transpose(0, 1).reshape(X.shape[1], -1).double()
        s, o = flat.sum(1), flat @ flat.T
        total = s if total is None else total + s
        outer = o if outer is None else outer + o
        count += flat.shape[1]
    if count == 0:
        raise ValueError("no data to fit on")
    mean = total / count
    cov = outer / count - torch.outer(mean, mean)
    return mean, cov, count


_VARIANCE_FLOOR = 1e-12  # the least variance a component is taken to have


@torch.no_grad()
def pca_init(codec: Codec, batches: Iterable[torch.Tensor], latent_scale: float = 0.25,
             split_hz: float = 0.0, low_channels: int = 0) -> dict[str, float]:
    """Set encoder and decoder linear path to the PCA codec; return the explained-variance share.

    Each component is scaled to standard deviation ``latent_scale`` before companding.
    Below 1, the heavy tails of wavelet coefficients are clipped less and the integer
    histogram gets peakier (fewer bits); 0.25 gave the best PSNR on the dev photos for
    J=3 RGB codecs with 12 and 48 channels (sweep of 1, 0.5, 0.25, 0.125).

    With ``split_hz`` (1-D codecs), only ``low_channels`` principal components come from the
    subbands below ``split_hz``; each further channel is the first principal component of one
    log-spaced band above it. Plain PCA spends every channel where the energy is (the bass of
    music) and leaves the high bands empty, which listeners hear at once; one channel per band
    keeps each band's temporal envelope for a little SNR. The decoder starts at the least-squares
    reconstruction from these (no longer orthogonal) components.

    Raises:
        ConfigError: a split for a codec that is not 1-D, or more bands than subbands above it.
    """
    mean, cov, _ = subband_moments(codec, batches)
    k = codec.config.latent_dim
    if split_hz > 0:
        components = _band_split_components(cov, subband_frequencies(codec), split_hz, low_channels, k)
    else:
        components = _principal(cov, torch.arange(cov.shape[0]), k)
    # least-squares decoder: cov E^T (E cov E^T)^-1 (for orthogonal PCA components, just E^T); the floor keeps
    # components without variance (data of lower rank than latent_dim) from blowing the weights up
    gram = components @ cov @ components.T
    floor = _VARIANCE_FLOOR * torch.eye(k, dtype=gram.dtype)
    decode = torch.linalg.solve(gram + floor, components @ cov).T  # (D, k)
    std = gram.diagonal().clamp_min(_VARIANCE_FLOOR).sqrt()
    enc_w = components / std[:, None] * latent_scale  # (k, D): components of std latent_scale
    dec_w = decode * std / latent_scale  # (D, k)
    shape_enc = codec.encoder.proj.weight.shape
    shape_dec = codec.decoder.linear.weight.shape
    dtype = codec.encoder.proj.weight.dtype
    codec.encoder.proj.weight.copy_(enc_w.reshape(shape_enc).to(dtype))
    codec.encoder.proj.bias.copy_((-enc_w @ mean).to(dtype))
    codec.decoder.linear.weight.copy_(dec_w.reshape(shape_dec).to(dtype))
    codec.decoder.linear.bias.copy_(mean.to(dtype))
    projection = decode @ components
    explained = torch.trace(projection @ cov @ projection.T) / cov.diagonal().clamp_min(0).sum()
    return {"explained_variance": float(explained)}


@torch.no_grad()
def uniform_ladder_steps(codec: Codec) -> list[float]:
    """Set a variable-rate model's rung steps so every channel is quantized with the same step in the
    subbands; return those steps (one per rung, unit value range).

    For orthogonal components (the PCA start) a uniform quantizer with one step for all of them is
    the high-rate MSE optimum (reverse water-filling: every component that gets bits ends with the same
    error). A channel's step in the subbands is its step in the latents times the length of its column
    in the decoder's linear path (how far the subbands move per unit of latent), and the Gaussian-CDF
    companding has slope ``half_range * sqrt(2 / pi)`` at zero, where the latents mostly are. Each rung's
    step comes from its lambda by the high-rate slope of the rate-distortion curve: with ``K`` channels
    above the step, ``MSE = K step^2 / (12 D)`` and ``bpp = -K log2(step) / block + const`` per position
    (``D`` subbands, ``block`` pixels per position), so ``lambda = -dMSE/dbpp = step^2 block ln 2 / (6 D)``.
    Starting the ladder there, instead of at steps equal in the latents (which quantize strong and weak
    components alike, far from the optimum for PCA's whitened latents), the untrained 64-channel RGB codec
    was already as good as the first storage design after all its training (BD-rate -2.3% on the dev photos;
    docs/benchmarks.md, "What changed: where the ladder starts").
    """
    ladder = codec.rates
    if ladder is None:
        raise ConfigError("uniform ladder steps need a variable-rate codec (codec.rate_lambdas)")
    cfg = codec.config
    gain = codec.decoder.linear.weight.detach().double().reshape(cfg.subbands, cfg.latent_dim).norm(dim=0)
    slope = codec.bottleneck.half_range * math.sqrt(2.0 / math.pi)
    positions = cfg.block ** cfg.ndim  # pixels (samples, voxels) per latent position
    steps = [math.sqrt(lmbda * 6.0 * cfg.subbands / (positions * math.log(2.0))) for lmbda in ladder.lambdas]
    for rung, step in enumerate(steps):
        latent_step = step / gain.clamp_min(1e-12) * slope  # companded units
        ladder.log_steps[rung].copy_(latent_step.log().to(ladder.log_steps.dtype))
    return steps


@torch.no_grad()
def subband_frequencies(codec: Codec) -> torch.Tensor:
    """Centre frequency in Hz of each subband of a 1-D codec: the spectral peak of its synthesis impulse.

    Measured rather than derived, so it holds for whatever order the packet transform puts its
    subbands in.
    """
    if codec.config.ndim != 1:
        raise ConfigError("subband frequencies (and a band split of the PCA start) need a 1-D (audio) codec")
    bands = codec.config.channels * codec.config.block
    frames = 64
    impulses = torch.zeros(bands, bands, frames, dtype=torch.float64)
    impulses[torch.arange(bands), torch.arange(bands), frames // 2] = 1.0
    waves = codec.wpt.inverse(impulses.to(codec.param_dtype)).double()  # (bands, channels, samples)
    strongest = waves.pow(2).sum(2).argmax(1)
    spectra = torch.fft.rfft(waves[torch.arange(bands), strongest]).abs()
    rate = codec.config.sample_rate or 2.0  # without a rate, in cycles per sample times two
    return spectra.argmax(1).double() * rate / waves.shape[-1]


def _band_split_components(cov: torch.Tensor, freqs: torch.Tensor, split_hz: float, low_channels: int,
                           k: int) -> torch.Tensor:
    """``low_channels`` principal components below ``split_hz``, then the first of each of ``k - low_channels``
    log-spaced bands above it (each band at least one subband frequency wide), as ``(k, D)`` unit rows."""
    low = torch.nonzero(freqs < split_hz).flatten()
    above = torch.unique(freqs[freqs >= split_hz])  # sorted distinct frequencies
    bands = k - low_channels
    if not 0 < low_channels <= len(low) or not 0 < bands <= len(above):
        raise ConfigError(f"a split at {split_hz:g} Hz has {len(low)} subbands below and {len(above)} frequencies above; "
                          f"pca_low_channels must be in 1..{len(low)} and leave 1..{len(above)} bands")
    targets = torch.logspace(math.log10(split_hz), math.log10(float(above[-1]) * (1 + 1e-9)), bands + 1, dtype=torch.float64)
    starts = [0]
    for i in range(1, bands):  # each band starts at its log-spaced edge, but at least one frequency after the last
        starts.append(min(max(starts[-1] + 1, int(torch.searchsorted(above, targets[i]))), len(above) - (bands - i)))
    edges = [float(above[s]) for s in starts] + [math.inf]
    rows = [_principal(cov, low, low_channels)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows.append(_principal(cov, torch.nonzero((freqs >= lo) & (freqs < hi)).flatten(), 1))
    return torch.cat(rows)


def _principal(cov: torch.Tensor, index: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` principal components of the subbands ``index``, as ``(count, D)`` rows zero elsewhere."""
    eigvals, eigvecs = torch.linalg.eigh(cov[index][:, index])
    top = eigvecs[:, torch.argsort(eigvals, descending=True)[:count]].T
    rows = torch.zeros(count, cov.shape[0], dtype=cov.dtype)
    rows[:, index] = top
    return rows


STEP_MARGIN = 1.25  # headroom over the fitting crops' largest latent that a channel's symbols keep


def floor_ladder_steps(codec: Codec, batches: Iterable[torch.Tensor]) -> int:
    """Raise the rung steps under which a channel's symbols would leave the ``latent_bits`` range; returns how many.

    Training sees noise, or rounding without the clip, so nothing stops the steps of a channel with large
    latents from shrinking until its symbols at encode outgrow ``max_symbol`` and are clipped, a large error
    (a model tuned with an SSIMULACRA2 term had quality 100 fall below its quality 90 that way). Each step
    becomes at least ``STEP_MARGIN`` times the channel's largest latent on ``batches`` over ``max_symbol``.
    """
    if codec.rates is None:
        return 0
    with torch.no_grad():
        largest = torch.stack([codec.encode(x).abs().amax(dim=[0, *range(2, x.dim())]) for x in batches]).amax(0)
        floor = (STEP_MARGIN * largest / codec.bottleneck.max_symbol).clamp_min(1e-6).log()
        log_steps = codec.rates.log_steps
        raised = int((log_steps < floor).sum())
        log_steps.copy_(torch.maximum(log_steps, floor))
    return raised


@torch.no_grad()
def fit_entropy(codec: Codec, batches: Iterable[torch.Tensor], iid: bool = True, context: bool = True) -> None:
    """Fit the integer tables to the quantized latents of ``batches``: the i.i.d. tables and/or the context model.

    ``batches`` must all have the same spatial size (crops), since the context model is
    fitted on whole latent grids. The codec's training mode is left as it was.
    """
    was_training = codec.training
    codec.eval()
    latents = torch.cat([codec.encode(x) for x in batches])
    q = codec.quantize(latents)
    if iid:
        codec.entropy.fit(q)
        if codec.rates is not None:  # a variable-rate model: each rung's rate model, on the latents at its steps
            for rung, entropy in enumerate(codec.rates.entropy):
                entropy.fit(codec.quantize(latents, codec.rates.rung_steps(rung).detach()))
    if context:
        codec.context.fit(q)
    codec.train(was_training)

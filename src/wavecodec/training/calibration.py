"""Calibrating a ladder's rate estimate to the coder that really codes.

A rung's :class:`~wavecodec.entropy.LaplaceRate` charges each latent channel the bits of its marginal
distribution. The files' coder (:mod:`wavecodec.interlaced`) predicts every symbol from its decoded
neighbours, and that helps some channels far more than others: on ``rgb-storage``'s latents of training
crops it codes the three lowpass channels in 0.3-0.6 of their estimated bits and the detail channels in
about 0.75 (``experiments/rate_calibration.py``). Training on the estimate alone prices smooth channels
too high against the others.

:func:`rate_calibration` measures, per rung and channel, the ratio of the coder's bits to the estimate's on a
fixed batch, relative to the rung's overall ratio; the loop multiplies each channel's estimated bits by it
(``TrainConfig.calibrate_rate_every``), so the rate term prices the channels as the coder does.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import interlaced
from ..bottleneck import per_channel
from ..model import Codec

#: ratios are kept within these bounds, and a channel the estimate charges fewer bits than ``MIN_BITS`` keeps 1:
#: a few symbols are no measurement
LOW, HIGH, MIN_BITS = 0.1, 4.0, 64.0


@torch.no_grad()
def channel_rates(codec: Codec, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per rung and latent channel ``(L, C)`` (float64): the bits the rung's Laplace estimate charges the quantized
    latents of ``batch``, and the bits the file coder spends on them (:func:`wavecodec.interlaced.channel_bits`)."""
    if codec.rates is None:
        raise ValueError("rate calibration needs a variable-rate (ladder) model")
    was_training = codec.training
    codec.eval()
    try:
        latents = codec.encode(batch)
        estimate = torch.zeros(codec.rates.rungs, latents.shape[1], dtype=torch.float64)
        coded = torch.zeros_like(estimate)
        for rung in range(codec.rates.rungs):
            q = codec.quantize(latents, per_channel(codec.rates.rung_steps(rung), latents))
            estimate[rung] = codec.rates.entropy[rung].bits_integer(q.to(torch.int32)).transpose(0, 1).reshape(q.shape[1], -1).sum(1).cpu()
            coded[rung] = torch.from_numpy(interlaced.channel_bits(q.cpu().numpy().astype(np.int32), codec.bottleneck.max_symbol))
    finally:
        codec.train(was_training)
    return estimate, coded


def rate_calibration(codec: Codec, batch: torch.Tensor) -> torch.Tensor:
    """Per rung and latent channel ``(L, C)``: the file coder's bits over the rung's Laplace estimate, on ``batch``,
    relative to the same ratio over all the rung's channels.

    Relative, so that a rung's total estimate (and with it what its lambda buys, the quality knob's scale) stays
    as it was and only the split between channels moves.
    """
    estimate, coded = channel_rates(codec, batch)
    ratios = torch.ones_like(estimate)
    for rung in range(estimate.shape[0]):
        measured = estimate[rung] >= MIN_BITS
        overall = (coded[rung, measured].sum() / estimate[rung, measured].sum().clamp_min(1.0)).clamp_min(1e-3)
        ratios[rung, measured] = (coded[rung, measured] / estimate[rung, measured] / overall).clamp(LOW, HIGH)
    return ratios.float()

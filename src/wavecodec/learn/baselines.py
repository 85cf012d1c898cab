"""Pixel-domain baselines matched to a latent input: same token count, similar parameters.

The paper's comparison: a model reading 16x-reduced latents against the same model reading
pixels downsampled to the same number of values. Here a latent grid ``(C, h, w)`` is matched
by a square pixel image of side ``s`` with ``pixel_channels * s^2 == C * h * w`` values, cut
into ``(s/h) x (s/w)`` patches so both inputs give ``h * w`` tokens of the same width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError
from .heads import Classifier


@dataclass(frozen=True)
class MatchedInput:
    """A pixel input matched to a latent grid: image side, patch size and token count."""

    side: int
    patch: int
    tokens: int
    values: int


def tokens(shape: tuple[int, ...], patch: int) -> int:
    """Tokens a patch embedding makes from a ``(C, H, W)`` input."""
    _, h, w = shape
    if h % patch or w % patch:
        raise InputError(f"a {h}x{w} input cannot be cut into {patch}x{patch} patches")
    return (h // patch) * (w // patch)


def matched_pixels(latent_shape: tuple[int, int, int], pixel_channels: int) -> MatchedInput:
    """The square pixel input with as many values and as many tokens as ``latent_shape``."""
    c, h, w = latent_shape
    if h != w:
        raise InputError("matched pixel baselines need a square latent grid")
    side = math.isqrt(c * h * w // pixel_channels)
    if pixel_channels * side * side != c * h * w or side % h:
        raise InputError(f"no square {pixel_channels}-channel image has as many values as {c}x{h}x{w} latents in whole patches")
    return MatchedInput(side=side, patch=side // h, tokens=h * w, values=c * h * w)


def matched_samples(latent_shape: tuple[int, int], signal_channels: int, latent_patch: int = 1) -> MatchedInput:
    """The resampled 1-D signal matched to ``(C, T)`` latents read in patches of ``latent_patch`` frames.

    Both inputs give ``T / latent_patch`` tokens; the signal's patch holds ``C * latent_patch /
    signal_channels`` samples per channel, rounded up to a whole number (an inexact match gives
    the baseline the extra values, never the latents). ``side`` is the signal's length.
    """
    c, t = latent_shape
    if t % latent_patch:
        raise InputError(f"{t} latent frames cannot be cut into patches of {latent_patch}")
    patch = max(1, math.ceil(c * latent_patch / signal_channels))
    return MatchedInput(side=t // latent_patch * patch, patch=patch, tokens=t // latent_patch,
                        values=signal_channels * t // latent_patch * patch)


def downsample(images: torch.Tensor, side: int) -> torch.Tensor:
    """Area-average ``(B, C, H, W)`` images to ``side x side`` (unit range float out)."""
    x = images.float() / 255 if not images.is_floating_point() else images
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="area")


def classifier_pair(latent_shape: tuple[int, int, int], pixel_channels: int, num_classes: int,
                    **head: object) -> tuple[Classifier, Classifier, MatchedInput]:
    """A latent classifier and its pixel baseline: same body, same token count, stems of equal fan-in."""
    matched = matched_pixels(latent_shape, pixel_channels)
    latent = Classifier(latent_shape[0], num_classes, patch=1, **head)
    pixels = Classifier(pixel_channels, num_classes, patch=matched.patch, **head)
    return latent, pixels, matched

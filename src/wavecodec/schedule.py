"""The learning-rate schedule shared by codec training and the learning heads."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.0) -> float:
    """Factor on the base learning rate at ``step`` of ``total``: linear warm-up, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

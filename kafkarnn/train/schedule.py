"""The learning-rate schedule: a function of the configuration and the iteration alone, so that a
resumed run goes on exactly where it stopped."""

from __future__ import annotations

import math

from kafkarnn.train.config import Config


def learning_rate(c: Config, it: int) -> float:
    """1) linear warmup, 2) lr until decay_start (if later), 3) cosine decay from lr to
    lr_min, 4) lr_min after that."""
    if c.warmup_iters and it < c.warmup_iters:
        return c.lr * (it + 1) / c.warmup_iters
    if c.decay_iters:
        frac = min(1.0, max(0, it - max(c.warmup_iters, c.decay_start)) / c.decay_iters)
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1.0 + math.cos(math.pi * frac))
    return c.lr

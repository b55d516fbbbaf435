"""Gradient clipping as the trainer does it (`clip`), and as seen from outside: the norms before
clipping and how often it acted (what the Inside screen shows), over the steps one process takes."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from kafkarnn.engine.optim import clip_elementwise, clip_global_norm


@dataclass(frozen=True)
class ClipStats:
    """Gradient norms and clipping over the steps this process has taken (skipped steps aside)."""
    steps: int                      # steps counted
    clipped: int                    # of them, steps where clipping changed the gradient
    norm: float                     # the last step's global norm before clipping (NaN: no step yet)
    recent: tuple[float, ...]       # the last RECENT_NORMS norms before clipping, oldest first

    @property
    def clipped_share(self) -> float:
        return self.clipped / self.steps if self.steps else 0.0


RECENT_NORMS = 256


class Clipping:
    """The counters behind ClipStats, updated by every step."""

    def __init__(self):
        self.steps, self.clipped, self.norms = 0, 0, deque(maxlen=RECENT_NORMS)

    def add(self, norm: float, acted: bool) -> None:
        self.steps += 1
        self.clipped += acted
        self.norms.append(norm)

    def stats(self) -> ClipStats:
        return ClipStats(self.steps, self.clipped, self.norms[-1] if self.norms else math.nan,
                         tuple(self.norms))


def clip(g: np.ndarray, limit: float, max_norm: float, counters: Clipping) -> None:
    """Clip the gradients as configured (each entry to ±limit, then the global norm to max_norm;
    0 turns either off), noting in `counters` their global norm before and whether any clipping
    acted (what the Inside screen shows)."""
    norm, acted = None, False
    if limit:
        sq = float(np.dot(g, g))
        norm = math.sqrt(sq)
        clip_elementwise(g, limit)
        # no entry exceeds the norm: below the limit nothing was cut; above, a smaller sum tells
        acted = norm > limit and float(np.dot(g, g)) < sq
    if max_norm:
        before = clip_global_norm(g, max_norm)         # after the elementwise clip, if any
        norm = before if norm is None else norm
        acted = acted or before > max_norm
    if norm is None:
        norm = math.sqrt(float(np.dot(g, g)))
    counters.add(norm, acted)

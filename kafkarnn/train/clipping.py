"""Gradient clipping as seen from outside: the norms before clipping and how often it acted
(what the Inside screen shows), counted over the steps one process takes."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


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

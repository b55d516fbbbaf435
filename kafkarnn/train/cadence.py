"""When a session stops and how often it does what: this invocation's `Limits`, the `Cadence`
of its periodic pieces, and the `Timers` that say when one is due. All in seconds of training
(never of wall clock), so a paused session owes nothing when it resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Limits:
    """Where this invocation stops: at an iteration of the run, or after seconds of its own training."""
    max_iters: int | None = None
    max_seconds: float | None = None

    def reached(self, iteration: int, session_s: float) -> bool:
        return bool((self.max_iters is not None and iteration >= self.max_iters) or
                    (self.max_seconds is not None and session_s >= self.max_seconds))

    def eta_s(self, iteration: int, session_s: float, iters_per_sec: float) -> float | None:
        """Seconds of training left until the nearer limit, at this pace (None: no limit)."""
        eta = None
        if self.max_iters and iters_per_sec > 0:
            eta = max(0, self.max_iters - iteration) / iters_per_sec
        if self.max_seconds:
            left = max(0.0, self.max_seconds - session_s)
            eta = left if eta is None else min(eta, left)
        return eta


@dataclass(frozen=True)
class Cadence:
    """How often, in seconds of training, the loop does each periodic piece (None: never)."""
    eval_every: float | None = 30.0       # a validation pass (and best.npz, and a logged sample)
    save_every: float | None = 60.0       # the checkpoint
    sample_every: float | None = None     # the live sample (the monitor shows it)
    metrics_every: float = 2.0            # a metrics line, and a point of the loss curve
    report_every: float | None = None     # a progress line to `log` (headless)
    sample_len: int = 200                 # characters of a live or logged sample


class Timers:
    """When each periodic piece last ran, in seconds of the session's training."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock                # seconds of training so far
        self.last = {"metrics": 0.0, "eval": 0.0, "save": 0.0, "sample": -1e9, "report": 0.0,
                     "publish": 0.0}

    def due(self, name: str, every: float | None) -> bool:
        """True (and restart the timer) when `every` seconds of training passed since `name` ran."""
        now = self.clock()
        if every is None or now - self.last[name] < every:
            return False
        self.last[name] = now
        return True

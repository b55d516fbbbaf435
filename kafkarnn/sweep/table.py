"""What a sweep's trials reached: one row per trial, read from its run's metrics.jsonl, and an
estimate of the time left. Read-only, for the live view and the comparison at the end."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kafkarnn.runs.folder import Run
from kafkarnn.sweep.folder import SweepFolder, TrialStatus
from kafkarnn.sweep.plan import Trial


@dataclass(frozen=True)
class Row:
    trial: Trial
    status: TrialStatus
    iteration: int = 0
    loss: float | None = None
    best_val: float | None = None
    chars_per_sec: float | None = None    # characters over seconds of training, the whole run
    train_s: float = 0.0
    error: str | None = None

    @property
    def done_share(self) -> float:
        """How much of its limit the trial has trained, 0…1."""
        t = self.trial
        shares = [self.iteration / t.max_iters if t.max_iters else 0.0,
                  self.train_s / t.max_seconds if t.max_seconds else 0.0]
        return 1.0 if self.status == TrialStatus.DONE else min(1.0, max(shares))


def _number(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def row_of(trial: Trial, record: dict, data_dir) -> Row:
    try:
        status = TrialStatus(record.get("status"))
    except ValueError:
        status = TrialStatus.WAITING
    last, best = {}, None
    for rec in Run(data_dir, trial.run).read_metrics():
        if isinstance(rec.get("iter"), int):
            last = rec
        v = _number(rec.get("val_loss"))
        if v is not None and (best is None or v < best):
            best = v
    train_s, chars = _number(last.get("elapsed_s")) or 0.0, _number(last.get("chars")) or 0.0
    return Row(trial, status, last.get("iter", 0), _number(last.get("loss")), best,
               chars / train_s if train_s > 0 else None, train_s, record.get("error"))


def rows(folder: SweepFolder) -> tuple[list[Row], dict]:
    """Every trial's row, in the plan's order, and the coordinator's state."""
    state = folder.read_state()
    trials = folder.read_plan().trials()
    return [row_of(t, state["trials"].get(t.run) or {}, folder.data_dir) for t in trials], state


def seconds_left(rows: list[Row], slots: int) -> float | None:
    """Training time still to go, shared over the slots: a running trial's own rate, and for
    a waiting one the time of the trials that finished (or its budget). None: nothing to go on."""
    def total(r: Row) -> float | None:
        t = r.trial
        if t.max_seconds and not t.max_iters:
            return t.max_seconds
        if r.iteration > 0 and r.train_s > 0:
            estimate = t.max_iters * r.train_s / r.iteration
            return min(estimate, t.max_seconds) if t.max_seconds else estimate
        return None
    known = [x for r in rows if r.status in (TrialStatus.DONE, TrialStatus.RUNNING) and (x := total(r))]
    typical = sum(known) / len(known) if known else None
    left = 0.0
    for r in rows:
        if r.status in (TrialStatus.DONE, TrialStatus.FAILED, TrialStatus.STOPPED):
            continue
        whole = total(r) or typical
        if whole is None:
            return None
        left += max(0.0, whole * (1.0 - r.done_share))
    return left / max(1, min(slots, sum(r.status != TrialStatus.DONE for r in rows) or 1))


def counts(rows: list[Row]) -> dict[TrialStatus, int]:
    out: dict[TrialStatus, int] = {}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return out

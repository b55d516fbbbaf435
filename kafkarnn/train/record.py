"""What a session writes into its run folder, as functions of the trainer: a checkpoint (never
one that holds NaN or inf) and a metrics line. The session decides when, and tells the UI.
"""

from __future__ import annotations

import time

import numpy as np

from kafkarnn.runs.checkpoint import save_checkpoint
from kafkarnn.train.trainer import Trainer


def write_checkpoint(trainer: Trainer, path, run_meta: dict, *, elapsed_s: float,
                     best_val_loss: float | None) -> str:
    """Save the trainer's state to `path` (checkpoint.npz or best.npz): "" once it is on disk,
    else why not, with the file on disk as it was."""
    meta = dict(run_meta, **trainer.state_meta(), elapsed_s=elapsed_s,
                best_val_loss=best_val_loss, saved_at=time.time())
    arrays = trainer.state_arrays()
    bad = [k for k, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
    if bad:
        return f"{bad[0]} holds NaN or inf"          # never let a NaN reach a checkpoint
    try:
        save_checkpoint(path, arrays, meta)
    except OSError as e:
        return str(e.strerror or e)
    return ""


def metrics_line(trainer: Trainer, *, chars_per_sec: float, elapsed_s: float,
                 threads: int | None, val: float | None) -> dict:
    """One line of metrics.jsonl: where training stands now."""
    t = trainer
    rec = {"iter": t.iteration, "chars": t.chars, "loss": round(t.smooth_loss, 6),
           "chars_per_sec": round(chars_per_sec, 1), "elapsed_s": round(elapsed_s, 3),
           "lr": t.lr_at(t.iteration), "time": round(time.time(), 3)}
    if threads is not None:
        rec["threads"] = threads
    if t.cfg.dropout_ramp:                                          # rising, then the run's
        rec["dropout"], rec["weight_drop"] = (round(r, 5) for r in t.dropout_at(t.iteration))
    if t.teacher is not None and t.cfg.teacher_rise:                # the weight of the table
        rec["teacher"] = round(t.teacher_at(t.iteration), 5)
    if val is not None:
        rec["val_loss"] = round(val, 6)
        rec["weights"] = t.weights_name()      # which weights that loss describes
    return rec

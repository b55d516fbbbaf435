"""How a session's progress reads as text: durations, and the headless progress line."""

from __future__ import annotations

import math

from kafkarnn.seam import Snapshot


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress_line(s: Snapshot) -> str:
    """One headless progress line: no carriage returns, readable in a log file."""
    val = f"{s.val_loss:.4f}" if s.val_loss is not None else "-"
    best = f"{s.best_val_loss:.4f}" if s.best_val_loss is not None else "-"
    eta = f"  eta {format_duration(s.eta_s)}" if s.eta_s is not None else ""
    threads = f"  {s.threads} threads" if s.threads is not None else ""
    lr = f"  lr {s.lr:.2e}" if s.lr is not None else ""
    weights = f" of {s.weights}" if s.weights not in ("", "as trained") else ""
    return (f"iter {s.iteration:>8,}  loss {s.loss:.4f}  val{weights} {val} (best {best}){lr}  "
            f"{s.chars_per_sec:,.0f} chars/s  {s.iters_per_sec:.1f} it/s{threads}  "
            f"elapsed {format_duration(s.elapsed_s)}{eta}")

"""How a session's progress reads: as a `Snapshot` for a UI, as the headless progress line, and
durations."""

from __future__ import annotations

import math

from kafkarnn.seam import Snapshot
from kafkarnn.train.config import teacher_label


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
    if s.dropout is not None:
        lr += f"  {s.dropout[0]} {s.dropout[1]:.3f}→{s.dropout[2]:g}"
    if s.teacher is not None:
        lr += f"  teacher {s.teacher[0]:.3f}→{s.teacher[1]:g}"
    weights = f" of {s.weights}" if s.weights not in ("", "as trained") else ""
    return (f"iter {s.iteration:>8,}  loss {s.loss:.4f}  val{weights} {val} (best {best}){lr}  "
            f"{s.chars_per_sec:,.0f} chars/s  {s.iters_per_sec:.1f} it/s{threads}  "
            f"elapsed {format_duration(s.elapsed_s)}{eta}")


def rising_teacher(t) -> tuple[float, float] | None:
    """(the next step's teacher α, its last) while it is still to rise (--teacher-rise), else None."""
    if t.teacher is None or not t.cfg.teacher_rise:
        return None
    now, last = t.teacher_at(t.iteration), t.cfg.teacher_peak
    return (now, last) if now < last else None


def snapshot_of(session) -> Snapshot:
    """The session (a train.session.Session) as it is now, frozen (the loop calls it between steps)."""
    s, t, (ips, cps) = session, session.trainer, session.rate
    return Snapshot(
        state=s.state, run_name=s.run_dir.name, corpus=s.corpus,
        model=t.cfg.describe() + teacher_label(t.cfg.teacher, t.cfg.teacher_rise),
        n_params=t.model.n_params(), data_dir=s.data_dir,
        iteration=t.iteration, chars=t.chars, elapsed_s=s.elapsed_base + s.session_s,
        session_s=s.session_s, iters_per_sec=ips, chars_per_sec=cps, loss=t.smooth_loss,
        val_loss=s.val_loss, best_val_loss=s.best_val_loss, history=tuple(s.history),
        eta_s=s.limits.eta_s(t.iteration, s.session_s, ips), last_saved=s.last_saved,
        sample=s.sample, sample_probs=s.sample_probs, sample_id=s.sample_id,
        temperature=s.temperature, message=s.message, max_iters=s.limits.max_iters,
        max_seconds=s.limits.max_seconds, save_error=s.save_error, handed_to=s.handed_to,
        history_iters=tuple(s.history_iters), val_history=tuple(s.val_history),
        threads=s.tuner.threads if s.tuner else None, threads_auto=bool(s.tuner and s.tuner.auto),
        ngram_order=(s.ngram.known or (None, None))[0], ngram_loss=(s.ngram.known or (None, None))[1],
        lr=t.lr_at(t.iteration), dropout=t.rising_dropout(), teacher=rising_teacher(t),
        weights=t.weights_name(),
        sample_copied=s.sample_copied)

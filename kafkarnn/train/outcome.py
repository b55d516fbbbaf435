"""How a training session ends, in one line and an exit code: the same for every front end.

Headless, background and monitor sessions all end here, so the rule "never end with unsaved
progress silently" is written once: a session that failed, or whose last save did not reach
the disk, ends with `kafkarnn: error: …` and exit code 2; every other ending says where the run
stands and how to go on.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafkarnn.seam import Snapshot, State


@dataclass(frozen=True)
class Outcome:
    code: int            # the process's exit status
    line: str            # what to print on stderr (or log)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def end_of_session(snap: Snapshot, started: float, *, signal_name: str | None = None,
                   taken_by: int | None = None, stopped_by: int | None = None, paused: bool = False,
                   log_path: str | None = None, hint: bool = True) -> Outcome:
    """The session's ending.

    started: unix time the session began (a save older than that is not this session's);
    signal_name: the signal that ended it, if any; taken_by: the process that took the run
    over; stopped_by: the `kafkarnn stop` that asked it to end; paused: it was asked to hand over while paused; log_path: where a background
    trainer it handed over to writes; hint: add how to continue (not in a background's log).
    """
    run, it = snap.run_name, f"{snap.iteration:,}"
    if snap.state == State.FAILED:
        return Outcome(2, f"kafkarnn: error: {_one_line(snap.message)}")
    why = snap.save_error
    if not why and (snap.last_saved is None or snap.last_saved < started):
        why = f"no checkpoint was written at iteration {it}"
    if why:
        return Outcome(2, f"kafkarnn: error: run {run}: {_one_line(why)}; the previous checkpoint "
                          "is intact and the progress since it is lost")
    if snap.handed_to is not None:
        log = f", log {log_path}" if log_path else ""
        return Outcome(0, f"kafkarnn: run {run} goes on training in the background (process "
                          f"{snap.handed_to}{log}) — `kafkarnn attach --run {run}` comes back "
                          f"to it, `kafkarnn stop --run {run}` ends it")
    if taken_by is not None:
        return Outcome(0, f"kafkarnn: run {run} was taken over by process {taken_by} "
                          f"(saved at iteration {it})")
    if stopped_by is not None:
        return Outcome(0, f"kafkarnn: run {run} stopped by `kafkarnn stop` (process {stopped_by}), "
                          f"saved at iteration {it}")
    go_on = " — run the same command to continue" if hint else ""
    if paused:
        return Outcome(0, f"kafkarnn: run {run} is paused: saved at iteration {it} and not "
                          f"handed on{go_on}")
    if snap.state == State.FINISHED:
        return Outcome(0, f"kafkarnn: finished run {run} at iteration {it} ({snap.message}), saved")
    by = f"{signal_name}: " if signal_name else ""
    return Outcome(0, f"kafkarnn: {by}saved run {run} at iteration {it}{go_on}")

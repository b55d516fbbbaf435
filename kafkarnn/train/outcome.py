"""How a training session ends, in one line and an exit code: the same for every front end.

Headless, background and monitor sessions all end here, so the rule "never end with unsaved
progress silently" is written once: `ending_of()` decides the `Ending` (seam.py) from the last
snapshot, and `end_of_session()` words it. A session that failed, or whose last save did not
reach the disk, ends with `kafkarnn: error: …` and exit code 2 (`Ending.code`); every other
ending says where the run stands and how to go on.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafkarnn.seam import Ending, Snapshot, State, StopSignal


@dataclass(frozen=True)
class Outcome:
    ending: Ending
    line: str            # what to print on stderr (or log)

    @property
    def code(self) -> int:
        """The process's exit status."""
        return self.ending.code


def _one_line(text: str) -> str:
    return " ".join(text.split())


def ending_of(snap: Snapshot, started: float, *, taken_by: int | None = None,
              stopped_by: int | None = None, paused: bool = False) -> Ending:
    """The session's ending, most serious first: a failure, then progress not on disk."""
    if snap.state == State.FAILED:
        return Ending.FAILED
    if snap.save_error or snap.last_saved is None or snap.last_saved < started:
        return Ending.UNSAVED
    if snap.handed_to is not None:
        return Ending.HANDED_OVER
    if taken_by is not None:
        return Ending.TAKEN_OVER
    if stopped_by is not None:
        return Ending.STOPPED
    if paused:
        return Ending.PAUSED
    return Ending.FINISHED if snap.state == State.FINISHED else Ending.SAVED


def end_of_session(snap: Snapshot, started: float, *, signal: StopSignal | None = None,
                   taken_by: int | None = None, stopped_by: int | None = None, paused: bool = False,
                   log_path: str | None = None, hint: bool = True) -> Outcome:
    """The session's ending and its line.

    started: unix time the session began (a save older than that is not this session's);
    signal: the signal that ended it, if any; taken_by: the process that took the run over;
    stopped_by: the `kafkarnn stop` that asked it to end; paused: it was asked to hand over
    while paused; log_path: where a background trainer it handed over to writes; hint: add how
    to continue (not in a background's log).
    """
    ending = ending_of(snap, started, taken_by=taken_by, stopped_by=stopped_by, paused=paused)
    run, it = snap.run_name, f"{snap.iteration:,}"
    go_on = " — run the same command to continue" if hint else ""
    if ending == Ending.FAILED:
        line = f"kafkarnn: error: {_one_line(snap.message)}"
    elif ending == Ending.UNSAVED:
        why = snap.save_error or f"no checkpoint was written at iteration {it}"
        line = (f"kafkarnn: error: run {run}: {_one_line(why)}; the previous checkpoint "
                "is intact and the progress since it is lost")
    elif ending == Ending.HANDED_OVER:
        log = f", log {log_path}" if log_path else ""
        line = (f"kafkarnn: run {run} goes on training in the background (process "
                f"{snap.handed_to}{log}) — `kafkarnn attach --run {run}` comes back "
                f"to it, `kafkarnn stop --run {run}` ends it")
    elif ending == Ending.TAKEN_OVER:
        line = f"kafkarnn: run {run} was taken over by process {taken_by} (saved at iteration {it})"
    elif ending == Ending.STOPPED:
        line = (f"kafkarnn: run {run} stopped by `kafkarnn stop` (process {stopped_by}), "
                f"saved at iteration {it}")
    elif ending == Ending.PAUSED:
        line = f"kafkarnn: run {run} is paused: saved at iteration {it} and not handed on{go_on}"
    elif ending == Ending.FINISHED:
        line = f"kafkarnn: finished run {run} at iteration {it} ({snap.message}), saved"
    else:
        by = f"{signal}: " if signal else ""
        line = f"kafkarnn: {by}saved run {run} at iteration {it}{go_on}"
    return Outcome(ending, line)


def hand_over_failed(snap: Snapshot, log_tail: str) -> Outcome:
    """The background trainer a session handed over to ended before it took the run."""
    return Outcome(Ending.HAND_OVER_FAILED,
                   f"kafkarnn: error: the background trainer of {snap.run_name} ended at once "
                   f"({log_tail}); the run is saved at iteration {snap.iteration:,} — run the "
                   "same command to continue")


def not_started(run_name: str, signal: StopSignal) -> Outcome:
    """A signal came while the run was being opened: nothing was trained or written."""
    return Outcome(Ending.NOT_STARTED,
                   f"kafkarnn: {signal} before training started; run {run_name} is as it was")

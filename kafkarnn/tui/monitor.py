"""Running the monitor for one `kafkarnn train` (or `attach`): a thin adapter over the run's
`Life` (train/life.py), which opens the run (taking it over from a background trainer or another
monitor), hands it on and says how it ended; the App in between returns that `Ending`.
"""

from __future__ import annotations

import contextlib
import sys

from kafkarnn.seam import Role
from kafkarnn.train.launch import Launch, TrainOptions, copy_checker
from kafkarnn.train.life import Life
from kafkarnn.train.outcome import Outcome
from kafkarnn.train.cadence import Cadence
from kafkarnn.train.signals import Signals
from kafkarnn.tui.app import MonitorApp


def start_note(launch: Launch) -> str:
    """The first notification: where this session starts."""
    where = (f"resumed {launch.run.name} at iteration {launch.trainer.iteration:,}"
             if launch.resumed else f"new run {launch.run.name}")
    notes = [n for n in (launch.corpus.notice, launch.recovered) if n]
    return " — ".join([where, *notes])


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:                                  # the terminal may be gone (SIGHUP)
        pass


def monitor_app(life: Life, early_signals=()) -> MonitorApp:
    """The App over the opened run's session (the live sample every 3 s; it stays open after a
    limit, for generating and looking inside)."""
    session = life.start_session(Cadence(sample_every=3.0), stay_open=True,
                                 copying=copy_checker(life.launch, life.opts.copy_min))
    if life.launch.resumed:                          # "saved" shows the checkpoint we resumed from
        with contextlib.suppress(OSError):
            session.last_saved = life.run.checkpoint_path.stat().st_mtime
    return MonitorApp(session, note=start_note(life.launch), life=life, early_signals=early_signals)


def watch(life: Life, app: MonitorApp) -> Outcome:
    """Run the App until the run's life has ended; how it ended."""
    try:
        if app.run(mouse=life.opts.mouse) is None:   # it ended some other way: the worker saves
            app.trained.wait(timeout=300)
            return life.end(app.leaving)
    except BaseException:
        life.let_go()
        raise
    return life.outcome


def run_monitor(opts: TrainOptions) -> int:
    """Train `opts` in the monitor until the user leaves; 0, or 2 if training failed or progress
    could not be saved."""
    life = Life(opts, Role.MONITOR, _say)
    with Signals() as early:                     # a take-over may ask while we are starting
        life.open()
        if early.caught:
            outcome = life.not_started(early.first)
        else:
            outcome = watch(life, monitor_app(life, early.caught))
    _say(outcome.line)
    return outcome.code

"""Running the monitor for one `kafkarnn train` (or `attach`): open the run, taking it over from
a background trainer or another monitor; run the App; then hand the run on or say where it
stands, in one line (train.outcome), as every front end ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time

from kafkarnn.runs import handover
from kafkarnn.train.launch import (Launch, TrainOptions, copy_checker, make_session, open_run,
                                   thread_tuner)
from kafkarnn.train.outcome import Outcome, end_of_session
from kafkarnn.seam import Role, State
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


class Monitor:
    """One monitor session over a launched run, and its ending."""

    def __init__(self, opts: TrainOptions, launch: Launch, early_signals: Signals | None = None):
        self.opts, self.launch, self.run = opts, launch, launch.run
        self.session = make_session(opts, launch, sample_every=3.0, stay_open=True,
                                    tuner=thread_tuner(opts),
                                    copying=copy_checker(launch, opts.copy_min))
        self.started = time.time()
        if launch.resumed:                           # "saved" shows the checkpoint we resumed from
            with contextlib.suppress(OSError):
                self.session.last_saved = self.run.checkpoint_path.stat().st_mtime
        self.proc = None                             # the background trainer we handed over to
        self.app = MonitorApp(self.session, note=start_note(launch),
                              start_background=self.start_background, on_hangup=self.after_hangup,
                              early_signals=early_signals)

    def start_background(self) -> int:
        """Start the trainer that goes on (it waits for our lock); its limits are what is left
        of ours."""
        o = self.opts
        left = None if o.max_seconds is None else o.max_seconds - self.session.session_s
        argv = handover.background_argv(self.run, after_pid=os.getpid(), max_iters=o.max_iters,
                                        max_seconds=left, save_every=o.save_every,
                                        eval_every=o.eval_every, threads=o.threads)
        self.proc = handover.start_background(self.run, argv)
        return self.proc.pid

    def ending(self, handed_to: int | None = None) -> Outcome:
        """Let go of the run (to the background trainer, if we handed over) and say how it ended."""
        snap = self.session.snapshot()
        if handed_to is not None:
            snap = dataclasses.replace(snap, handed_to=handed_to)
        note = handover.read_note(self.run) if self.app.signal_name == "SIGTERM" else None
        asker = note["pid"] if note else None
        self.launch.lock.unlock()
        outcome = end_of_session(snap, self.started, signal_name=self.app.signal_name,
                                 taken_by=asker if note and note["action"] == "take-over" else None,
                                 stopped_by=asker if note and note["action"] == "stop" else None,
                                 paused=self.app.paused_detach, log_path=str(self.run.log_path))
        if snap.handed_to is not None and not handover.wait_until_training(self.run, self.proc):
            tail = handover.log_tail(self.run) or f"see {self.run.log_path}"
            return Outcome(2, f"kafkarnn: error: the background trainer of {self.run.name} ended "
                              f"at once ({tail}); the run is saved at iteration {snap.iteration:,} "
                              "— run the same command to continue")
        return outcome

    def after_hangup(self) -> None:
        """In the worker, after a hang-up: the loop has stopped and saved. Hand on (unless
        paused, ended or unsaved), write the ending to train.log, and end the process here:
        the App cannot leave cleanly without its terminal."""
        snap = self.session.snapshot()
        code, pid = 2, None
        try:
            saved = not snap.save_error and (snap.last_saved or 0) >= self.started
            if saved and not self.app.paused_detach and snap.state == State.STOPPED:
                try:
                    pid = self.start_background()
                except OSError as e:
                    self.run.append_log(f"kafkarnn: error: could not start the background "
                                        f"trainer ({e.strerror or e}); run {self.run.name} is saved "
                                        f"at iteration {snap.iteration:,}")
            outcome = self.ending(handed_to=pid)
            code = outcome.code
            self.run.append_log(f"{outcome.line} (the monitor's terminal hung up)")
        finally:
            os._exit(code)


def run_monitor(opts: TrainOptions) -> int:
    """Train `opts` in the monitor until the user leaves; 0, or 2 if training failed or progress
    could not be saved."""
    with Signals() as early:                     # a take-over may ask while we are starting
        launch = open_run(opts, Role.MONITOR, take_over=True, log=lambda s: _say(f"kafkarnn: {s}"))
        if early.caught:
            launch.lock.unlock()
            _say(f"kafkarnn: {early.first} before training started; run {launch.run.name} is as it was")
            return 0
        monitor = Monitor(opts, launch, early)
        try:
            monitor.app.run(mouse=opts.mouse)
            monitor.app.trained.wait(timeout=300)    # the final save happens in the worker
        except BaseException:
            launch.lock.unlock()
            raise
        outcome = monitor.ending()
    _say(outcome.line)
    return outcome.code

"""A run's life in this process, in one place: open the run, train it in a session, hand it on,
and say how it ended.

Every way of training goes through a `Life`: headless, the background trainer and `--detach`
(cli/train.py), and the monitor (tui/monitor.py, whose App returns the `Ending`). The front ends
only show things and pass on what the user or a signal asked (`Leaving`); opening (launch.py),
the loop (session.py), the hand-over to a background trainer (runs/handover.py, and its command
line, built here once) and the last line and exit code (outcome.py) are the Life's to call.

    open() -> start_session() -> session.run(stop) -> end(leaving) -> Outcome(Ending, line)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs import handover
from kafkarnn.runs.folder import Run
from kafkarnn.seam import Ask, Role, State, StopSignal
from kafkarnn.train.launch import Launch, TrainOptions, open_run
from kafkarnn.train.outcome import Outcome, end_of_session, hand_over_failed, not_started
from kafkarnn.train import baseline
from kafkarnn.train.cadence import Cadence
from kafkarnn.train.schedule import cooldown, cooldown_end, describe_cooldown
from kafkarnn.train.session import Session
from kafkarnn.train.thread_policy import handed_on, tuner_for


@dataclass
class Leaving:
    """What a front end was asked, that ends the session's loop besides a limit or a failure."""
    signals: list[StopSignal] = field(default_factory=list)   # stop signals, in the order caught
    paused: bool = False             # asked to hand over (`d`, or a hang-up) while paused
    hung_up: bool = False            # the monitor's terminal is gone


class Life:
    """One run trained by this process, from opening it to the line that says how it ended."""

    def __init__(self, opts: TrainOptions, role: Role, say: Callable[[str], None], *,
                 after_pid: int | None = None):
        self.opts, self.role, self.say, self.after_pid = opts, role, say, after_pid
        self.launch: Launch | None = None
        self.session: Session | None = None
        self.proc: subprocess.Popen | None = None   # the background trainer it handed over to
        self.cooldown: tuple[int, int] | None = None  # the decay --cooldown asked, once checked
        self.started = time.time()                  # a save older than this is not this session's
        self.outcome: Outcome | None = None
        self._ending = threading.Lock()             # the worker and the front end may both ask

    @property
    def run(self) -> Run:
        return self.launch.run

    def open(self) -> Launch:
        """Open the run for this role (KafkarnnError if it cannot be): a monitor takes it over
        from whoever trains it; a background trainer waits while its predecessor lets go."""
        o = self.opts
        if o.cooldown and (o.max_iters or o.max_seconds):
            raise KafkarnnError("--cooldown ends the run itself: leave out --max-iters and --max-seconds")
        self.launch = open_run(o, self.role, take_over=self.role == Role.MONITOR,
                               after_pid=self.after_pid, log=lambda s: self.say(f"kafkarnn: {s}"))
        if o.cooldown:
            t = self.launch.trainer
            try:                                 # refused: the run is let go untouched
                self.cooldown = cooldown(t.cfg, t.iteration, t.lr_at(t.iteration), o.cooldown)
            except KafkarnnError:
                self.let_go()
                raise
        return self.launch

    def notes(self) -> list[str]:
        """What the user should hear before training starts (an offline corpus, a recovered run)."""
        return [n for n in (self.launch.corpus.notice, self.launch.recovered) if n]

    def start_session(self, cadence: Cadence = Cadence(), **kw) -> Session:
        """The loop over the opened run, with this invocation's limits and intervals."""
        o, t = self.opts, self.launch.trainer
        cooling = o.cooldown
        if cooling:                              # from here on an iteration limit, the decay saved
            self.opts = o = replace(o, max_iters=t.begin_cooldown(self.cooldown), cooldown=None)
        elif ((end := cooldown_end(t.cfg, t.decay, t.cooling) or 0) > t.iteration
              and not (o.max_iters or o.max_seconds)):
            self.opts = o = replace(o, max_iters=end)   # a cooldown cut short ends where it said
        cadence = replace(cadence, eval_every=o.eval_every, save_every=o.save_every)
        self.session = Session(self.launch, o.limits, cadence, tuner=tuner_for(o.threads, self.launch.trainer.groups.workers), **kw)
        self.started = time.time()
        self._baseline(self.session)
        if cooling:
            self.session.note(describe_cooldown(t.cfg, t.decay))
        return self.session

    def _baseline(self, session: Session) -> None:
        """The text's n-gram line: known already (cached, or a small text), else counted in a
        thread while training starts (train/baseline.py)."""
        launch = self.launch
        if session.ngram.known is not None:
            return

        def counted(b) -> None:
            session.ngram.known = (b.order, b.loss)
            session.note(f"n-gram baseline: the {b.order}-gram model scores {b.loss:.4f} nats/char "
                         f"on validation")
        baseline.in_background(launch.run.data_dir, launch.corpus, launch.trainer.cfg.val_fraction,
                               counted, session.note)

    def start_background(self) -> int:
        """Start the trainer that goes on with the run (it waits for our lock); its PID."""
        self.proc = handover.start_background(self.run, self._background_argv())
        return self.proc.pid

    def _background_argv(self) -> list[str]:
        """The background trainer's command line: the run's name and data folder (its stored
        configuration and corpus win on resume), and this invocation's limits: the iteration
        limit as it is, what is left of the time limit."""
        o, run = self.opts, self.run
        argv = [sys.executable, "-m", "kafkarnn", "train", "--background", "--run", run.name,
                "--data-dir", str(run.data_dir), "--save-every", repr(o.save_every),
                "--eval-every", repr(o.eval_every), "--after", str(os.getpid())]
        if o.max_iters is not None:
            argv += ["--max-iters", str(o.max_iters)]
        if o.cooldown:                           # --detach: the trainer begins the cooldown
            argv += ["--cooldown", str(o.cooldown)]
        if o.max_seconds is not None:
            spent = self.session.session_s if self.session else 0.0
            argv += ["--max-seconds", repr(max(o.max_seconds - spent, 1e-3))]
        return argv + handed_on(o.threads)

    def detach(self) -> int:
        """`--detach`: hand the opened run to a background trainer without training here; its
        PID once it trains (KafkarnnError if it cannot start, or ends at once)."""
        try:
            try:
                pid = self.start_background()
            except OSError as e:
                raise KafkarnnError(f"could not start the background trainer ({e.strerror or e})") from None
        finally:
            self.let_go()
        if not handover.wait_until_training(self.run, self.proc):
            tail = handover.log_tail(self.run) or f"see {self.run.log_path}"
            raise KafkarnnError(f"the background trainer of {self.run.name} ended at once: {tail}")
        return pid

    def let_go(self) -> None:
        """Release the run's lock (an error on the way: the checkpoint on disk stands)."""
        self.launch.lock.unlock()

    def not_started(self, signal: StopSignal) -> Outcome:
        """A signal came while the run was being opened: let go, nothing trained or written."""
        self.let_go()
        self.outcome = not_started(self.run.name, signal)
        return self.outcome

    def end(self, leaving: Leaving | None = None, handed_to: int | None = None) -> Outcome:
        """After the loop: let go of the run (to the background trainer, if the session handed
        it over) and say how it ended. The first answer stands: asking again returns it."""
        with self._ending:
            if self.outcome is None:
                self.outcome = self._end(leaving or Leaving(), handed_to)
            return self.outcome

    def _end(self, leaving: Leaving, handed_to: int | None) -> Outcome:
        snap = self.session.snapshot()
        if handed_to is not None:
            snap = replace(snap, handed_to=handed_to)
        asked = leaving.signals and leaving.signals[-1] == StopSignal.SIGTERM
        note = handover.read_note(self.run) if asked else None      # who sent it, and why
        self.let_go()
        asker, action = (note["pid"], note.get("action")) if note else (None, None)
        outcome = end_of_session(
            snap, self.started, signal=leaving.signals[0] if leaving.signals else None,
            taken_by=asker if action == Ask.TAKE_OVER else None,
            stopped_by=asker if action == Ask.STOP else None, paused=leaving.paused,
            log_path=str(self.run.log_path), hint=self.role != Role.BACKGROUND)
        if snap.handed_to is not None and not handover.wait_until_training(self.run, self.proc):
            outcome = hand_over_failed(snap, handover.log_tail(self.run) or f"see {self.run.log_path}")
        return outcome

    def end_after_hangup(self, leaving: Leaving) -> Outcome:
        """The monitor's terminal is gone and its loop has stopped and saved: hand the run on
        (unless paused, ended or unsaved), and write the ending to train.log, where the user
        will look for it."""
        snap = self.session.snapshot()
        pid = None
        saved = not snap.save_error and (snap.last_saved or 0) >= self.started
        if saved and not leaving.paused and snap.state == State.STOPPED:
            try:
                pid = self.start_background()
            except OSError as e:
                self.run.append_log(f"kafkarnn: error: could not start the background trainer "
                                    f"({e.strerror or e}); run {self.run.name} is saved at "
                                    f"iteration {snap.iteration:,}")
        outcome = self.end(leaving, handed_to=pid)
        self.run.append_log(f"{outcome.line} (the monitor's terminal hung up)")
        return outcome

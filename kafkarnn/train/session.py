"""A training session: the loop around `Trainer.step()` for one invocation, and its seam to a UI.

The seam (its types are in seam.py) is narrow and thread-safe:
- the loop publishes an immutable `Snapshot` (a frozen dataclass) a few times a second; a UI
  reads `session.snapshot()` whenever it likes;
- a UI sends commands with `session.send(...)`; the loop drains them between steps, so nothing
  reads the parameters in the middle of an update;
- notable happenings (saved, save failed, finished, error) go to `session.events()`.

The same loop runs headless (the CLI prints a progress line) and inside the Textual monitor.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from kafkarnn.train import baseline
from kafkarnn.train.commands import Commands
from kafkarnn.train.cadence import Cadence, Limits, Timers
from kafkarnn.train.progress import progress_line, snapshot_of
from kafkarnn.train.record import metrics_line, write_checkpoint
from kafkarnn.train.schedule import budget_decay
from kafkarnn.seam import (  # noqa: F401  (re-exported: the seam's names)
    CoolDown, Event, EventKind, Generate, HandOff, LookInside, Pause, Resume, SaveNow,
    SetTemperature, Snapshot, State)
from kafkarnn.train.trainer import TrainingDiverged

if TYPE_CHECKING:
    from kafkarnn.train.launch import Launch

HISTORY = 600          # sparkline points kept (one per metrics line, every ~2 s)
MAX_EVENTS = 1000      # undrained events kept (headless never drains them)
VAL_SHARE_FACTOR = 19  # validation waits at least 19× its last pass's time: ≤ 5% of the time


class Session(Commands):
    """The loop over a launched run (launch.py `Launch`: the trainer, the run and what it has
    done so far) within this invocation's `Limits`, at a `Cadence`."""

    def __init__(self, launch: Launch, limits: Limits = Limits(), cadence: Cadence = Cadence(), *,
                 log=None, stay_open: bool = False, tuner=None, temperature: float = 1.0,
                 copying=None):
        self.trainer, self.run_dir, self.run_meta = launch.trainer, launch.run, launch.run_meta
        self.corpus, self.data_dir = launch.corpus.name, str(launch.run.data_dir)
        self.limits, self.cadence = limits, cadence
        self.log, self.stay_open = log, stay_open
        self.tuner = tuner                # a ThreadTuner (train/threads.py) told of every step, or None
        self.copying = copying            # a copy_index.Checker that marks copied samples, or None
        self.history = collections.deque(launch.history, maxlen=HISTORY)      # finite, one
        self.history_iters = collections.deque(launch.history_iters, maxlen=HISTORY)  # per iteration
        self.val_history = collections.deque(launch.val_history, maxlen=HISTORY)
        self.best_val_loss, self.val_loss = launch.best_val_loss, None
        self.elapsed_base = launch.elapsed_s
        self.temperature = temperature
        seed = self.trainer.cfg.seed + self.trainer.iteration      # a resumed run samples anew
        self.sample_rng = np.random.default_rng(seed)   # never the trainer's: sampling must not
        self.commands: queue.Queue = queue.Queue()       # change the training trajectory
        self._events = collections.deque(maxlen=MAX_EVENTS)   # appends and pops are thread-safe
        self.state = State.STARTING
        self.message = ""
        self.last_saved: float | None = None
        self.save_error = ""              # set while the checkpoint on disk is behind a failed save
        self.sample, self.sample_probs, self.sample_id = "", (), 0
        self.sample_copied = None
        self.session_s = 0.0
        self.rate = (0.0, 0.0)            # iterations/s, chars/s over the last metrics interval
        self.done = False                 # a limit was reached, or training failed
        self.handed_to: int | None = None # the PID this session handed the run over to
        self.eval_seconds = 0.0           # how long the last validation pass took
        self.ngram = baseline.Tables(self.trainer.train, self.trainer.vocab)   # the n-gram line:
        if launch.baseline is not None:                                         # known, or counted
            self.ngram.known = (launch.baseline.order, launch.baseline.loss)    # later (life.py)
        self._lock = threading.Lock()
        self._snapshot = None
        self._publish()

    # -- the seam -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def send(self, command) -> None:
        self.commands.put(command)

    def note(self, text: str) -> None:
        """A notice from any thread, as an INFO event."""
        self._event(EventKind.INFO, text)

    def events(self) -> list[Event]:
        out = []
        while True:
            try:
                out.append(self._events.popleft())
            except IndexError:
                return out

    def _event(self, kind: EventKind, text: str) -> None:
        self._events.append(Event(kind, text))
        if self.log:
            self.log(text)

    def _publish(self) -> None:
        snap = snapshot_of(self)
        with self._lock:
            self._snapshot = snap

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop=lambda: False) -> State:
        """Train until a limit, a failure, a hand-off or `stop()`; returns the final state.

        With stay_open the loop keeps serving commands (generate, save) after a limit or a
        failure until `stop()` — that is what the monitor wants.
        """
        self._timers = Timers(lambda: self.session_s)
        self._mark = (self.trainer.iteration, self.trainer.chars, 0.0)   # for rates: iteration,
        self._step_time = 0.0                                           # chars, step time
        self.state = State.RUNNING
        self._publish()
        try:
            while not stop() and self.handed_to is None:
                self._drain(wait=self.state == State.PAUSED or self.done)
                if self.handed_to is not None:
                    break
                if self.state == State.PAUSED or self.done:
                    if self.done and not self.stay_open:
                        break
                    continue
                if self.limits.reached(self.trainer.iteration, self.session_s):
                    self._finish(State.FINISHED, "limit reached")
                elif self._step():
                    self._periodic()
        finally:
            if not self.done:
                self._finish(State.STOPPED, "handed over" if self.handed_to else "stopped",
                             save=self.handed_to is None)
            self._publish()
        return self.state

    def _step(self) -> bool:
        """One training step, timed; False if training diverged (the session has failed)."""
        t = self.trainer
        t0, c0 = time.perf_counter(), t.chars
        try:
            with np.errstate(over="ignore", invalid="ignore"):   # NaN/inf steps are handled
                loss = t.step()                                  # and reported, not warned of
        except TrainingDiverged as e:
            self._finish(State.FAILED, str(e), save=False)
            self._event(EventKind.ERROR, str(e))
            return False
        dt = time.perf_counter() - t0
        if self.tuner is not None:
            self.tuner.step_done(dt, t.chars - c0)     # may change the thread count
        self._step_time += dt
        self.session_s += dt
        if t.decay is None and t.cfg.budget_s:
            self._fix_decay()
        if not math.isfinite(loss):
            self._event(EventKind.INFO, f"skipped a non-finite step at iteration {t.iteration}")
        return True

    def _fix_decay(self) -> None:
        """A timed budget's decay begins once its stable part has passed: its length in steps is
        the seconds left at the latest pace (the last metrics interval's, else the run's)."""
        t, trained = self.trainer, self.elapsed_base + self.session_s
        pace = self.rate[0] or t.iteration / max(trained, 1e-9)
        t.decay = budget_decay(t.cfg, t.iteration, trained, pace)
        if t.decay:
            self._event(EventKind.INFO, f"the learning rate decays from iteration {t.decay[0]:,} over "
                        f"{t.decay[1]:,} steps, to end with the run's {t.cfg.budget_s:g}-s budget")

    def _periodic(self) -> None:
        """After a step: whichever of metrics, validation, save, samples and reports are due."""
        t, due, c = self.trainer, self._timers.due, self.cadence
        if due("metrics", c.metrics_every):
            self._measure_rate()
            self.history.append(t.smooth_loss)
            self.history_iters.append(t.iteration)
            # a slow pass (a big model) stretches the interval: validation stays ≤ 5%
            every = c.eval_every and max(c.eval_every, VAL_SHARE_FACTOR * self.eval_seconds)
            self._metrics(self._validate() if due("eval", every) else None)
        if due("save", c.save_every):
            self._save()
        if due("sample", c.sample_every):
            self._live_sample()
        if due("report", c.report_every):
            self.log(progress_line(self.snapshot()))
        if due("publish", 0.2):
            self._publish()

    def _measure_rate(self) -> None:
        """The pace since the last measurement, in iterations and characters per second of steps."""
        t, (it0, ch0, st0) = self.trainer, self._mark
        span = max(self._step_time - st0, 1e-9)
        self.rate = ((t.iteration - it0) / span, (t.chars - ch0) / span)
        self._mark = (t.iteration, t.chars, self._step_time)

    def _finish(self, state: State, why: str, save: bool = True) -> None:
        """End of training for this session: save first (a signal may be in a hurry), then the
        last metrics line. Only a limit reached validates: a stop or a hand-off has someone
        waiting (and a hand-off has just saved)."""
        if save:
            self._save()
        if self.rate == (0.0, 0.0) and self.trainer.iteration > self._mark[0]:
            self._measure_rate()       # ended before its first interval: the pace of what it did
        self._metrics(self._validate() if state == State.FINISHED else None)
        self.done = True
        self.state = state
        self.message = why
        if state == State.FINISHED:
            self._event(EventKind.FINISHED, f"finished at iteration {self.trainer.iteration}: {why}")
        self._publish()

    # -- the periodic pieces ------------------------------------------------------------------

    def _live_sample(self) -> None:
        text, probs = self.trainer.generate("", self.cadence.sample_len, self.sample_rng, self.temperature)
        self.sample, self.sample_probs = text, tuple(float(p) for p in probs)
        self.sample_copied = self.copying.check(text) if self.copying else None   # milliseconds
        self.sample_id += 1

    def _validate(self) -> float | None:
        t0 = time.perf_counter()
        val = self.trainer.evaluate()
        self.eval_seconds = time.perf_counter() - t0
        if val is None:
            return None
        self.val_loss = val
        self.val_history.append((self.trainer.iteration, val))
        if self.best_val_loss is None or val < self.best_val_loss:
            previous, self.best_val_loss = self.best_val_loss, val
            if not self._save(best=True):
                self.best_val_loss = previous          # best.npz is older: retry at the next better one
        text, _ = self.trainer.generate("", self.cadence.sample_len, self.sample_rng, self.temperature)
        try:
            self.run_dir.append_sample(self.trainer.iteration, text)
        except OSError:
            pass                                   # a sample log is not worth stopping for
        return val

    def _metrics(self, val: float | None) -> None:
        rec = metrics_line(self.trainer, chars_per_sec=self.rate[1],
                           elapsed_s=self.elapsed_base + self.session_s,
                           threads=self.tuner.threads if self.tuner else None, val=val)
        try:
            self.run_dir.append_metrics(rec)
        except OSError as e:
            self._event(EventKind.SAVE_FAILED, f"could not write metrics: {e}")

    def _save(self, best: bool = False) -> bool:
        """Write the checkpoint (or best.npz); True if it is on disk. Failures become events."""
        t = self.trainer
        previous = self.state
        self.state = State.SAVING
        self._publish()
        path = self.run_dir.best_path if best else self.run_dir.checkpoint_path
        try:
            why = write_checkpoint(t, path, self.run_meta, best_val_loss=self.best_val_loss,
                                   elapsed_s=self.elapsed_base + self.session_s)
        finally:
            self.state = previous
        if why:
            self._event(EventKind.SAVE_FAILED, f"save failed at iteration {t.iteration} ({path.name}: {why}); "
                        f"the previous {path.name} is intact, will retry at the next save")
        elif not best:
            self.last_saved = time.time()
            stamp = datetime.now().strftime("%H:%M:%S")
            self._event(EventKind.SAVED, f"saved at {stamp} (iteration {t.iteration})")
        if not best:
            self.save_error = why and f"{path.name} could not be saved at iteration {t.iteration} ({why})"
        self._publish()
        return not why

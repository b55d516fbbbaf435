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

import numpy as np

from kafkarnn.errors import KafkarnnError
from kafkarnn.inspect import inside
from kafkarnn.runs.checkpoint import save_checkpoint
from kafkarnn.train.progress import progress_line
from kafkarnn.runs.folder import Run
from kafkarnn.seam import (  # noqa: F401  (re-exported: the seam's names)
    Event, EventKind, Generate, HandOff, LookInside, Pause, Resume, SaveNow, SetTemperature,
    Snapshot, State)
from kafkarnn.train.trainer import Trainer, TrainingDiverged

HISTORY = 600          # sparkline points kept (one per metrics line, every ~2 s)
MAX_EVENTS = 1000      # undrained events kept (headless never drains them)
VAL_SHARE_FACTOR = 19  # validation waits at least 19× its last pass's time: ≤ 5% of the time


class Session:
    def __init__(self, trainer: Trainer, run: Run, *, corpus: str, data_dir: str,
                 run_meta: dict, max_iters: int | None = None, max_seconds: float | None = None,
                 eval_every: float = 30.0, save_every: float = 60.0, sample_every: float | None = None,
                 sample_len: int = 200, metrics_every: float = 2.0, report_every: float | None = None,
                 log=None, stay_open: bool = False, history=(), history_iters=(), val_history=(),
                 best_val_loss=None, elapsed_s: float = 0.0, temperature: float = 1.0,
                 seed: int | None = None, tuner=None, copying=None):
        self.trainer, self.run_dir, self.run_meta = trainer, run, run_meta
        self.corpus, self.data_dir = corpus, data_dir
        self.max_iters, self.max_seconds = max_iters, max_seconds
        self.eval_every, self.save_every, self.sample_every = eval_every, save_every, sample_every
        self.sample_len, self.metrics_every, self.report_every = sample_len, metrics_every, report_every
        self.log, self.stay_open = log, stay_open
        self.tuner = tuner                # a ThreadTuner (train/threads.py) told of every step, or None
        self.copying = copying            # a copy_index.Checker that marks copied samples, or None
        history = list(history)
        iters = list(history_iters) if len(history_iters) == len(history) else [0] * len(history)
        kept = [(i, h) for i, h in zip(iters, history) if math.isfinite(h)]
        self.history = collections.deque((h for _, h in kept), maxlen=HISTORY)
        self.history_iters = collections.deque((i for i, _ in kept), maxlen=HISTORY)
        self.val_history = collections.deque(val_history, maxlen=HISTORY)
        self.best_val_loss, self.val_loss = best_val_loss, None
        self.elapsed_base = elapsed_s
        self.temperature = temperature
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
        self._lock = threading.Lock()
        self._snapshot = None
        self._publish()

    # -- the seam -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def send(self, command) -> None:
        self.commands.put(command)

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
        t = self.trainer
        eta = None
        ips, cps = self.rate
        if self.max_iters and ips > 0:
            eta = max(0, self.max_iters - t.iteration) / ips
        if self.max_seconds:
            left = max(0.0, self.max_seconds - self.session_s)
            eta = left if eta is None else min(eta, left)
        snap = Snapshot(
            state=self.state, run_name=self.run_dir.name, corpus=self.corpus,
            model=t.cfg.describe(), n_params=t.model.n_params(), data_dir=self.data_dir,
            iteration=t.iteration, chars=t.chars, elapsed_s=self.elapsed_base + self.session_s,
            session_s=self.session_s, iters_per_sec=ips, chars_per_sec=cps, loss=t.smooth_loss,
            val_loss=self.val_loss, best_val_loss=self.best_val_loss, history=tuple(self.history),
            eta_s=eta, last_saved=self.last_saved, sample=self.sample,
            sample_probs=self.sample_probs, sample_id=self.sample_id,
            temperature=self.temperature, message=self.message,
            max_iters=self.max_iters, max_seconds=self.max_seconds, save_error=self.save_error,
            handed_to=self.handed_to, history_iters=tuple(self.history_iters),
            val_history=tuple(self.val_history), sample_copied=self.sample_copied,
            threads=self.tuner.threads if self.tuner else None,
            threads_auto=bool(self.tuner and self.tuner.auto))
        with self._lock:
            self._snapshot = snap

    # -- the loop -----------------------------------------------------------------------------

    def limit_reached(self) -> bool:
        return bool((self.max_iters is not None and self.trainer.iteration >= self.max_iters) or
                    (self.max_seconds is not None and self.session_s >= self.max_seconds))

    def run(self, stop=lambda: False) -> State:
        """Train until a limit, a failure, a hand-off or `stop()`; returns the final state.

        With stay_open the loop keeps serving commands (generate, save) after a limit or a
        failure until `stop()` — that is what the monitor wants.
        """
        t = self.trainer
        now = time.perf_counter
        timers = {"metrics": 0.0, "eval": 0.0, "save": 0.0, "sample": -1e9, "report": 0.0,
                  "publish": 0.0}

        def due(name: str, every: float | None) -> bool:
            """True (and restart the timer) when `every` seconds of training passed since `name` ran."""
            if every is None or self.session_s - timers[name] < every:
                return False
            timers[name] = self.session_s
            return True

        mark = (t.iteration, t.chars, 0.0)           # for rates: iteration, chars, step time
        step_time = 0.0
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
                if self.limit_reached():
                    self._finish(State.FINISHED, "limit reached")
                    continue
                t0, c0 = now(), t.chars
                try:
                    with np.errstate(over="ignore", invalid="ignore"):   # NaN/inf steps are handled
                        loss = t.step()                                  # and reported, not warned of
                except TrainingDiverged as e:
                    self._finish(State.FAILED, str(e), save=False)
                    self._event(EventKind.ERROR, str(e))
                    continue
                dt = now() - t0
                if self.tuner is not None:
                    self.tuner.step_done(dt, t.chars - c0)     # may change the BLAS thread count
                step_time += dt
                self.session_s += dt
                if not math.isfinite(loss):
                    self._event(EventKind.INFO, f"skipped a non-finite step at iteration {t.iteration}")
                if due("metrics", self.metrics_every):
                    it0, ch0, st0 = mark
                    span = max(step_time - st0, 1e-9)
                    self.rate = ((t.iteration - it0) / span, (t.chars - ch0) / span)
                    mark = (t.iteration, t.chars, step_time)
                    self.history.append(t.smooth_loss)
                    self.history_iters.append(t.iteration)
                    # a slow pass (a big model) stretches the interval: validation stays ≤ 5%
                    every = self.eval_every and max(self.eval_every, VAL_SHARE_FACTOR * self.eval_seconds)
                    self._metrics(self._validate() if due("eval", every) else None)
                if due("save", self.save_every):
                    self._save()
                if due("sample", self.sample_every):
                    self._live_sample()
                if due("report", self.report_every):
                    self.log(progress_line(self.snapshot()))
                if due("publish", 0.2):
                    self._publish()
        finally:
            if not self.done:
                self._finish(State.STOPPED, "handed over" if self.handed_to else "stopped",
                             save=self.handed_to is None)
            self._publish()
        return self.state

    def _finish(self, state: State, why: str, save: bool = True) -> None:
        """End of training for this session: save first (a signal may be in a hurry), then the
        last metrics line. Only a limit reached validates: a stop or a hand-off has someone
        waiting (and a hand-off has just saved)."""
        if save:
            self._save()
        self._metrics(self._validate() if state == State.FINISHED else None)
        self.done = True
        self.state = state
        self.message = why
        if state == State.FINISHED:
            self._event(EventKind.FINISHED, f"finished at iteration {self.trainer.iteration}: {why}")
        self._publish()

    # -- the periodic pieces ------------------------------------------------------------------

    def _drain(self, wait: bool) -> None:
        while True:
            try:
                cmd = self.commands.get(timeout=0.1) if wait else self.commands.get_nowait()
            except queue.Empty:
                return
            wait = False
            if isinstance(cmd, Pause) and self.state == State.RUNNING:
                self.state = State.PAUSED
            elif isinstance(cmd, Resume) and self.state == State.PAUSED:
                self.state = State.RUNNING
            elif isinstance(cmd, HandOff):
                self._hand_off(cmd)
                if self.handed_to is not None:
                    return
            elif isinstance(cmd, SaveNow):
                self._save()
            elif isinstance(cmd, SetTemperature):
                self.temperature = min(5.0, max(0.0, cmd.value))
                self._live_sample()
            elif isinstance(cmd, Generate):
                self._generate(cmd)
            elif isinstance(cmd, LookInside):
                if not cmd.reply.done():
                    cmd.reply.set_result(inside.take(self.trainer))
            self._publish()

    def _hand_off(self, cmd: HandOff) -> None:
        """Save, start the next trainer, and let the loop end; on a failure, train on here."""
        if self.state == State.PAUSED or self.done:
            return                                    # saved at the end, not handed on
        if not self._save():
            self._event(EventKind.ERROR, "could not hand the run over: the save failed; "
                        "training goes on here")
            return
        try:
            self.handed_to = cmd.start()
        except (OSError, KafkarnnError) as e:
            self._event(EventKind.ERROR, f"could not start the background trainer "
                        f"({getattr(e, 'strerror', None) or e}); training goes on here")

    def _generate(self, cmd: Generate) -> None:
        if cmd.reply.done():
            return
        try:
            cmd.reply.set_result(self.trainer.generate(cmd.prompt, cmd.length, self.sample_rng,
                                                       cmd.temperature, cmd.top_k))
        except KafkarnnError as e:
            cmd.reply.set_exception(e)

    def _live_sample(self) -> None:
        text, probs = self.trainer.generate("", self.sample_len, self.sample_rng, self.temperature)
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
        text, _ = self.trainer.generate("", self.sample_len, self.sample_rng, self.temperature)
        try:
            self.run_dir.append_sample(self.trainer.iteration, text)
        except OSError:
            pass                                   # a sample log is not worth stopping for
        return val

    def _metrics(self, val: float | None) -> None:
        t = self.trainer
        rec = {"iter": t.iteration, "chars": t.chars, "loss": round(t.smooth_loss, 6),
               "chars_per_sec": round(self.rate[1], 1),
               "elapsed_s": round(self.elapsed_base + self.session_s, 3),
               "lr": t.lr_at(t.iteration), "time": round(time.time(), 3)}
        if self.tuner is not None:
            rec["threads"] = self.tuner.threads
        if val is not None:
            rec["val_loss"] = round(val, 6)
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
        meta = dict(self.run_meta, **t.state_meta(), elapsed_s=self.elapsed_base + self.session_s,
                    best_val_loss=self.best_val_loss, saved_at=time.time())
        path = self.run_dir.best_path if best else self.run_dir.checkpoint_path
        arrays = t.state_arrays()
        bad = [k for k, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
        why = f"{bad[0]} holds NaN or inf" if bad else ""   # never let a NaN reach a checkpoint
        try:
            if not why:
                save_checkpoint(path, arrays, meta)
        except OSError as e:
            why = str(e.strerror or e)
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

"""The coordinator: the background process that trains a sweep's trials until each reaches its limit.

It runs in a new session with no terminal (started by `kafkarnn sweep`, output to the sweep's
coordinator.log), so a dropped connection never reaches it; it holds the sweep's lock, and
SIGTERM (`kafkarnn sweep NAME --stop`) makes it ask each trainer to save and end, then end.

Each trial is an ordinary background trainer (`kafkarnn train --background --run TRIAL`), on
this machine (`LocalTrials`: `slots` of them side by side, each with `threads` BLAS threads) or
as a Ray task (ray_tasks.py). The run's checkpoint is the truth about a trial: it is done when
its checkpoint reached the trial's limit; anything else resumes from that checkpoint, with what
is left of its time budget, so an interrupted trial ends like one never interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.runs.folder import Run
from kafkarnn.runs.handover import log_tail, start_background
from kafkarnn.sweep.folder import SweepFolder, TrialStatus
from kafkarnn.sweep.plan import Trial

POLL_S = 0.2
STATE_EVERY_S = 2.0           # state.json is rewritten at least this often while trials run
STOP_TIMEOUT_S = 150.0        # a trainer finishes its step and saves before it ends
TIME_SLACK_S = 0.01           # a time budget counts as spent within this much


class LocalTrials:
    """Trials as background trainer processes on this machine, `slots` at a time."""
    def __init__(self, slots: int):
        self.slots = slots

    def start(self, run: Run, argv: list[str]) -> subprocess.Popen:
        return start_background(run, [sys.executable, "-m", "kafkarnn", *argv])

    def ended(self, proc: subprocess.Popen) -> int | None:
        return proc.poll()

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)      # the trainer saves, then ends

    def close(self) -> None:
        pass


def progress(run: Run) -> tuple[int, float]:
    """(iteration, seconds of training) of the run's checkpoint; (0, 0) before its first, or
    when it cannot be read (its trainer then refuses it, and the trial fails with that line)."""
    try:
        _, meta = load_checkpoint(run.checkpoint_path)
        return int(meta.get("iteration", 0)), float(meta.get("elapsed_s", 0.0))
    except (KafkarnnError, TypeError, ValueError):
        return 0, 0.0


def reached(trial: Trial, run: Run) -> bool:
    """True when the run's checkpoint reached the trial's iteration limit or spent its time."""
    iteration, seconds = progress(run)
    return bool((trial.max_iters and iteration >= trial.max_iters) or
                (trial.max_seconds and seconds >= trial.max_seconds - TIME_SLACK_S))


def trial_argv(trial: Trial, run: Run, *, threads: int, save_every: float, eval_every: float) -> list[str]:
    """`train --background` for the trial: its settings (a resumed run checks they match), the
    iteration limit as it is, and what is left of its time budget."""
    argv = ["train", "--background", "--run", run.name, "--data-dir", str(run.data_dir),
            "--threads", str(threads), "--save-every", repr(save_every), "--eval-every", repr(eval_every)]
    for key in ("corpus", "preset"):
        if key in trial.settings:
            argv += ["--" + key, trial.settings[key]]
    for key, value in trial.overrides.items():
        argv += ["--" + key.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    if trial.max_iters:
        argv += ["--max-iters", str(trial.max_iters)]
    if trial.max_seconds:
        left = trial.max_seconds - progress(run)[1]
        argv += ["--max-seconds", repr(max(left, 1e-3))]
    return argv


class Coordinator:
    def __init__(self, folder: SweepFolder, trials, *, slots: int, threads: int,
                 save_every: float = 60.0, eval_every: float = 30.0, ray: str | None = None,
                 parallel: int | None = None):
        self.folder, self.trials = folder, trials
        self.slots, self.threads, self.ray = slots, threads, ray
        self.intervals = {"save_every": save_every, "eval_every": eval_every}
        self.stopping = False
        self.running: dict[str, tuple[object, float]] = {}    # run name -> (handle, start time)
        previous = folder.read_state()["trials"]
        self.records = {t.run: {"status": TrialStatus.WAITING.value, "starts": 0, "wall_s": 0.0}
                        | _numbers(previous.get(t.run)) for t in trials}
        self.state = {"pid": os.getpid(), "started": time.time(), "ended": None, "slots": slots,
                      "threads": threads, "parallel": parallel, "ray": ray, "error": None,
                      "trials": self.records}

    def run(self, launcher) -> None:
        """Train every trial to its limit, or until SIGTERM; state.json says where each stands."""
        for trial in self.trials:                 # a trial stopped by hand resumes with the sweep
            done = reached(trial, self._run(trial))
            self._set(trial, TrialStatus.DONE if done else TrialStatus.WAITING)
        written = 0.0
        try:
            while True:
                changed = self._reap(launcher)
                if self.stopping:
                    break
                changed |= self._fill(launcher)
                if not self.running and not self._open():
                    break
                if changed or time.monotonic() - written > STATE_EVERY_S:
                    self._write()
                    written = time.monotonic()
                time.sleep(POLL_S)
        finally:
            self._stop_all(launcher)
            self.state["ended"] = time.time()
            self._write()

    def _run(self, trial: Trial) -> Run:
        return Run(self.folder.data_dir, trial.run)

    def _set(self, trial: Trial, status: TrialStatus, error: str | None = None) -> None:
        self.records[trial.run]["status"] = status.value
        self.records[trial.run]["error"] = error

    def _open(self) -> list[Trial]:
        """Trials that still need a trainer (waiting, or held elsewhere for now)."""
        return [t for t in self.trials if self.records[t.run]["status"] in
                (TrialStatus.WAITING.value, TrialStatus.ELSEWHERE.value)]

    def _fill(self, launcher) -> bool:
        changed = False
        for trial in self._open():
            if len(self.running) >= self.slots:
                break
            run = self._run(trial)
            if reached(trial, run):               # (a monitor that took it over may train on)
                self._set(trial, TrialStatus.DONE)
                changed = True
                continue
            if run.holder() is not None:          # someone else trains it: wait for them
                changed |= self.records[trial.run]["status"] != TrialStatus.ELSEWHERE.value
                self._set(trial, TrialStatus.ELSEWHERE)
                continue
            run.create()
            argv = trial_argv(trial, run, threads=self.threads, **self.intervals)
            self.running[trial.run] = (launcher.start(run, argv), time.monotonic())
            self.records[trial.run]["starts"] += 1
            self._set(trial, TrialStatus.RUNNING)
            changed = True
        return changed

    def _reap(self, launcher) -> bool:
        changed = False
        for trial in self.trials:
            if trial.run not in self.running:
                continue
            handle, started = self.running[trial.run]
            code = launcher.ended(handle)
            if code is None:
                continue
            del self.running[trial.run]
            self.records[trial.run]["wall_s"] += time.monotonic() - started
            self._judge(trial, code)
            changed = True
        return changed

    def _judge(self, trial: Trial, code: int) -> None:
        run = self._run(trial)
        if reached(trial, run):
            self._set(trial, TrialStatus.DONE)
        elif code != 0:
            self._set(trial, TrialStatus.FAILED, log_tail(run) or f"exit code {code}")
        elif run.holder() is not None:            # taken over (`kafkarnn attach`)
            self._set(trial, TrialStatus.ELSEWHERE)
        else:
            self._set(trial, TrialStatus.WAITING if self.stopping else TrialStatus.STOPPED)

    def _stop_all(self, launcher) -> None:
        self.stopping = self.stopping or bool(self.running)   # (an exception): they resume later
        for handle, _ in self.running.values():
            launcher.stop(handle)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.running and time.monotonic() < deadline:
            self._reap(launcher)
            time.sleep(POLL_S)

    def _write(self) -> None:
        try:
            self.folder.write_state(self.state)
        except OSError as e:                      # the trials go on; the view is behind for now
            print(f"kafkarnn: cannot write {self.folder.state_path} ({e.strerror or e})", flush=True)


def _numbers(record) -> dict:
    """What a previous coordinator counted for a trial: its starts and wall time."""
    if not isinstance(record, dict):
        return {}
    return {k: record[k] for k in ("starts", "wall_s")
            if isinstance(record.get(k), (int, float)) and not isinstance(record.get(k), bool)}


def coordinate(folder: SweepFolder, *, slots: int, threads: int, save_every: float,
               eval_every: float, ray: str | None, parallel: int | None = None) -> int:
    """The coordinator process's life: lock, train the trials, say how it ended (exit code)."""
    stamp = lambda: time.strftime("%Y-%m-%d %H:%M:%S")       # noqa: E731
    lock = folder.lock()                                     # SweepBusy: another one runs it
    coordinator = Coordinator(folder, folder.read_plan().trials(), slots=slots, threads=threads,
                              save_every=save_every, eval_every=eval_every, ray=ray,
                              parallel=parallel)

    def ask_to_stop(signum, frame):
        coordinator.stopping = True

    def listen() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, ask_to_stop)
    listen()
    try:
        if ray:
            from kafkarnn.sweep.ray_tasks import RayTrials
            launcher = RayTrials(ray, threads, folder.path / "stop")
            listen()                              # ray.init put in its own handlers, which exit
        else:
            launcher = LocalTrials(slots)
        coordinator.slots = coordinator.state["slots"] = launcher.slots
        print(f"{stamp()} kafkarnn: coordinating sweep {folder.name} (process {os.getpid()}, "
              f"{'Ray ' + ray + ', ' if ray else ''}{launcher.slots} side by side, {threads} BLAS "
              f"thread{'s' if threads > 1 else ''} each)", flush=True)
        try:
            coordinator.run(launcher)
        finally:
            launcher.close()
    except KafkarnnError as e:
        coordinator.state.update(error=str(e), ended=time.time())
        coordinator._write()
        print(f"{stamp()} kafkarnn: error: {e}", flush=True)
        return 2
    finally:
        os.close(lock)
    counts = {}
    for record in coordinator.records.values():
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    said = ", ".join(f"{n} {status}" for status, n in counts.items())
    how = "stopped" if coordinator.stopping else "ended"
    print(f"{stamp()} kafkarnn: sweep {folder.name} {how}: {said}", flush=True)
    return 0

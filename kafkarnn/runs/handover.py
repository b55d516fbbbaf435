"""Handing a run between trainers: taking it over, starting a background trainer, stopping one.

No server and no socket: the checkpoint is the hand-over. The owner saves and lets go of the
run's lock; the next owner takes the lock and resumes from the checkpoint, bit for bit.

- The lock is the truth (runs.py): whoever holds it trains the run, and its file names the
  holder's PID and role. That PID is whom a take-over or `kafkarnn stop` signals.
- Order: the next owner writes a `handover` note (who asks, and why), sends SIGTERM (which
  every trainer answers by saving and ending), waits for the lock to be free, then takes it.
  Never two writers, even for an instant.
- A background trainer is `python -m kafkarnn train --background --run NAME …` (its command
  line is train/life.py's) in a new session (no controlling terminal, so the SIGHUP of a
  dropped connection never reaches it), its output appended to the run's train.log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import PRIVATE_FILE, atomic_write
from kafkarnn.runs.folder import Run
from kafkarnn.runs.lock import Holder, RunInUse, RunLock
from kafkarnn.seam import Ask, Role

HANDOVER_TIMEOUT_S = 120.0    # a trainer finishes its step and saves before it lets go
NOTE_FRESH_S = 300.0          # an older handover note is left over from a failed attempt
POLL_S = 0.05


# ---- the handover note: who asked a trainer to stop, and why ----------------------------------

def write_note(run: Run, action: Ask) -> None:
    data = json.dumps({"pid": os.getpid(), "action": Ask(action).value, "time": time.time()}).encode()
    atomic_write(run.handover_path, lambda f: f.write(data))


def read_note(run: Run) -> dict | None:
    """The note of a process (not this one) that asked for the run in the last few minutes."""
    try:
        note = json.loads(run.handover_path.read_bytes())
        pid, when = note["pid"], note["time"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if type(pid) is not int or pid == os.getpid() or not isinstance(when, (int, float)):
        return None
    return note if time.time() - when < NOTE_FRESH_S else None


def clear_note(run: Run) -> None:
    try:
        note = json.loads(run.handover_path.read_bytes())
    except (OSError, ValueError):
        return
    if isinstance(note, dict) and note.get("pid") == os.getpid():
        run.handover_path.unlink(missing_ok=True)


# ---- taking a run's lock, from whoever holds it -----------------------------------------------

def lock_run(run: Run, role: Role, *, take_over: bool = False, after_pid: int | None = None,
             timeout: float = HANDOVER_TIMEOUT_S) -> RunLock:
    """Take the run's lock for `role`.

    - take_over: a monitor or background trainer holding the run is asked to save and end,
      and the lock is taken when it lets go (a headless trainer is refused: it belongs to a
      script or a service manager);
    - after_pid: the holder is handing the run to us (we are its background trainer): wait
      while it saves and exits.
    Otherwise a busy run is refused with "run NAME is in use by process PID".
    """
    try:
        return run.lock(role)
    except RunInUse as busy:
        holder = busy.holder
        if holder is None or not holder.pid:
            raise
        if after_pid is not None and holder.pid == after_pid:
            return _wait_for_lock(run, role, holder, timeout)
        if not take_over or after_pid is not None:
            raise
        if holder.role not in (Role.MONITOR, Role.BACKGROUND):
            raise KafkarnnError(f"run {run.name} is trained by process {holder.pid} "
                                "(--headless): end it first, e.g. `kafkarnn stop --run "
                                f"{run.name}`") from None
        ask(run, holder, Ask.TAKE_OVER)
        return _wait_for_lock(run, role, holder, timeout)


def ask(run: Run, holder: Holder, action: Ask) -> None:
    """Ask the holder to save and end: the note says who asks, SIGTERM does the asking."""
    try:
        write_note(run, action)
    except OSError as e:
        raise KafkarnnError(f"cannot write {run.handover_path} ({e.strerror or e})") from None
    try:
        os.kill(holder.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass                                     # it just ended: its lock is free or soon will be
    except PermissionError:
        clear_note(run)
        raise KafkarnnError(f"run {run.name} is in use by process {holder.pid}, which this user "
                            "may not signal") from None


def _wait_for_lock(run: Run, role: Role, holder: Holder, timeout: float) -> RunLock:
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return run.lock(role, retry_s=0)
            except RunInUse as busy:
                now = busy.holder
                if now is not None and now.pid and now.pid != holder.pid:
                    raise KafkarnnError(f"run {run.name} was just taken over by process "
                                        f"{now.pid}") from None
            if time.monotonic() > deadline:
                raise KafkarnnError(f"run {run.name}: process {holder.pid} did not hand it over "
                                    f"within {timeout:.0f} s and is still training") from None
            time.sleep(POLL_S)
    finally:
        clear_note(run)


def wait_until_free(run: Run, holder: Holder, timeout: float = HANDOVER_TIMEOUT_S) -> bool:
    """Wait until `holder` no longer holds the run; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = run.holder()
        if now is None or now.pid != holder.pid:
            return True
        time.sleep(POLL_S)
    return False


def stop(run: Run, timeout: float = HANDOVER_TIMEOUT_S) -> Holder:
    """Ask the run's trainer to save and end, and return when it has. Returns who it was."""
    holder = run.holder()
    if holder is None or not holder.pid:
        raise KafkarnnError(f"run {run.name} is not training")
    ask(run, holder, Ask.STOP)
    try:
        if not wait_until_free(run, holder, timeout):
            raise KafkarnnError(f"run {run.name}: process {holder.pid} did not stop within "
                                f"{timeout:.0f} s")
    finally:
        clear_note(run)
    return holder


# ---- starting a background trainer ------------------------------------------------------------

def start_background(run: Run, argv: list[str]) -> subprocess.Popen:
    """Start the trainer in a new session with no terminal, appending its output to train.log."""
    fd = os.open(run.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                start_new_session=True, close_fds=True)
    finally:
        os.close(fd)


def wait_until_training(run: Run, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """True once `proc` holds the run's lock; False if it ended first (or on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = run.holder()
        if holder is not None and holder.pid == proc.pid:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(POLL_S)
    return False


def log_tail(run: Run, lines: int = 1) -> str:
    """The last lines of the run's train.log (what a background trainer said before it ended)."""
    try:
        text = run.log_path.read_bytes()[-4096:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    return " ".join(text.strip().splitlines()[-lines:])


def training_runs(runs: list[Run]) -> list[tuple[Run, Holder]]:
    """The runs of the list that some process trains now, with who it is."""
    out = []
    for run in runs:
        holder = run.holder()
        if holder is not None:
            out.append((run, holder))
    return out

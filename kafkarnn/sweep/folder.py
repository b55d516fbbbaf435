"""A sweep's folder, DATA/sweeps/NAME/: plan.json, state.json, coordinator.log and a lock.

plan.json is the grid (written once, when the sweep is made); state.json is what the
coordinator knows of each trial (it alone writes it, atomically); the lock is held by the
coordinator while it runs, and names its PID, like a run's lock. Owner-only, like a run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from enum import Enum
from pathlib import Path

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import PRIVATE_FILE, atomic_write
from kafkarnn.runs.folder import make_private, valid_run_name
from kafkarnn.sweep.plan import Plan


class TrialStatus(str, Enum):
    WAITING = "waiting"          # not started, or interrupted: it resumes from its checkpoint
    RUNNING = "running"          # a trainer of this sweep trains it now
    ELSEWHERE = "elsewhere"      # another process holds the run (e.g. `kafkarnn attach`)
    DONE = "done"                # it reached its limit
    STOPPED = "stopped"          # `kafkarnn stop --run` ended it: the next `kafkarnn sweep` resumes it
    FAILED = "failed"            # its trainer ended with an error (see the run's train.log)

    def __str__(self) -> str:
        return self.value


class SweepBusy(KafkarnnError):
    def __init__(self, name: str, pid: int):
        super().__init__(f"sweep {name} is coordinated by process {pid}")
        self.pid = pid


class SweepFolder:
    def __init__(self, data_dir: Path, name: str):
        self.name = valid_run_name(name)
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / "sweeps" / name
        self.plan_path = self.path / "plan.json"
        self.state_path = self.path / "state.json"
        self.lock_path = self.path / "lock"
        self.log_path = self.path / "coordinator.log"

    def exists(self) -> bool:
        return self.plan_path.is_file()

    def create(self) -> None:
        make_private(self.data_dir, self.data_dir / "sweeps", self.path)

    def read_plan(self) -> Plan:
        try:
            data = self.plan_path.read_bytes()
        except FileNotFoundError:
            raise KafkarnnError(f"no sweep named {self.name} in {self.data_dir}: give its grid "
                                "(e.g. --model rnn,lstm --max-seconds 300)") from None
        except OSError as e:
            raise KafkarnnError(f"cannot read {self.plan_path} ({e.strerror or e})") from None
        return Plan.from_json(data, str(self.plan_path))

    def write_plan(self, plan: Plan) -> None:
        self.create()
        data = plan.to_json()
        try:
            atomic_write(self.plan_path, lambda f: f.write(data))
        except OSError as e:
            raise KafkarnnError(f"cannot write {self.plan_path} ({e.strerror or e})") from None

    def read_state(self) -> dict:
        """The coordinator's last word: {"trials": {run: {...}}, ...}; empty when none or damaged
        (the trials' runs are the truth, and the next coordinator rebuilds it from them)."""
        try:
            state = json.loads(self.state_path.read_bytes())
        except (OSError, ValueError):
            return {"trials": {}}
        if not isinstance(state, dict) or not isinstance(state.get("trials"), dict):
            return {"trials": {}}
        return state

    def write_state(self, state: dict) -> None:
        data = (json.dumps(state, indent=1) + "\n").encode()
        atomic_write(self.state_path, lambda f: f.write(data))

    # ---- the coordinator's lock: one coordinator per sweep ----

    def lock(self) -> int:
        """Take the lock (a file descriptor, held until the process ends) or raise SweepBusy."""
        self.create()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = _pid_in(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SweepBusy(self.name, pid) from None
            raise KafkarnnError(f"cannot lock sweep {self.name} ({e.strerror or e})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} sweep\n".encode(), 0)
        return fd

    def coordinator(self) -> int | None:
        """The PID of the coordinator that runs the sweep now, or None (a shared probe, dropped at once)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return _pid_in(fd) or -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _pid_in(fd: int) -> int:
    words = os.pread(fd, 64, 0).decode("ascii", errors="replace").split()
    return int(words[0]) if words and words[0].isdigit() else 0


def list_sweep_runs(data_dir: Path, name: str) -> list[str]:
    """The run names of sweep `name`, in the plan's order (what `kafkarnn compare` compares)."""
    return [t.run for t in SweepFolder(data_dir, name).read_plan().trials()]

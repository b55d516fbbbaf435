"""A run's write lock: one process trains a run at a time.

Whoever holds the flock on the run's `lock` file trains it (the kernel releases it if that
process dies, even by SIGKILL), and the file names the holder, "PID ROLE", for whoever wants to
ask it to stop (handover.py). A reader's probe takes a shared lock for microseconds and never
blocks a trainer.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import PRIVATE_FILE
from kafkarnn.seam import Role

LOCK_RETRY_S = 1.0   # a reader's probe holds the lock for microseconds: a start never fails on one


@dataclass(frozen=True)
class Holder:
    """Who trains a run now, as its lock file names them."""
    pid: int
    role: Role | None                 # None: a lock written by an older version (PID only)


class RunLock:
    """An exclusive flock on a run's lock file. `unlock()` or leave the `with` block to release it.

    `recovered` names the previous holder when it ended without releasing the lock (a kill, a
    crash): its PID was still in the file."""

    def __init__(self, fd: int, path: Path, recovered: Holder | None = None):
        self._fd: int | None = fd
        self.path = path
        self.recovered = recovered

    def unlock(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # clear our PID while still holding the lock
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)  # the file stays: deleting a lock file races with the next locker

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()


def take_lock(path: Path, name: str, role: Role, retry_s: float = LOCK_RETRY_S) -> RunLock:
    """Take the write lock of run `name` (its lock file at `path`) or raise RunInUse naming the
    process that holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    deadline = time.monotonic() + retry_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as e:
            busy = e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
            if busy and time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            holder = _read_holder(fd) if busy else None
            os.close(fd)
            if not busy:
                raise KafkarnnError(f"cannot lock run {name} ({e.strerror or e})") from None
            raise RunInUse(name, holder) from None
    try:
        recovered = _parse_holder(os.pread(fd, 64, 0))   # still named: its holder never unlocked
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {role.value}\n".encode(), 0)
    except OSError:
        recovered = None  # the PID only names us to others: a full disk must not block a resume
    except BaseException:
        os.close(fd)  # closing releases the lock too
        raise
    return RunLock(fd, path, recovered)


def holder_of(path: Path) -> Holder | None:
    """Who holds the lock file at `path` now, or None. Probes with a shared lock that it drops
    at once, so it never blocks a trainer (whose take_lock() retries for a moment)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            return _read_holder(fd) or Holder(0, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunInUse(KafkarnnError):
    """Another process holds the run's lock."""

    def __init__(self, name: str, holder: Holder | None):
        who = f"process {holder.pid}" if holder and holder.pid else "another process"
        super().__init__(f"run {name} is in use by {who}")
        self.holder = holder


def _parse_holder(data: bytes) -> Holder | None:
    """ "PID ROLE" (or a bare PID, from older versions) → Holder; anything else → None."""
    words = data.decode("ascii", errors="replace").split()
    if not words or not words[0].isdigit() or len(words) > 2:
        return None
    role = None
    if len(words) == 2:
        try:
            role = Role(words[1])
        except ValueError:
            return None
    return Holder(int(words[0]), role)


def _read_holder(fd: int) -> Holder | None:
    """Who holds the lock file, as they wrote it. It may be empty for a moment while they write it."""
    for _ in range(20):
        holder = _parse_holder(os.pread(fd, 64, 0))
        if holder is not None:
            return holder
        time.sleep(0.01)
    return None

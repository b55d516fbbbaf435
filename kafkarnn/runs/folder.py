"""Run folders: where a run's config, checkpoints, metrics and samples live, and who may write them.

A run is `DATA_DIR/runs/<name>/` holding config.json, checkpoint.npz, best.npz, metrics.jsonl,
samples.txt, train.log (a background trainer's output) and a `lock` file. One process writes a
run at a time: whoever holds the flock on `lock` (released by the kernel if that process dies)
trains the run, and the file names it, "PID ROLE". Readers such as `list_runs` never take the
lock and never fail on one bad folder.

Everything a run creates is its owner's alone (folders 0700, files 0600): a model and its
samples can reveal a private text.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import PRIVATE_FILE, atomic_write
from kafkarnn.seam import Role

ENV_HOME = "KAFKARNN_HOME"
MAX_NAME = 64
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)
PRIVATE_DIR = 0o700
LOCK_RETRY_S = 1.0   # a reader's probe holds the lock for microseconds: a start never fails on one


def resolve_data_dir(cli_value: str | None) -> Path:
    """`--data-dir` if given, else $KAFKARNN_HOME, else the platform's user data folder. Not created here."""
    if cli_value:
        chosen = Path(cli_value)
    elif os.environ.get(ENV_HOME):
        chosen = Path(os.environ[ENV_HOME])
    else:
        chosen = platformdirs.user_data_path("kafkarnn")
    return Path(os.path.abspath(chosen.expanduser()))


def valid_run_name(name: str) -> str:
    """Return `name` if it is a usable run name, else raise KafkarnnError."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME_RE.fullmatch(name):
        raise KafkarnnError(f"invalid run name {name!r}: use letters, digits, - _ .")
    return name


def next_free_name(data_dir: Path, base: str) -> str:
    """`base` if no run folder has that name yet, else base-2, base-3, ... (the first unused one)."""
    valid_run_name(base)
    runs = Path(data_dir) / "runs"
    if not (runs / base).exists():
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: MAX_NAME - len(suffix)] + suffix  # stay within the length limit
        if not (runs / candidate).exists():
            return candidate
        n += 1


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


class Run:
    """One run folder, `data_dir/runs/<name>/`. Creating the object touches nothing on disk."""

    def __init__(self, data_dir: Path, name: str):
        self.name = valid_run_name(name)
        self.data_dir = Path(os.path.abspath(Path(data_dir).expanduser()))

    def __repr__(self) -> str:
        return f"Run({str(self.data_dir)!r}, {self.name!r})"

    @property
    def path(self) -> Path:
        return self.data_dir / "runs" / self.name

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.npz"

    @property
    def best_path(self) -> Path:
        return self.path / "best.npz"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.txt"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def lock_path(self) -> Path:
        return self.path / "lock"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def handover_path(self) -> Path:
        return self.path / "handover"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def create(self) -> None:
        for folder in (self.data_dir, self.data_dir / "runs", self.path):
            if not folder.is_dir():
                with contextlib.suppress(FileExistsError):
                    folder.mkdir(mode=PRIVATE_DIR, parents=True)

    # ---- config ----

    def read_config(self) -> dict:
        path = self.config_path
        try:
            config = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise KafkarnnError(f"run {self.name} has no config ({path} does not exist)") from None
        except OSError as e:
            raise KafkarnnError(f"cannot read config {path} ({e.strerror or e})") from None
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise KafkarnnError(f"config {path} is corrupt (not valid JSON)") from None
        if not isinstance(config, dict):
            raise KafkarnnError(f"config {path} is corrupt (not a JSON object)")
        return config

    def write_config(self, config: dict) -> None:
        data = (json.dumps(config, indent=2) + "\n").encode("utf-8")  # encode first: a TypeError writes nothing
        atomic_write(self.config_path, lambda f: f.write(data))

    # ---- metrics and samples (append-only) ----

    def append_metrics(self, record: dict) -> None:
        _append(self.metrics_path, (json.dumps(record) + "\n").encode("utf-8"))

    def read_metrics(self) -> list[dict]:
        """Every valid JSON-object line; a torn last line (from a kill) or any garbage line is skipped."""
        try:
            data = self.metrics_path.read_bytes()
        except FileNotFoundError:
            return []
        return [rec for line in data.split(b"\n") if (rec := parse_record(line)) is not None]

    def append_log(self, line: str) -> None:
        """A line in train.log, with the time (what a trainer says when no terminal is there)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        _append(self.log_path, f"{stamp} {line}\n".encode("utf-8", errors="replace"))

    def append_sample(self, iteration: int, text: str) -> None:
        _append(self.samples_path, f"--- iter {iteration} ---\n{text}\n".encode("utf-8", errors="replace"))

    # ---- one writer at a time ----

    def lock(self, role: Role = Role.HEADLESS, retry_s: float = LOCK_RETRY_S) -> RunLock:
        """Take the run's write lock or raise RunInUse naming the process that holds it."""
        self.create()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
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
                    raise KafkarnnError(f"cannot lock run {self.name} ({e.strerror or e})") from None
                raise RunInUse(self.name, holder) from None
        try:
            recovered = _parse_holder(os.pread(fd, 64, 0))   # still named: its holder never unlocked
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {role.value}\n".encode(), 0)
        except OSError:
            recovered = None  # the PID only names us to others: a full disk must not block a resume
        except BaseException:
            os.close(fd)  # closing releases the lock too
            raise
        with contextlib.suppress(OSError):
            os.chmod(self.path, PRIVATE_DIR)   # a folder made by an older version was 0755
        self._remove_stale_temp_files()
        return RunLock(fd, self.lock_path, recovered)

    def holder(self) -> Holder | None:
        """Who trains this run now, or None. Probes with a shared lock that it drops at once,
        so it never blocks a trainer (whose lock() retries for a moment)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
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

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files that a killed writer left mid-save. Safe: we hold the lock, so no save is running."""
        for tmp in self.path.glob(".*.tmp-*"):
            try:
                tmp.unlink()
            except OSError:
                pass


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


def _append(path: Path, data: bytes) -> None:
    """Append `data` in one write; if a kill left a torn last line, start on a fresh line."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        written = os.write(fd, data)
        while written < len(data):  # only on a short write (e.g. a signal); normally never
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def parse_record(line: bytes) -> dict | None:
    """One metrics line as a dict, or None when it is not a JSON object (a torn or garbage line)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None

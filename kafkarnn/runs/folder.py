"""Run folders: where a run's config, checkpoints, metrics and samples live, and who may write them.

A run is `DATA_DIR/runs/<name>/` holding config.json, checkpoint.npz, best.npz, metrics.jsonl,
samples.txt, train.log (a background trainer's output) and a `lock` file. One process writes a
run at a time: whoever holds the flock on `lock` (lock.py) trains the run. Readers such as
`list_runs` never take the lock and never fail on one bad folder.

Everything a run creates is its owner's alone (folders 0700, files 0600): a model and its
samples can reveal a private text.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path

import platformdirs

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import PRIVATE_DIR, PRIVATE_FILE, atomic_write
from kafkarnn.runs.lock import LOCK_RETRY_S, Holder, RunLock, holder_of, take_lock
from kafkarnn.seam import Role

ENV_HOME = "KAFKARNN_HOME"
MAX_NAME = 64
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)


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



def make_private(*folders: Path) -> None:
    """Each folder that is missing, made owner-only (0700); two makers at once are fine."""
    for folder in folders:
        if not folder.is_dir():
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=PRIVATE_DIR, parents=True)

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
        make_private(self.data_dir, self.data_dir / "runs", self.path)

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
        lock = take_lock(self.lock_path, self.name, role, retry_s)
        with contextlib.suppress(OSError):
            os.chmod(self.path, PRIVATE_DIR)   # a folder made by an older version was 0755
        self._remove_stale_temp_files()
        return lock

    def holder(self) -> Holder | None:
        """Who trains this run now, or None (lock.py `holder_of`: it never blocks a trainer)."""
        return holder_of(self.lock_path)

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files that a killed writer left mid-save. Safe: we hold the lock, so no save is running."""
        for tmp in self.path.glob(".*.tmp-*"):
            try:
                tmp.unlink()
            except OSError:
                pass


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

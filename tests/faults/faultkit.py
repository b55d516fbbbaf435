"""What the fault tests share: child processes and their output, a deadline for hangs, and
quick looks at a run's checkpoint."""

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from kafkarnn.runs.checkpoint import load_checkpoint

RUN = "porter-rnn"


def spawn(*args, code: str | None = None, **kw) -> subprocess.Popen:
    """`python -m kafkarnn ARGS` (or `python -c CODE ARGS`) with piped, line-buffered output."""
    cmd = [sys.executable, "-m", "kafkarnn"] if code is None else [sys.executable, "-c", code]
    return subprocess.Popen([*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def cli(*args, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kafkarnn", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)


def error_line(stderr: str) -> str:
    """The whole of stderr must be one `kafkarnn: error:` line: no traceback, no warnings."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kafkarnn: error: "), stderr
    return lines[0]


class Watch:
    """Reads a child's stdout and stderr in threads so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines, self.cond = proc, [], threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, n), daemon=True)
                        for s, n in ((proc.stdout, "out"), (proc.stderr, "err"))]
        for r in self.readers:
            r.start()

    def _read(self, stream, name):
        for line in stream:
            with self.cond:
                self.lines.append((name, line.rstrip("\n")))
                self.cond.notify_all()

    def wait_for(self, text: str, after: int = 0, timeout: float = 60) -> int:
        """Index of the first line from `after` on that contains `text`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.lines)):
                    if text in self.lines[i][1]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self.readers)):
                    raise AssertionError(f"no line with {text!r}: {self.lines[-20:]}")
                self.cond.wait(min(left, 0.1))

    def line(self, i: int) -> str:
        with self.cond:
            return self.lines[i][1]

    def finish(self, timeout: float = 60) -> int:
        rc = self.proc.wait(timeout)
        for r in self.readers:
            r.join(5)
        return rc

    def text(self, name: str) -> str:
        with self.cond:
            return "\n".join(line for n, line in self.lines if n == name)


@contextlib.contextmanager
def deadline(seconds: float):
    """Turn a hang into a TimeoutError in this (main) thread."""
    def fire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def iteration_of(path: Path) -> int:
    return load_checkpoint(path)[1]["iteration"]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp-*"))


def all_finite(path: Path) -> bool:
    arrays, _ = load_checkpoint(path)
    return all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")

"""A `kafkarnn` in a real pseudo-terminal, for tests: what it printed, keys typed at it, and hanging up.

Closing the master side is what a dropped SSH connection does to the program: the kernel
hangs up the terminal's session and sends it SIGHUP, and every later write to it fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import sys
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Terminal:
    def __init__(self, *args, home: Path, size=(100, 30), env: dict | None = None):
        """`kafkarnn *args` on a new pty of `size` (columns, lines); `env` adds to (or, with a
        value of None, removes from) the environment it inherits."""
        argv = [sys.executable, "-m", "kafkarnn", *map(str, args)]
        environ = dict(os.environ, TERM="xterm-256color", KAFKARNN_HOME=str(home),
                       COLUMNS=str(size[0]), LINES=str(size[1]), PYTHONPATH=str(REPO))
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        self.output = bytearray()
        self.status: int | None = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:                              # the child: the program, on the pty
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
                os.execve(argv[0], argv, environ)
            finally:
                os._exit(127)                          # never back into the test run
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.output.extend(data)

    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def hang_up(self) -> None:
        """Close the master side, as a dropped connection does."""
        os.close(self.fd)
        self.fd = -1

    def wait(self, timeout: float = 30) -> int:
        """Exit status of the program (it must end within `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.status = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"kafkarnn did not end; it printed: {self.text()[-1500:]}")
            time.sleep(0.05)
        self.reader.join(2)
        return self.status

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def until(condition, timeout: float = 30, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def last_iteration(run: Path) -> int:
    """The iteration of the run's last metrics line (0 before the first)."""
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            return json.loads(line)["iter"]
        except (ValueError, KeyError):
            continue
    return 0


def processes_of(run_name: str) -> list[int]:
    """PIDs of kafkarnn processes whose command line names the run (background trainers do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafkarnn" in args and run_name.encode() in args and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found

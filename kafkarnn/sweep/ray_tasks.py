"""Trials on a Ray cluster: each one a Ray task that runs an ordinary background trainer.

Ray is optional (`pip install "kafkarnn[ray]"`) and imported only here, only for `--ray`.
The task asks Ray for `threads` CPUs, so Ray places no more trials on a node than it has cores
for; the trainer writes its run in the shared data folder, which every node must see at the
same path. To stop, the coordinator writes a `stop` file in the sweep's folder: every task
that sees it asks its trainer to save and end (SIGTERM), and returns when it has.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import PRIVATE_FILE
from kafkarnn.runs.folder import Run

CONNECT_TIMEOUT_S = 5.0
POLL_S = 0.2


def import_ray():
    try:
        import ray
    except ImportError:
        raise KafkarnnError('--ray needs Ray, which is not installed: pip install "kafkarnn[ray]"') from None
    return ray


def check_address(address: str) -> None:
    """Refuse at once an address whose head does not answer (Ray itself would wait a minute);
    `auto` is tried for real (Ray finds the cluster this machine belongs to)."""
    ray = import_ray()
    if address == "auto":
        connect(address)
        ray.shutdown()
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise KafkarnnError(f"--ray {address!r}: give HOST:PORT of the cluster's head, or auto")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise KafkarnnError(f"cannot reach the Ray cluster at {address} ({e.strerror or e})") from None


def connect(address: str):
    if address != "auto":
        check_address(address)
    ray = import_ray()
    try:
        ray.init(address=address, logging_level="warning", log_to_driver=False)
    except Exception as e:                      # Ray raises ConnectionError, RuntimeError, ...
        said = " ".join(str(e).split())[:200]
        raise KafkarnnError(f"cannot join the Ray cluster at {address} ({said})") from None
    return ray


def run_trainer(argv: list[str], log_path: str, stop_path: str) -> int:
    """On a Ray worker: the trainer, its output appended to the run's train.log; its exit code."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "kafkarnn", *argv], stdin=subprocess.DEVNULL,
                                stdout=fd, stderr=fd, start_new_session=True, close_fds=True)
    finally:
        os.close(fd)
    asked = False
    while proc.poll() is None:
        if not asked and os.path.exists(stop_path):
            proc.send_signal(signal.SIGTERM)       # the trainer saves, then ends
            asked = True
        time.sleep(POLL_S)
    return proc.returncode


class RayTrials:
    """Trials as Ray tasks of `threads` CPUs each."""

    def __init__(self, address: str, threads: int, stop_path: Path):
        self.ray = connect(address)
        self.stop_path = stop_path
        stop_path.unlink(missing_ok=True)          # left by the last stop
        self.task = self.ray.remote(num_cpus=threads, max_retries=0)(run_trainer)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, cpus // threads)      # more would only wait in Ray's queue

    def start(self, run: Run, argv: list[str]):
        return self.task.remote(argv, str(run.log_path), str(self.stop_path))

    def ended(self, ref) -> int | None:
        ready, _ = self.ray.wait([ref], timeout=0)
        if not ready:
            return None
        try:
            return int(self.ray.get(ref))
        except Exception:                          # the worker died (its node went away)
            return -1

    def stop(self, ref) -> None:
        if not self.stop_path.exists():
            self.stop_path.touch(mode=PRIVATE_FILE)

    def close(self) -> None:
        self.ray.shutdown()

"""Write errors and full disks: a failed save is reported, retried and never damages the
checkpoint on disk; a session whose last save failed ends with an error, not silently.
"""

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY
from faultkit import spawn, error_line, Watch, iteration_of, RUN

from kafkarnn.main import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


def fsize_limit(limit: int):
    """For preexec_fn: files may not grow past `limit` bytes (the soft limit; the hard one stays)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # so a write past it fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def make_read_only(folder: Path):
    """Make `folder` refuse new files, even for root (chattr +i); returns the undo, or None."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = lambda: folder.chmod(0o755)  # noqa: E731
    else:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)],
                                                        capture_output=True).returncode:
            return None
        undo = lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)  # noqa: E731
    try:
        (folder / "probe").touch()
    except OSError:
        return undo
    (folder / "probe").unlink()
    undo()
    return None


@pytest.mark.parametrize("fault", ["file-size limit", "read-only folder"])
def test_failed_saves_are_reported_retried_and_keep_the_checkpoint(home, book, capsys, fault):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    run = home / "runs" / RUN
    good = (run / "checkpoint.npz").read_bytes()
    undo, preexec = None, None
    if fault == "read-only folder":
        undo = make_read_only(run)
        if undo is None:
            pytest.skip("cannot make a folder read-only here")
    else:
        preexec = fsize_limit(len(good) // 2)
    try:
        child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05",
                            preexec_fn=preexec))
        first = child.wait_for("(checkpoint.npz: ")
        second = child.wait_for("(checkpoint.npz: ", after=first + 1)
        a, b = (int(re.search(r"iteration (\d+)", child.line(i)).group(1)) for i in (first, second))
        assert b > a                                                   # training goes on between tries
        assert any(why in child.line(first) for why in
                   ("File too large", "Operation not permitted", "Permission denied"))
        assert "the previous checkpoint.npz is intact, will retry" in child.line(first)
        assert (run / "checkpoint.npz").read_bytes() == good
        if undo:
            undo()
            undo = None
        else:
            resource.prlimit(child.proc.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        child.wait_for("saved at", after=second)                       # the retry works
        child.proc.send_signal(signal.SIGTERM)
        assert child.finish() == 0, child.text("err")
    finally:
        if undo:
            undo()
        if child.proc.poll() is None:
            child.proc.kill()
    assert iteration_of(run / "checkpoint.npz") > b


@pytest.mark.parametrize("ending", ["limit", "SIGTERM"])
def test_a_failed_final_save_is_an_error_not_a_silent_exit(home, book, capsys, ending):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    run = home / "runs" / RUN
    good = (run / "checkpoint.npz").read_bytes()
    args = ["--max-iters", "40"] if ending == "limit" else []
    child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "1000", *args,
                        preexec_fn=fsize_limit(len(good) // 2)))
    if ending == "SIGTERM":
        child.wait_for("resuming at iteration 5")
        time.sleep(0.5)
        child.proc.send_signal(signal.SIGTERM)
    assert child.finish() == 2
    err = child.text("err").splitlines()
    assert err[0].startswith("kafkarnn: run porter-rnn (resuming at iteration 5)")
    it = 40 if ending == "limit" else int(re.search(r"at iteration (\d+) \(File", err[-1]).group(1))
    assert err[1:] == [f"kafkarnn: error: run {RUN}: checkpoint.npz could not be saved at iteration "
                       f"{it} (File too large); the previous checkpoint is intact and the progress "
                       "since it is lost"]
    assert f"save failed at iteration {it} (checkpoint.npz: File too large)" in child.text("out")
    assert (run / "checkpoint.npz").read_bytes() == good


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs (root only); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount") or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_disk_full_then_space_freed(small_disk, book, monkeypatch, capsys):
    home = small_disk / "home"
    monkeypatch.setenv("KAFKARNN_HOME", str(home))
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    run = home / "runs" / RUN
    good = (run / "checkpoint.npz").read_bytes()
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:                         # fill the disk to the last page
        with contextlib.suppress(OSError):
            while f.write(b"\0" * 4096):
                pass
    child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05"))
    try:
        first = child.wait_for("save failed at iteration")
        assert "No space left on device" in child.line(first)
        second = child.wait_for("save failed at iteration", after=first + 1)
        assert (run / "checkpoint.npz").read_bytes() == good
        filler.unlink()
        child.wait_for("saved at", after=second)
        child.proc.send_signal(signal.SIGTERM)
        assert child.finish() == 0, child.text("err")
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.finish()
    assert iteration_of(run / "checkpoint.npz") > 5


def test_a_new_run_where_nothing_can_be_written(home, book, capsys):
    home.mkdir(parents=True)
    undo = make_read_only(home)
    if undo is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 2
    finally:
        undo()
    assert error_line(capsys.readouterr().err).startswith(f"kafkarnn: error: cannot open run folder {home}")


def test_a_new_run_on_a_full_disk(small_disk, book, monkeypatch, capsys):
    monkeypatch.setenv("KAFKARNN_HOME", str(small_disk / "home"))
    with open(small_disk / "filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while f.write(b"\0" * 4096):
                pass
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith("kafkarnn: error: cannot ") and "No space left on device" in line
    assert not (small_disk / "home" / "runs" / RUN).exists()          # no half-made run left behind

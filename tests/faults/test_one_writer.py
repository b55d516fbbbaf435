"""One writer per run: a second trainer is refused in one line while readers (sample, runs)
work meanwhile.
"""

import json
import sys
import time

import pytest
from conftest import TINY
from faultkit import spawn, cli, error_line, Watch, iteration_of, temp_files, RUN

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


def test_one_writer_per_run_and_readers_meanwhile(home, book):
    run = home / "runs" / RUN
    first = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05"))
    try:
        first.wait_for("saved at")
        pid = first.proc.pid
        busy = f"kafkarnn: error: run {RUN} is in use by process {pid}"
        for args, expected in ((["--headless", "--corpus", book, *TINY, "--max-iters", "3"], busy),
                               (["--corpus", book, *TINY], busy),          # no --headless, no terminal
                               (["--headless", "--run", RUN, "--hidden", "32"],   # a mismatch is
                                f"kafkarnn: error: run {RUN} was created with --hidden 16; pass "   # told first
                                "--new to start a fresh run with --hidden 32, or leave --hidden "
                                "out to continue it")):
            started = time.monotonic()
            second = cli(*args)
            assert time.monotonic() - started < 15                         # at once, not after a wait
            assert second.returncode == 2
            assert error_line(second.stderr) == expected
        sample = cli("sample", "--run", RUN, "--length", "30", "--seed", "1")
        assert sample.returncode == 0, sample.stderr
        assert len(sample.stdout) == 31
        listed = cli("runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["name"] for r in json.loads(listed.stdout)] == [RUN]
        assert cli("runs").returncode == 0
        assert first.proc.poll() is None                                   # still training
    finally:
        first.proc.kill()
        first.finish()
    assert (run / "lock").read_text().split()[0] == str(pid)              # a dead holder's PID ...
    it = iteration_of(run / "checkpoint.npz")
    again = cli("--headless", "--corpus", book, *TINY, "--max-iters", it + 3)
    assert again.returncode == 0, again.stderr                            # ... does not block
    assert f"resuming at iteration {it:,}" in again.stderr
    assert iteration_of(run / "checkpoint.npz") == it + 3
    assert temp_files(run) == []

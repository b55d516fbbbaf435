"""Sweeps with real processes: a coordinator in the background, trainers side by side, a stop
and a resume that end exactly like a sweep never interrupted, a time budget that survives an
interruption, and a view that Ctrl-C leaves while the sweep goes on."""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.runs.folder import Run
from kafkarnn.sweep.folder import SweepFolder

TINY = ["--hidden", "8", "--batch", "2", "--seq-len", "8"]
# steps of a few ms, so that a stop lands in the middle of a trial
SLOW = ["--hidden", "64", "--batch", "4", "--seq-len", "32", "--save-every", "1000"]


@pytest.fixture(autouse=True)
def no_sweep_left(home):
    """Whatever a test leaves running (a failed one, say) is asked to end: the coordinators of
    its sweeps (which stop their trainers), then any trainer still holding one of its runs."""
    yield
    for folder in (home / "sweeps").glob("*"):
        pid = SweepFolder(home, folder.name).coordinator()
        if pid:
            os.kill(pid, signal.SIGTERM)
            until(lambda: SweepFolder(home, folder.name).coordinator() is None)
    for folder in (home / "runs").glob("*"):
        holder = Run(home, folder.name).holder()
        if holder is not None and holder.pid:
            os.kill(holder.pid, signal.SIGTERM)


def kafkarnn(*args, home, timeout: float = 90, **kw):
    env = dict(os.environ, KAFKARNN_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "kafkarnn", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


def until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("timed out")


def params(home, name):
    arrays, meta = load_checkpoint(Run(home, name).checkpoint_path)
    return {k: v for k, v in arrays.items() if k.startswith("param/")}, meta


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def states(home, name):
    return {k: v["status"] for k, v in SweepFolder(home, name).read_state()["trials"].items()}


def test_a_sweep_trains_every_point_and_compares_them(home, book):
    done = kafkarnn("sweep", "s", "--corpus", book, *TINY, "--model", "rnn,gru", "--max-iters",
                    "30", "--save-every", "1", home=home)
    assert done.returncode == 0, done.stderr
    assert "best validation loss first" in done.stdout and "s-model_gru" in done.stdout
    assert "sweep s: 2 done" in done.stdout                      # the progress lines of a log
    assert states(home, "s") == {"s-model_rnn": "done", "s-model_gru": "done"}
    for name in ("s-model_rnn", "s-model_gru"):
        run = Run(home, name)
        assert run.read_config()["model"] == name[-3:] and params(home, name)[1]["iteration"] == 30
        assert stat.S_IMODE(os.stat(run.checkpoint_path).st_mode) == 0o600
    folder = SweepFolder(home, "s")
    for path in (folder.plan_path, folder.state_path, folder.log_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listed = json.loads(kafkarnn("runs", "--json", home=home).stdout)
    assert {r["name"] for r in listed} == {"s-model_rnn", "s-model_gru"}
    again = kafkarnn("sweep", "s", home=home)                    # done: only the comparison
    assert again.returncode == 0 and "s-model_rnn" in again.stdout
    assert params(home, "s-model_rnn")[1]["iteration"] == 30


def test_a_stopped_sweep_resumes_and_ends_as_if_never_stopped(home, book):
    grid = ["--corpus", book, *SLOW, "--model", "rnn,gru", "--max-iters", "500", "--threads", "1"]
    whole = kafkarnn("sweep", "whole", *grid, home=home)
    assert whole.returncode == 0, whole.stderr
    started = kafkarnn("sweep", "cut", *grid, "--detach", home=home)
    assert started.returncode == 0 and "runs in the background" in started.stderr
    until(lambda: Run(home, "cut-model_gru").holder() is not None)
    time.sleep(0.3)
    stopped = kafkarnn("sweep", "cut", "--stop", home=home)
    assert stopped.returncode == 0 and "stopped sweep cut" in stopped.stderr, stopped.stderr
    assert SweepFolder(home, "cut").coordinator() is None
    cut_at = [params(home, n)[1]["iteration"] for n in ("cut-model_rnn", "cut-model_gru")]
    assert min(cut_at) < 500, "the stop came too late to interrupt anything"
    assert "waiting" in states(home, "cut").values()
    resumed = kafkarnn("sweep", "cut", home=home)
    assert resumed.returncode == 0, resumed.stderr
    for model in ("rnn", "gru"):
        assert same(params(home, f"cut-model_{model}")[0], params(home, f"whole-model_{model}")[0])
        assert params(home, f"cut-model_{model}")[1]["iteration"] == 500


def test_an_interrupted_time_budget_is_respected(home, book):
    budget = 3.0                # room for a slow `--stop` (a new Python process) on a busy machine
    kafkarnn("sweep", "t", "--corpus", book, *SLOW, "--model", "rnn", "--max-seconds", budget,
             "--detach", home=home)
    until(lambda: Run(home, "t").holder() is not None)
    time.sleep(0.3)
    assert kafkarnn("sweep", "t", "--stop", home=home).returncode == 0
    spent = params(home, "t")[1]["elapsed_s"]
    assert 0 < spent < budget
    assert kafkarnn("sweep", "t", home=home).returncode == 0
    final = params(home, "t")[1]["elapsed_s"]
    assert budget <= final < budget + 0.5        # not spent + a whole new budget


def test_ctrl_c_leaves_the_view_and_the_sweep_goes_on(home, book):
    env = dict(os.environ, KAFKARNN_HOME=str(home))
    view = subprocess.Popen([sys.executable, "-m", "kafkarnn", "sweep", "v", "--corpus", str(book),
                             *SLOW, "--max-iters", "100000"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: Run(home, "v").holder() is not None)
        view.send_signal(signal.SIGINT)
        out, err = view.communicate(timeout=30)
    finally:
        view.kill()
    assert view.returncode == 0 and "goes on in the background" in err, err
    assert "kafkarnn sweep v --stop" in err
    pid = SweepFolder(home, "v").coordinator()
    assert pid and Run(home, "v").holder() is not None          # still training
    stopped = kafkarnn("sweep", "v", "--stop", home=home)
    assert stopped.returncode == 0 and Run(home, "v").holder() is None
    assert states(home, "v") == {"v": "waiting"}


def test_a_dropped_connection_or_q_leaves_the_live_view_not_the_sweep(home, book, terminals):
    from terminal import Terminal
    grid = ["--corpus", book, *SLOW, "--model", "rnn,gru", "--max-iters", "100000"]
    first = Terminal("sweep", "d", *grid, home=home, size=(140, 30))
    terminals.append(first)
    until(lambda: "Ctrl-C or q leaves the view" in first.text() and "running" in first.text())
    assert "d-model_gru" in first.text()
    first.hang_up()                                          # the connection drops
    first.wait()
    time.sleep(0.5)
    assert SweepFolder(home, "d").coordinator() is not None
    assert states(home, "d") == {"d-model_rnn": "running", "d-model_gru": "running"}
    second = Terminal("sweep", "d", home=home, size=(140, 30))  # the same command: the view again
    terminals.append(second)
    until(lambda: "Ctrl-C or q leaves the view" in second.text())
    second.type("q")
    assert second.wait() == 0
    assert "goes on in the background" in second.text()
    assert Run(home, "d-model_rnn").holder() is not None
    assert kafkarnn("sweep", "d", "--stop", home=home).returncode == 0
    assert states(home, "d") == {"d-model_rnn": "waiting", "d-model_gru": "waiting"}


def test_a_trial_stopped_by_hand_waits_for_the_next_sweep_and_plain_stop_ends_the_sweep(home, book):
    kafkarnn("sweep", "k", "--corpus", book, *SLOW, "--max-iters", "100000", "--detach", home=home)
    until(lambda: Run(home, "k").holder() is not None)
    assert kafkarnn("stop", "--run", "k", home=home).returncode == 0
    until(lambda: SweepFolder(home, "k").coordinator() is None)   # nothing left to train
    assert states(home, "k") == {"k": "stopped"}
    shown = kafkarnn("sweep", "k", "--detach", home=home)          # resumes it
    assert shown.returncode == 0
    until(lambda: Run(home, "k").holder() is not None)
    plain = kafkarnn("stop", home=home)                 # without --run: the whole sweep, saved
    assert plain.returncode == 0 and "stopped sweep k" in plain.stderr, plain.stderr
    assert SweepFolder(home, "k").coordinator() is None
    assert states(home, "k") == {"k": "waiting"}


def test_a_damaged_checkpoint_fails_its_trial_alone_and_is_left_as_it_is(home, book):
    grid = ["--corpus", book, *TINY, "--model", "rnn,gru", "--max-iters", "10"]
    assert kafkarnn("sweep", "f", *grid, home=home).returncode == 0
    damaged = Run(home, "f-model_rnn").checkpoint_path
    damaged.write_bytes(damaged.read_bytes()[:100])
    kept = Run(home, "f-model_gru").checkpoint_path.read_bytes()
    again = kafkarnn("sweep", "f", home=home)
    assert again.returncode == 2
    assert again.stderr.splitlines()[-1].startswith("kafkarnn: error: sweep f: 1 trial(s) failed: f-model_rnn")
    assert states(home, "f") == {"f-model_rnn": "failed", "f-model_gru": "done"}
    assert "corrupt" in SweepFolder(home, "f").read_state()["trials"]["f-model_rnn"]["error"]
    assert len(damaged.read_bytes()) == 100 and Run(home, "f-model_gru").checkpoint_path.read_bytes() == kept

"""A trainer killed at any moment (SIGKILL: no handler runs) loses at most the steps since its
last checkpoint: the run resumes from a checkpoint that loads, with no temporary files left.

`pytest -m slow tests/faults/test_kills.py` runs many random kills.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from faultkit import spawn, Watch, iteration_of, temp_files, all_finite, RUN

from kafkarnn.main import main
from kafkarnn.runs.folder import Run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


# The real CLI, with metrics (and so validations, best.npz saves and samples) every 20 ms instead of
# every 2 s, so that random kills land in those writes too; KAFKARNN_TEST_PAUSE stops the process
# at one chosen point (and prints PAUSED) so a kill can land exactly there.
CHILD = r'''
import dataclasses, os, sys, time
import numpy as np
import kafkarnn.main, kafkarnn.runs.folder as runs, kafkarnn.train.session as session
import kafkarnn.train.record as record
real_init = session.Session.__init__
def init(self, launch, limits=session.Limits(), cadence=session.Cadence(), **kw):
    real_init(self, launch, limits, dataclasses.replace(cadence, metrics_every=0.02), **kw)
session.Session.__init__ = init
where, calls = os.environ.get("KAFKARNN_TEST_PAUSE"), {"n": 0}

def pause():
    print("PAUSED in", where, file=sys.stderr, flush=True)
    time.sleep(600)

def counted(limit):
    calls["n"] += 1
    return calls["n"] >= limit

if where == "startup":                         # a fresh run: config.json written, nothing trained
    real_config = runs.Run.write_config
    def write_config(self, config):
        real_config(self, config)
        pause()
    runs.Run.write_config = write_config
elif where == "step":                          # inside a step: positions moved, weights not yet
    from kafkarnn.engine.model import CharModel
    real_loss = CharModel.loss_and_grads
    def loss_and_grads(self, *a, **k):
        out = real_loss(self, *a, **k)
        if counted(30):
            pause()
        return out
    CharModel.loss_and_grads = loss_and_grads
elif where == "save":                          # half-way through writing the third checkpoint
    real_save, real_write = record.save_checkpoint, np.lib.format.write_array
    def save_checkpoint(path, *a, **k):
        calls["saving"] = path.name == "checkpoint.npz" and counted(3)
        return real_save(path, *a, **k)
    def write_array(*a, **k):
        real_write(*a, **k)
        if calls.get("saving"):
            pause()
    record.save_checkpoint, np.lib.format.write_array = save_checkpoint, write_array
elif where == "metrics":                       # half of a metrics line written
    real_append = runs._append
    def append(path, data):
        if path.name == "metrics.jsonl" and counted(3):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, data[: len(data) // 2])
            pause()
        real_append(path, data)
    runs._append = append
raise SystemExit(kafkarnn.main.main(sys.argv[1:]))
'''


def check_after_kill(capsys, book: Path, run: Path, at_least: int) -> int:
    """The killed run's checkpoint is whole and not older than before; resuming it works. Returns its iteration."""
    ckpt = run / "checkpoint.npz"
    existed = ckpt.exists()
    it = iteration_of(ckpt) if existed else 0                         # loads, or this raises
    assert it >= at_least
    if existed:
        assert all_finite(ckpt)
    capsys.readouterr()
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", str(it + 2),
                 "--save-every", "1000"]) == 0
    err = capsys.readouterr().err
    assert (f"resuming at iteration {it:,}" if existed else "new run") in err, err
    assert iteration_of(ckpt) == it + 2
    assert temp_files(run) == []
    records = Run(run.parent.parent, run.name).read_metrics()           # a torn line is skipped
    assert records and records[-1]["iter"] == it + 2
    return it + 2


@pytest.mark.parametrize("where", ["startup", "step", "save", "metrics"])
def test_kill_at_a_chosen_moment_then_resume(home, book, capsys, where):
    run = home / "runs" / RUN
    if where != "startup":
        assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    before = iteration_of(run / "checkpoint.npz") if where != "startup" else 0
    child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05",
                        code=CHILD, env=dict(os.environ, KAFKARNN_TEST_PAUSE=where)))
    try:
        child.wait_for(f"PAUSED in {where}")
        if where == "save":
            assert temp_files(run) == [f".checkpoint.npz.tmp-{child.proc.pid}"]   # a half-written file
    finally:
        child.proc.kill()
        child.finish()
    if where == "metrics":
        assert not (run / "metrics.jsonl").read_bytes().endswith(b"\n")   # a torn last line
    if where == "startup":
        assert (run / "config.json").exists() and not (run / "checkpoint.npz").exists()
    check_after_kill(capsys, book, run, before)


def kill_trials(home, book, capsys, trials: int, seed: int) -> dict:
    """Kill a training child at random moments, over and over, resuming the same run each time."""
    rng = np.random.default_rng(seed)
    run = home / "runs" / RUN
    ckpt = run / "checkpoint.npz"
    last = 0
    phases = {"start-up": 0, "save": 0, "metrics write": 0, "steps": 0}
    injected_torn = 0
    metrics = run / "metrics.jsonl"
    for trial in range(trials):
        size = metrics.stat().st_size if metrics.exists() else 0
        child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05", code=CHILD))
        time.sleep(float(rng.uniform(0.0, 1.5)))
        seen = iteration_of(ckpt) if ckpt.exists() else 0             # any moment: a whole checkpoint
        child.proc.kill()
        child.finish()
        started = [line for line in child.text("err").splitlines() if line.startswith("kafkarnn: run ")]
        if started:
            assert ("new run" if last == 0 else f"resuming at iteration {last:,}") in started[0]
        torn = (metrics.exists() and metrics.stat().st_size != size and
                not metrics.read_bytes().endswith(b"\n"))                 # this kill tore a line
        phase = ("start-up" if not started else "save" if temp_files(run) else
                 "metrics write" if torn else "steps")
        phases[phase] += 1
        now = iteration_of(ckpt) if ckpt.exists() else 0
        assert now >= max(seen, last), (trial, phase)                  # never older than before
        if ckpt.exists():
            assert all_finite(ckpt)
        if rng.random() < 0.3 and metrics.exists():                    # and a torn line by hand
            with open(metrics, "ab") as f:
                f.write(b'{"iter": 99999999, "loss": 1.2')
            injected_torn += 1
        last = now
    final = check_after_kill(capsys, book, run, last)
    garbage = 0
    for line in metrics.read_bytes().split(b"\n"):
        try:
            json.loads(line) if line else None
        except ValueError:
            garbage += 1
    assert garbage <= injected_torn + phases["metrics write"]          # only torn lines, kept apart
    return {"trials": trials, "final_iteration": final, **phases, "torn lines added": injected_torn}


def test_kill_at_random_moments(home, book, capsys):
    kill_trials(home, book, capsys, trials=8, seed=1)


@pytest.mark.slow
def test_kill_at_random_moments_many_trials(home, book, capsys):
    summary = kill_trials(home, book, capsys, trials=200, seed=2)
    with capsys.disabled():
        print(f"\nkill trials: {summary}")

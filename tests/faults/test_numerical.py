"""Numerical faults: NaN and inf losses or gradients are skipped, reported and stop training;
nothing non-finite ever reaches a checkpoint.
"""

import re
import sys

import numpy as np
import pytest
from conftest import TINY
from faultkit import cli, error_line, iteration_of, all_finite, RUN

from kafkarnn.engine.model import CharModel
from kafkarnn.main import main
from kafkarnn.train.launch import prepare
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.session import SaveNow, Session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


def test_overflowing_weights_never_reach_a_checkpoint(home, book):
    # Adam's decoupled weight decay with lr·wd = 10⁶ multiplies every matrix by -999,999 per step:
    # float32 overflows within a few steps, whatever the gradients say.
    r = cli("--headless", "--corpus", book, *TINY, "--optimizer", "adam", "--lr", "1",
            "--weight-decay", "1e6", "--save-every", "0.0001")
    assert r.returncode == 2
    assert "training diverged: the parameters overflowed" in error_line(r.stderr.split("\n", 1)[1])
    ckpt = home / "runs" / RUN / "checkpoint.npz"
    assert all_finite(ckpt)
    it = iteration_of(ckpt)
    again = cli("--headless", "--run", RUN, "--max-iters", it)          # the last good one resumes
    assert again.returncode == 0, again.stderr
    assert f"resuming at iteration {it:,}" in again.stderr


@pytest.mark.parametrize("fault", ["transient NaN loss", "NaN loss from then on", "inf gradient from then on"])
def test_nan_steps_are_skipped_reported_and_stop_training(home, book, capsys, monkeypatch, fault):
    real = CharModel.loss_and_grads
    calls = {"n": 0}

    def faulty(self, *a, **k):
        loss, grads, state = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] > 10 and (fault != "transient NaN loss" or calls["n"] <= 12):
            if "inf gradient" in fault:
                grads.flat[3] = np.inf
            else:
                loss = float("nan")
        return loss, grads, state
    monkeypatch.setattr(CharModel, "loss_and_grads", faulty)
    rc = main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "30", "--save-every", "0.0001"])
    out, err = capsys.readouterr()
    ckpt = home / "runs" / RUN / "checkpoint.npz"
    skipped = re.findall(r"skipped a non-finite step at iteration (\d+)", out)
    assert all_finite(ckpt)
    if fault == "transient NaN loss":
        assert rc == 0 and skipped == ["10", "10"]
        assert iteration_of(ckpt) == 30
        return
    assert rc == 2 and skipped == ["10"] * 4
    assert err.splitlines()[-1] == ("kafkarnn: error: training diverged: the loss was not finite for 5 "
                                    "steps in a row at iteration 10; try a lower --lr (the last good "
                                    "checkpoint is kept)")
    assert iteration_of(ckpt) == 10
    monkeypatch.setattr(CharModel, "loss_and_grads", real)
    assert main(["--headless", "--run", RUN, "--max-iters", "12"]) == 0       # it resumes
    assert "resuming at iteration 10" in capsys.readouterr().err


def test_a_non_finite_state_is_never_saved(home, book, capsys):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    ckpt = home / "runs" / RUN / "checkpoint.npz"
    good = ckpt.read_bytes()
    for poison in ("param", "opt"):
        lh = prepare(data_dir=home, corpus_spec=str(book), encoding=None, run_name=RUN, new=False,
                     preset=None, overrides={})
        try:
            t = lh.trainer
            target = t.model.params["Why"] if poison == "param" else next(iter(t.opt.state.values()))
            target.flat[0] = np.nan
            s = Session(lh, Limits(max_iters=5), Cadence(save_every=1e9, eval_every=1e9))
            s.send(SaveNow())
            s.run()
        finally:
            lh.lock.unlock()
        failed = [e.text for e in s.events() if e.kind == "save_failed"]
        assert len(failed) >= 2 and all("holds NaN or inf" in f for f in failed)   # SaveNow, the final save
        assert s.snapshot().save_error.startswith("checkpoint.npz could not be saved")
        assert ckpt.read_bytes() == good

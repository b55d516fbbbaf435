"""Long runs stay bounded: undrained events and the loss history keep a fixed size (the
20-minute soak is benchmarks/soak.py).
"""

import sys

import pytest
from faultkit import RUN

from kafkarnn.engine.model import CharModel
from kafkarnn.train.launch import prepare
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.session import Session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


def test_undrained_events_and_the_history_stay_bounded(home, book, monkeypatch):
    from kafkarnn.train.session import HISTORY, MAX_EVENTS
    real = CharModel.loss_and_grads
    calls = {"n": 0}

    def every_other_step_nan(self, *a, **k):               # never 5 in a row: training goes on
        loss, grads, state = real(self, *a, **k)
        calls["n"] += 1
        return (float("nan") if calls["n"] % 2 else loss), grads, state
    monkeypatch.setattr(CharModel, "loss_and_grads", every_other_step_nan)
    lh = prepare(data_dir=home, corpus_spec=str(book), encoding=None, run_name=RUN, new=False,
                 preset=None, overrides={"model": "rnn", "hidden": 8, "batch": 1, "seq_len": 4})
    try:
        s = Session(lh, Limits(max_iters=1500),
                    Cadence(metrics_every=0.0, eval_every=1e9, save_every=1e9))
        assert s.run() == "FINISHED"                        # headless: nobody drains the events
    finally:
        lh.lock.unlock()
    assert len(s.snapshot().history) == HISTORY
    assert len(s.events()) == MAX_EVENTS                     # 1,500 skips and more, the last 1,000 kept
    assert len(lh.run.read_metrics()) >= 1500                # every line readable

"""Dropout that rises with the passes (Config.dropout_ramp): the rates are a function of the
iteration alone, reach every stream group's model, resume exactly, and are shown while they rise."""

import json

import numpy as np
import pytest

from kafkarnn.seam import Snapshot, State
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.config import Config
from kafkarnn.train.launch import prepare
from kafkarnn.train.progress import progress_line
from kafkarnn.train.schedule import dropout_rates
from kafkarnn.train.session import Session
from kafkarnn.tui.widgets import SpeedPane

from test_trainer import TEXT, assert_same_trainer, small_trainer, straight_and_resumed

RAMPED = Config(model="gru", hidden=10, layers=2, batch=4, seq_len=10, dropout=0.2,
                weight_drop=0.3, dropout_ramp=20, groups=2)


def test_the_rates_rise_in_a_straight_line_then_stay():
    assert [dropout_rates(RAMPED, it) for it in (0, 5, 20, 999)] == [
        (0.0, 0.0), (0.05, 0.075), (0.2, 0.3), (0.2, 0.3)]
    assert dropout_rates(RAMPED.replace(dropout_ramp=0), 0) == (0.2, 0.3)     # no ramp: at once


def test_the_first_step_drops_nothing_and_every_group_follows_the_ramp():
    ramped, plain = small_trainer(RAMPED), small_trainer(RAMPED.replace(dropout=0.0, weight_drop=0.0))
    assert ramped.step() == plain.step()                       # share 0: no mask drawn or used
    assert np.array_equal(ramped.model.params.flat, plain.model.params.flat)
    for _ in range(9):
        ramped.step()
        plain.step()
    assert not np.array_equal(ramped.model.params.flat, plain.model.params.flat)   # masks from step 2
    ramped.step()                                              # the 11th step ran at 10/20 of the rates
    assert len(ramped.groups.replicas) == 2
    assert all((m.spec.dropout, m.spec.weight_drop) == (0.1, 0.15) for m in ramped.groups.replicas)
    assert ramped.rising_dropout() == ("dropout", pytest.approx(0.11), 0.2)
    without = small_trainer(RAMPED.replace(dropout=0.0))          # DropConnect alone: it is named
    without.iteration = 11
    assert without.rising_dropout() == ("DropConnect", pytest.approx(0.165), 0.3)
    while ramped.iteration < 20:
        ramped.step()
    assert ramped.rising_dropout() is None


def test_resume_through_a_file_in_the_middle_of_the_ramp_is_bit_identical(tmp_path):
    straight, resumed = straight_and_resumed(RAMPED, 30, 12, tmp_path / "checkpoint.npz")
    assert_same_trainer(straight, resumed)


def test_a_session_shows_the_rising_dropout_in_metrics_progress_and_speed_pane(tmp_path):
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="r",
                 new=False, preset=None, overrides=dict(model="gru", hidden=10, batch=3, seq_len=10,
                                                        dropout=0.2, dropout_ramp=8))
    try:
        s = Session(lh, Limits(max_iters=6), Cadence(eval_every=1e9, save_every=1e9))
        assert s.run() == "FINISHED"
    finally:
        lh.lock.unlock()
    assert json.loads(lh.run.config_path.read_text())["dropout_ramp"] == 8
    last = json.loads(lh.run.metrics_path.read_text().splitlines()[-1])
    assert last["iter"] == 6 and last["dropout"] == pytest.approx(0.15)
    assert last["weight_drop"] == pytest.approx(6 / 8 * lh.trainer.cfg.weight_drop)
    snap = s.snapshot()
    assert snap.dropout == ("dropout", pytest.approx(0.15), 0.2)
    assert "lr 2.00e-03  dropout 0.150→0.2  " in progress_line(snap)
    rows = SpeedPane._render_speed(snap).columns
    assert "dropout" in rows[0]._cells and "0.150 → 0.2" in rows[1]._cells


def test_without_a_ramp_nothing_more_is_shown():
    snap = Snapshot(state=State.RUNNING, run_name="r", corpus="c", model="gru 2×8", n_params=1,
                    data_dir="d", iteration=10, chars=1, elapsed_s=1.0, session_s=1.0,
                    iters_per_sec=1.0, chars_per_sec=1.0, loss=1.5, val_loss=1.25,
                    best_val_loss=1.2, history=(), eta_s=None, last_saved=None, sample="",
                    sample_probs=(), sample_id=0, temperature=1.0, lr=2e-3)
    assert "dropout" not in progress_line(snap)
    assert "dropout" not in SpeedPane._render_speed(snap).columns[0]._cells
    small = small_trainer(RAMPED.replace(dropout_ramp=0))
    assert small.rising_dropout() is None

"""Streams that restart from a zero state mid-text (Config.restart_every): which streams, when,
that a restart is exactly a zeroed state before the step, and that a run resumes exactly."""

import json

import numpy as np

from kafkarnn.train.config import Config
from kafkarnn.train.schedule import restarting

from test_trainer import assert_same_trainer, small_trainer, straight_and_resumed

RESTARTING = Config(model="gru", hidden=10, layers=2, batch=4, seq_len=10, restart_every=2, groups=2)


def test_each_stream_restarts_every_n_steps_the_streams_in_turn():
    cfg = Config(model="gru", hidden=8, batch=8, seq_len=5, restart_every=4)
    due = [set(restarting(cfg, it)) for it in range(13)]
    assert due[0] == set()                                     # the first step starts from zeros anyway
    assert due[1:5] == [{0, 1}, {2, 3}, {4, 5}, {6, 7}]       # B/N streams a step, in turn
    assert due[5:9] == due[1:5] and due[9:13] == due[1:5]      # each stream once every N steps
    assert all(restarting(RESTARTING.replace(restart_every=0), it) == [] for it in range(10))


def test_a_restart_is_a_zero_state_for_those_streams_before_the_step():
    restarted, plain = small_trainer(RESTARTING), small_trainer(RESTARTING.replace(restart_every=0))
    zeroed = 0
    for _ in range(11):                                        # past a wrap (every 9 steps here)
        due = restarting(restarted.cfg, restarted.iteration)
        _, _, upcoming = restarted.upcoming_batch()
        if len(due) and restarted.iteration % 9:              # not where every stream wraps anyway
            assert all(np.abs(s[:, :, due]).max() == 0 for s in upcoming)
            assert all(np.abs(s[:, :, due]).max() > 0 for s in plain.state)
            zeroed += 1
        for s in plain.state:
            s[:, :, due] = 0.0                                 # what the restart should amount to
        assert restarted.step() == plain.step()
    assert zeroed >= 8
    assert np.array_equal(restarted.model.params.flat, plain.model.params.flat)
    other = small_trainer(RESTARTING.replace(restart_every=0))
    for _ in range(11):
        other.step()
    assert not np.array_equal(other.model.params.flat, plain.model.params.flat)   # it does change training


def test_resume_through_a_file_between_restarts_is_bit_identical(tmp_path):
    straight, resumed = straight_and_resumed(RESTARTING.replace(restart_every=3), 20, 7,
                                             tmp_path / "checkpoint.npz")
    assert_same_trainer(straight, resumed)


def test_a_new_default_run_does_not_restart_and_a_run_made_with_restarts_keeps_them(tmp_path):
    from test_fitting import big_text, start
    corpus = big_text(tmp_path, chars=50_000)
    lh = start(tmp_path, corpus, "r")
    assert json.loads(lh.run.config_path.read_text())["restart_every"] == 0
    mine = start(tmp_path, corpus, "mine", restart_every=16)
    assert json.loads(mine.run.config_path.read_text())["restart_every"] == 16
    assert start(tmp_path, corpus, "mine").trainer.cfg.restart_every == 16        # resumed with it
    before = {k: v for k, v in lh.trainer.cfg.to_dict().items() if k != "restart_every"}
    assert Config.from_dict(before).restart_every == 0       # a config.json with no such field

"""A schedule fitted to a new run's budget (train/schedule.py): a stable rate, then a decay over
the budget's last fifth. In iterations it is fixed when the run is made; in seconds the session
fixes it when the stable part has passed, and the checkpoint keeps it."""

import json
import time

import numpy as np
import pytest

from kafkarnn.errors import KafkarnnError
from kafkarnn.engine.vocab import Vocab
from kafkarnn.main import main
from kafkarnn.runs.checkpoint import load_checkpoint, save_checkpoint
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.config import PRESETS, Config
from kafkarnn.train.launch import describe_start, prepare
from kafkarnn.train.schedule import (DECAY_SHARE, budget_decay, cooldown, describe_cooldown, for_limits,
                                     learning_rate)
from kafkarnn.train import session as session_module
from kafkarnn.train.session import Session
from kafkarnn.train.trainer import Trainer

TEXT = ("The lodgers ate in silence; the sister played, and the father counted the coins "
        "twice. [Grete stood by the door.]\n") * 40
TINY = dict(hidden=8, layers=1, batch=4, seq_len=16)
BIG = TEXT * 5          # four passes of batch 4 × seq-len 16 are more than the default's 1,000 steps


def test_a_budget_in_iterations_holds_the_rate_then_decays_over_its_last_fifth_to_lr_min():
    c = for_limits(PRESETS["default"], {}, 2000, None, big_text=True)
    assert (c.schedule, c.decay_start, c.decay_iters, c.budget_s) == ("budget", 1600, 400, 0.0)
    t = Trainer(c.replace(**TINY), *_text())
    assert t.lr_at(0) == t.lr_at(1599) == c.lr
    assert c.lr_min < t.lr_at(1800) < c.lr and t.lr_at(2000) == pytest.approx(c.lr_min)
    assert DECAY_SHARE == 0.2


def test_by_default_only_a_tuned_preset_given_a_limit_and_no_decay_of_its_own_gets_a_budget():
    d = PRESETS["default"]
    assert for_limits(d, {}, None, 300.0, big_text=True) == d.replace(
        schedule="budget", budget_s=300.0, decay_iters=0, decay_start=0)
    assert for_limits(d, {}, None, None, big_text=False) == d                      # small, no limit
    assert for_limits(PRESETS["small"], {}, 50, None, big_text=False) == PRESETS["small"]
    assert for_limits(d, {"decay_iters": 500}, 50, None, big_text=True) == d        # the user's decay
    assert for_limits(d.replace(schedule="fixed"), {"schedule": "fixed"}, 50, None, True).schedule == "fixed"
    free = d.replace(optimizer="sfadamw", decay_iters=0)
    assert for_limits(free, {}, 50, None, big_text=True) == free                    # nothing to fit


def test_with_no_limit_on_a_big_text_the_default_keeps_its_rate_and_validates_a_tail_average():
    d = PRESETS["default"]
    anytime = d.replace(schedule="anytime", decay_iters=0, decay_start=0, average="tail", tail_eta=9.0,
                        rsqrt_from=1000)
    assert for_limits(d, {}, None, None, big_text=True) == anytime
    assert for_limits(d.replace(average="ema"), {"average": "ema"}, None, None, True) == anytime.replace(
        average="ema")                                                              # the user's average
    assert for_limits(d, {"decay_iters": 500}, None, None, big_text=True) == d     # the user's decay
    small = for_limits(PRESETS["small"].replace(schedule="anytime", tail_eta=3.0),
                       {"schedule": "anytime", "tail_eta": 3.0}, None, None, big_text=False)
    assert (small.schedule, small.decay_iters, small.average, small.tail_eta) == ("anytime", 0, "tail", 3.0)
    with pytest.raises(KafkarnnError, match="leave out --decay-iters"):
        for_limits(d.replace(schedule="anytime"), {"schedule": "anytime", "decay_iters": 9}, None,
                   None, big_text=True)
    assert for_limits(d, {"rsqrt_from": 0}, None, None, big_text=True) == anytime.replace(rsqrt_from=0)
    t = Trainer(anytime.replace(**TINY), *_text())
    assert t.lr_at(0) == t.lr_at(1000) == d.lr and t.weights_name() == "tail average η 9"
    assert t.lr_at(4000) == pytest.approx(d.lr / 2) and t.lr_at(10**6) == pytest.approx(d.lr / 10**1.5)
    assert Trainer(anytime.replace(rsqrt_from=0, **TINY), *_text()).lr_at(10**6) == d.lr   # as before
    stored_before = {k: v for k, v in anytime.replace(**TINY).to_dict().items() if k != "rsqrt_from"}
    assert Trainer(Config.from_dict(stored_before), *_text()).lr_at(10**6) == d.lr   # an older run's


def test_a_cooldown_of_a_rate_falling_as_one_over_root_t_starts_where_that_rate_is():
    c = Config(lr=2e-3, lr_min=1e-4, rsqrt_from=1000, schedule="anytime")
    assert cooldown(c, 4000, learning_rate(c, 4000), 100) == (4000, 100)
    assert "falls from 0.001 to 0.0001 by iteration 4,100" in describe_cooldown(c, (4000, 100))
    assert learning_rate(c, 3999, (4000, 100)) == learning_rate(c, 3999)    # untouched before it
    assert learning_rate(c, 4000, (4000, 100)) == pytest.approx(1e-3)
    assert 1e-4 < learning_rate(c, 4050, (4000, 100)) < 1e-3
    assert learning_rate(c, 4100, (4000, 100)) == pytest.approx(1e-4) == learning_rate(c, 9000, (4000, 100))
    with pytest.raises(KafkarnnError, match="not 0.001 \\(--lr 0.002 falling as 1/√t\\)"):
        cooldown(c, 4000, 2e-3, 100)


def test_asking_for_a_budget_without_a_limit_or_beside_a_decay_of_ones_own_is_refused():
    asked = PRESETS["small"].replace(schedule="budget")
    assert for_limits(asked, {"schedule": "budget"}, 100, None, big_text=False).decay_start == 80
    with pytest.raises(KafkarnnError, match="--max-iters or --max-seconds"):
        for_limits(asked, {"schedule": "budget"}, None, None, big_text=False)
    with pytest.raises(KafkarnnError, match="leave out --decay-iters"):
        for_limits(asked, {"schedule": "budget", "decay_start": 4}, 100, None, big_text=False)


def test_a_timed_budget_decays_once_its_stable_part_has_passed_over_the_steps_left_at_its_pace():
    c = Config(budget_s=300.0, schedule="budget")
    assert budget_decay(c, 900, 239.0, 4.0) is None
    assert budget_decay(c, 960, 240.0, 4.0) == (960, 240)
    assert budget_decay(Config(), 960, 240.0, 4.0) is None                      # no budget


def _text():
    vocab = Vocab.from_text(TEXT)
    data = vocab.encode(TEXT)
    return vocab, data[:3000], data[3000:]


def test_the_decay_a_timed_budget_fixed_is_kept_by_the_checkpoint_and_a_resume_goes_on_exactly(tmp_path):
    c = Config(model="gru", lr=1e-2, lr_min=1e-3, schedule="budget", budget_s=5.0, **TINY)
    a = Trainer(c, *_text())
    a.decay = (3, 6)
    for _ in range(5):
        a.step()
    path = tmp_path / "c.npz"
    save_checkpoint(path, a.state_arrays(), {**a.state_meta(), "config": c.to_dict(), "vocab": a.vocab.chars})
    arrays, meta = load_checkpoint(path)
    assert meta["decay"] == [3, 6]
    b = Trainer(c, *_text())
    b.restore(arrays, meta, str(path))
    assert b.decay == (3, 6) and b.lr_at(9) == pytest.approx(1e-3)
    for _ in range(5):
        assert a.step() == b.step()
    assert np.array_equal(a.model.params.flat, b.model.params.flat)
    for bad in ([3], [3, -1], ["3", 6], 7):
        with pytest.raises(KafkarnnError, match="damaged metadata"):
            Trainer(c, *_text()).restore(arrays, {**meta, "decay": bad}, "c.npz")
    for bad in ("yes", 1, None):                 # the mark of a cooldown's decay
        with pytest.raises(KafkarnnError, match="damaged metadata"):
            Trainer(c, *_text()).restore(arrays, {**meta, "cooldown": bad}, "c.npz")
    del meta["decay"]
    with pytest.raises(KafkarnnError, match="damaged metadata"):   # a cooldown with no decay
        Trainer(c, *_text()).restore(arrays, {**meta, "cooldown": True}, "c.npz")


class _SteadyClock:
    """The session's clock, read twice a step: each step takes 1 ms however loaded the host is
    (under a parallel suite the real pace fell in the last fifth and the decay ran past the end)."""
    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.0005
        return self.now

    time = staticmethod(time.time)


def test_a_new_run_with_max_seconds_ends_its_budget_at_the_floor_rate_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "time", _SteadyClock())
    corpus = tmp_path / "lodgers.txt"
    corpus.write_text(BIG)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="b",
                 new=False, preset=None, overrides=dict(TINY), limits=Limits(max_seconds=1.5))
    try:
        assert "stable, then decaying over the last fifth of the 1.5-s budget" in describe_start(lh)
        s = Session(lh, Limits(max_seconds=1.5), Cadence(eval_every=1e9, save_every=1e9))
        assert s.run() == "FINISHED"
    finally:
        lh.lock.unlock()
    t = lh.trainer
    start, steps = t.decay
    assert 0.6 * t.iteration < start < t.iteration and start + steps == t.iteration   # ends with the budget
    assert t.lr_at(start) == t.cfg.lr and t.lr_at(t.iteration) < 0.3 * t.cfg.lr
    assert any("decays from iteration" in e.text for e in s.events())
    stored = json.loads(lh.run.config_path.read_text())
    assert (stored["schedule"], stored["budget_s"], stored["decay_iters"]) == ("budget", 1.5, 0)
    _, meta = load_checkpoint(lh.run.checkpoint_path)
    assert meta["decay"] == [start, steps]


def test_the_command_line_fits_a_new_runs_decay_to_max_iters_and_refuses_a_budget_with_no_limit(tmp_path, capsys):
    corpus = tmp_path / "lodgers.txt"
    corpus.write_text(BIG)
    common = ["--data-dir", str(tmp_path / "home"), "--corpus", str(corpus), "--hidden", "8",
              "--layers", "1", "--batch", "4", "--seq-len", "16", "--threads", "1"]
    assert main(["train", "--headless", "--run", "i", "--max-iters", "10", *common]) == 0
    stored = json.loads((tmp_path / "home" / "runs" / "i" / "config.json").read_text())
    assert (stored["schedule"], stored["decay_start"], stored["decay_iters"]) == ("budget", 8, 2)
    assert main(["train", "--headless", "--run", "f", "--max-iters", "10", "--schedule", "fixed",
                 *common]) == 0
    stored = json.loads((tmp_path / "home" / "runs" / "f" / "config.json").read_text())
    assert (stored["schedule"], stored["decay_start"], stored["decay_iters"]) == ("fixed", 0, 1282)
    capsys.readouterr()
    assert main(["train", "--headless", "--run", "n", "--schedule", "budget", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kafkarnn: error: --schedule budget") and err.count("\n") == 1
    assert not (tmp_path / "home" / "runs" / "n").exists()


def test_on_a_small_text_the_default_keeps_its_fitted_decay_whatever_the_limit(tmp_path):
    corpus = tmp_path / "lodgers.txt"
    corpus.write_text(TEXT)                      # four passes: fewer steps than the floor's 1,000
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="s",
                 new=False, preset=None, overrides=dict(TINY), limits=Limits(max_iters=50))
    lh.lock.unlock()
    c = lh.trainer.cfg
    assert (c.schedule, c.decay_start, c.decay_iters, c.budget_s) == ("fixed", 0, 1000, 0.0)
    big = tmp_path / "big.txt"
    big.write_text(BIG)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(big), encoding=None, run_name="b",
                 new=False, preset=None, overrides=dict(TINY), limits=Limits(max_iters=50))
    lh.lock.unlock()
    assert (lh.trainer.cfg.schedule, lh.trainer.cfg.decay_start) == ("budget", 40)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(big), encoding=None, run_name="a",
                 new=False, preset=None, overrides=dict(TINY))             # no limit: anytime
    lh.lock.unlock()
    stored = json.loads(lh.run.config_path.read_text())
    assert (stored["schedule"], stored["decay_iters"], stored["average"], stored["rsqrt_from"]) == (
        "anytime", 0, "tail", 1000)
    assert ("learning rate constant until iteration 1,000, then falling as 1/√t (no limit to fit a "
            f"decay to), dropout rising to 0.2 by step {stored['dropout_ramp']:,}, validating the "
            "tail average η 9 weights") in describe_start(lh)

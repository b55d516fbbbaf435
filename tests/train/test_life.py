"""A run's life (train/life.py) and its Ending (seam.py, train/outcome.py): which ending a last
snapshot means, its exit code, and the one command line a background trainer gets."""

import os
import sys
from dataclasses import replace

import pytest

from kafkarnn.seam import Ending, Role, Snapshot, State, StopSignal
from kafkarnn.train.launch import TrainOptions
from kafkarnn.train.life import Leaving, Life
from kafkarnn.train.outcome import end_of_session, ending_of, hand_over_failed, not_started

TINY = {"model": "rnn", "hidden": 8, "batch": 2, "seq_len": 8}
STARTED = 1000.0


def snap(**kw) -> Snapshot:
    base = Snapshot(state=State.STOPPED, run_name="r", corpus="c", model="rnn 1×8", n_params=1,
                    data_dir="d", iteration=1234, chars=0, elapsed_s=0.0, session_s=0.0,
                    iters_per_sec=0.0, chars_per_sec=0.0, loss=1.0, val_loss=None,
                    best_val_loss=None, history=(), eta_s=None, last_saved=STARTED + 1, sample="",
                    sample_probs=(), sample_id=0, temperature=1.0)
    return replace(base, **kw)


@pytest.mark.parametrize("changes,asked,ending", [
    ({}, {}, Ending.SAVED),
    ({"state": State.FINISHED}, {}, Ending.FINISHED),
    ({"state": State.FAILED, "save_error": "disk full"}, {}, Ending.FAILED),   # failure comes first
    ({"save_error": "disk full"}, {"taken_by": 7}, Ending.UNSAVED),            # then lost progress
    ({"last_saved": STARTED - 1}, {}, Ending.UNSAVED),                         # an older save
    ({"last_saved": None, "handed_to": 9}, {}, Ending.UNSAVED),
    ({"handed_to": 9}, {"taken_by": 7}, Ending.HANDED_OVER),
    ({}, {"taken_by": 7, "stopped_by": 8}, Ending.TAKEN_OVER),
    ({}, {"stopped_by": 8, "paused": True}, Ending.STOPPED),
    ({"state": State.FINISHED}, {"paused": True}, Ending.PAUSED),
])
def test_the_last_snapshot_decides_the_ending(changes, asked, ending):
    assert ending_of(snap(**changes), STARTED, **asked) == ending
    assert end_of_session(snap(**changes), STARTED, **asked).ending == ending


def test_only_lost_or_wrong_endings_exit_2():
    assert {e for e in Ending if e.code} == {Ending.FAILED, Ending.UNSAVED, Ending.HAND_OVER_FAILED}
    assert end_of_session(snap(save_error="disk full"), STARTED).code == 2
    assert hand_over_failed(snap(), "boom").code == 2
    assert not_started("r", StopSignal.SIGTERM).line == ("kafkarnn: SIGTERM before training "
                                                        "started; run r is as it was")


def test_the_line_names_the_signal_and_how_to_go_on():
    line = end_of_session(snap(), STARTED, signal=StopSignal.SIGINT).line
    assert line == "kafkarnn: SIGINT: saved run r at iteration 1,234 — run the same command to continue"
    assert end_of_session(snap(), STARTED, hint=False).line == "kafkarnn: saved run r at iteration 1,234"


@pytest.fixture
def life(tmp_path, book):
    opts = TrainOptions(data_dir=tmp_path / "home", corpus=str(book), run="r", overrides=TINY,
                        max_iters=50, max_seconds=30.0, save_every=5.0, eval_every=7.5, threads=3)
    life = Life(opts, Role.HEADLESS, say=lambda text: None)
    life.open()
    yield life
    life.let_go()


def test_the_background_trainer_gets_the_run_and_what_is_left_of_the_limits(life):
    session = life.start_session()
    session.session_s = 10.0                             # ten seconds trained here
    argv = life._background_argv()
    assert argv[:5] == [sys.executable, "-m", "kafkarnn", "train", "--background"]
    options = dict(zip(argv[5::2], argv[6::2]))
    assert options == {"--run": "r", "--data-dir": str(life.run.data_dir), "--save-every": "5.0",
                       "--eval-every": "7.5", "--after": str(os.getpid()), "--max-iters": "50",
                       "--max-seconds": "20.0", "--threads": "3"}
    life.opts = replace(life.opts, threads=None, max_seconds=None, max_iters=None)
    assert not {"--threads", "--max-seconds", "--max-iters"} & set(life._background_argv())


def test_a_life_ends_once_and_lets_go_of_the_run(life):
    life.start_session().run()                           # to the iteration limit
    outcome = life.end(Leaving(signals=[StopSignal.SIGTERM]))
    assert outcome.ending == Ending.FINISHED and not life.launch.lock.locked
    assert life.end(Leaving(paused=True)) is outcome     # the first answer stands
    assert life.run.holder() is None

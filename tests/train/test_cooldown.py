"""`--cooldown N`: a run held at its peak rate (no limit was given) ends with a decay to the floor
over its next N steps, then stops. The decay is the trainer's (start, steps), kept by the
checkpoint like a timed budget's, so a resume goes on with it (train/schedule.py, train/life.py)."""

import pytest

from kafkarnn.errors import KafkarnnError
from kafkarnn.main import main
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.seam import CoolDown, Role, State
from kafkarnn.train.config import Config
from kafkarnn.train.launch import TrainOptions, describe_start
from kafkarnn.train.life import Life
from kafkarnn.train.schedule import cooldown, learning_rate

TEXT = ("The chief clerk waited in the hall, and the sister knelt by the door, listening. "
        "Gregor said nothing at all.\n") * 40


def _common(tmp_path):
    corpus = tmp_path / "clerk.txt"
    if not corpus.exists():
        corpus.write_text(TEXT)
    return ["--data-dir", str(tmp_path / "home"), "--corpus", str(corpus), "--hidden", "8",
            "--layers", "1", "--batch", "4", "--seq-len", "16", "--threads", "1",
            "--eval-every", "1000"]


def test_a_cooldown_decays_from_the_peak_to_the_floor_and_the_run_stops_where_it_ends(tmp_path, capsys):
    common = _common(tmp_path)
    assert main(["train", "--headless", "--run", "c", "--max-iters", "6", "--decay-iters", "0", *common]) == 0
    assert main(["train", "--headless", "--run", "c", "--cooldown", "4", *common]) == 0
    said = capsys.readouterr()
    assert "cooling down: the learning rate falls from 0.002 to 0.0001 by iteration 10" in said.out
    assert "cooling down from iteration 6 over 4 steps" in said.err        # the start line
    path = tmp_path / "home" / "runs" / "c" / "checkpoint.npz"
    _, meta = load_checkpoint(path)
    assert (meta["iteration"], meta["decay"]) == (10, [6, 4])
    life = Life(TrainOptions(data_dir=tmp_path / "home", run="c"), Role.HEADLESS, print)
    t = life.open().trainer                      # the resumed trainer keeps the decay
    life.let_go()
    assert "cooling down since iteration 6 over 4 steps" in describe_start(life.launch)
    assert t.decay == (6, 4) and t.lr_at(6) == 2e-3 > t.lr_at(8) > t.lr_at(10) == pytest.approx(1e-4)

    before = path.read_bytes()                   # cooled already: the rate is at the floor
    assert main(["train", "--headless", "--run", "c", "--cooldown", "4", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kafkarnn: error: --cooldown decays from the peak rate") and err.count("\n") == 1
    assert main(["train", "--headless", "--run", "c", "--cooldown", "4", "--max-iters", "20", *common]) == 2
    assert "leave out --max-iters" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_detached_cooldown_is_begun_by_the_trainer_that_trains_and_a_later_hand_off_only_carries_its_end(tmp_path):
    common = _common(tmp_path)
    assert main(["train", "--headless", "--run", "d", "--max-iters", "3", "--decay-iters", "0", *common]) == 0
    life = Life(TrainOptions(data_dir=tmp_path / "home", run="d", cooldown=5), Role.HEADLESS, print)
    life.open()
    try:
        argv = life._background_argv()           # --detach: nothing trained here yet
        assert argv[argv.index("--cooldown") + 1] == "5" and "--max-iters" not in argv
        life.start_session()
        argv = life._background_argv()           # after training here: the limit, not a new cooldown
        assert argv[argv.index("--max-iters") + 1] == "8" and "--cooldown" not in argv
        assert life.launch.trainer.decay == (3, 5)
    finally:
        life.let_go()


def test_a_cooldown_is_refused_in_a_warmup_and_to_schedule_free_training():
    c = Config(lr=2e-3, warmup_iters=10)
    assert cooldown(c, 20, 2e-3, 7) == (20, 7)
    stable = Config(lr=1e-2, lr_min=1e-3, decay_start=100, decay_iters=50)   # a budget before its decay
    assert cooldown(stable, 40, learning_rate(stable, 40), 9) == (40, 9)    # c.lr ± an ulp there
    with pytest.raises(KafkarnnError, match="not --lr 0.002"):
        cooldown(c, 4, 1e-3, 7)
    with pytest.raises(KafkarnnError, match="schedule-free"):
        cooldown(c.replace(optimizer="sfadamw"), 20, 2e-3, 7)


def test_a_cooldown_cut_short_ends_where_it_said_whoever_trains_it_next(tmp_path):
    common = _common(tmp_path)
    assert main(["train", "--headless", "--run", "e", "--max-iters", "4", "--decay-iters", "0", *common]) == 0
    life = Life(TrainOptions(data_dir=tmp_path / "home", run="e", cooldown=10), Role.HEADLESS, print)
    life.open()
    session = life.start_session()
    session.run(lambda: life.launch.trainer.iteration >= 7)      # a signal, a crash, a take-over
    life.end()
    life = Life(TrainOptions(data_dir=tmp_path / "home", run="e"), Role.MONITOR, print)
    life.open()                                  # `attach`: no limit of its own
    try:
        assert life.launch.trainer.iteration == 7 and life.start_session().limits.max_iters == 14
    finally:
        life.let_go()
    life = Life(TrainOptions(data_dir=tmp_path / "home", run="e", max_iters=9), Role.HEADLESS, print)
    life.open()                                  # a limit of its own wins
    try:
        assert life.start_session().limits.max_iters == 9
    finally:
        life.let_go()


def test_a_cooldown_asked_of_a_running_session_stops_where_it_ends_and_survives_a_timed_budget(tmp_path):
    """The monitor's f: the session gets CoolDown between two steps. A run with a timed budget,
    cooled before its budget's decay, keeps its cooldown's end across a resume (the checkpoint
    marks the decay as a cooldown's, not the budget's)."""
    _common(tmp_path)
    home = tmp_path / "home"
    tiny = {"hidden": 8, "layers": 1, "batch": 4, "seq_len": 16, "lr_min": 1e-4, "schedule": "budget"}
    life = Life(TrainOptions(data_dir=home, corpus=str(tmp_path / "clerk.txt"), run="b",
                             overrides=tiny, max_seconds=1000.0), Role.HEADLESS, print)
    life.open()
    life.start_session().run(lambda: life.launch.trainer.iteration >= 2)   # a 1000-s budget, begun
    life.end()
    life = Life(TrainOptions(data_dir=home, run="b"), Role.HEADLESS, print)
    t = life.open().trainer
    assert t.cfg.budget_s and t.decay is None and t.lr_at(t.iteration) == 2e-3
    session = life.start_session()
    start = t.iteration
    ask = CoolDown(5)
    session.send(ask)
    session.run(lambda: t.iteration >= start + 3)                  # cut short: a crash, a signal
    life.end()
    assert ask.reply.result() == start + 5
    _, meta = load_checkpoint(home / "runs" / "b" / "checkpoint.npz")
    assert (meta["iteration"], meta["decay"], meta["cooldown"]) == (start + 3, [start, 5], True)

    life = Life(TrainOptions(data_dir=home, run="b"), Role.MONITOR, print)
    life.open()                                  # whoever trains it next stops where it said
    try:
        assert f"cooling down since iteration {start:,} over 5 steps" in describe_start(life.launch)
        session = life.start_session()
        assert session.limits.max_iters == start + 5
        refused = CoolDown(4)                    # a session with a limit: refused, nothing changed
        session.send(refused)
        session._drain(wait=False)
        with pytest.raises(KafkarnnError, match="its own limit"):
            refused.reply.result()
        assert life.launch.trainer.decay == (start, 5)
        assert session.run() == State.FINISHED and life.launch.trainer.iteration == start + 5
        assert life.launch.trainer.lr_at(start + 5) == pytest.approx(1e-4)
    finally:
        life.let_go()

"""The n-gram table as a teacher (Config.teacher): cross-fitted distributions that never saw the
character they predict, laid out as the trainer's streams read the text, stored with the run and
resumed exactly; bad values end in one line."""

import json
from pathlib import Path

import numpy as np
import pytest

from kafkarnn.engine.ngram import NGram
from kafkarnn.errors import KafkarnnError
from kafkarnn.main import main
from kafkarnn.train import teacher as teacher_module
from kafkarnn.train.config import Config
from kafkarnn.train.launch import prepare
from kafkarnn.train.progress import rising_teacher
from kafkarnn.train.record import metrics_line
from kafkarnn.train.schedule import teacher_alpha
from kafkarnn.train.teacher import Teacher, cross_fitted

from test_trainer import TEXT, assert_same_trainer, small_trainer, straight_and_resumed

TAUGHT = Config(model="gru", hidden=10, layers=2, batch=4, seq_len=10, dropout=0.1, teacher=0.3,
                teacher_order=4, groups=2)


def ids(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 6, n // 2), np.tile([1, 2, 3, 4, 5], n // 10)])


def test_each_fold_is_predicted_by_a_table_that_never_counted_it():
    text = ids()
    q = cross_fitted(text, 7, 3, folds=3)
    assert q.dtype == np.float16 and q.shape == (600, 7)
    assert np.allclose(q.astype(np.float64).sum(axis=1), 1, atol=5e-3)
    others = NGram(np.concatenate([text[:200], text[400:]]), 7, 3)      # the middle fold's table
    for t in (200, 201, 250, 399):
        assert np.allclose(q[t], others.distribution(text[:t], 3), atol=1e-3)
    whole = NGram(text, 7, 3)                                           # one that saw everything
    own = np.log(q[np.arange(600), text].astype(np.float64)).mean()
    remembered = -whole.nll(text, 3).mean()
    assert own < remembered - 0.02          # held out, the table is surer of nothing it counted


def test_the_teacher_speaks_to_the_targets_each_step_reads():
    text = ids()
    t = Teacher(text, 7, 3, 5, batch=4, region=150)
    q = cross_fitted(text, 7, 3, 5)
    batch = t.batch(20, 10)                   # the step reading grid[20:31]: targets 21 … 30
    assert batch.shape == (10, 4, 7) and batch.dtype == np.float32
    for s, b in ((0, 0), (9, 3), (4, 2)):
        assert np.array_equal(batch[s, b], q[b * 150 + 21 + s].astype(np.float32))


def test_a_trainer_learns_from_its_teacher_only_when_asked():
    taught, alone = small_trainer(TAUGHT), small_trainer(TAUGHT.replace(teacher=0.0))
    assert alone.teacher is None and taught.teacher_at(0) == 0.3
    for _ in range(3):
        taught.step(), alone.step()
    assert not np.array_equal(taught.model.params.flat, alone.model.params.flat)


def test_the_teachers_weight_rises_over_the_second_half_of_the_rates_decay():
    c = TAUGHT.replace(decay_iters=1000, lr_min=1e-4, teacher_rise=0.2)
    assert [teacher_alpha(c, it) for it in (0, 499, 500)] == [0.3, 0.3, 0.3]
    assert teacher_alpha(c, 750) == pytest.approx(0.4) and teacher_alpha(c, 1000) == teacher_alpha(c, 9999) == 0.5
    assert teacher_alpha(c.replace(decay_start=200, warmup_iters=100), 950) == pytest.approx(0.4)
    assert teacher_alpha(c, 750, decay=(5000, 400)) == 0.3                     # a budget's decay, in-run
    assert teacher_alpha(c, 5300, decay=(5000, 400)) == pytest.approx(0.4)
    assert teacher_alpha(c.replace(teacher_rise=0.0), 1000) == 0.3             # runs made before: it stays
    assert teacher_alpha(c.replace(decay_iters=0), 5000) == 0.3                # no decay, no rise
    assert Config.from_dict({k: v for k, v in c.to_dict().items() if k != "teacher_rise"}).teacher_rise == 0


def test_a_trainer_learns_with_the_weight_of_the_step():
    risen, level = (small_trainer(TAUGHT.replace(decay_iters=10, lr_min=1e-4, teacher_rise=r)) for r in (0.4, 0.0))
    for _ in range(6):                      # until step 5 the weight is level: the same bits
        risen.step(), level.step()
    assert np.array_equal(risen.model.params.flat, level.model.params.flat)
    assert (risen.teacher_at(6), level.teacher_at(6)) == (pytest.approx(0.38), 0.3)
    risen.step(), level.step()
    assert not np.array_equal(risen.model.params.flat, level.model.params.flat)
    assert metrics_line(risen, chars_per_sec=1, elapsed_s=1, threads=None, val=None)["teacher"] == 0.46
    assert "teacher" not in metrics_line(level, chars_per_sec=1, elapsed_s=1, threads=None, val=None)
    assert rising_teacher(risen) == (pytest.approx(0.46), 0.7) and rising_teacher(level) is None
    for _ in range(4):
        risen.step()
    assert rising_teacher(risen) is None and risen.teacher_at(risen.iteration) == pytest.approx(0.7)


def test_resume_across_the_teachers_rise_is_bit_identical(tmp_path):
    straight, resumed = straight_and_resumed(TAUGHT.replace(decay_iters=20, lr_min=1e-4, teacher_rise=0.3),
                                             30, 14, tmp_path / "checkpoint.npz")
    assert_same_trainer(straight, resumed)


def test_resume_through_a_file_is_bit_identical_with_a_teacher(tmp_path):
    straight, resumed = straight_and_resumed(TAUGHT, 30, 12, tmp_path / "checkpoint.npz")
    assert_same_trainer(straight, resumed)
    assert np.array_equal(straight.teacher.grid, resumed.teacher.grid)


def test_a_run_keeps_its_teacher_and_one_made_before_has_none(tmp_path):
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="r",
                 new=False, preset=None, overrides=dict(model="gru", hidden=10, batch=3,
                                                        seq_len=10, teacher=0.25))
    lh.lock.unlock()
    stored = json.loads(lh.run.config_path.read_text())
    assert (stored["teacher"], stored["teacher_order"], stored["teacher_folds"]) == (0.25, 8, 20)   # small
    before = {k: v for k, v in stored.items() if not k.startswith("teacher")}
    assert Config.from_dict(before).teacher == 0.0
    first_teachers = {k: v for k, v in stored.items() if k != "teacher_folds"}
    assert Config.from_dict(first_teachers).teacher_folds == 5       # as they were cross-fitted
    assert Config.from_dict({**stored, "teacher_folds": 20}).teacher_folds == 20


def test_more_folds_put_more_of_the_text_behind_each_prediction():
    text = ids(1200)
    nats = [-np.log(cross_fitted(text, 7, 3, f)[np.arange(1200), text].astype(np.float64)).mean()
            for f in (2, 5, 20)]
    assert nats[0] > nats[1] > nats[2]
    assert teacher_module.cache_path(Path("d"), {"sha256": "a"}, 1200, 3, 5) != \
        teacher_module.cache_path(Path("d"), {"sha256": "a"}, 1200, 3, 20)


def test_a_run_caches_its_teachers_distributions_for_the_next_process(tmp_path, monkeypatch):
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT)

    said = []
    monkeypatch.setattr(teacher_module, "SAID_FROM", 0)     # a text big enough to wait for

    def open_run():
        lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None,
                     run_name="r", new=False, preset=None, log=said.append,
                     overrides=dict(model="gru", hidden=10, batch=3, seq_len=10, teacher=0.3))
        lh.lock.unlock()
        return lh

    first = open_run()
    assert [s for s in said if "teacher" in s] == [
        f"counting the teacher's 8-gram predictions for this text (20 tables, once; kept in "
        f"{tmp_path / 'home' / 'teacher'})"]
    files = list((tmp_path / "home" / "teacher").glob("*.npy"))
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    assert files[0].parent.stat().st_mode & 0o777 == 0o700
    counted = []
    monkeypatch.setattr(teacher_module, "cross_fitted", lambda *a: counted.append(a))
    again = open_run()                                       # read back: nothing counted
    assert counted == [] and np.array_equal(again.trainer.teacher.grid, first.trainer.teacher.grid)
    assert sum("teacher" in s for s in said) == 1                 # nothing to wait for: no word
    monkeypatch.undo()
    monkeypatch.setattr(teacher_module, "SAID_FROM", 0)
    for damage in (lambda f: np.save(f, np.zeros((3, 3), dtype=np.float16)),   # stale, or
                   lambda f: f.write_bytes(f.read_bytes()[:100])):             # cut short
        damage(files[0])
        said.clear()
        assert np.array_equal(open_run().trainer.teacher.grid, first.trainer.teacher.grid)
        assert said == [f"counting the teacher's 8-gram predictions for this text (20 tables, again: "
                        f"the copy kept there was unreadable; kept in {tmp_path / 'home' / 'teacher'})"]


def test_a_text_too_big_for_the_teachers_memory_is_refused(monkeypatch):
    monkeypatch.setattr(teacher_module, "MAX_BYTES", 1000)
    with pytest.raises(KafkarnnError, match="--teacher needs"):
        small_trainer(TAUGHT)


@pytest.mark.parametrize("args,words", [
    (["--teacher", "1"], "--teacher must be in [0, 1)"),
    (["--teacher", "-0.1"], "--teacher must be in [0, 1)"),
    (["--teacher", "0.3", "--teacher-order", "11"], "--teacher-order must be at most 10"),
    (["--teacher", "0.3", "--teacher-folds", "1"], "--teacher-folds must be a whole number ≥ 2"),
    (["--teacher", "0.3", "--teacher-folds", "101"], "--teacher-folds must be at most 100"),
    (["--teacher", "0.3", "--teacher-rise", "-0.1"], "--teacher-rise must be ≥ 0 and keep --teacher"),
    (["--teacher", "0.6", "--teacher-rise", "0.4"], "--teacher-rise must be ≥ 0 and keep --teacher"),
    (["--teacher", "0", "--teacher-rise", "0.2"], "--teacher-rise raises the teacher's weight: it needs"),
])
def test_bad_teacher_values_end_in_one_line(tmp_path, capsys, args, words):
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT)
    code = main(["train", "--corpus", str(corpus), "--data-dir", str(tmp_path / "home"),
                 "--max-iters", "1", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("kafkarnn: error:") and words in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


def test_compare_names_a_run_that_learns_from_its_table():
    from kafkarnn.inspect.compare import RunCurves
    taught = RunCurves("a", {"model": "gru", "layers": 2, "hidden": 384, "teacher": 0.3})
    alone = RunCurves("b", {"model": "gru", "layers": 2, "hidden": 384, "teacher": 0.0})
    before = RunCurves("c", {"model": "gru", "layers": 2, "hidden": 384})
    assert taught.model == "gru 2×384 + teacher 0.3"
    risen = RunCurves("d", {"model": "gru", "layers": 2, "hidden": 384, "teacher": 0.3, "teacher_rise": 0.2})
    assert risen.model == "gru 2×384 + teacher 0.3→0.5"
    assert alone.model == before.model == "gru 2×384"


def test_the_monitor_and_progress_name_the_teacher(tmp_path):
    from kafkarnn.train.cadence import Cadence, Limits
    from kafkarnn.train.session import Session
    from kafkarnn.train.progress import progress_line
    from kafkarnn.tui.widgets import SpeedPane
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="r",
                 new=False, preset=None, overrides=dict(model="gru", hidden=10, batch=3, seq_len=10,
                                                        teacher=0.3, teacher_rise=0.2, decay_iters=4))
    try:
        s = Session(lh, Limits(max_iters=3), Cadence(eval_every=1e9, save_every=1e9))
        s.run()
    finally:
        lh.lock.unlock()
    shown = s.snapshot()
    assert shown.model == "gru 2×10 + teacher 0.3→0.5" and shown.teacher == (pytest.approx(0.4), 0.5)
    assert "  teacher 0.400→0.5  " in progress_line(shown)
    rows = SpeedPane._render_speed(shown).columns
    assert "teacher α" in rows[0]._cells and "0.400 → 0.5" in rows[1]._cells
    last = json.loads(lh.run.metrics_path.read_text().splitlines()[-1])
    assert last["iter"] == 3 and last["teacher"] == pytest.approx(0.4)

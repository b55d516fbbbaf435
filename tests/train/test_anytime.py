"""Training that is good whenever it stops: schedule-free AdamW and the moving average in the
trainer. Exact resume through a file and across processes, the validated weights in every
reader (validation, samples, best.npz, checkpoint, sampling from a run, Inside), and runs made
before these methods existed resuming as they did."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kafkarnn.engine.model import ParamDict
from kafkarnn.engine.vocab import Vocab
from kafkarnn.inspect import inside
from kafkarnn.inspect.inference import load_for_sampling
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.train.config import Config
from kafkarnn.train.generation import generate
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.launch import prepare
from kafkarnn.train.scoring import validation_loss
from kafkarnn.train.session import Session
from kafkarnn.train.trainer import Trainer

from test_trainer import assert_same_trainer, straight_and_resumed

TEXT = ("The chief clerk came at seven; by then the sister had cried twice, and the father "
        "read the paper aloud to nobody. [Nobody listened.]\n") * 30
REPO = Path(__file__).resolve().parents[2]
OLD = Path(__file__).parent / "data" / "pre-anytime"     # made by commit d2276b0 (see test below)

METHODS = {                                                # name: config changes
    "sfadamw": dict(optimizer="sfadamw", decay_iters=0, warmup_iters=4),
    "ema": dict(average="ema", ema_beta=0.9),
    "sfadamw+ema": dict(optimizer="sfadamw", decay_iters=0, average="ema", ema_beta=0.8),
    "tail": dict(average="tail", tail_eta=2.0),
}


def small_trainer(cfg, text=TEXT[:450]):
    vocab = Vocab.from_text(TEXT)
    data = vocab.encode(text)
    return Trainer(cfg, vocab, data[:400], data[400:])


def config(method, **kw):
    base = dict(model="gru", hidden=10, layers=2, batch=3, seq_len=10, dropout=0.25,
                weight_drop=0.3, lr=1e-2, lr_min=1e-3, decay_iters=20, weight_decay=0.1)
    return Config(**{**base, **METHODS[method], **kw})


@pytest.mark.parametrize("method", METHODS)
def test_resume_through_a_file_is_bit_identical(tmp_path, method):
    cfg = config(method)
    straight, resumed = straight_and_resumed(cfg, 30, 15, tmp_path / "c.npz", small_trainer)
    assert "train/params" in straight.state_arrays()
    assert_same_trainer(straight, resumed)
    # what makes the method: the validated weights are not those the gradient is taken at
    assert not np.array_equal(straight.validated_weights(), straight.model.params.flat)


@pytest.mark.parametrize("method", METHODS)
def test_the_checkpoint_names_the_validated_weights_param_and_the_trained_ones_train(method):
    t = small_trainer(config(method))
    for _ in range(6):
        t.step()
    arrays = t.state_arrays()
    for k, v in ParamDict(t.model.layout, t.validated_weights()).items():
        assert np.array_equal(arrays[f"param/{k}"], v), k
    assert np.array_equal(arrays["train/params"], t.model.params.flat)
    held_name = "avg/avg" if t.average is not None else "opt/x"
    assert held_name not in arrays                             # saved once, as param/*
    if method == "sfadamw+ema":
        assert np.array_equal(arrays["opt/x"], t.opt.state["x"])   # here x is not what is validated
    if t.average is not None:
        assert int(arrays["avg/k"]) == 6
    if method.startswith("sfadamw"):
        assert {"opt/z", "opt/v", "opt/k", "opt/lr_sq_sum"} <= set(arrays)


def test_adam_without_an_average_saves_what_it_always_saved():
    t = small_trainer(config("ema", average="none"))
    t.step()
    assert not any(k.startswith(("train/", "avg/")) for k in t.state_arrays())
    assert t.validated_weights() is t.model.params.flat and t.weights_name() == "as trained"


@pytest.mark.parametrize("method", METHODS)
def test_validation_and_samples_read_the_validated_weights_and_leave_training_untouched(method):
    t = small_trainer(config(method, dropout=0.0, weight_drop=0.0))
    for _ in range(8):
        t.step()
    trained = t.model.params.flat.copy()
    twin = small_trainer(t.cfg)
    twin.model.params.flat[...] = t.validated_weights()
    assert t.evaluate() == validation_loss(twin.model, t.val, True, 256)
    other = small_trainer(t.cfg)
    other.model.params.flat[...] = trained
    assert t.evaluate() != validation_loss(other.model, t.val, True, 256)
    got = t.generate("the ", 40, np.random.default_rng(5))
    want = generate(twin.model, t.vocab, "the ", 40, np.random.default_rng(5))
    assert got[0] == want[0]
    probe = inside.take(t)
    assert np.array_equal(probe.model.params.flat, t.validated_weights())
    assert np.array_equal(t.model.params.flat, trained)     # restored bit for bit after each


def test_a_session_saves_the_validated_weights_as_best_and_says_which_they_are(tmp_path):
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="r",
                 new=False, preset=None, overrides=dict(model="gru", hidden=10, batch=3, seq_len=10,
                                                        optimizer="sfadamw", decay_iters=0,
                                                        warmup_iters=3, average="ema",
                                                        ema_beta=0.9))
    try:
        s = Session(lh, Limits(max_iters=12), Cadence(eval_every=1e9, save_every=1e9))
        assert s.run() == "FINISHED"
    finally:
        lh.lock.unlock()
    t = lh.trainer
    snap = s.snapshot()
    assert snap.weights == "EMA 0.9 of x" and snap.lr == t.lr_at(12)
    last = json.loads(lh.run.metrics_path.read_text().splitlines()[-1])
    assert last["weights"] == "EMA 0.9 of x" and last["lr"] == t.lr_at(12) and "val_loss" in last
    best, _ = load_checkpoint(lh.run.best_path)
    for k, v in ParamDict(t.model.layout, t.validated_weights()).items():
        assert np.array_equal(best[f"param/{k}"], v), k
    config = json.loads(lh.run.config_path.read_text())
    assert (config["optimizer"], config["average"], config["ema_beta"]) == ("sfadamw", "ema", 0.9)
    sampler, _ = load_for_sampling(tmp_path / "home", "r", best=False)   # sample, inspect, score
    assert np.array_equal(sampler.model.params.flat, t.validated_weights())


def resume_old_run(home: Path, iters: int):
    """Resume the run saved by the code before these methods (at iteration 20) to `iters`."""
    lh = prepare(data_dir=home, corpus_spec=str(REPO / "sample_texts" / "the_petition.txt"),
                 encoding=None, run_name="pre-anytime", new=False, preset=None, overrides={})
    try:
        Session(lh, Limits(max_iters=iters), Cadence(eval_every=1e9, save_every=1e9)).run()
    finally:
        lh.lock.unlock()
    return lh


def test_a_run_saved_before_these_methods_resumes_exactly_as_the_old_code_went_on(tmp_path):
    # data/pre-anytime: `kafkarnn --headless --preset small --model gru --hidden 8 --layers 2
    # --batch 4 --seq-len 16 --weight-decay 0.1 --decay-iters 40 --lr-min 1e-4 --corpus
    # sample_texts/the_petition.txt --run pre-anytime --max-iters 20 --threads 1` at d2276b0,
    # then the same code resumed to 30: checkpoint-30-by-the-old-code.npz
    run = tmp_path / "home" / "runs" / "pre-anytime"
    run.mkdir(parents=True)
    shutil.copy(OLD / "checkpoint.npz", run)
    record = json.loads((OLD / "config.json").read_text())
    assert "average" not in record and "ema_beta" not in record
    record["corpus"]["spec"] = str(REPO / "sample_texts" / "the_petition.txt")
    (run / "config.json").write_text(json.dumps(record))
    lh = resume_old_run(tmp_path / "home", 30)
    assert lh.trainer.cfg.average == "none" and lh.trainer.cfg.optimizer == "adam"
    mine, meta = load_checkpoint(run / "checkpoint.npz")
    theirs, old_meta = load_checkpoint(OLD / "checkpoint-30-by-the-old-code.npz")
    assert mine.keys() == theirs.keys()
    for k in theirs:
        assert np.array_equal(mine[k], theirs[k]), k
    assert (meta["iteration"], meta["rng"]) == (old_meta["iteration"], old_meta["rng"])


def kafkarnn(*args):
    return subprocess.Popen([sys.executable, "-m", "kafkarnn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(proc):
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def test_resume_across_processes_with_schedule_free_and_an_average(home, book):
    args = ["--headless", "--corpus", str(book), "--model", "gru", "--layers", "2", "--hidden", "12",
            "--batch", "2", "--seq-len", "8", "--dropout", "0.2", "--dropout-ramp", "18",
            "--optimizer", "sfadamw",
            "--decay-iters", "0", "--warmup-iters", "3", "--average", "ema", "--ema-beta", "0.9",
            "--threads", "1"]
    one = kafkarnn(*args, "--data-dir", str(home / "one"), "--max-iters", "24")
    two = kafkarnn(*args, "--data-dir", str(home / "two"), "--max-iters", "12")
    finished(two)                                          # stopped at 12, then resumed to 24
    finished(kafkarnn(*args, "--data-dir", str(home / "two"), "--max-iters", "24"))
    finished(one)
    a, meta_a = load_checkpoint(home / "one" / "runs" / "porter-gru" / "checkpoint.npz")
    b, meta_b = load_checkpoint(home / "two" / "runs" / "porter-gru" / "checkpoint.npz")
    assert a.keys() == b.keys() and {"train/params", "opt/z", "avg/k", "param/l1.Wh"} <= set(a)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert meta_a["iteration"] == meta_b["iteration"] == 24 and meta_a["rng"] == meta_b["rng"]


def test_with_schedule_free_the_average_follows_x_not_the_gradient_point():
    from kafkarnn.engine.optim import WeightAverage
    t = small_trainer(config("sfadamw+ema"))
    mine = WeightAverage(t.opt.state["x"], t.cfg.ema_beta)
    for _ in range(5):
        t.step()
        mine.update(t.opt.state["x"])
    assert np.array_equal(t.validated_weights(), mine.validated)
    assert t.weights_name() == "EMA 0.8 of x"


def test_a_tail_average_run_validates_the_polynomial_decay_average_of_its_weights():
    from kafkarnn.engine.optim import TailAverage
    t = small_trainer(config("tail", tail_eta=3.0))
    mine = TailAverage(t.model.params.flat, 3.0)
    for _ in range(5):
        t.step()
        mine.update(t.model.params.flat)
    assert np.array_equal(t.validated_weights(), mine.validated)
    assert t.weights_name() == "tail average η 3"


def test_sample_inspect_and_score_say_the_saved_weights_are_an_average(home, book, capsys):
    from conftest import TINY

    from kafkarnn.main import main
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "6",
                 "--average", "ema", "--ema-beta", "0.9"]) == 0
    capsys.readouterr()
    assert main(["sample", "--length", "20"]) == 0
    assert "the EMA 0.9 weights" in capsys.readouterr().err
    assert main(["score", str(book)]) == 0
    assert "the EMA 0.9 weights" in capsys.readouterr().out
    plain = ["--data-dir", str(home / "plain")]                      # a run as trained says nothing
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "4", "--average", "none",
                 *plain]) == 0
    capsys.readouterr()
    assert main(["sample", "--length", "20", *plain]) == 0
    assert "weights" not in capsys.readouterr().err


def test_warmup_stable_decay_holds_the_rate_until_decay_start_then_decays_to_lr_min():
    t = small_trainer(Config(model="rnn", hidden=4, batch=3, seq_len=10, lr=0.01, lr_min=0.001,
                             warmup_iters=2, decay_start=6, decay_iters=4))
    half = 0.5 * (0.01 - 0.001)
    assert [t.lr_at(it) for it in range(12)] == pytest.approx(
        [0.005, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.001 + half * (1 + math.cos(math.pi / 4)),
         0.001 + half, 0.001 + half * (1 + math.cos(3 * math.pi / 4)), 0.001, 0.001])
    before = small_trainer(Config(model="rnn", hidden=4, batch=3, seq_len=10, lr=0.01,
                                  lr_min=0.001, warmup_iters=2, decay_start=1, decay_iters=4))
    assert before.lr_at(2) == pytest.approx(0.01) and before.lr_at(6) == pytest.approx(0.001)  # within warmup: as 0


def test_a_preset_without_a_decay_is_fitted_no_decay_but_its_dropout_still_follows_the_text():
    from kafkarnn.train.config import PRESETS, fit_to_text
    free = PRESETS["default"].replace(optimizer="sfadamw", decay_iters=0)
    fitted = fit_to_text(free, 3_724_065)
    assert fitted.decay_iters == 0 and (fitted.dropout, fitted.weight_drop) == (0, 0.11)
    decayed = fit_to_text(free.replace(decay_iters=1000), 3_724_065)
    assert decayed.decay_iters == 3637


def test_the_default_preset_keeps_its_fitted_decay_and_validates_a_tail_average(tmp_path):
    from kafkarnn.train.config import PRESETS
    from kafkarnn.train.launch import describe_start
    assert (PRESETS["default"].average, PRESETS["default"].tail_eta) == ("tail", 9.0)
    assert PRESETS["default"].decay_iters == 1000 and PRESETS["small"].average == "none"
    corpus = tmp_path / "clerk.txt"
    corpus.write_text(TEXT * 20)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="d",
                 new=False, preset=None, overrides=dict(hidden=8, layers=1, batch=4, seq_len=16,
                                                         schedule="fixed"))
    lh.lock.unlock()
    stored = json.loads(lh.run.config_path.read_text())
    assert (stored["average"], stored["tail_eta"]) == ("tail", 9.0)      # kept with the run
    assert (f"dropout rising to 0.2 by step {stored['dropout_ramp']:,}, validating the tail "
            "average η 9 weights") in describe_start(lh)
    assert lh.trainer.average is not None


def test_the_progress_line_shows_the_rate_and_which_weights_the_validation_describes():
    import dataclasses

    from kafkarnn.train.progress import progress_line
    from kafkarnn.seam import Snapshot, State
    snap = Snapshot(state=State.RUNNING, run_name="r", corpus="c", model="gru 2×8", n_params=1,
                    data_dir="d", iteration=10, chars=1, elapsed_s=1.0, session_s=1.0,
                    iters_per_sec=1.0, chars_per_sec=1.0, loss=1.5, val_loss=1.25,
                    best_val_loss=1.2, history=(), eta_s=None, last_saved=None, sample="",
                    sample_probs=(), sample_id=0, temperature=1.0, lr=2e-3, weights="EMA 0.99")
    assert "val of EMA 0.99 1.2500 (best 1.2000)  lr 2.00e-03" in progress_line(snap)
    plain = progress_line(dataclasses.replace(snap, weights="as trained"))
    assert "val 1.2500 (best 1.2000)  lr 2.00e-03" in plain


@pytest.mark.parametrize("option,value,says", [
    ("--average", "swa", "--average must be one of none, ema, tail, not 'swa'"),
    ("--tail-eta", "-1", "--tail-eta must be between 0 and 1000, not -1.0"),
    ("--ema-beta", "1", "--ema-beta must be between 0 and 1, not 1.0"),
    ("--optimizer", "sgd", "--optimizer must be adagrad, adam or sfadamw, not 'sgd'"),
    ("--decay-start", "-3", "--decay-start must not be negative"),
    ("--dropout-ramp", "-1", "--dropout-ramp must be a whole number ≥ 0, not -1")])
def test_bad_options_are_one_line_and_exit_2(home, book, capsys, option, value, says):
    from kafkarnn.main import main
    assert main(["--headless", "--corpus", str(book), "--max-iters", "1", option, value]) == 2
    err = capsys.readouterr().err
    assert err == f"kafkarnn: error: {says}\n"
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())   # nothing made

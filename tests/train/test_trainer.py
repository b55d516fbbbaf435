"""The trainer and the session loop: exact resume, streams, validation, limits, NaN guard, the
learning-rate schedule, dropout in training only, and best.npz."""

import math

from dataclasses import replace

import numpy as np
import pytest

from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import load_checkpoint, save_checkpoint
from kafkarnn.train.config import PRESETS, Config
from kafkarnn.train.launch import prepare
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.session import Generate, Pause, Resume, SaveNow, Session
from kafkarnn.train.trainer import Trainer, TrainingDiverged

TEXT = ("Every morning the clerk counted the stamps; every evening he counted them again, "
        "and the numbers never agreed. [Note: the drawer was locked.]\n") * 40


@pytest.fixture
def corpus_file(tmp_path):
    p = tmp_path / "clerk.txt"
    p.write_text(TEXT)
    return p


def launch(tmp_path, corpus_file, **overrides):
    cfg = {"model": "lstm", "hidden": 12, "batch": 3, "seq_len": 10, "dropout": 0.1}
    cfg.update(overrides)
    return prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus_file), encoding=None,
                   run_name="r", new=False, preset=None, overrides=cfg)


def train_to(tmp_path, corpus_file, iters, **overrides):
    lh = launch(tmp_path, corpus_file, **overrides)
    try:
        s = Session(lh, Limits(max_iters=iters), Cadence(eval_every=1e9, save_every=1e9))
        assert s.run() == "FINISHED"
        return lh.trainer
    finally:
        lh.lock.unlock()


@pytest.mark.parametrize("model,weight_drop", [("rnn", 0.0), ("lstm", 0.0), ("gru", 0.0), ("gru", 0.3)])
def test_resume_is_bit_identical(tmp_path, corpus_file, model, weight_drop):
    straight = train_to(tmp_path / "a", corpus_file, 30, model=model, weight_drop=weight_drop)
    train_to(tmp_path / "b", corpus_file, 12, model=model, weight_drop=weight_drop)      # stop at 12 ...
    resumed = train_to(tmp_path / "b", corpus_file, 30, model=model, weight_drop=weight_drop)  # ... to 30
    assert resumed.iteration == straight.iteration == 30
    for k, v in straight.model.params.items():
        assert np.array_equal(v, resumed.model.params[k]), k
    for k, v in straight.opt.state.items():
        assert np.array_equal(v, resumed.opt.state[k]), k
    assert straight.position == resumed.position
    assert straight.smooth_loss == resumed.smooth_loss


def test_resume_brings_the_curve_back_to_the_checkpoint_and_its_last_validation(tmp_path, corpus_file):
    train_to(tmp_path, corpus_file, 8)                 # a limit reached: saved, then validated at 8
    run = tmp_path / "home" / "runs" / "r"
    with open(run / "metrics.jsonl", "a") as f:        # a line after the save: work that was lost
        f.write('{"iter": 9, "loss": 1.0, "val_loss": 0.5}\n')
    lh = launch(tmp_path, corpus_file)
    try:
        assert lh.trainer.iteration == 8 and lh.history_iters[-1] == 8
        at, val = lh.val_history[-1]
        assert at == 8 and lh.best_val_loss == val != 0.5
    finally:
        lh.lock.unlock()


def test_checkpoint_holds_everything_a_step_depends_on(tmp_path, corpus_file):
    t = train_to(tmp_path, corpus_file, 5)
    arrays, meta = load_checkpoint(tmp_path / "home" / "runs" / "r" / "checkpoint.npz")
    assert meta["iteration"] == 5 and meta["chars"] == 5 * 3 * 10
    assert meta["vocab"] == t.vocab.chars and meta["fingerprint"]["length"] == len(TEXT)
    assert {"positions", "state/l0", "param/Why", "opt/m", "opt/v", "opt/k"} <= set(arrays)
    assert meta["rng"]["bit_generator"] == "PCG64"


def test_streams_cover_their_regions_and_wrap_with_a_fresh_state():
    vocab = Vocab.from_text("abcd")
    data = vocab.encode("abcd" * 30)
    cfg = Config(model="rnn", hidden=4, batch=2, seq_len=5)
    t = Trainer(cfg, vocab, data, data[:0])
    first, targets = t.next_batch()
    assert first.shape == (5, 2) and t.region == 60
    assert np.array_equal(first[:, 1], data[60:65]) and np.array_equal(targets[:, 0], data[1:6])
    t.state[0][...] = 1.0
    t.position = 60 - 5                        # next batch would run past the region's end
    again, _ = t.next_batch()
    assert t.position == 5 and (t.state[0] == 0).all()
    assert np.array_equal(again[:, 0], data[0:5]) and np.array_equal(again[:, 1], data[60:65])


def test_streams_restore_their_shared_position_and_refuse_unequal_ones():
    vocab = Vocab.from_text("abcd")
    data = vocab.encode("abcd" * 30)
    cfg = Config(model="rnn", hidden=4, batch=2, seq_len=5)
    t = Trainer(cfg, vocab, data, data[:0])
    for _ in range(3):
        t.step()
    arrays, meta = t.state_arrays(), {**t.state_meta(), "config": cfg.to_dict(), "vocab": vocab.chars}
    assert list(arrays["positions"]) == [15, 15]
    fresh = Trainer(cfg, vocab, data, data[:0])
    fresh.restore({k: np.array(v) for k, v in arrays.items()}, meta, "here")
    assert fresh.position == 15 and np.array_equal(fresh.next_batch()[0], t.next_batch()[0])
    arrays["positions"] = np.array([15, 20])
    with pytest.raises(KafkarnnError, match="unequal stream positions"):
        Trainer(cfg, vocab, data, data[:0]).restore(arrays, meta, "here")


def test_seed_preset_is_min_char_rnn():
    c = PRESETS["seed"]
    assert (c.model, c.hidden, c.seq_len, c.batch, c.optimizer, c.lr, c.clip, c.init, c.dtype) == \
        ("rnn", 100, 25, 1, "adagrad", 0.1, 5.0, "seed", "float64")


def test_validation_is_mean_nats_per_character(tmp_path):
    vocab = Vocab.from_text("ab")
    data = vocab.encode("ab" * 200)
    t = Trainer(Config(model="rnn", hidden=4, batch=1, seq_len=5), vocab, data[:300], data[300:])
    t.model.params["Why"][...] = 0.0           # uniform predictions: exactly ln 2 per character
    t.model.params["by"][...] = 0.0
    assert t.evaluate() == pytest.approx(math.log(2), rel=1e-6)


def test_too_short_text_is_refused():
    vocab = Vocab.from_text("abc")
    with pytest.raises(KafkarnnError, match="too short"):
        Trainer(Config(batch=8, seq_len=64), vocab, vocab.encode("abc" * 10), vocab.encode(""))


def test_nan_steps_are_skipped_then_training_stops(tmp_path, corpus_file):
    lh = launch(tmp_path, corpus_file, model="rnn", lr=50.0, clip=0.0, optimizer="adagrad")
    t = lh.trainer
    t.model.params["l0.Whh"][...] = np.inf      # every step now yields a non-finite loss
    before = {k: v.copy() for k, v in t.model.params.items()}
    with pytest.raises(TrainingDiverged):
        for _ in range(10):
            t.step()
    assert t.iteration == 0
    for k, v in before.items():
        assert np.array_equal(v, t.model.params[k], equal_nan=True)
    lh.lock.unlock()


def test_session_commands_pause_save_generate(tmp_path, corpus_file):
    lh = launch(tmp_path, corpus_file)
    s = Session(lh, Limits(max_iters=40), Cadence(eval_every=1e9, save_every=1e9), stay_open=False)
    g = Generate("Every ", 20, temperature=0.5)
    bad = Generate("Every ☃", 20)
    for cmd in (Pause(), SaveNow(), g, bad, Resume()):
        s.send(cmd)
    assert s.run() == "FINISHED"
    text, probs = g.reply.result(timeout=1)
    assert len(text) == 20 and len(probs) == 20
    with pytest.raises(KafkarnnError, match="never saw"):
        bad.reply.result(timeout=1)
    kinds = [e.kind for e in s.events()]
    assert kinds.count("saved") >= 2 and "finished" in kinds
    metrics = lh.run.read_metrics()
    assert metrics[-1]["iter"] == 40 and "val_loss" in metrics[-1]
    assert {"iter", "chars", "loss", "chars_per_sec", "elapsed_s"} <= set(metrics[-1])
    # 40 steps end before the first 2-s interval: the last line has the pace of what was done
    assert metrics[-1]["chars_per_sec"] > 0 and s.snapshot().iters_per_sec > 0
    assert lh.run.best_path.exists()
    lh.lock.unlock()


def test_failed_save_keeps_the_previous_checkpoint_and_training_goes_on(tmp_path, corpus_file,
                                                                          monkeypatch):
    import kafkarnn.train.record as record
    train_to(tmp_path, corpus_file, 3)
    ckpt = tmp_path / "home" / "runs" / "r" / "checkpoint.npz"
    good = ckpt.read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(record, "save_checkpoint", disk_full)
    lh = launch(tmp_path, corpus_file)
    s = Session(lh, Limits(max_iters=8), Cadence(eval_every=1e9, save_every=0.0))
    assert s.run() == "FINISHED"
    lh.lock.unlock()
    assert lh.trainer.iteration == 8
    assert ckpt.read_bytes() == good
    assert any(e.kind == "save_failed" and "No space" in e.text for e in s.events())


def test_a_sample_without_a_prompt_goes_on_from_the_first_stream():
    text = "the clerk waits at the door. " * 40
    vocab = Vocab.from_text(text)
    data = vocab.encode(text)
    t = Trainer(Config(model="gru", hidden=32, batch=1, seq_len=16, lr=1e-2, lr_min=1e-2),
                vocab, data, data[:0])
    losses = [t.step() for _ in range(300)]
    assert max(losses[-10:]) < 0.1                       # it knows the text by heart
    i = t.position                                       # the stream's next input character
    got, _ = t.generate("", 40, np.random.default_rng(0), temperature=0)
    assert got == text[i + 1:i + 41]                      # what follows it in the text


def test_sampling_a_checkpoint_without_a_prompt_starts_from_its_first_stream(tmp_path, corpus_file):
    from kafkarnn.engine.sampling import sample
    from kafkarnn.inspect.inference import load_for_sampling
    train_to(tmp_path, corpus_file, 20)
    sampler, run = load_for_sampling(tmp_path / "home", "r")
    arrays, _ = load_checkpoint(run.checkpoint_path)
    state, start = sampler.stream
    assert np.array_equal(state[0], arrays["state/l0"][:, :, :1]) and start == sampler.vocab.index[" "]
    text, _ = sampler.generate("", 30, np.random.default_rng(0), temperature=0)
    ids, _ = sample(sampler.model, [start], 30, np.random.default_rng(0), 0, state=state)
    assert text == sampler.vocab.decode(ids)
    zero, _ = sampler.generate("e", 30, np.random.default_rng(0), temperature=0)   # a prompt: zeros
    assert zero == sampler.vocab.decode(sample(sampler.model, sampler.vocab.encode("e"), 30,
                                               np.random.default_rng(0), 0)[0])


# ---- exact resume through a checkpoint file, for every cell, with dropout and DropConnect ----

def small_trainer(cfg, text=TEXT[:450]):
    """A trainer on a short text: its three streams wrap to the start every 13 steps."""
    vocab = Vocab.from_text(TEXT)
    data = vocab.encode(text)
    return Trainer(cfg, vocab, data[:400], data[400:])


def save_and_restore(t: Trainer, path, make=small_trainer) -> Trainer:
    """t's state through a checkpoint file into a fresh trainer `make(t.cfg)`."""
    save_checkpoint(path, t.state_arrays(),
                    {**t.state_meta(), "config": t.cfg.to_dict(), "vocab": t.vocab.chars})
    arrays, meta = load_checkpoint(path)
    fresh = make(t.cfg)
    fresh.restore(arrays, meta, str(path))
    return fresh


def straight_and_resumed(cfg: Config, steps: int, stop: int, path, make=small_trainer):
    """(`steps` steps in one go, `stop` steps then the rest after a trip through a file at
    `path`): two trainers that a resume that changes nothing leaves identical."""
    straight, first = make(cfg), make(cfg)
    for _ in range(steps):
        straight.step()
    for _ in range(stop):
        first.step()
    resumed = save_and_restore(first, path, make)
    for _ in range(steps - stop):
        resumed.step()
    return straight, resumed


def assert_same_trainer(a: Trainer, b: Trainer) -> None:
    arrays_a, arrays_b = a.state_arrays(), b.state_arrays()   # parameters, optimizer, states, positions
    assert arrays_a.keys() == arrays_b.keys()
    for k, v in arrays_a.items():
        assert v.dtype == arrays_b[k].dtype and np.array_equal(v, arrays_b[k]), k
    assert a.state_meta() == b.state_meta()                   # iteration, chars, loss, RNG state


@pytest.mark.parametrize("model,layers,optimizer", [
    ("rnn", 2, "adagrad"), ("lstm", 1, "adam"), ("lstm", 2, "adam"), ("gru", 2, "adam")])
def test_resume_through_a_file_is_bit_identical_with_dropout_and_dropconnect(
        tmp_path, model, layers, optimizer):
    cfg = Config(model=model, hidden=10, layers=layers, batch=3, seq_len=10, dropout=0.25,
                 weight_drop=0.3, optimizer=optimizer, lr=1e-2, lr_min=1e-3, warmup_iters=4,
                 decay_iters=20, weight_decay=0.1 if optimizer == "adam" else 0.0)
    N = 30                                      # the streams wrap twice, once on each side of N/2
    straight, resumed = straight_and_resumed(cfg, N, N // 2, tmp_path / "checkpoint.npz")
    first = small_trainer(cfg)
    for _ in range(N // 2):
        first.step()
    unseeded = save_and_restore(first, tmp_path / "other.npz")
    unseeded.rng = np.random.default_rng(12345)  # the same, but other masks from here on
    for _ in range(N - N // 2):
        unseeded.step()
    assert resumed.iteration == N
    assert_same_trainer(straight, resumed)
    assert not np.array_equal(unseeded.model.params.flat, straight.model.params.flat)  # masks matter


# ---- the learning-rate schedule --------------------------------------------------------------

def schedule(**kw) -> Trainer:
    return small_trainer(Config(model="rnn", hidden=4, batch=3, seq_len=10, **kw))


def test_warmup_then_cosine_decay_then_lr_min():
    t = schedule(lr=0.01, lr_min=0.001, warmup_iters=4, decay_iters=8)
    half = 0.5 * (0.01 - 0.001)
    expected = {
        0: 0.01 * 1 / 4, 1: 0.01 * 2 / 4, 2: 0.01 * 3 / 4, 3: 0.01,         # linear warmup
        4: 0.01,                                                            # the decay starts at lr
        6: 0.001 + half * (1 + math.cos(math.pi / 4)),                      # a quarter of the way
        8: 0.001 + half,                                                    # halfway: the mean
        10: 0.001 + half * (1 + math.cos(3 * math.pi / 4)),
        12: 0.001, 13: 0.001, 10_000: 0.001,                                # lr_min from then on
    }
    for it, lr in expected.items():
        assert t.lr_at(it) == pytest.approx(lr, rel=1e-12, abs=0), it
    lrs = [t.lr_at(it) for it in range(4, 13)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))                         # strictly down


def test_decay_iters_0_is_a_constant_rate_and_no_warmup_starts_at_lr():
    t = schedule(lr=0.01, lr_min=0.001, decay_iters=0)
    assert {t.lr_at(it) for it in (0, 1, 7, 1000, 10 ** 7)} == {0.01}
    t = schedule(lr=0.01, lr_min=0.001, warmup_iters=5, decay_iters=0)
    assert [t.lr_at(it) for it in (0, 4, 5, 10 ** 6)] == pytest.approx([0.002, 0.01, 0.01, 0.01])
    t = schedule(lr=0.01, lr_min=0.001, decay_iters=10)
    assert [t.lr_at(it) for it in (0, 5, 10, 11)] == pytest.approx([0.01, 0.0055, 0.001, 0.001])


def test_the_default_preset_decays_to_1e_4_over_1000_steps_and_stays():
    t = Trainer(PRESETS["default"].replace(hidden=4, layers=1, batch=2, seq_len=4),
                Vocab.from_text("ab"), Vocab.from_text("ab").encode("ab" * 20), np.zeros(0, np.uint8))
    assert t.lr_at(0) == pytest.approx(2e-3) and t.lr_at(1000) == pytest.approx(1e-4)
    assert t.lr_at(50_000) == pytest.approx(1e-4)
    # its cosine runs over (t/T)^1.5: half-way down at 1000·0.5^(1/1.5) = 630, not at 500
    assert t.lr_at(630) == pytest.approx((2e-3 + 1e-4) / 2, rel=2e-3)
    assert t.lr_at(500) == pytest.approx(1e-4 + 1.9e-3 * (1 + math.cos(math.pi * 0.5 ** 1.5)) / 2)


def test_the_decays_power_shapes_it_between_the_same_ends():
    from kafkarnn.train.schedule import learning_rate
    plain = Config(lr=1e-2, lr_min=1e-3, decay_iters=100)
    assert learning_rate(plain, 50) == pytest.approx(5.5e-3)            # power 1: the plain cosine
    rates = {p: [learning_rate(plain.replace(decay_power=p), it) for it in range(0, 121)]
             for p in (0.5, 1.0, 1.5, 3.0)}
    for p, r in rates.items():
        assert r[0] == pytest.approx(1e-2) and r[100] == r[120] == pytest.approx(1e-3), p
        assert all(a >= b for a, b in zip(r, r[1:])), p                  # falling all the way
    for it in range(1, 100):                                            # more power: higher, longer
        assert rates[0.5][it] < rates[1.0][it] < rates[1.5][it] < rates[3.0][it]
    before = {k: v for k, v in PRESETS["default"].to_dict().items() if k != "decay_power"}
    assert Config.from_dict(before).decay_power == 1.0     # runs made before keep the plain cosine


@pytest.mark.parametrize("optimizer", ["adagrad", "adam"])
def test_every_step_hands_the_optimizer_the_scheduled_rate(tmp_path, optimizer):
    cfg = dict(lr=0.01, lr_min=0.001, warmup_iters=3, decay_iters=6, optimizer=optimizer)
    t = schedule(**cfg)
    seen = []

    def spy(opt):
        real = opt.step
        opt.step = lambda params, grads, lr: (seen.append(lr), real(params, grads, lr))[1]

    spy(t.opt)
    for _ in range(6):
        t.step()
    t = save_and_restore(t, tmp_path / "c.npz")   # a resumed run goes on where the schedule was
    spy(t.opt)
    for _ in range(6):
        t.step()
    assert seen == [schedule(**cfg).lr_at(it) for it in range(12)]
    assert seen[:3] == pytest.approx([0.01 / 3, 0.02 / 3, 0.01]) and seen[9:] == [0.001] * 3


# ---- dropout in the trainer: in every step, never in validation or sampling ------------------

@pytest.mark.parametrize("dropout,weight_drop", [(0.3, 0.0), (0.0, 0.3)])
def test_steps_draw_masks_from_the_trainers_rng_and_evaluate_draws_none(dropout, weight_drop):
    cfg = Config(model="lstm", hidden=10, layers=2, batch=3, seq_len=10, dropout=dropout,
                 weight_drop=weight_drop)
    a, b = small_trainer(cfg), small_trainer(cfg)
    b.rng = np.random.default_rng(99)                    # same weights, other masks
    assert a.step() != b.step()
    plain = small_trainer(cfg.replace(dropout=0.0, weight_drop=0.0))
    c = small_trainer(cfg.replace(dropout=0.0, weight_drop=0.0))
    c.rng = np.random.default_rng(99)
    assert plain.step() == c.step()                      # nothing to draw, so the rng is unused
    for t in (a, b):
        plain.model.params.flat[...] = t.model.params.flat
        rng_before = t.rng.bit_generator.state
        v = t.evaluate()
        assert v == t.evaluate() == plain.evaluate()     # validation: the model without dropout
        g, _ = t.generate("Every", 20, np.random.default_rng(0), temperature=0)
        assert g == t.generate("Every", 20, np.random.default_rng(1), temperature=0)[0]
        assert t.rng.bit_generator.state == rng_before   # neither drew from the training rng


# ---- best.npz ---------------------------------------------------------------------------------

def test_best_npz_holds_the_lowest_validation_loss_and_a_worse_one_leaves_it(tmp_path, corpus_file):
    lh = launch(tmp_path, corpus_file, model="gru", hidden=16, lr=0.1, lr_min=0.1,
                weight_drop=0.2, val_fraction=0.03, average="none")   # an average would smooth the ups
    try:
        t, best = lh.trainer, lh.run.best_path

        def session(iters, best_val_loss):           # validates after every step
            s = Session(replace(lh, best_val_loss=best_val_loss), Limits(max_iters=iters),
                        Cadence(eval_every=0, metrics_every=0, save_every=1e9, sample_len=10))
            assert s.run() == "FINISHED"
            return s

        s = session(8, None)
        vals = [(m["val_loss"], m["iter"]) for m in lh.run.read_metrics() if "val_loss" in m]
        assert len(vals) >= 8 and sorted(vals) != vals[::-1]     # not simply falling: ups too
        lowest, at = min(vals)
        arrays, meta = load_checkpoint(best)
        assert meta["iteration"] == at and meta["best_val_loss"] == s.best_val_loss
        assert meta["best_val_loss"] == pytest.approx(lowest, abs=1e-6)
        again = Trainer(t.cfg, t.vocab, t.train, t.val)
        again.restore(arrays, meta, str(best))
        assert again.evaluate() == meta["best_val_loss"]         # its parameters give that loss
        kept = best.read_bytes()
        scramble = np.random.default_rng(0)                      # now a much worse model
        t.model.params.flat[...] = scramble.normal(0, 2, t.model.size)
        session(10, s.best_val_loss)
        later = [m["val_loss"] for m in lh.run.read_metrics() if "val_loss" in m][len(vals):]
        assert later and min(later) > lowest + 0.5               # validations worse than the best ...
        assert best.read_bytes() == kept                         # ... never replace best.npz
    finally:
        lh.lock.unlock()


# ---- validation that costs little wall time -------------------------------------------------------

def test_a_big_split_is_validated_on_a_fixed_subset_and_whole_on_request(monkeypatch):
    from kafkarnn.train import scoring
    monkeypatch.setattr(scoring, "SUBSET_CHARS", 600)        # a "big" split, at test size
    monkeypatch.setattr(scoring, "SUBSET_STREAM", 100)
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT * 3)
    t = Trainer(Config(model="gru", hidden=12, batch=2, seq_len=10), vocab, ids, ids)
    for _ in range(3):
        t.step()
    first, again, whole = t.evaluate(), t.evaluate(), t.evaluate(subset=False)
    assert first == again                                    # the same windows every time
    windows = np.linspace(0, len(ids) - 1 - 100, 6).astype(int)   # 6 windows of 100, side by side
    nats = 0.0
    state = t.model.zero_state(6)
    for p in range(0, 100, 256):
        idx = windows + p + np.arange(100)[:, None]
        nll, state = t.model.nll(ids[idx].astype(np.intp), ids[idx + 1].astype(np.intp), state)
        nats += nll
    assert first == pytest.approx(nats / 600, rel=1e-6)
    assert whole == scoring.cross_entropy(t.model, ids).nats / scoring.cross_entropy(t.model, ids).chars
    assert whole != first


def test_slow_validation_passes_stretch_the_interval(tmp_path, corpus_file, monkeypatch):
    lh = launch(tmp_path, corpus_file)
    real, passes = lh.trainer.evaluate, []

    def slow_evaluate(*a, **kw):
        import time
        time.sleep(0.02)                                      # a pass that costs 20 ms
        passes.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(lh.trainer, "evaluate", slow_evaluate)
    s = Session(lh, Limits(max_seconds=1.0),
                Cadence(eval_every=0.001, metrics_every=0.001, save_every=1e9))
    s.run()
    lh.lock.unlock()
    # at most one pass per 19 pass-times of training, plus the one at the limit
    assert 2 <= len(passes) <= 1.0 / (19 * 0.02) + 2

"""The BLAS thread tuner: its decisions on made-up timings, the real pool it sets, and what a
thread count may change in training (nothing at the default cell's tiny sizes; at the GEMM
sizes of the default preset the last bits, never at a fixed count)."""

import json
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from kafkarnn.engine.vocab import Vocab
from kafkarnn.train.config import PRESETS
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.session import Session
from kafkarnn.train import thread_policy
from kafkarnn.train.threads import BlasPool, ThreadTuner, candidate_counts, usable_cores
from kafkarnn.train.trainer import Trainer

CHARS = 4096                        # characters per step, as the default preset's 32 × 128
QUIET = {1: 8400.0, 2: 13300.0}     # chars/s by thread count on a quiet 2-core machine
BUSY = {1: 8000.0, 2: 900.0}        # with a neighbour on one core: two threads wait on each other


class FakePool:
    """Stands in for BlasPool: remembers the count and every change."""

    def __init__(self, n=2):
        self.n, self.sets = n, []

    def get(self):
        return self.n

    def set(self, n):
        self.n = n
        self.sets.append(n)
        return n


def train(tuner, pool, speed, seconds, noise=0.0, seed=0):
    """Feed the tuner steps at the rate `speed(threads, t)` (± noise) for `seconds` of training;
    returns [(start time, threads, step seconds)]."""
    rng = np.random.default_rng(seed)
    t, steps = 0.0, []
    while t < seconds:
        dt = CHARS / (speed(pool.n, t) * (1 + noise * rng.uniform(-1, 1)))
        steps.append((t, pool.n, dt))
        tuner.step_done(dt, CHARS)
        t += dt
    return steps


def rate(steps, start, end):
    part = [dt for t, _, dt in steps if start <= t < end]
    return len(part) * CHARS / sum(part)


def tuner_for(candidates=(1, 2), **kw):
    pool = FakePool()
    return ThreadTuner(list(candidates), pool=pool, **kw), pool


def test_it_keeps_the_fastest_count_and_the_smaller_of_two_close_ones():
    tuner, pool = tuner_for((1, 2, 3, 4))
    speeds = {1: 8000.0, 2: 14000.0, 3: 17000.0, 4: 16000.0}
    train(tuner, pool, lambda n, t: speeds[n], 30)
    assert tuner.chosen == tuner.threads == pool.n == 3 and tuner.auto
    tuner, pool = tuner_for((1, 2))
    train(tuner, pool, lambda n, t: {1: 10000.0, 2: 10200.0}[n], 30)
    assert tuner.chosen == 1                   # 2 % faster is within the margin: fewer threads


def test_it_backs_off_when_a_neighbour_takes_a_core_and_rises_when_it_leaves():
    tuner, pool = tuner_for()
    steps = train(tuner, pool, lambda n, t: (BUSY if 100 <= t < 300 else QUIET)[n], 600, noise=0.05)
    assert [n for _, n, _ in tuner.history] == [2, 1, 2]
    (_, _, sweep), (backed_off, _, slower), (rose, _, recheck) = tuner.history
    assert (sweep, slower, recheck) == ("sweep", "slower", "recheck")
    assert 100 < backed_off < 110              # one slow step, then a probe of one thread
    assert 300 < rose < 300 + 2 * 60 + 10      # at the next recheck, at most twice the interval
    assert rate(steps, 100, 300) > 0.9 * BUSY[1]
    assert rate(steps, 0, 100) > 0.95 * QUIET[2]


def test_a_moderate_slowdown_is_noticed_on_the_median_of_steps():
    tuner, pool = tuner_for()
    train(tuner, pool, lambda n, t: {1: 8000.0, 2: 13000.0 if t < 100 else 6000.0}[n], 130)
    assert tuner.chosen == 1 and 100 < tuner.history[-1][0] < 110


def test_noisy_steps_do_not_make_it_alternate():
    tuner, pool = tuner_for()
    train(tuner, pool, lambda n, t: QUIET[n], 1200, noise=0.15, seed=1)   # steps ± 15 %
    assert [n for _, n, _ in tuner.history] == [2]
    for seed in range(10):                 # two counts 10 % apart, within the steps' noise
        tuner, pool = tuner_for()
        steps = train(tuner, pool, lambda n, t: {1: 10000.0, 2: 11000.0}[n], 1800, noise=0.15, seed=seed)
        assert len(tuner.history) <= 3 and tuner.probes <= 2 + 1800 / 60, (seed, list(tuner.history))
        assert rate(steps, 0, 1800) > 0.97 * 11000, seed


def test_between_probes_it_leaves_the_pool_alone():
    tuner, pool = tuner_for()
    train(tuner, pool, lambda n, t: QUIET[n], 50)
    sets = len(pool.sets)
    train(tuner, pool, lambda n, t: QUIET[n], 9)       # the tuner's clock is at about 59 s
    assert len(pool.sets) == sets


def test_a_fixed_count_never_changes():
    pool = FakePool(n=4)
    tuner = ThreadTuner([1, 2], fixed=2, pool=pool)
    train(tuner, pool, lambda n, t: (BUSY if t > 50 else QUIET)[n], 300)
    assert pool.sets == [2] and tuner.threads == tuner.chosen == 2 and not tuner.auto
    assert tuner.describe() == "2 (fixed)"


def test_counts_it_may_try():
    assert candidate_counts(1) == [1] and candidate_counts(2) == [1, 2]
    assert candidate_counts(64) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    assert candidate_counts(20) == [1, 2, 3, 4, 6, 8, 12, 16, 20]
    assert 1 <= usable_cores()


def blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_the_pool_really_changes_size_even_from_another_thread():
    pool = BlasPool()
    before = pool.get()
    try:
        assert pool.set(1) == 1 and blas_threads() == [1] * len(blas_threads()) != []
        seen = []
        # a Session trains in a worker thread while the CLI's main thread set the pool first
        worker = threading.Thread(target=lambda: seen.append((pool.set(2), blas_threads())))
        worker.start()
        worker.join()
        assert seen[0][0] == 2 and set(seen[0][1]) == {2}
    finally:
        BlasPool().set(before)


# -- what the thread count may change --------------------------------------------------------------

TEXT = "Gregor woke to find the room unchanged, and the rain against the window. " * 120


def trained(cfg, schedule, steps):
    vocab = Vocab.from_text(TEXT)
    data = vocab.encode(TEXT)
    tr = Trainer(cfg, vocab, data, data[-500:])
    for i in range(steps):
        with threadpool_limits(schedule(i), user_api="blas"):
            tr.step()
    return tr.model.params.flat.copy()


def test_at_tiny_sizes_the_thread_count_changes_nothing():
    cfg = PRESETS["default"].replace(hidden=8, batch=3, seq_len=6)     # gru, dropout, DropConnect
    one = trained(cfg, lambda i: 1, 8)
    assert np.array_equal(one, trained(cfg, lambda i: 2, 8))
    assert np.array_equal(one, trained(cfg, lambda i: 1 + i % 2, 8))    # switching while training


def test_at_the_default_sizes_any_count_of_workers_gives_the_same_bits():
    cfg = PRESETS["default"].replace(seq_len=16, groups=2)     # two stream groups (engine/streams.py)

    def trained_on(workers):
        vocab = Vocab.from_text(TEXT)
        data = vocab.encode(TEXT)
        tr = Trainer(cfg, vocab, data, data[-500:])
        for i in range(3):
            tr.groups.workers.set(workers(i))
            tr.step()
        return tr.model.params.flat.copy()
    two = trained_on(lambda i: 2)
    assert np.array_equal(two, trained_on(lambda i: 1))
    assert np.array_equal(two, trained_on(lambda i: 1 + i % 2))        # switching while training


def test_a_session_tells_the_tuner_each_step_and_shows_its_count(tmp_path):
    from kafkarnn.train.launch import prepare
    corpus = tmp_path / "rain.txt"
    corpus.write_text(TEXT)
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="r",
                 new=False, preset=None, overrides={"model": "gru", "hidden": 8, "batch": 2, "seq_len": 5})
    told = []
    tuner = ThreadTuner([1, 2], fixed=1, pool=FakePool())
    tuner.step_done = lambda seconds, chars: told.append((seconds, chars))
    try:
        s = Session(lh, Limits(max_iters=7), Cadence(eval_every=1e9, save_every=1e9), tuner=tuner)
        assert s.run() == "FINISHED"
    finally:
        lh.lock.unlock()
    assert len(told) == 7 and all(c == 10 and sec > 0 for sec, c in told)
    assert s.snapshot().threads == 1 and s.snapshot().threads_auto is False
    lines = [json.loads(x) for x in lh.run.metrics_path.read_text().splitlines()]
    assert lines and all(rec["threads"] == 1 for rec in lines)


@pytest.mark.parametrize("fixed", [1, 2, None])
def test_resume_is_exact_at_a_fixed_count_and_at_the_tuners(tmp_path, fixed, monkeypatch):
    from kafkarnn.train.launch import prepare
    for name in thread_policy.THREAD_VARS:                  # else the user's variable fixes it
        monkeypatch.delenv(name, raising=False)
    corpus = tmp_path / "rain.txt"
    corpus.write_text(TEXT * 4)

    def train_to(home, iters):
        lh = prepare(data_dir=home, corpus_spec=str(corpus), encoding=None, run_name="r", new=False,
                     preset=None, overrides={"model": "gru", "hidden": 128, "layers": 2, "batch": 32,
                                             "seq_len": 8, "dropout": 0.3, "weight_drop": 0.3},
                     cores=2)
        assert lh.trainer.groups.G == 2
        try:
            tuner = thread_policy.tuner_for(fixed, lh.trainer.groups.workers)
            tuner.probe_s = 0.0                     # the tuner sweeps and rechecks within a few steps
            tuner.recheck_every = 0.05
            s = Session(lh, Limits(max_iters=iters), Cadence(eval_every=1e9, save_every=1e9),
                        tuner=tuner)
            assert s.run() == "FINISHED"
            assert fixed or tuner.probes >= 2          # the tuner did change the count
            return lh.trainer.model.params.flat.copy()
        finally:
            lh.lock.unlock()
    before = BlasPool().get()
    try:
        straight = train_to(tmp_path / "a", 20)
        train_to(tmp_path / "b", 8)
        assert np.array_equal(straight, train_to(tmp_path / "b", 20))
    finally:
        BlasPool().set(before)


def test_the_group_count_is_stored_with_the_run_and_kept_on_another_machine(tmp_path, monkeypatch):
    from kafkarnn.train import trainer as trainer_module
    from kafkarnn.train.launch import prepare
    corpus = tmp_path / "rain.txt"
    corpus.write_text(TEXT)

    def opened(cores=None):
        lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name="r",
                     new=False, preset="small", overrides={"hidden": 128, "batch": 32, "seq_len": 4},
                     cores=cores)
        lh.lock.unlock()
        return lh
    assert opened(cores=2).trainer.groups.G == 2                     # made for two cores …
    assert json.loads((tmp_path / "home" / "runs" / "r" / "config.json").read_text())["groups"] == 2
    monkeypatch.setattr(trainer_module, "usable_cores", lambda: 1)    # … resumed where there is one
    assert opened().trainer.groups.G == 2

"""Stream groups: the same maths as one batch, and the same bits on any number of threads."""

import numpy as np
import pytest

from kafkarnn.engine.cells import NAMES
from kafkarnn.engine.model import CharModel, ModelSpec
from kafkarnn.engine.streams import StreamGroups, Workers, bounds, groups_for


def model(cell, dtype="float64", **spec):
    m = CharModel(ModelSpec(vocab_size=30, hidden=24, layers=2, cell=cell, dtype=dtype, **spec))
    m.init(np.random.default_rng(0))
    return m


def batch(B=7, T=9, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 30, (T, B)), rng.integers(0, 30, (T, B))


@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("reduction", ["mean", "seq-sum"])
def test_groups_compute_what_one_batch_computes(cell, reduction):
    m = model(cell)
    X, Y = batch()
    state = [np.random.default_rng(2).standard_normal(s.shape) for s in m.zero_state(7)]
    loss, grads, new = m.loss_and_grads(X, Y, state, reduction=reduction)
    g_loss, g_grads, g_new = StreamGroups(m, 3).loss_and_grads(X, Y, state, reduction=reduction)
    assert g_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(g_grads.flat, grads.flat, rtol=1e-10, atol=1e-14)
    for a, b in zip(new, g_new):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_groups_hand_each_group_its_own_streams_of_the_teacher():
    m = model("gru")
    X, Y = batch()
    q = np.random.default_rng(3).dirichlet(np.ones(30), size=Y.shape)        # (T, B, V)
    loss, grads, _ = m.loss_and_grads(X, Y, m.zero_state(7), teacher=(0.4, q))
    g_loss, g_grads, _ = StreamGroups(m, 3).loss_and_grads(X, Y, m.zero_state(7), teacher=(0.4, q))
    assert g_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(g_grads.flat, grads.flat, rtol=1e-10, atol=1e-14)
    plain = m.loss_and_grads(X, Y, m.zero_state(7))[1].flat
    assert not np.allclose(plain, grads.flat, rtol=1e-3)                    # the teacher acted


@pytest.mark.parametrize("cell", ["gru", "lstm", "mingru"])
def test_any_number_of_threads_gives_the_same_bits_and_draws_the_same_masks(cell):
    m = model(cell, "float32", dropout=0.3, weight_drop=0.3 if cell in ("gru", "lstm") else 0.0)
    groups = StreamGroups(m, 3)
    X, Y = batch(B=40)
    seen = []
    for n in (1, 2, 3, 1):
        groups.workers.set(n)
        rng = np.random.default_rng(5)
        loss, grads, new = groups.loss_and_grads(X, Y, m.zero_state(40), rng)
        seen.append((loss, grads.flat.copy(), [s.copy() for s in new], rng.random()))
    for loss, flat, new, after in seen[1:]:
        assert loss == seen[0][0] and np.array_equal(flat, seen[0][1]) and after == seen[0][3]
        assert all(np.array_equal(a, b) for a, b in zip(new, seen[0][2]))


def test_dropout_masks_differ_between_groups_and_drop_connect_is_shared():
    m = model("gru", "float32", dropout=0.5, weight_drop=0.5)
    X, Y = batch(B=8)
    X[:, 4:] = X[:, :4]                                   # two groups reading the same text
    Y[:, 4:] = Y[:, :4]
    _, _, new = StreamGroups(m, 2).loss_and_grads(X, Y, m.zero_state(8), np.random.default_rng(3))
    assert not np.array_equal(new[1][:, :, :4], new[1][:, :, 4:])     # masks of their own
    _, _, same = StreamGroups(m, 2).loss_and_grads(X, Y, m.zero_state(8), np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(new, same))       # from the trainer's rng


def test_validation_in_groups_predicts_as_one_batch():
    m = model("lstm")
    X, Y = batch(B=48)
    state = m.zero_state(48)
    nll, new = m.char_nll(X, Y, state)
    g_nll, g_new = StreamGroups(m, 2).char_nll(X, Y, state)
    np.testing.assert_allclose(g_nll, nll, rtol=1e-12)                # the same (t, b) order
    for a, b in zip(new, g_new):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_how_many_groups_a_run_gets():
    assert groups_for(32, 384, 2) == 2            # the default on two cores
    assert groups_for(32, 384, 1) == 1            # one core, or --threads 1
    assert groups_for(32, 384, 16) == 2           # never fewer than 16 streams a group
    assert groups_for(32, 128, 2) == 2            # the small preset
    assert groups_for(32, 64, 2) == 1             # smaller: Python's overhead would win
    assert groups_for(1, 100, 8) == 1             # the seed
    assert groups_for(128, 512, 8) == 8
    assert bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]


def test_workers_use_at_most_their_limit_and_pass_on_a_failure():
    w = Workers(2)
    assert w.set(5) == 2 and w.get() == 2 and w.set(0) == 1
    w.set(2)

    def job(i):
        if i == 3:
            raise ValueError("group 3")
        return i * i

    assert w.run(lambda i: i * i, 5) == [0, 1, 4, 9, 16]
    with pytest.raises(ValueError, match="group 3"):
        w.run(job, 6)

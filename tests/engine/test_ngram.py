"""The n-gram baseline's engine: Kneser-Ney probabilities by hand, against a plain reference, as distributions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from kafkarnn.engine.ngram import NGram, discounts


def reference_prob(train: list[int], V: int, order: int, context: list[int], w: int) -> float:
    """Interpolated modified Kneser-Ney written straight from the definitions, one probability at a time."""
    def grams(k):
        return [tuple(train[t - k + 1:t + 1]) for t in range(k - 1, len(train))]

    def counts(k, top):
        if top:
            out = {}
            for g in grams(k):
                out[g] = out.get(g, 0) + 1
            return out
        before = {}
        for g in grams(k + 1):                     # distinct characters seen before each k-gram
            before.setdefault(g[1:], set()).add(g[0])
        return {g: len(v) for g, v in before.items()}

    def D(c):
        n = {r: sum(1 for v in c.values() if v == r) for r in (1, 2, 3, 4)}
        d = [0.0, 0.5, 1.0, 1.5]
        if n[1] and n[2]:
            Y = n[1] / (n[1] + 2 * n[2])
            d[1] = 1 - 2 * Y * n[2] / n[1]
            d[2] = 2 - 3 * Y * n[3] / n[2]
            if n[3]:
                d[3] = 3 - 4 * Y * n[4] / n[3]
        return [min(max(v, 0.0), r) for r, v in enumerate(d)]

    def P(k, ctx, top):
        if k == 0:
            return 1.0 / V
        lower = P(k - 1, ctx, False)
        if len(ctx) < k - 1:
            return lower
        h = tuple(ctx[len(ctx) - (k - 1):]) if k > 1 else ()
        c = counts(k, top)
        d = D(c)
        mine = {g: v for g, v in c.items() if g[:-1] == h}
        total = sum(mine.values())
        if total == 0:
            return lower
        gamma = sum(d[min(v, 3)] for v in mine.values())
        cw = mine.get(h + (w,), 0)
        return (max(cw - d[min(cw, 3)], 0.0) + gamma * lower) / total

    return P(order, list(context), True)


def test_a_tiny_example_by_hand():
    # "aab", V = 3 (a b c): unigram counts a 2, b 1; n1 = n2 = 1, so Y = 1/3, D1 = 1/3, D2 = 2;
    # γ = D1 + D2 = 7/3; P(a) = (0 + γ/3)/3 = 7/27, P(b) = (1 − 1/3 + γ/3)/3 = 13/27, P(c) = 7/27
    m = NGram(np.array([0, 0, 1]), 3, max_order=2)
    assert np.allclose(m.distribution([], 1), [7 / 27, 13 / 27, 7 / 27], rtol=0, atol=1e-15)
    assert np.allclose(discounts(np.array([2, 1]))[1:3], [float(Fraction(1, 3)), 2.0])


def test_matches_the_reference_for_every_order():
    rng = np.random.default_rng(3)
    train = list(rng.integers(0, 4, 120)) + [0, 1, 2, 0, 1, 2, 0, 1] * 5
    V, top = 5, 4
    m = NGram(np.array(train), V, max_order=top)
    for _ in range(12):
        ctx = list(rng.integers(0, 5, rng.integers(0, 6)))
        for order in range(1, top + 1):
            got = m.distribution(ctx, order)
            want = [reference_prob(train, V, order, ctx, w) for w in range(V)]
            assert np.allclose(got, want, rtol=1e-12, atol=0), (ctx, order)


@pytest.mark.parametrize("order", range(1, 9))
def test_probabilities_sum_to_one_over_the_vocabulary(order):
    rng = np.random.default_rng(order)
    V = 7
    text = np.concatenate([rng.integers(0, 6, 2000), np.tile([1, 2, 3, 4], 200)])   # 6 never seen
    m = NGram(text, V, max_order=8)
    for _ in range(20):
        p = m.distribution(rng.integers(0, V, rng.integers(0, 12)), order)
        assert p.min() > 0 and abs(p.sum() - 1) < 1e-12


def test_per_character_nll_is_the_distribution_of_the_text_so_far():
    rng = np.random.default_rng(5)
    text = rng.integers(0, 4, 500)
    m = NGram(text[:400], 4, max_order=5)
    y = text[400:]
    nll = m.nll(y, 3)
    for t in (0, 1, 2, 37, 99):
        assert nll[t] == pytest.approx(-np.log(m.distribution(y[:t], 3)[y[t]]), rel=1e-12)
    assert np.allclose(m.nll_by_order(y)[2], nll)
    rows = np.stack([y[:50], y[50:]])                  # two texts, each read from its own start
    assert np.array_equal(m.nll(rows, 3), np.stack([m.nll(y[:50], 3), m.nll(y[50:], 3)]))


def test_higher_orders_win_on_repetitive_text():
    phrase = np.array([ord(c) - 32 for c in "the cat sat on the mat; the rat ate the hat. "])
    text = np.tile(phrase, 40)
    m = NGram(text[:1500], 96, max_order=6)
    per_order = m.nll_by_order(text[1500:]).mean(axis=1)
    assert per_order[5] < per_order[2] < per_order[0]
    assert per_order[5] < 0.25         # only "the ?at" is left to guess


def test_an_unknown_character_costs_the_uniform_floor():
    m = NGram(np.array([0, 1, 0, 1, 2]), 4, max_order=3)
    nll = m.nll(np.array([0, 9, -1, 1]), 3)
    assert nll[1] == pytest.approx(np.log(4)) and nll[2] == pytest.approx(np.log(4))
    with pytest.raises(ValueError):
        m.nll(np.array([0, 1]), 4)


def test_discounts_stay_between_zero_and_the_count():
    # n1 = n2 = 1 and many threes: the estimate of D2 is 2 − 3·(1/3)·10 < 0, which would raise a count
    D = discounts(np.array([1, 2] + [3] * 10 + [4]))
    assert D[0] == 0 and all(0 <= D[r] <= r for r in (1, 2, 3)) and D[2] == 0


@pytest.mark.parametrize("order", [1, 3, 6])
def test_the_distributions_at_every_position_are_the_distribution_of_the_text_so_far(order):
    rng = np.random.default_rng(order)
    text = np.concatenate([rng.integers(0, 5, 300), np.tile([1, 2, 3], 50)])
    m = NGram(text[:350], 6, max_order=6)                          # id 5 never seen
    y = text[350:]
    rows = m.distributions(y, order, chunk=7)                       # several chunks
    assert rows.shape == (len(y), 6) and np.allclose(rows.sum(axis=1), 1, atol=1e-12)
    for t in (0, 1, 5, 60, len(y) - 1):
        assert np.allclose(rows[t], m.distribution(y[:t], order), rtol=1e-12)
    assert np.allclose(-np.log(rows[np.arange(len(y)), y]), m.nll(y, order), rtol=1e-12)

"""Looking inside: traces, gradient through time, saturation, unit ranking, guesses, score."""

import numpy as np
import pytest

from kafkarnn.engine.model import CharModel, ModelSpec
from kafkarnn.engine.probe import gate_saturation, saturation, trace
from kafkarnn.engine.through_time import (gradient_through_time, source_steps,
                                          state_gradients)


def tiny_model(cell, layers=1, seed=0, V=5, H=4, dtype="float64"):
    m = CharModel(ModelSpec(vocab_size=V, hidden=H, layers=layers, cell=cell, dtype=dtype))
    rng = np.random.default_rng(seed)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.5, v.shape)   # big enough that no gradient is trivially tiny
    return m, rng


def step_by_step(m, ids, targets, state, nudge=None):
    """A reference forward for one stream from each cell's step(): per step the loss of that
    step's character alone, and every layer's h. nudge = (layer, step, delta) adds delta to that
    layer's h right after that step, before anything reads it."""
    state = [s.copy() for s in state]
    losses, hs = [], []
    for t, ix in enumerate(ids):
        x, row = None, []
        for l, cell in enumerate(m.cells):
            p = m.layer_params[l]
            Wx, b = (p[k] for k in cell.input_keys)
            cell.step(p, (Wx[:, ix] if l == 0 else Wx @ x) + b, state[l])
            if nudge is not None and nudge[:2] == (l, t):
                state[l][0] += nudge[2]
            x = state[l][0].copy()
            row.append(state[l].copy())
        y = m.params["Why"] @ x + m.params["by"]
        y = y - y.max()
        losses.append(np.log(np.exp(y).sum()) - y[targets[t]])
        hs.append(row)
    return np.array(losses), hs


# -- the engine: gradient through time --------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_state_gradients_match_centred_differences_of_a_nudged_state(cell, layers):
    m, rng = tiny_model(cell, layers, seed=layers)
    T, B, H, eps = 4, 2, 4, 1e-3
    x, y = rng.integers(0, 5, (T, B)), rng.integers(0, 5, (T, B))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(B)]     # nonzero carried state
    grads, steps = state_gradients(m, x, y, state)
    assert list(steps) == [3, 2, 1, 0]
    worst = 0.0
    for b in range(B):
        start = [s[:, :, b] for s in state]
        for l in range(layers):
            for t in range(T):
                for i in range(H):
                    f = {}
                    for k in (-2, -1, 1, 2):                    # the stencil of gradcheck.py
                        delta = np.zeros(H)
                        delta[i] = k * eps
                        f[k] = step_by_step(m, x[:, b], y[:, b], start, (l, t, delta))[0]
                    num = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * eps)   # dL_s/dh^l_t[i], all s
                    for j, s in enumerate(steps):
                        a = grads[l, j, t, b, i]
                        assert s >= t or (a == 0 and abs(num[s]) < 1e-12)   # nor on a later state
                        worst = max(worst, abs(a - num[s]) / max(abs(a) + abs(num[s]), 1e-5))
    assert worst < 1e-6


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradient_through_time_is_the_mean_norm_over_streams_and_steps(cell):
    m, rng = tiny_model(cell, layers=2, seed=5)
    T, B = 6, 3
    x, y = rng.integers(0, 5, (T, B)), rng.integers(0, 5, (T, B))
    grads, steps = state_gradients(m, x, y)
    norms = np.linalg.norm(grads, axis=-1)                   # (L, S, T, B)
    expect = np.zeros((2, T))
    for k in range(T):
        expect[:, k] = np.mean([norms[:, j, s - k] for j, s in enumerate(steps) if s >= k],
                               axis=(0, 2))
    assert np.allclose(gradient_through_time(m, x, y), expect, rtol=1e-12)
    # some source steps only: the same mean over those
    some = gradient_through_time(m, x, y, sources=[5, 2])
    assert np.allclose(some[:, 1], np.mean([norms[:, 0, 4], norms[:, 3, 1]], axis=(0, 2)))
    assert np.allclose(some[:, 5], norms[:, 0, 0].mean(axis=1)) and np.all(some[:, 3:] > 0)


def test_source_steps_are_spread_evenly_and_end_at_the_last_step():
    assert list(source_steps(8)) == [7, 6, 5, 4, 3, 2, 1, 0]
    assert list(source_steps(8, 4)) == [7, 5, 3, 1]
    assert list(source_steps(8, 20)) == list(source_steps(8))
    assert list(source_steps(8, [1, 6, 6])) == [6, 1]
    with pytest.raises(ValueError):
        source_steps(8, [8])


def test_vanishing_gradients_are_followed_far_below_float32s_smallest_number():
    m64, rng = tiny_model("rnn", layers=1, seed=2, H=6)
    m64.params["l0.Whh"][...] *= 0.02                        # h_{t-1} hardly matters: fast decay
    m32 = CharModel(ModelSpec(vocab_size=5, hidden=6, layers=1, cell="rnn", dtype="float32"))
    m32.params.flat[...] = m64.params.flat
    x, y = rng.integers(0, 5, (40, 2)), rng.integers(0, 5, (40, 2))
    g64, g32 = gradient_through_time(m64, x, y), gradient_through_time(m32, x, y)
    assert g64[0, -1] < 1e-60                                # far below float32's 1e-45
    assert np.allclose(g32, g64, rtol=1e-4, atol=0)


# -- the engine: traces and saturation --------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_trace_is_the_models_forward_and_its_states(cell):
    m, rng = tiny_model(cell, layers=2, seed=3)
    ids = rng.integers(0, 5, 30)
    tr = trace(m, ids, chunk=7)                               # state carried across chunks
    logits, _, _ = m.forward(ids[:, None], m.zero_state(1))
    assert np.array_equal(tr.logits, logits.T)
    assert np.allclose(tr.probs.sum(axis=1), 1.0) and tr.probs.shape == (30, 5)
    _, ref = step_by_step(m, ids, ids, [s[:, :, 0] for s in m.zero_state(1)])
    for l in range(2):
        assert np.allclose(tr.h[l], [r[l][0] for r in ref], atol=1e-12)
        if cell == "lstm":
            assert np.allclose(tr.c[l], [r[l][1] for r in ref], atol=1e-12)
    g = tr.gates[1]
    if cell == "lstm":                                        # c_t = f⊙c_{t-1} + i⊙g
        c_prev = np.vstack([np.zeros((1, 4)), tr.c[1][:-1]])
        assert np.allclose(tr.c[1], g["f"] * c_prev + g["i"] * g["g"])
    if cell == "gru":                                         # h_t = (1-z)⊙n + z⊙h_{t-1}
        h_prev = np.vstack([np.zeros((1, 4)), tr.h[1][:-1]])
        assert np.allclose(tr.h[1], (1 - g["z"]) * g["n"] + g["z"] * h_prev)
    assert sorted(g) == {"rnn": [], "lstm": ["f", "g", "i", "o"], "gru": ["n", "r", "z"]}[cell]


def test_saturation_counts_the_share_below_and_above_the_thresholds():
    a = np.array([[0.05, 0.5, 0.95],
                  [0.05, 0.95, 0.5],
                  [0.5, 0.99, 0.01],
                  [0.1, 0.9, 0.95]])                           # 0.1 and 0.9 themselves count as neither
    low, high = saturation(a)
    assert list(low) == [0.5, 0.0, 0.25] and list(high) == [0.0, 0.5, 0.5]
    m, rng = tiny_model("lstm", seed=1)
    sat = gate_saturation(trace(m, rng.integers(0, 5, 20)))
    assert sorted(sat[0]) == ["f", "i", "o"]
    f = sat[0]["f"]
    assert f["low"] == pytest.approx(f["units_low"].mean()) and 0.0 <= f["high"] <= 1.0
    m, rng = tiny_model("rnn", seed=1)
    assert gate_saturation(trace(m, rng.integers(0, 5, 20))) == [{}]

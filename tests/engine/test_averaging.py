"""Schedule-Free AdamW and the moving average of the weights: the update rules as written in
optim.py's docstrings, checked against the equations step by step, and on a quadratic."""

import math

import numpy as np
import pytest

from kafkarnn.engine.optim import Adam, ScheduleFreeAdamW, TailAverage, WeightAverage


def reference_sf(y0, grad_at, lrs, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.0, mask=None):
    """The paper's sequences one scalar at a time, in plain Python floats: (x, z, y) after each step."""
    n = len(y0)
    mask = [1.0] * n if mask is None else list(mask)
    z, x, y, v = list(y0), list(y0), list(y0), [0.0] * n
    lr_sq, out = 0.0, []
    for k, lr in enumerate(lrs, start=1):
        g = grad_at(np.array(y))
        lr_sq += lr * lr
        c = lr * lr / lr_sq
        for i in range(n):
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            v_hat = v[i] / (1 - beta2 ** k)
            z[i] = z[i] - lr * g[i] / (math.sqrt(v_hat) + eps) - lr * wd * mask[i] * y[i]
            x[i] = (1 - c) * x[i] + c * z[i]
            y[i] = (1 - beta1) * z[i] + beta1 * x[i]
        out.append((list(x), list(z), list(y)))
    return out


def quadratic(a, target):
    return lambda theta: a * (theta - target)      # gradient of ½·Σ a·(θ - target)²


def test_schedule_free_follows_its_equations_through_warmup_and_weight_decay():
    rng = np.random.default_rng(0)
    y0 = rng.standard_normal(6)
    grad = quadratic(np.linspace(0.5, 3.0, 6), rng.standard_normal(6))
    lrs = [0.01, 0.02, 0.03, 0.03, 0.03, 0.03]           # a warmup, then constant
    mask = np.array([1, 1, 0, 1, 0, 1.0])
    opt = ScheduleFreeAdamW(y0.copy(), weight_decay=0.1, decay_mask=mask)
    params = y0.copy()
    for (x, z, y), lr in zip(reference_sf(list(y0), grad, lrs, wd=0.1, mask=mask), lrs):
        opt.step(params, grad(params), lr)
        np.testing.assert_allclose(opt.state["x"], x, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.state["z"], z, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(params, y, rtol=1e-12, atol=1e-14)   # the model holds y
    assert int(opt.state["k"]) == 6 and float(opt.state["lr_sq_sum"]) == pytest.approx(
        sum(lr * lr for lr in lrs))
    assert opt.validated is opt.state["x"]


def test_schedule_free_first_step_puts_x_and_y_on_z():
    # c_1 = γ²/γ² = 1: the average starts at the first iterate, whatever the warmup rate
    opt = ScheduleFreeAdamW(np.array([1.0, -2.0]))
    params = np.array([1.0, -2.0])
    opt.step(params, np.array([4.0, -0.5]), 0.1)
    np.testing.assert_allclose(opt.state["z"], [0.9, -1.9], rtol=1e-7)   # γ·g/|g| (v̂ = g²)
    np.testing.assert_array_equal(opt.state["x"], opt.state["z"])
    np.testing.assert_allclose(params, opt.state["z"], rtol=1e-15)


def test_schedule_free_converges_on_a_quadratic_where_its_iterate_keeps_jumping():
    rng = np.random.default_rng(1)
    target = rng.standard_normal(20)
    a = np.geomspace(0.1, 10.0, 20)
    grad = quadratic(a, target)
    noisy = lambda theta: grad(theta) + 0.5 * rng.standard_normal(20)   # a stochastic gradient
    params = np.zeros(20)
    opt = ScheduleFreeAdamW(params.copy())
    for _ in range(3000):
        opt.step(params, noisy(params), 0.05)            # a constant rate: no schedule at all
    loss = lambda th: 0.5 * float(np.sum(a * (th - target) ** 2))
    assert loss(opt.state["x"]) < loss(np.zeros(20)) / 300
    assert loss(opt.state["x"]) < loss(opt.state["z"]) / 20      # the average sits still; z does not


def test_schedule_free_beats_constant_rate_adam_on_a_noisy_quadratic():
    rng = np.random.default_rng(2)
    target, a = rng.standard_normal(20), np.geomspace(0.1, 10.0, 20)
    noise = 0.5 * rng.standard_normal((2000, 20))
    loss = lambda th: 0.5 * float(np.sum(a * (th - target) ** 2))
    sf_params, adam_params = np.zeros(20), np.zeros(20)
    sf, adam = ScheduleFreeAdamW(sf_params.copy()), Adam(adam_params)
    for n in noise:
        sf.step(sf_params, a * (sf_params - target) + n, 0.05)
        adam.step(adam_params, a * (adam_params - target) + n, 0.05)
    assert loss(sf.state["x"]) < loss(adam_params) / 4


def test_weight_decay_spares_the_unmasked_entries():
    mask = np.array([1.0, 0.0])
    opt = ScheduleFreeAdamW(np.array([2.0, 2.0]), weight_decay=0.5, decay_mask=mask)
    params = np.array([2.0, 2.0])
    opt.step(params, np.zeros(2), 0.1)                   # no gradient: decay alone moves z
    np.testing.assert_allclose(opt.state["z"], [2.0 - 0.1 * 0.5 * 2.0, 2.0], rtol=1e-15)


def test_moving_average_equals_its_closed_form():
    rng = np.random.default_rng(3)
    thetas = rng.standard_normal((7, 5))
    beta = 0.8
    avg = WeightAverage(thetas[0] * 0 + 123.0, beta)     # the start value must not leak in
    for k, theta in enumerate(thetas, start=1):
        avg.update(theta)
        w = np.array([(1 - beta) * beta ** (k - i) for i in range(1, k + 1)])
        expected = (w[:, None] * thetas[:k]).sum(axis=0) / (1 - beta ** k)
        np.testing.assert_allclose(avg.validated, expected, rtol=1e-12)
    assert int(avg.state["k"]) == 7
    np.testing.assert_array_equal(WeightAverage(np.zeros(5), 0.9).validated, np.zeros(5))


def test_moving_average_of_a_constant_is_that_constant_and_it_lags_a_ramp():
    avg = WeightAverage(np.zeros(3), 0.9)
    for _ in range(5):
        avg.update(np.full(3, 7.0))
    np.testing.assert_allclose(avg.validated, 7.0, rtol=1e-12)        # no bias towards the start
    avg = WeightAverage(np.zeros(1), 0.9)
    for k in range(1, 201):
        avg.update(np.array([float(k)]))
    assert avg.validated[0] == pytest.approx(200 - 9, abs=0.01)        # lag β/(1-β) = 9 steps


def test_the_tail_average_weighs_step_i_of_k_by_its_polynomial_decay_weights():
    # ē_k = Σ_i w_i θ_i with w_i = a_i · Π_{j>i} (1 - a_j), a_j = (η+1)/(j+η), a_1 = 1
    rng = np.random.default_rng(3)
    thetas = rng.standard_normal((12, 5))
    for eta in (0.0, 2.0, 4.0):
        avg = TailAverage(thetas[0].copy(), eta)
        for k in range(1, 13):
            avg.update(thetas[k - 1])
            a = [min(1.0, (eta + 1) / (j + eta)) for j in range(1, k + 1)]
            w = [a[i] * math.prod(1 - x for x in a[i + 1:]) for i in range(k)]
            assert sum(w) == pytest.approx(1.0)
            np.testing.assert_allclose(avg.validated, np.dot(w, thetas[:k]), rtol=1e-12)
        if eta == 0.0:                                       # η = 0: the plain mean
            np.testing.assert_allclose(avg.validated, thetas.mean(axis=0), rtol=1e-12)
    assert int(avg.state["k"]) == 12


def test_the_tail_average_reaches_further_back_as_the_run_grows():
    # the weight a step 1/(η+1) of the run back still has, relative to the newest: about the same
    # share of the run at 50 and at 5,000 steps (an EMA's window would stay 1/(1-β) steps)
    def weights(k, eta):
        a = [min(1.0, (eta + 1) / (j + eta)) for j in range(1, k + 1)]
        return np.array([a[i] * math.prod(1 - x for x in a[i + 1:]) for i in range(k)])
    for k in (50, 1000):
        w = weights(k, 4.0)
        recent = w[-k // 5:].sum()                          # the last fifth of the run
        assert 0.55 < recent < 0.75, (k, recent)

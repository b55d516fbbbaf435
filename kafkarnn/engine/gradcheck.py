"""Numerical gradient check: centred differences against the model's analytic gradients.

The difference is the fourth-order centred stencil

    f'(θ) ≈ (-f(θ+2h) + 8 f(θ+h) - 8 f(θ-h) + f(θ-2h)) / 12h,

whose truncation error (~h⁴) is tiny at h = 1e-3, where the float64 rounding noise of the loss
(~1e-16 / h) is also small; the plain two-point difference cannot make both small at once.
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.model import CharModel


def max_relative_error(model: CharModel, inputs, targets, state, reduction="mean", h=1e-3,
                       names=None, floor=1e-5, mask_seed=None) -> dict[str, float]:
    """Largest relative error over every entry of every parameter (or `names`), per parameter.

    Relative error is |a - n| / max(|a| + |n|, floor), min-char-rnn's measure with a floor:
    the differences carry ~1e-13 of rounding noise, so an entry whose true gradient is below the
    floor (1e-5) is in effect held to an absolute error of floor·tol.
    Use float64 and tiny sizes. Without `mask_seed` the check runs without dropout; with it,
    every evaluation draws the same dropout masks (an rng made afresh from that seed), so the
    loss is one fixed function of the parameters and the masked gradients are checked too.
    """

    def masks():                             # the same dropout masks at every evaluation
        return None if mask_seed is None else np.random.default_rng(mask_seed)

    def objective() -> float:                # the forward pass alone: the loss, no backward
        nll, _ = model.char_nll(inputs, targets, state, masks())
        return float(nll.sum()) / (inputs.size if reduction == "mean" else inputs.shape[1])

    _, grads, _ = model.loss_and_grads(inputs, targets, state, rng=masks(), reduction=reduction)
    out = {}
    for name in names or model.params:
        p, g = model.params[name], grads[name]
        worst = 0.0
        for i in np.ndindex(p.shape):
            old = p[i]
            f = {}
            for k in (-2, -1, 1, 2):
                p[i] = old + k * h
                f[k] = objective()
            p[i] = old
            num = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * h)
            worst = max(worst, abs(g[i] - num) / max(abs(g[i]) + abs(num), floor))
        out[name] = worst
    return out

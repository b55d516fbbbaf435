"""The linear recurrence of the minimal cells, h_t = a_t ⊙ h_{t−1} + b_t, in its two forms.

minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?") compute a_t ∈ (0, 1) and b_t
from the input alone, for all steps at once; only this recurrence runs over time, and it has no
matrix:

    loop    h_t = a_t ⊙ h_{t−1} + b_t, one step after the other: two elementwise operations a step
    scan    the paper's parallel form in log space, for b ≥ 0 and h_{−1} ≥ 0:
                a*_t  = Σ_{k≤t} log a_k                                  (a cumulative sum)
                log h_t = a*_t + log(h_{−1} + Σ_{k≤t} exp(log b_k − a*_k))  (a cumulative log-sum-exp)

The paper keeps b positive with g(h̃) = h̃ + ½ / σ(h̃). Here the scan runs twice instead, on the
positive and the negative parts of b and h_{−1} (the recurrence is linear in them), so both forms
compute one function of the cells' plain equations and agree to rounding (a test holds them to
it). On a CPU the loop is much the faster (docs/cells.md has the measurement): the scan spends
several exp and log per number, the loop one multiply-add. Training runs the loop.

Backwards, the same recurrence in reverse: δ_t = ∂L/∂h_t (from above) + a_{t+1} ⊙ δ_{t+1},
∂L/∂a_t = δ_t ⊙ h_{t−1}, ∂L/∂b_t = δ_t.
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.layout import steps

GRADIENT_NOTE = ("a min-cell's gradient travels back only through the diagonal a_t "
                 "(∂h_t/∂h_(t−1) = diag(a_t)): there is no recurrent matrix")


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + eˣ), without overflow: −log σ(−x)."""
    return np.logaddexp(0.0, x)


def loop(a: np.ndarray, b: np.ndarray, hs: np.ndarray) -> None:
    """hs[t+1] = a[t] ⊙ hs[t] + b[t] for t = 0 … T−1; a, b are (T, H, B), hs (T+1, H, B) with
    hs[0] = h_{−1} set."""
    h, A, Bt = steps(hs), steps(a), steps(b)
    for t in range(len(A)):
        np.multiply(A[t], h[t], out=h[t + 1])
        h[t + 1] += Bt[t]                                # h_t = a_t ⊙ h_{t−1} + b_t


def scan(log_a: np.ndarray, b: np.ndarray, hs: np.ndarray) -> None:
    """The same as `loop`, from log a, by the log-space parallel scan of the module docstring, run
    on the positive and on the negative part of b and h_{−1}; hs[0] = h_{−1} set."""
    a_star = np.cumsum(log_a, axis=0)                    # a*_t = Σ_{k≤t} log a_k
    terms = np.empty(hs.shape, dtype=hs.dtype)
    h0, total = hs[0].copy(), np.zeros(hs[1:].shape, dtype=hs.dtype)
    with np.errstate(divide="ignore"):                   # log 0 = −∞: that part is absent
        for sign in (1.0, -1.0):
            np.log(np.maximum(sign * h0, 0.0), out=terms[0])
            np.log(np.maximum(sign * b, 0.0), out=terms[1:])
            terms[1:] -= a_star
            np.logaddexp.accumulate(terms, axis=0, out=terms)
            terms[1:] += a_star
            total += sign * np.exp(terms[1:])            # h_t = exp(a*_t + log Σ …), per part
    hs[1:] = total


def loop_backward(a: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    """delta (T, H, B) holds ∂L/∂h_t from above; overwritten by δ_t = that + a_{t+1} ⊙ δ_{t+1}.
    tmp: one step's scratch, (H, B) or (H,) for one stream."""
    D, A = steps(delta), steps(a)
    for t in reversed(range(len(D) - 1)):
        np.multiply(A[t + 1], D[t + 1], out=tmp)
        D[t] += tmp                                      # into h_t from above and from t+1


def shown(values: np.ndarray, state: str = "h") -> np.ndarray:
    """A min-cell's h (a running mix of linear candidates, not bounded by ±1) on the −1 … +1 scale
    of a shading: tanh(h)."""
    return np.tanh(values)

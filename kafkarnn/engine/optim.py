"""Optimizers and gradient clipping, on flat vectors: the model's parameters and gradients are
each one contiguous array (`model.params.flat`, `grads.flat`), so an update is a few NumPy calls.

    Adagrad:  m += g²;  θ -= lr · g / √(m + ε)                   (the seed's, lr 0.1, ε 1e-8)
    Adam:     m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
              θ -= lr · m̂ / (√v̂ + ε),  m̂ = m/(1-β1^k), v̂ = v/(1-β2^k)
              with optional decoupled weight decay θ -= lr·wd·θ on matrices (AdamW).
    Schedule-Free AdamW (Defazio et al. 2024): no decay to fit in advance; the validated weights
              are an average x of the iterates z, see ScheduleFreeAdamW.
    WeightAverage: an exponential moving average of the weights, beside any optimizer.
    TailAverage: a polynomial-decay average, whose window grows with the run (a share of it).
"""

from __future__ import annotations

import math

import numpy as np


def clip_elementwise(g: np.ndarray, limit: float) -> None:
    """The seed's clipping: every gradient entry into [-limit, limit]."""
    g.clip(-limit, limit, out=g)


def clip_global_norm(g: np.ndarray, max_norm: float) -> float:
    """Scale the gradient so its L2 norm is at most max_norm. Returns the norm before."""
    norm = math.sqrt(float(np.dot(g, g)))
    if norm > max_norm:
        g *= max_norm / (norm + 1e-6)
    return norm


class Adagrad:
    name = "adagrad"

    def __init__(self, params: np.ndarray, eps: float = 1e-8):
        self.eps = eps
        self.state = {"m": np.zeros_like(params)}
        self._tmp = np.empty_like(params)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        m, tmp = self.state["m"], self._tmp
        np.multiply(grads, grads, out=tmp)
        m += tmp                                 # memory of squared gradients
        np.add(m, self.eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(grads, tmp, out=tmp)
        tmp *= lr
        params -= tmp                            # θ -= lr · g / √(m + ε)


class Adam:
    name = "adam"

    def __init__(self, params: np.ndarray, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 decay_mask: np.ndarray | None = None):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.decay_mask = decay_mask             # 1 where weight decay applies (matrices)
        self.state = {"m": np.zeros_like(params), "v": np.zeros_like(params),
                      "k": np.zeros((), dtype=np.int64)}    # k: updates taken so far
        self._tmp = np.empty_like(params)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        b1, b2 = self.beta1, self.beta2
        m, v, tmp = self.state["m"], self.state["v"], self._tmp
        self.state["k"] += 1
        k = int(self.state["k"])
        c1, c2 = 1.0 - b1 ** k, 1.0 - b2 ** k
        m *= b1
        np.multiply(grads, 1.0 - b1, out=tmp)
        m += tmp                                 # first moment
        v *= b2
        np.multiply(grads, grads, out=tmp)
        tmp *= 1.0 - b2
        v += tmp                                 # second moment
        if self.weight_decay:                    # decoupled weight decay θ -= lr·wd·θ (matrices)
            if self.decay_mask is None:
                params *= 1.0 - lr * self.weight_decay
            else:
                np.multiply(params, self.decay_mask, out=tmp)
                tmp *= lr * self.weight_decay
                params -= tmp
        # θ -= lr · m̂ / (√v̂ + ε), written as (lr·√c2 / c1) · m / (√v + ε·√c2): one pass fewer
        r2 = math.sqrt(c2)
        np.sqrt(v, out=tmp)
        tmp += self.eps * r2
        np.divide(m, tmp, out=tmp)
        tmp *= lr * r2 / c1
        params -= tmp


class ScheduleFreeAdamW:
    """Schedule-Free AdamW ("The Road Less Scheduled", Defazio et al. 2024), step k = 1, 2, …:

        y_k = (1-β1)·z_k + β1·x_k             the gradient g_k is taken here (the model's parameters)
        v_k = β2·v_{k-1} + (1-β2)·g_k²,  v̂_k = v_k / (1-β2^k)
        z_{k+1} = z_k - γ_k·g_k/(√v̂_k + ε) - γ_k·λ·y_k         (decay λ on the matrices, at y)
        c_{k+1} = γ_k² / Σ_{i≤k} γ_i²          weights by the squared rate: warmup steps count little
        x_{k+1} = (1-c_{k+1})·x_k + c_{k+1}·z_{k+1}

    x is the weighted average of the z's and the weights to validate, save as best and sample
    from (`validated`). γ_k is the rate the caller passes (its warmup included); after the update
    the parameters hold y_{k+1}, the next gradient's point.
    """
    name = "sfadamw"

    def __init__(self, params: np.ndarray, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 decay_mask: np.ndarray | None = None):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.decay_mask = decay_mask
        self.state = {"v": np.zeros_like(params), "z": params.copy(), "x": params.copy(),
                      "k": np.zeros((), dtype=np.int64),           # updates taken so far
                      "lr_sq_sum": np.zeros((), dtype=np.float64)}  # Σ γ_i²
        self._tmp = np.empty_like(params)

    @property
    def validated(self) -> np.ndarray:
        return self.state["x"]

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        b1, b2 = self.beta1, self.beta2
        v, z, x, tmp = self.state["v"], self.state["z"], self.state["x"], self._tmp
        self.state["k"] += 1
        k = int(self.state["k"])
        v *= b2
        np.multiply(grads, grads, out=tmp)
        tmp *= 1.0 - b2
        v += tmp                                 # second moment
        if self.weight_decay:                    # z -= γ·λ·y (matrices)
            np.multiply(params, lr * self.weight_decay, out=tmp)
            if self.decay_mask is not None:
                tmp *= self.decay_mask
            z -= tmp
        # z -= γ·g/(√v̂ + ε), written as (γ·√c2)·g/(√v + ε·√c2) like Adam's
        r2 = math.sqrt(1.0 - b2 ** k)
        np.sqrt(v, out=tmp)
        tmp += self.eps * r2
        np.divide(grads, tmp, out=tmp)
        tmp *= lr * r2
        z -= tmp
        self.state["lr_sq_sum"] += lr * lr
        total = float(self.state["lr_sq_sum"])
        c = lr * lr / total if total > 0 else 1.0
        x *= 1.0 - c
        np.multiply(z, c, out=tmp)
        x += tmp                                 # x_{k+1} = (1-c)·x_k + c·z_{k+1}
        np.multiply(z, 1.0 - b1, out=params)
        np.multiply(x, b1, out=tmp)
        params += tmp                            # y_{k+1} = (1-β1)·z_{k+1} + β1·x_{k+1}


class WeightAverage:
    """An exponential moving average of the weights θ_k after each update, bias-corrected:

        ē_k = Σ_{i≤k} (1-β)·β^(k-i)·θ_i / (1-β^k)
            = ē_{k-1} + (1-β)/(1-β^k) · (θ_k - ē_{k-1})      (so ē_1 = θ_1: no pull towards 0)

    It reaches back about 1/(1-β) updates. Beside any optimizer; `avg` is what is validated.
    """

    def __init__(self, params: np.ndarray, beta: float):
        self.beta = beta
        self.state = {"avg": params.copy(), "k": np.zeros((), dtype=np.int64)}
        self._tmp = np.empty_like(params)

    @property
    def validated(self) -> np.ndarray:
        return self.state["avg"]

    def weight(self, k: int) -> float:
        """How far the k-th update moves the average towards θ_k."""
        return (1.0 - self.beta) / (1.0 - self.beta ** k)     # 1 at k = 1

    def update(self, params: np.ndarray) -> None:
        avg, tmp = self.state["avg"], self._tmp
        self.state["k"] += 1
        np.subtract(params, avg, out=tmp)
        tmp *= self.weight(int(self.state["k"]))
        avg += tmp


class TailAverage(WeightAverage):
    """A polynomial-decay average of the weights (Shamir & Zhang 2013), ē_1 = θ_1 and

        ē_k = ē_{k-1} + (η+1)/(k+η) · (θ_k - ē_{k-1})

    so update i weighs about (i/k)^η in ē_k: η = 0 is the plain mean, η = 4 spans roughly the
    last fifth of the run, however long it has been. No window to choose in advance: the average
    keeps up early and reaches far back late. Same state as WeightAverage (`avg`, `k`).
    """

    def __init__(self, params: np.ndarray, eta: float):
        super().__init__(params, 0.0)
        self.eta = eta

    def weight(self, k: int) -> float:
        return min(1.0, (self.eta + 1.0) / (k + self.eta))    # 1 at k = 1


OPTIMIZERS = {"adagrad": Adagrad, "adam": Adam, "sfadamw": ScheduleFreeAdamW}

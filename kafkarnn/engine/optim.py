"""Optimizers and gradient clipping, on flat vectors: the model's parameters and gradients are
each one contiguous array (`model.params.flat`, `grads.flat`), so an update is a few NumPy calls.

    Adagrad:  m += g²;  θ -= lr · g / √(m + ε)                   (the seed's, lr 0.1, ε 1e-8)
    Adam:     m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
              θ -= lr · m̂ / (√v̂ + ε),  m̂ = m/(1-β1^k), v̂ = v/(1-β2^k)
              with optional decoupled weight decay θ -= lr·wd·θ on matrices (AdamW).
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


OPTIMIZERS = {"adagrad": Adagrad, "adam": Adam}

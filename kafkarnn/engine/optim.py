"""Optimizers and gradient clipping. Each optimizer updates the parameter dict in place.

    Adagrad:  m += g²;  θ -= lr · g / √(m + ε)                   (the seed's, lr 0.1, ε 1e-8)
    Adam:     m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
              θ -= lr · m̂ / (√v̂ + ε),  m̂ = m/(1-β1^k), v̂ = v/(1-β2^k)
              with optional decoupled weight decay θ -= lr·wd·θ on matrices (AdamW).
"""

from __future__ import annotations

import math

import numpy as np


def clip_elementwise(grads: dict[str, np.ndarray], limit: float) -> None:
    """The seed's clipping: every gradient entry into [-limit, limit]."""
    for g in grads.values():
        np.clip(g, -limit, limit, out=g)


def clip_global_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients together so their joint L2 norm is at most max_norm. Returns the norm before."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


class Adagrad:
    name = "adagrad"

    def __init__(self, params: dict[str, np.ndarray], eps: float = 1e-8):
        self.eps = eps
        self.state = {f"m/{k}": np.zeros_like(v) for k, v in params.items()}

    def step(self, params, grads, lr: float) -> None:
        for k, p in params.items():
            g, m = grads[k], self.state[f"m/{k}"]
            m += g * g                                  # memory of squared gradients
            p -= lr * g / np.sqrt(m + self.eps)         # adagrad update


class Adam:
    name = "adam"

    def __init__(self, params, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.state = {}
        for k, v in params.items():
            self.state[f"m/{k}"] = np.zeros_like(v)
            self.state[f"v/{k}"] = np.zeros_like(v)
        self.state["k"] = np.zeros((), dtype=np.int64)  # updates taken so far

    def step(self, params, grads, lr: float) -> None:
        b1, b2 = self.beta1, self.beta2
        self.state["k"] += 1
        k = int(self.state["k"])
        c1, c2 = 1.0 - b1 ** k, 1.0 - b2 ** k
        for name, p in params.items():
            g, m, v = grads[name], self.state[f"m/{name}"], self.state[f"v/{name}"]
            m *= b1
            m += (1.0 - b1) * g                          # first moment
            v *= b2
            v += (1.0 - b2) * (g * g)                    # second moment
            if self.weight_decay and p.ndim > 1:
                p -= lr * self.weight_decay * p          # decoupled weight decay, matrices only
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)


OPTIMIZERS = {"adagrad": Adagrad, "adam": Adam}

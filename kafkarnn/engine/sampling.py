"""Sampling text from a model: prime with a prompt, then draw one character at a time.

Each step: forward one character → logits / temperature → optional top-k → softmax → draw.
Temperature 0 means argmax (greedy).
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.model import CharModel


def next_distribution(logits: np.ndarray, temperature: float, top_k: int | None) -> np.ndarray:
    """Probabilities over the vocabulary from one row of logits (float64 for a safe softmax)."""
    z = logits.astype(np.float64) / max(temperature, 1e-8)
    if top_k is not None and 0 < top_k < len(z):
        cutoff = np.partition(z, -top_k)[-top_k]
        z = np.where(z < cutoff, -np.inf, z)
    z -= z.max()
    p = np.exp(z)
    return p / p.sum()


def draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probabilities p: invert the cumulative sum at a uniform number."""
    cdf = np.cumsum(p)
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(p) - 1)


class Stepper:
    """A model fed one character at a time, for one stream: the weights every step needs are
    prepared once (the first layer's input columns with their bias, as rows), the state is kept
    as vectors, and each call is a handful of matrix-vector products."""

    def __init__(self, model: CharModel, state):
        self.model = model
        self.params = model.layer_params
        Wx, b = (self.params[0][k] for k in model.cells[0].input_keys)
        self.table = np.ascontiguousarray((Wx + b[:, None]).T)          # (V, G): row v = Wx[:, v] + b
        self.inputs = [np.empty(len(self.params[l][c.input_keys[1]]), dtype=model.dtype)
                       for l, c in enumerate(model.cells)]
        self.state = [s[:, :, 0].copy() for s in state]                 # (S, H) per layer
        self.logits = np.empty(model.spec.vocab_size, dtype=model.dtype)

    def __call__(self, ix: int) -> np.ndarray:
        """Feed character ix; returns the logits (V,) of the next one."""
        x = self.table[ix]
        for l, cell in enumerate(self.model.cells):
            p = self.params[l]
            if l > 0:                                                   # xproj = Wx·h_below + b
                Wx, b = (p[k] for k in cell.input_keys)
                np.dot(Wx, x, out=self.inputs[l])
                x = self.inputs[l]
                x += b
            cell.step(p, x, self.state[l])
            x = self.state[l][0]
        np.dot(self.model.params["Why"], x, out=self.logits)
        self.logits += self.model.params["by"]
        return self.logits


def sample(model: CharModel, prompt_ids, length: int, rng: np.random.Generator,
           temperature: float = 1.0, top_k: int | None = None, state=None):
    """Generate `length` ids after priming with `prompt_ids`.

    Returns (ids, probs): the new ids and the probability the model gave each one before it was
    drawn (what the monitor shades characters by).
    """
    if state is None:
        state = model.zero_state(1)
    prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
    if len(prompt_ids) == 0:
        prompt_ids = np.zeros(1, dtype=np.int64)   # no prompt: start from the first character
    # 1) prime: run the whole prompt at once; only the last step's logits matter
    logits, _, state = model.forward(prompt_ids[:, None], state)
    last = logits[:, -1]
    step = Stepper(model, state)
    ids, probs = np.empty(length, dtype=np.int64), np.empty(length)
    for n in range(length):
        # 2) scale, crop, normalise, draw
        p = next_distribution(last, temperature, top_k)
        ix = int(np.argmax(p)) if temperature <= 0 else draw(p, rng)
        ids[n], probs[n] = ix, p[ix]
        if n + 1 < length:
            last = step(ix)                        # 3) feed the drawn character back in
    return ids, probs

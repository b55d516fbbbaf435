"""Sampling text from a model: prime with a prompt, then draw one character at a time.

Each step: forward one character → logits z → draw from softmax(z / temperature), optionally
cropped to the top k. The draw uses the Gumbel-max trick: with g_v independent Gumbel(0, 1)
numbers, argmax_v (z_v / T + g_v) is distributed exactly as softmax(z / T), so a character
costs one addition and one argmax instead of a softmax (the noise for all characters is drawn
at once, scaled by T: argmax(z + T·g) is the same index). The probabilities the monitor shades
by are computed afterwards, for all characters in one pass. Temperature 0 means argmax (greedy).
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.model import CharModel


def below_top_k(z: np.ndarray, top_k: int | None) -> np.ndarray | None:
    """Where z (V,) or each row of z (N, V) is below its k-th largest entry: what top-k crops;
    None when nothing is cropped (no k, or k not below V)."""
    if top_k is None or not 0 < top_k < z.shape[-1]:
        return None
    return z < np.partition(z, -top_k, axis=-1)[..., -top_k, None]


def next_distribution(logits: np.ndarray, temperature: float, top_k: int | None) -> np.ndarray:
    """Probabilities over the vocabulary from logits (V,), or from each row of (N, V): softmax of
    logits / temperature, cropped to the top k (float64, max-shifted for a safe softmax)."""
    z = logits.astype(np.float64) / max(temperature, 1e-8)
    cut = below_top_k(z, top_k)
    if cut is not None:
        z = np.where(cut, -np.inf, z)
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def gumbel_noise(rng: np.random.Generator, n: int, V: int, temperature: float) -> np.ndarray:
    """T·g for n draws over V symbols, g ~ Gumbel(0, 1): what `draw` adds to the logits."""
    return temperature * rng.gumbel(size=(n, V))


def draw(logits: np.ndarray, noise: np.ndarray, top_k: int | None, out: np.ndarray) -> int:
    """One index drawn from softmax(logits / T), cropped to the top k: argmax(logits + noise) with
    noise = T·g from `gumbel_noise`. out: a float64 scratch row of the same length."""
    np.add(logits, noise, out=out)
    cut = below_top_k(logits, top_k)
    if cut is not None:
        out[cut] = -np.inf
    return int(out.argmax())


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

    def __call__(self, ix: int, out: np.ndarray | None = None) -> np.ndarray:
        """Feed character ix; returns the logits (V,) of the next one, written into out if given."""
        x, model = self.table[ix], self.model
        for l, cell in enumerate(model.cells):
            p, block = self.params[l], model.blocks[l] if model.blocks else None
            u = x                                                       # the layer's input
            if l > 0:                                                   # xproj = Wx·h_below + b
                a = block.cell_input(p, u[:, None])[:, 0] if block else u   # (LN₁ of it)
                Wx, b = (p[k] for k in cell.input_keys)
                np.dot(Wx, a, out=self.inputs[l])
                x = self.inputs[l]
                x += b
            cell.step(p, x, self.state[l])
            x = self.state[l][0]
            if block:                                                   # the block's one column
                x = block.output(p, u[:, None], x[:, None])[:, 0]
        if model.blocks:
            x = model.top_norm.forward(x[:, None], model.params["gamma"], model.params["beta"])[:, 0]
        logits = self.logits if out is None else out
        np.dot(self.model.params["Why"], x, out=logits)
        logits += self.model.params["by"]
        return logits


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
    ids = np.empty(length, dtype=np.int64)
    if length == 0:
        return ids, np.empty(0)
    # 1) prime: run the whole prompt at once; only the last step's logits matter
    logits, _, state = model.forward(prompt_ids[:, None], state)
    step = Stepper(model, state)
    V = model.spec.vocab_size
    rows = np.empty((length, V), dtype=model.dtype)   # the logits each character was drawn from
    rows[0] = logits[:, -1]
    greedy = temperature <= 0
    noise = None if greedy else gumbel_noise(rng, length, V, temperature)
    scratch = np.empty(V)
    for n in range(length):
        # 2) draw: argmax of the logits, plus T-scaled Gumbel noise unless greedy
        ix = int(rows[n].argmax()) if greedy else draw(rows[n], noise[n], top_k, scratch)
        ids[n] = ix
        if n + 1 < length:
            step(ix, out=rows[n + 1])              # 3) feed the drawn character back in
    probs = next_distribution(rows, temperature, top_k)[np.arange(length), ids]
    return ids, probs

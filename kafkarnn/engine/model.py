"""The character model: characters in, a stack of recurrent cells, a softmax over the vocabulary out.

    xproj_0 = Wx_0[x_t] + b_0                   (the first layer's input: a row lookup, which is
                                                  Wxh·onehot(x_t) without the wasted multiply)
    h^l_t   = cell_l(xproj_l[t], h^l_{t-1})
    xproj_l = dropout(h^{l-1}) @ Wx_l + b_l      (every layer above: one matmul for all t)
    y_t     = dropout(h^top_t) @ Why + by         (one matmul for all t)
    p_t     = softmax(y_t);  loss = -Σ log p_t[target_t]

Parameters live in one flat dict with names like "l0.Wxh", "l1.Whh", "Why", "by", each a view
into one contiguous vector (`model.flat`), and gradients likewise (`grads.flat`): optimizers and
clipping then touch one array, not one per parameter, which matters at batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kafkarnn.engine.cells import CELLS


@dataclass(frozen=True)
class ModelSpec:
    vocab_size: int
    hidden: int = 100          # units per layer
    layers: int = 1            # stacked recurrent layers
    cell: str = "rnn"          # rnn | lstm | gru
    dropout: float = 0.0       # between layers and before the output, training only
    dtype: str = "float32"     # float32 for training, float64 for gradient checks and the seed


def log_softmax_nll(logits: np.ndarray, targets: np.ndarray):
    """Max-shifted softmax. Returns (probabilities, negative log-likelihood per row)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    norm = probs.sum(axis=1, keepdims=True)
    probs /= norm
    nll = np.log(norm[:, 0]) - shifted[np.arange(len(targets)), targets]
    return probs, nll


class ParamDict(dict):
    """Named views into one flat vector, kept as `.flat`."""

    def __init__(self, layout: list[tuple[str, int, int, tuple[int, ...]]], flat: np.ndarray):
        super().__init__()
        self.flat = flat
        for name, start, stop, shape in layout:
            self[name] = flat[start:stop].reshape(shape)


class CharModel:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.dtype = np.dtype(spec.dtype)
        Cell = CELLS[spec.cell]
        self.cells = [Cell(spec.vocab_size if l == 0 else spec.hidden, spec.hidden)
                      for l in range(spec.layers)]
        self.layout, offset = [], 0                 # (name, start, stop, shape) in the flat vector
        for name, shape in self.shapes().items():
            n = int(np.prod(shape))
            self.layout.append((name, offset, offset + n, shape))
            offset += n
        self.size = offset
        self.params = ParamDict(self.layout, np.zeros(self.size, dtype=self.dtype))
        self._layer_params = [self._select(l) for l in range(len(self.cells))]
        self._names = [[(n, f"l{l}.{n}") for n in c.shapes()] for l, c in enumerate(self.cells)]
        self._aranges = np.arange(0)
        self._onehot = np.eye(spec.vocab_size, dtype=self.dtype) if spec.vocab_size <= 512 else None

    def new_grads(self, zero: bool = True) -> ParamDict:
        make = np.zeros if zero else np.empty
        return ParamDict(self.layout, make(self.size, dtype=self.dtype))

    def _arange(self, n: int) -> np.ndarray:
        if len(self._aranges) < n:
            self._aranges = np.arange(n)
        return self._aranges[:n]

    def matrix_mask(self) -> np.ndarray:
        """1 on entries of weight matrices, 0 on biases (weight decay spares biases)."""
        mask = self.new_grads()
        for name, v in mask.items():
            v[...] = 1.0 if v.ndim > 1 else 0.0
        return mask.flat

    # -- parameters -------------------------------------------------------------------------

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for l, cell in enumerate(self.cells):
            for name, shape in cell.shapes().items():
                out[f"l{l}.{name}"] = shape
        out["Why"] = (self.spec.hidden, self.spec.vocab_size)
        out["by"] = (self.spec.vocab_size,)
        return out

    def n_params(self) -> int:
        return self.size

    def init(self, rng: np.random.Generator, scheme: str = "default", embed_std: float = 1.0) -> None:
        """Fill the parameters.

        "seed": randn·0.01 weights and zero biases, drawn in the seed's (out, in) layout and
        transposed, so the same RNG gives min-char-rnn's exact starting weights for one rnn layer.
        "default": the first layer's input rows (one per character, in effect an embedding) from
        N(0, embed_std²); other matrices uniform ±1/√H as common frameworks do; zero biases but
        the LSTM forget gate's, 1. Input rows of the ±1/√H scale make every character nearly
        invisible to the gates at first, and training then starts several times slower.
        """
        H = self.spec.hidden
        for name, shape in self.shapes().items():
            p = self.params[name]
            base = name.split(".")[-1]
            if len(shape) == 1:
                p[...] = 0.0
                if self.spec.cell == "lstm" and base == "b":
                    p[H:2 * H] = 1.0   # remember by default
            elif scheme == "seed":
                p[...] = (rng.standard_normal(shape[::-1]) * 0.01).T
            elif name.startswith("l0.") and base == self.cells[0].input_keys[0]:
                p[...] = rng.normal(0.0, embed_std, size=shape)
            else:
                k = 1.0 / np.sqrt(H)
                p[...] = rng.uniform(-k, k, size=shape)

    def zero_state(self, batch: int) -> list[np.ndarray]:
        H = self.spec.hidden
        return [np.zeros((c.n_state, batch, H), dtype=self.dtype) for c in self.cells]

    # -- forward and backward ---------------------------------------------------------------

    def _input_proj(self, l: int, x: np.ndarray) -> np.ndarray:
        """xproj = x @ Wx + b for all timesteps; x is ids (T, B) for layer 0, else (T, B, H)."""
        Wx, b = (self._layer_params[l][k] for k in self.cells[l].input_keys)
        if l == 0:
            return Wx[x] + b                                    # (T, B, G) row lookup
        T, B, _ = x.shape
        return (x.reshape(T * B, -1) @ Wx).reshape(T, B, -1) + b

    def _dropout(self, h, rng, masks):
        p = self.spec.dropout
        if rng is None or p <= 0.0:
            return h
        mask = (rng.random(h.shape, dtype=self.dtype) >= p).astype(self.dtype) / (1.0 - p)
        masks.append(mask)
        return h * mask

    def forward(self, inputs, state, rng=None):
        """Run the stack over inputs (T, B). rng given means training: dropout is applied.

        Returns logits (T·B, V), the caches backward needs, and the new state.
        """
        x, caches, masks, new_state = inputs, [], [], []
        for l, cell in enumerate(self.cells):
            hs, cache, s = cell.forward(self._layer_params[l], self._input_proj(l, x), state[l])
            caches.append((x, cache))
            new_state.append(s)
            x = self._dropout(hs, rng, masks)
        T, B, H = x.shape
        top = x.reshape(T * B, H)
        logits = top @ self.params["Why"] + self.params["by"]      # (T·B, V)
        return logits, (caches, masks, top), new_state

    def _select(self, l: int) -> dict[str, np.ndarray]:
        prefix = f"l{l}."
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}

    def loss_and_grads(self, inputs, targets, state, rng=None, reduction="mean"):
        """One truncated-BPTT pass.

        inputs, targets: int arrays (T, B). reduction "mean" averages the loss over all T·B
        characters; "seq-sum" sums over time and averages over streams (the seed's objective).
        Returns (loss in nats per character, grads dict, new state).
        """
        T, B = inputs.shape
        logits, (caches, masks, top), new_state = self.forward(inputs, state, rng)
        probs, nll = log_softmax_nll(logits, targets.reshape(-1))
        loss = float(nll.sum()) / (T * B)

        grads = self.new_grads(zero=False)      # every entry is written below, none accumulated
        dy = probs                                               # softmax + cross-entropy:
        dy[self._arange(T * B), targets.reshape(-1)] -= 1.0      #   dy = p - onehot(target)
        dy *= 1.0 / ((T * B) if reduction == "mean" else B)
        np.matmul(top.T, dy, out=grads["Why"])
        np.sum(dy, axis=0, out=grads["by"])
        dx = (dy @ self.params["Why"].T).reshape(T, B, -1)       # into the top layer's output
        for l in reversed(range(len(self.cells))):
            if masks:
                dx *= masks[l]                                   # through dropout
            x, cache = caches[l]
            g = {name: grads[full] for name, full in self._names[l]}
            dxproj = self.cells[l].backward(self._layer_params[l], dx, cache, g)   # (T, B, G)
            Wx, bx = (g[k] for k in self.cells[l].input_keys)
            flat = dxproj.reshape(T * B, -1)
            np.sum(flat, axis=0, out=bx)
            if l == 0 and self._onehot is not None:
                np.matmul(self._onehot[x.reshape(-1)].T, flat, out=Wx)  # onehotᵀ·dxproj
            elif l == 0:
                Wx[...] = 0.0
                np.add.at(Wx, x.reshape(-1), flat)               # huge vocabularies: scatter-add
            else:
                np.matmul(x.reshape(T * B, -1).T, flat, out=Wx)
                dx = (flat @ self._layer_params[l][self.cells[l].input_keys[0]].T).reshape(T, B, -1)
        return loss, grads, new_state

    def nll(self, inputs, targets, state):
        """Forward only (no dropout): total negative log-likelihood in nats, and the new state."""
        logits, _, new_state = self.forward(inputs, state)
        _, nll = log_softmax_nll(logits, targets.reshape(-1))
        return float(nll.sum(dtype=np.float64)), new_state

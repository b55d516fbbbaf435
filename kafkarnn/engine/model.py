"""The character model: characters in, a stack of recurrent cells, a softmax over the vocabulary out.

Column form, like min-char-rnn: each stream is a column, and what is not recurrent is done
for all time steps at once on (features × steps·streams) matrices (layout.py):

    xproj_0[t] = Wx_0[:, x_t] + b_0             (the first layer's input: a column lookup, which is
                                                  Wxh·onehot(x_t) without the wasted multiply)
    h^l_t   = cell_l(xproj_l[t], h^l_{t-1})
    xproj_l = Wx_l·dropout(h^{l-1}) + b_l        (every layer above: one product for all steps)
    y_t     = Why·dropout(h^top_t) + by           (one product for all steps)
    p_t     = softmax(y_t);  loss = -Σ log p_t[target_t]

    (with a teacher q, training follows -Σ Σ_w s_t[w]·log p_t[w], s_t = (1−α)·onehot(target_t) + α·q_t)

With a block (`ModelSpec.block`, engine/blocks.py) each layer is wrapped as the min-cells' paper
stacks them: a norm before the cell, a residual path around it, an MLP after it, a norm before Why.

Training may also drop recurrent weights (DropConnect: the cell runs on Whh ⊙ mask, one mask
per step); a cell without a recurrent matrix (minGRU, minLSTM) has nothing to drop.

Parameters live in one flat dict with names like "l0.Wxh", "l1.Whh", "Why", "by", each a view
into one contiguous vector (`model.flat`), and gradients likewise (`grads.flat`): optimizers and
clipping then touch one array, not one per parameter, which matters at batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kafkarnn.engine import blocks
from kafkarnn.engine.cells import cell_class
from kafkarnn.engine.layout import Lookup, Workspace


GATHER_ALL_BYTES = 1 << 20
"""Up to this size the first layer's input rows are gathered for all steps at once; above it,
step by step as the recurrence reaches them (layout.Lookup), so that each step's rows are still
in cache when it adds them; below it, one gather for all steps is faster."""


@dataclass(frozen=True)
class ModelSpec:
    vocab_size: int
    hidden: int = 100          # units per layer
    layers: int = 1            # stacked recurrent layers
    cell: str = "rnn"          # a name in cells.NAMES: rnn, lstm, gru, mingru, minlstm
    dropout: float = 0.0       # between layers and before the output, training only
    weight_drop: float = 0.0   # DropConnect on the recurrent matrices, one mask per step, training only
    dtype: str = "float32"     # float32 for training, float64 for gradient checks and the seed
    block: str = "plain"       # what wraps each layer: plain, residual or mlp (engine/blocks.py)
    mlp_ratio: int = 4         # the mlp block's width, in multiples of hidden


def log_softmax_nll(logits: np.ndarray, targets: np.ndarray, ones: np.ndarray):
    """Max-shifted softmax down each column of logits (V, N) — one column per character —
    computed in place and left unnormalised: logits becomes e = exp(logits - column max), and
    the probabilities are e / norm. ones: V ones (Workspace.ones: column sums as a product).

    Returns (e (V, N), norm (N,), negative log-likelihood (N,), flat indices of the targets'
    entries, targets·N + column).
    """
    N = logits.shape[1]
    picks = targets * N + np.arange(N)
    logits -= logits.max(axis=0)
    target_logits = logits.take(picks)
    e = np.exp(logits, out=logits)
    norm = ones @ e
    return e, norm, np.log(norm) - target_logits, picks


def output_grads(e, norm, picks, scale, teacher=None) -> np.ndarray:
    """dy = scale·(p − onehot(target)), p = e / norm (softmax and cross-entropy), written over e;
    with a teacher (α, q (T, B, V)), the cross-entropy against (1 − α)·onehot(target) + α·q:
    dy = scale·(p − (1 − α)·onehot − α·q)."""
    dy = e
    dy *= scale / norm
    dy.reshape(-1)[picks] -= scale
    if teacher is not None:
        alpha, q = teacher
        dy -= (alpha * scale) * q.reshape(len(norm), -1).T
        dy.reshape(-1)[picks] += alpha * scale
    return dy


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
        Cell = cell_class(spec.cell)
        self.cells = [Cell(spec.vocab_size if l == 0 else spec.hidden, spec.hidden)
                      for l in range(spec.layers)]
        self.blocks = blocks.make(spec.block, spec.layers, spec.hidden, spec.mlp_ratio)
        self.top_norm = blocks.LayerNorm(Workspace(), "top") if self.blocks else None
        self.layout, offset = [], 0                 # (name, start, stop, shape) in the flat vector
        for name, shape in self.shapes().items():
            n = int(np.prod(shape))
            self.layout.append((name, offset, offset + n, shape))
            offset += n
        self.size = offset
        self.params = ParamDict(self.layout, np.zeros(self.size, dtype=self.dtype))
        self.layer_params = [self._select(l) for l in range(len(self.cells))]
        self._names = [[(n, f"l{l}.{n}") for n in self._layer_shapes(l)] for l in range(spec.layers)]
        self._onehot = np.eye(spec.vocab_size, dtype=self.dtype) if spec.vocab_size <= 512 else None
        self.ws = Workspace()

    def replica(self) -> "CharModel":
        """A model on these very parameters with buffers of its own: one per thread that runs it."""
        twin = CharModel(self.spec)
        twin.params = self.params
        twin.layer_params = [twin._select(l) for l in range(len(twin.cells))]
        return twin

    def set_dropout(self, dropout: float, weight_drop: float) -> None:
        """The training passes' rates from now on (a schedule may raise them as training goes)."""
        self.spec = replace(self.spec, dropout=dropout, weight_drop=weight_drop)

    def new_grads(self, zero: bool = True) -> ParamDict:
        make = np.zeros if zero else np.empty
        return ParamDict(self.layout, make(self.size, dtype=self.dtype))

    def matrix_mask(self) -> np.ndarray:
        """1 on entries of weight matrices, 0 on biases (weight decay spares biases)."""
        mask = self.new_grads()
        for name, v in mask.items():
            v[...] = 1.0 if v.ndim > 1 else 0.0
        return mask.flat

    # -- parameters -------------------------------------------------------------------------

    def _layer_shapes(self, l: int) -> dict[str, tuple[int, ...]]:
        return {**self.cells[l].shapes(), **(self.blocks[l].shapes() if self.blocks else {})}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out = {f"l{l}.{name}": shape for l in range(len(self.cells))
               for name, shape in self._layer_shapes(l).items()}
        if self.blocks:
            out["gamma"] = out["beta"] = (self.spec.hidden,)        # the norm before Why
        out["Why"] = (self.spec.vocab_size, self.spec.hidden)
        out["by"] = (self.spec.vocab_size,)
        return out

    def n_params(self) -> int:
        return self.size

    def init(self, rng: np.random.Generator, scheme: str = "default", embed_std: float = 1.0) -> None:
        """Fill the parameters.

        "seed": randn·0.01 weights and zero biases, drawn in min-char-rnn's order and (out, in)
        layout, so the same RNG gives its exact starting weights for one rnn layer.
        "default": the first layer's input columns (one per character, in effect an embedding)
        from N(0, embed_std²); other matrices uniform ±1/√H as common frameworks do; zero biases
        but those the cell sets itself (`init_biases`: the LSTM forget gate's, 1). Input columns
        of the ±1/√H scale make every character nearly invisible to the gates at first, and
        training then starts several times slower.
        """
        H = self.spec.hidden
        for name, shape in self.shapes().items():
            p = self.params[name]
            base = name.split(".")[-1]
            if len(shape) == 1:
                p[...] = 0.0
            elif scheme == "seed":
                p[...] = rng.standard_normal(shape) * 0.01
            elif name.startswith("l0.") and base == self.cells[0].input_keys[0]:
                p[...] = rng.normal(0.0, embed_std, size=shape)
            else:
                k = 1.0 / np.sqrt(H)
                p[...] = rng.uniform(-k, k, size=shape)
        for cell, p in zip(self.cells, self.layer_params):
            cell.init_biases(p)                              # e.g. the LSTM's forget gate, 1
        for block, p in zip(self.blocks or (), self.layer_params):
            block.init(p)                                    # the norms' gains, 1
        if self.blocks:
            self.params["gamma"][...] = 1.0

    def zero_state(self, batch: int) -> list[np.ndarray]:
        H = self.spec.hidden
        return [np.zeros((c.n_state, H, batch), dtype=self.dtype) for c in self.cells]

    # -- forward and backward ---------------------------------------------------------------

    def _input_proj(self, l: int, x: np.ndarray, B: int) -> np.ndarray:
        """xproj = Wx·x + b for all steps, as a sequence (T, G, B); x is the ids (T, B) for
        layer 0, else the layer below's output (H, T·B)."""
        kx, kb = self.cells[l].input_keys
        Wx, b = self.layer_params[l][kx], self.layer_params[l][kb]
        G = len(b)
        if l > 0:
            xproj = Wx @ x                                      # (G, H)·(H, T·B): one product
            xproj += b[:, None]
            return self.ws.step_major(f"xproj{l}", xproj, B)
        # layer 0: each character's column of Wx, plus b, gathered as rows and read transposed.
        if x.size < self.spec.vocab_size:                       # fewer characters than the table:
            cols = self.ws.buf("cols", x.shape + (G,), self.dtype)   # pick the columns themselves
            np.add(Wx.T[x], b, out=cols)                        # (T, B, G)
            return self.ws.kept("xproj0.cols", cols, lambda c: c.transpose(0, 2, 1))
        # Else from a table of rows Wx[:, v] + b (a fast copy). The rows are padded by 16
        # numbers: rows of exactly 4 KB would all fall into the same cache sets when read down
        # a column.
        table = self.ws.buf("table", (self.spec.vocab_size, G + 16), self.dtype)
        np.add(Wx.T, b, out=table[:, :G])                       # row v = Wx[:, v] + b
        big = x.size * (G + 16) * self.dtype.itemsize > GATHER_ALL_BYTES
        if big and self.cells[0].per_step_input:               # (a min-cell reads all steps at once)
            return Lookup(table, x, G, self.ws.buf("row", (B, G + 16), self.dtype))
        rows = self.ws.buf("rows", x.shape + (G + 16,), self.dtype)
        np.take(table, x, axis=0, out=rows)                     # (T, B, G + 16)
        return self.ws.kept("xproj0.rows", rows, lambda r: r[:, :, :G].transpose(0, 2, 1))

    def _mask(self, shape, p: float, rng) -> np.ndarray:
        """Keep each entry with probability 1 - p, scaled by 1/(1 - p) so expectations stay."""
        return (rng.random(shape, dtype=self.dtype) >= p).astype(self.dtype) / (1.0 - p)

    def _dropout(self, h, rng, masks):
        p = self.spec.dropout
        if rng is None or p <= 0.0:
            return h
        mask = self._mask(h.shape, p, rng)
        masks.append(mask)
        return h * mask

    def _drop_weights(self, l: int, rng, mask=None):
        """Layer l's parameters, with DropConnect on its recurrent matrix when training: one mask
        per step, the same at every time step (the cell then runs on W ⊙ mask); `mask` given is
        that mask drawn already (weight_masks), else it is drawn from rng."""
        p, q, key = self.layer_params[l], self.spec.weight_drop, self.cells[l].recurrent_key
        if rng is None or q <= 0.0 or key is None:         # (a min-cell has no recurrent matrix)
            return p, None
        mask = self._mask(p[key].shape, q, rng) if mask is None else mask
        return {**p, key: p[key] * mask}, mask

    def weight_masks(self, rng) -> list:
        """One step's DropConnect masks for every layer (None where there is none), drawn at once:
        stream groups share them (streams.py)."""
        return [self._drop_weights(l, rng)[1] for l in range(len(self.cells))]

    def forward(self, inputs, state, rng=None, wmasks=None):
        """Run the stack over inputs (T, B). rng given means training: dropout is applied, and
        DropConnect with the masks `wmasks` (weight_masks) or ones drawn from rng.

        Returns logits (V, T·B) — one column per character, in (t, b) order — the caches
        backward needs, and the new state.
        """
        B = inputs.shape[1]
        x, caches, masks, new_state = inputs, [], [], []
        for l, cell in enumerate(self.cells):
            p, wmask = self._drop_weights(l, rng, None if wmasks is None else wmasks[l])
            block = self.blocks[l] if self.blocks else None
            a = block.cell_input(p, x) if block else x          # what Wx multiplies
            hs, cache, s = cell.forward(p, self._input_proj(l, a, B), state[l])
            caches.append((a, cache, p, wmask))
            new_state.append(s)
            h = self._dropout(hs, rng, masks)                    # (H, T·B)
            x = self._block_output(block, p, x, h, rng) if block else h
        if self.blocks:
            x = self.top_norm.forward(x, self.params["gamma"], self.params["beta"])
        # for one stream x is a transposed view: this product is faster on a copy and
        # dWhy = dy·xᵀ on the view, so each gets the layout it reads fastest
        logits = self.params["Why"] @ (np.ascontiguousarray(x) if B == 1 else x)  # (V, H)·(H, T·B)
        logits += self.params["by"][:, None]
        return logits, (caches, masks, x), new_state

    def _block_output(self, block, p, u, h, rng):
        """The block's output v from its input u and the cell's dropped output h; training draws
        the MLP branch's dropout mask."""
        q = self.spec.dropout
        mask = self._mask(h.shape, q, rng) if block.mlp and rng is not None and q > 0 else None
        return block.output(p, u, h, mask)

    def _select(self, l: int) -> dict[str, np.ndarray]:
        prefix = f"l{l}."
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}

    def loss_and_grads(self, inputs, targets, state, rng=None, reduction="mean", out=None,
                       wmasks=None, streams=None, teacher=None):
        """One truncated-BPTT pass.

        inputs, targets: int arrays (T, B). reduction "mean" averages the loss over all T·B
        characters; "seq-sum" sums over time and averages over streams (the seed's objective).
        out: gradients from `new_grads` to write over (a trainer keeps one), else new ones.
        wmasks: DropConnect masks drawn already; streams: the whole batch's stream count when
        these B streams are one group of it (the gradients are then this group's share).
        teacher: (α, q), q (T, B, V) another model's next-character distributions (output_grads).
        Returns (loss in nats per character of these streams' targets, grads dict, new state).
        """
        T, B = inputs.shape
        ws, targets = self.ws, targets.reshape(-1)
        logits, (caches, masks, top), new_state = self.forward(inputs, state, rng, wmasks)
        e, norm, nll, picks = log_softmax_nll(logits, targets, ws.ones(len(logits), self.dtype))
        loss = float(nll.sum()) / (T * B)

        grads = self.new_grads(zero=False) if out is None else out
        # every entry of grads is written below, none accumulated
        S = streams or B
        scale = 1.0 / ((T * S) if reduction == "mean" else S)   # the loss's: per char or per stream
        dy = output_grads(e, norm, picks, scale, teacher)
        np.matmul(dy, top.T, out=grads["Why"])                   # dWhy = Σ dy·hᵀ
        ws.row_sums(dy, out=grads["by"])
        dx = ws.transposed("WhyT", self.params["Why"], B) @ dy   # into the top layer's output
        if self.blocks:
            dx = self.top_norm.backward(dx, self.params["gamma"], grads["gamma"], grads["beta"])
        for l in reversed(range(len(self.cells))):
            x, cache, p, wmask = caches[l]
            g = ws.kept(f"g{l}", grads, lambda gr: {name: gr[full] for name, full in self._names[l]})
            block = self.blocks[l] if self.blocks else None
            dr = block.backward(p, dx, g) if block else dx     # into the cell's dropped output
            if masks:                                            # through dropout (r keeps dr)
                dh = dr * masks[l] if block else np.multiply(dr, masks[l], out=dr)
            dxproj = self.cells[l].backward(p, dh if masks else dr, cache, g)   # (G, T·B)
            if wmask is not None:
                g[self.cells[l].recurrent_key] *= wmask          # through DropConnect
            Wx, bx = (g[k] for k in self.cells[l].input_keys)
            if l == 0:
                self._first_input_grads(x, dxproj, Wx, bx)
                break
            ws.row_sums(dxproj, out=bx)
            np.matmul(dxproj, x.T, out=Wx)                       # dWx = Σ dxproj·xᵀ
            W = self.layer_params[l][self.cells[l].input_keys[0]]
            dx = ws.transposed(f"WxT{l}", W, B) @ dxproj          # into the layer below
            if block:                                            # (through LN₁, and the residual)
                dx = block.input_grad(p, dx, dr, g)
        return loss, grads, new_state

    def _first_input_grads(self, ids, dxproj, Wx, bx) -> None:
        """The first layer's dWx and db, written: its input is characters (column lookups)."""
        if self._onehot is not None:                             # dWx = Σ dxproj·onehot(x)ᵀ
            np.matmul(dxproj, self._onehot[ids.reshape(-1)], out=Wx)
        else:                                                    # huge vocabularies: scatter-add
            Wx[...] = 0.0
            np.add.at(Wx.T, ids.reshape(-1), dxproj.T)
        self.ws.row_sums(Wx, out=bx)                             # every step picks one column of Wx

    def char_nll(self, inputs, targets, state, rng=None):
        """Forward only (no dropout, unless `rng` draws its masks): the negative log-likelihood
        of every character in nats, (T·B,) in (t, b) order, and the new state."""
        logits, _, new_state = self.forward(inputs, state, rng)
        ones = self.ws.ones(len(logits), self.dtype)
        _, _, nll, _ = log_softmax_nll(logits, targets.reshape(-1), ones)
        return nll, new_state

    def nll(self, inputs, targets, state):
        """Forward only (no dropout): total negative log-likelihood in nats, and the new state."""
        nll, new_state = self.char_nll(inputs, targets, state)
        return float(nll.sum(dtype=np.float64)), new_state

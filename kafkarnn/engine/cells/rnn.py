"""The vanilla rnn, the seed's cell: its forward, backward, one-step form and gradient through time."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.cells.base import Cell, rows
from kafkarnn.engine.layout import block


class RNNBack:
    """h_t = tanh(Wxh·x + Whh·h_{t-1} + bh), backwards for a set of columns (through_time.py)."""

    def __init__(self, p, rec, m):
        h = rows(rec["h"])
        self.k = 1.0 - h * h                                 # tanh' = 1 - h²
        self.W = p["Whh"]
        self.d = np.empty((m,) + h.shape[1:], h.dtype)
        self.carried = []                                    # no state but h

    def step(self, t, dh):
        """dh (live, B, H): ∂L/∂h_t, overwritten by ∂L/∂h_{t-1}. Returns ∂L/∂xproj_t (live, B, G)."""
        live = len(dh)
        d = np.multiply(dh, self.k[t], out=self.d[:live])    # backprop through tanh
        np.matmul(d.reshape(-1, d.shape[2]), self.W, out=dh.reshape(-1, dh.shape[2]))
        return d


class RNNCell(Cell):
    """The seed's cell.

        h_t = tanh(Wxh·x_t + Whh·h_{t-1} + bh)

    Parameters: Wxh (H, n_in), Whh (H, H), bh (H).
    """

    kind = "rnn"
    recurrent_key = "Whh"
    input_keys = ("Wxh", "bh")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        H = self.H
        return {"Wxh": (H, self.n_in), "Whh": (H, H), "bh": (H,)}

    def step(self, p, x, state):
        h, tmp = state[0], self.buf("step", (self.H,), x.dtype)
        np.dot(p["Whh"], h, out=tmp)
        tmp += x
        np.tanh(tmp, out=h)                              # h = tanh(Wxh·x + Whh·h + bh)

    def forward(self, p, xproj, state):
        T, H, B = xproj.shape
        Whh = p["Whh"]
        hs = self.buf("hs", (T + 1, H, B), xproj.dtype)  # hs[0] is h_{-1}
        hs[0] = state[0]
        h, x = self.steps("h", hs), self.steps("x", xproj)
        for t in range(T):
            np.dot(Whh, h[t], out=h[t + 1])
            h[t + 1] += x[t]
            np.tanh(h[t + 1], out=h[t + 1])              # h_t = tanh(Wxh·x + Whh·h + bh)
        out, prev = self.outputs(hs)
        return out, (hs, prev), hs[T][None].copy()

    def backward(self, p, dhs, cache, g):
        hs, prev = cache
        T, H, B = hs.shape[0] - 1, self.H, hs.shape[2]
        dhs = self.step_major("dhs", dhs, B)
        WhhT = self.transposed("WhhT", p["Whh"], B)
        dhraw = self.buf("dhraw", dhs.shape, dhs.dtype)
        np.multiply(hs[1:], hs[1:], out=dhraw)
        np.subtract(1.0, dhraw, out=dhraw)               # tanh' = 1 - h² at every step, all at once
        dh = block(self.buf("dh", (H, B), dhs.dtype))
        dhnext = block(np.zeros((H, B), dtype=dhs.dtype))
        d_out, d_raw = self.steps("d_out", dhs), self.steps("d_raw", dhraw)
        for t in reversed(range(T)):
            np.add(d_out[t], dhnext, out=dh)             # backprop into h from above and from t+1
            d_raw[t] *= dh                               # backprop through tanh
            np.dot(WhhT, d_raw[t], out=dhnext)           # backprop into h_{t-1}
        dxproj = self.feature_major("dxproj", dhraw)
        np.matmul(dxproj, prev.T, out=g["Whh"])          # dWhh = Σ dhraw_t·h_{t-1}ᵀ
        return dxproj

    def record(self, cache) -> dict[str, np.ndarray]:
        """h and h_prev, step-major (T, H, B): views into the workspace, valid until the cell runs
        again."""
        hs, _ = cache
        return {"h": hs[1:], "h_prev": hs[:-1]}

    def back(self, p, rec, m) -> RNNBack:
        return RNNBack(p, rec, m)

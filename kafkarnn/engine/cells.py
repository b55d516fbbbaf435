"""Recurrent cells: vanilla RNN, LSTM and GRU, each run over a whole sequence with one contract.

Shapes are batch-first per step and written in row-vector form: a state `h` is (B, H) and a
weight maps rows, `h @ Whh`. That is the seed's `np.dot(Whh, h)` transposed, so a batch of
streams is one matrix multiply per step.

Every cell receives its input already projected, `xproj[t] = x_t @ Wx + b` for all t at once
(the model does that in one matmul, or one row lookup for characters), so the Python loop over
time holds only the recurrence itself. Contract:

    forward(p, xproj, state)    -> hs (T, B, H), cache, new state
    backward(p, dhs, cache, g)  -> dxproj (T, B, G), writing the recurrent grads into g

A state is one array (S, B, H): S = 1 (h) for rnn and gru, S = 2 (h, c) for lstm.

Big per-sequence arrays come from a small workspace kept by each cell and reused while the
shape stays the same: allocating tens of MB afresh every step costs page faults (~7% of an
LSTM step). A buffer is only valid until the same cell runs again with the same shape, which
is after the backward pass that used it.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function written through tanh, which never overflows: σ(x) = ½·tanh(x/2) + ½."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def steps(a: np.ndarray) -> list[np.ndarray]:
    """The per-step views a[t] made once; for one stream (B = 1) as vectors, which multiply faster."""
    return list(a[:, 0, :]) if a.shape[1] == 1 else list(a)


class Cell:
    """What every cell shares: sizes and the workspace."""

    def __init__(self, n_in: int, hidden: int):
        self.n_in, self.H = n_in, hidden
        self._ws: dict[str, np.ndarray] = {}

    def buf(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        a = self._ws.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._ws[name] = np.empty(shape, dtype=dtype)
        return a


class RNNCell(Cell):
    """The seed's cell.

        h_t = tanh(Wxh·x_t + Whh·h_{t-1} + bh)

    Parameters: Wxh (n_in, H), Whh (H, H), bh (H).
    """

    kind = "rnn"
    n_state = 1
    gates = 1
    input_keys = ("Wxh", "bh")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        H = self.H
        return {"Wxh": (self.n_in, H), "Whh": (H, H), "bh": (H,)}

    def forward(self, p, xproj, state):
        T, B, H = xproj.shape
        Whh = p["Whh"]
        hs = self.buf("hs", (T + 1, B, H), xproj.dtype)  # hs[0] is h_{-1}
        hs[0] = state[0]
        h, x = steps(hs), steps(xproj)
        for t in range(T):
            np.dot(h[t], Whh, out=h[t + 1])
            h[t + 1] += x[t]
            np.tanh(h[t + 1], out=h[t + 1])  # h_t = tanh(Wxh·x + Whh·h + bh)
        return hs[1:], hs, hs[T][None].copy()

    def backward(self, p, dhs, cache, g):
        hs = cache
        T, B, H = dhs.shape
        WhhT = np.ascontiguousarray(p["Whh"].T)    # a contiguous copy multiplies ~2x faster than a view
        dtanh = self.buf("dtanh", dhs.shape, dhs.dtype)
        np.multiply(hs[1:], hs[1:], out=dtanh)
        np.subtract(1.0, dtanh, out=dtanh)          # tanh' at every step, all at once
        dhraw = self.buf("dhraw", dhs.shape, dhs.dtype)
        dh = np.empty((B, H), dtype=dhs.dtype)
        dhnext = np.zeros((B, H), dtype=dhs.dtype)
        d_out, d_tanh, d_raw = steps(dhs), steps(dtanh), steps(dhraw)
        dh_, dhnext_ = steps(dh[None])[0], steps(dhnext[None])[0]
        for t in reversed(range(T)):
            np.add(d_out[t], dhnext_, out=dh_)      # backprop into h from above and from t+1
            np.multiply(dh_, d_tanh[t], out=d_raw[t])  # backprop through tanh
            np.dot(d_raw[t], WhhT, out=dhnext_)     # backprop into h_{t-1}
        np.matmul(hs[:-1].reshape(-1, H).T, dhraw.reshape(-1, H), out=g["Whh"])
        return dhraw


class LSTMCell(Cell):
    """Long short-term memory with the four gates fused into one matmul per step.

        [i f o g] = [σ σ σ tanh](Wx·x_t + Wh·h_{t-1} + b)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    Parameters: Wx (n_in, 4H), Wh (H, 4H), b (4H), gate columns in the order i, f, o, g.
    """

    kind = "lstm"
    n_state = 2
    gates = 4
    input_keys = ("Wx", "b")

    def shapes(self):
        H = self.H
        return {"Wx": (self.n_in, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,)}

    def forward(self, p, xproj, state):
        T, B, G = xproj.shape
        H = self.H
        Wh = p["Wh"]
        hs = self.buf("hs", (T + 1, B, H), xproj.dtype)
        cs = self.buf("cs", (T + 1, B, H), xproj.dtype)
        acts = self.buf("acts", (T, B, G), xproj.dtype)   # gate activations i f o g
        tcs = self.buf("tcs", (T, B, H), xproj.dtype)     # tanh(c_t)
        hs[0], cs[0] = state[0], state[1]
        for t in range(T):
            a = acts[t]
            np.matmul(hs[t], Wh, out=a)
            a += xproj[t]
            sigmoid(a[:, :3 * H], out=a[:, :3 * H])          # i, f, o
            np.tanh(a[:, 3 * H:], out=a[:, 3 * H:])          # g
            i, f, o, gg = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            np.multiply(f, cs[t], out=cs[t + 1])
            cs[t + 1] += i * gg                              # c = f⊙c + i⊙g
            np.tanh(cs[t + 1], out=tcs[t])
            np.multiply(o, tcs[t], out=hs[t + 1])            # h = o⊙tanh(c)
        return hs[1:], (hs, cs, acts, tcs), np.stack([hs[T], cs[T]])

    def backward(self, p, dhs, cache, g):
        hs, cs, acts, tcs = cache
        T, B, H = dhs.shape
        WhT = np.ascontiguousarray(p["Wh"].T)
        dz = self.buf("dz", acts.shape, acts.dtype)   # grads of the gate pre-activations
        dhnext = np.zeros((B, H), dtype=dhs.dtype)
        dcnext = np.zeros((B, H), dtype=dhs.dtype)
        for t in reversed(range(T)):
            a, d = acts[t], dz[t]
            i, f, o, gg = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            dh = dhs[t] + dhnext
            dc = dcnext + dh * o * (1.0 - tcs[t] * tcs[t])    # through h = o⊙tanh(c)
            np.multiply(dc, gg, out=d[:, :H])                 # di
            np.multiply(dc, cs[t], out=d[:, H:2 * H])         # df
            np.multiply(dh, tcs[t], out=d[:, 2 * H:3 * H])    # do
            np.multiply(dc, i, out=d[:, 3 * H:])              # dg
            d[:, :3 * H] *= a[:, :3 * H] * (1.0 - a[:, :3 * H])  # through the sigmoids
            d[:, 3 * H:] *= 1.0 - gg * gg                     # through tanh
            dcnext = dc * f
            dhnext = d @ WhT
        np.matmul(hs[:-1].reshape(-1, H).T, dz.reshape(-1, 4 * H), out=g["Wh"])
        return dz


class GRUCell(Cell):
    """Gated recurrent unit, the three gates' recurrent products fused into one matmul per step.

        r = σ(Wxr·x + Whr·h_{t-1} + br)
        z = σ(Wxz·x + Whz·h_{t-1} + bz)
        n = tanh(Wxn·x + bn + r ⊙ (Whn·h_{t-1} + bhn))
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    Parameters: Wx (n_in, 3H), Wh (H, 3H), b (3H), bhn (H); gate columns in the order r, z, n.
    """

    kind = "gru"
    n_state = 1
    gates = 3
    input_keys = ("Wx", "b")

    def shapes(self):
        H = self.H
        return {"Wx": (self.n_in, 3 * H), "Wh": (H, 3 * H), "b": (3 * H,), "bhn": (H,)}

    def forward(self, p, xproj, state):
        T, B, G = xproj.shape
        H = self.H
        Wh, bhn = p["Wh"], p["bhn"]
        hs = self.buf("hs", (T + 1, B, H), xproj.dtype)
        rzn = self.buf("rzn", (T, B, G), xproj.dtype)    # r, z, n activations
        hns = self.buf("hns", (T, B, H), xproj.dtype)    # Whn·h + bhn
        hr = self.buf("hr", (B, G), xproj.dtype)
        hs[0] = state[0]
        for t in range(T):
            a = rzn[t]
            np.matmul(hs[t], Wh, out=hr)
            np.add(xproj[t, :, :2 * H], hr[:, :2 * H], out=a[:, :2 * H])
            sigmoid(a[:, :2 * H], out=a[:, :2 * H])           # r, z
            np.add(hr[:, 2 * H:], bhn, out=hns[t])
            n = a[:, 2 * H:]
            np.multiply(a[:, :H], hns[t], out=n)
            n += xproj[t, :, 2 * H:]
            np.tanh(n, out=n)                                 # n = tanh(x + r⊙(Whn·h + bhn))
            z = a[:, H:2 * H]
            np.subtract(hs[t], n, out=hs[t + 1])
            hs[t + 1] *= z
            hs[t + 1] += n                                    # h = n + z⊙(h_prev - n)
        return hs[1:], (hs, rzn, hns), hs[T][None].copy()

    def backward(self, p, dhs, cache, g):
        hs, rzn, hns = cache
        T, B, H = dhs.shape
        WhT = np.ascontiguousarray(p["Wh"].T)
        dx = self.buf("dx", rzn.shape, rzn.dtype)    # grads of the input projections (r, z, n)
        dhr = self.buf("dhr", rzn.shape, rzn.dtype)  # grads of Wh·h (+ bhn for n)
        dhnext = np.zeros((B, H), dtype=dhs.dtype)
        for t in reversed(range(T)):
            a = rzn[t]
            r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
            dh = dhs[t] + dhnext
            dan = dh * (1.0 - z) * (1.0 - n * n)            # through h = (1-z)n + z·h_prev, then tanh
            np.multiply(dan * hns[t], r * (1.0 - r), out=dx[t, :, :H])                 # r
            np.multiply(dh * (hs[t] - n), z * (1.0 - z), out=dx[t, :, H:2 * H])        # z
            dx[t, :, 2 * H:] = dan                                                        # n
            dhr[t, :, :2 * H] = dx[t, :, :2 * H]
            np.multiply(dan, r, out=dhr[t, :, 2 * H:])
            dhnext = dh * z + dhr[t] @ WhT
        np.sum(dhr[:, :, 2 * H:], axis=(0, 1), out=g["bhn"])
        np.matmul(hs[:-1].reshape(-1, H).T, dhr.reshape(-1, 3 * H), out=g["Wh"])
        return dx


CELLS = {c.kind: c for c in (RNNCell, LSTMCell, GRUCell)}

"""The LSTM (long short-term memory): forward, backward, one-step form, trace, gradient through time."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.cells.base import Cell, rows, sigmoid
from kafkarnn.engine.layout import block, steps


class LSTMBack:
    """c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t), backwards for a set of columns (through_time.py)."""

    def __init__(self, p, rec, m):
        i, f, o, g, tc = (rows(rec[k]) for k in ("i", "f", "o", "g", "tanh_c"))
        T, B, H = i.shape
        self.k = np.empty((T, B, 4 * H), i.dtype)            # ∂z from dc, dc, dh, dc
        self.k[..., :H] = g * i * (1 - i)                    # di = dc·g·σ'(i)
        self.k[..., H:2 * H] = rows(rec["c_prev"]) * f * (1 - f)   # df = dc·c_{t-1}·σ'(f)
        self.k[..., 2 * H:3 * H] = tc * o * (1 - o)          # do = dh·tanh(c)·σ'(o)
        self.k[..., 3 * H:] = i * (1 - g * g)                # dg = dc·i·(1-g²)
        self.kc = o * (1 - tc * tc)                          # ∂c from h = o⊙tanh(c)
        self.f, self.W, self.H = f, p["Wh"], H
        self.dcnext = np.zeros((m, B, H), i.dtype)           # into c_t from t+1, per column
        self.dc = np.empty((m, B, H), i.dtype)
        self.d = np.empty((m, B, 4 * H), i.dtype)
        self.carried = [self.dcnext]

    def step(self, t, dh):
        live, H = len(dh), self.H
        dc, d, k = self.dc[:live], self.d[:live], self.k[t]
        np.multiply(dh, self.kc[t], out=dc)
        dc += self.dcnext[:live]                             # into c from h and from t+1
        for gate in (slice(0, H), slice(H, 2 * H), slice(3 * H, 4 * H)):
            np.multiply(dc, k[:, gate], out=d[..., gate])    # i, f, g
        np.multiply(dh, k[:, 2 * H:3 * H], out=d[..., 2 * H:3 * H])   # o
        np.multiply(dc, self.f[t], out=self.dcnext[:live])   # into c_{t-1}
        np.matmul(d.reshape(-1, 4 * H), self.W, out=dh.reshape(-1, H))   # into h_{t-1}
        return d


class LSTMCell(Cell):
    """Long short-term memory with the four gates fused into one matmul per step.

        [i f o g] = [σ σ σ tanh](Wx·x_t + Wh·h_{t-1} + b)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    Parameters: Wx (4H, n_in), Wh (4H, H), b (4H), gate rows in the order i, f, o, g.
    """

    kind = "lstm"
    state_names = ("h", "c")
    activations = ("i", "f", "o", "g")
    gates = ("i", "f", "o")
    recurrent_key = "Wh"

    def shapes(self):
        H = self.H
        return {"Wx": (4 * H, self.n_in), "Wh": (4 * H, H), "b": (4 * H,)}

    def step(self, p, x, state):
        H = self.H
        (h, c), a, ig = state, self.buf("step", (4 * H,), x.dtype), self.buf("step.ig", (H,), x.dtype)
        np.dot(p["Wh"], h, out=a)
        a += x
        sigmoid(a[:3 * H], out=a[:3 * H])
        np.tanh(a[3 * H:], out=a[3 * H:])
        c *= a[H:2 * H]
        np.multiply(a[:H], a[3 * H:], out=ig)
        c += ig                                             # c = f⊙c + i⊙g
        np.tanh(c, out=h)
        h *= a[2 * H:3 * H]                                 # h = o⊙tanh(c)

    def forward(self, p, xproj, state):
        T, G, B = xproj.shape
        H = self.H
        Wh = p["Wh"]
        hs = self.buf("hs", (T + 1, H, B), xproj.dtype)
        cs = self.buf("cs", (T + 1, H, B), xproj.dtype)
        acts = self.buf("acts", (T, G, B), xproj.dtype)    # gate activations i f o g
        tcs = self.buf("tcs", (T, H, B), xproj.dtype)      # tanh(c_t)
        ig = block(self.buf("ig", (H, B), xproj.dtype))
        hs[0], cs[0] = state[0], state[1]
        h, c, x = self.steps("h", hs), self.steps("c", cs), self.steps("x", xproj)
        A, tc = self.steps("A", acts), self.steps("tc", tcs)
        for t in range(T):
            a = A[t]
            np.dot(Wh, h[t], out=a)
            a += x[t]
            sigmoid(a[:3 * H], out=a[:3 * H])               # i, f, o
            np.tanh(a[3 * H:], out=a[3 * H:])               # g
            i, f, o, gg = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            np.multiply(f, c[t], out=c[t + 1])
            np.multiply(i, gg, out=ig)
            c[t + 1] += ig                                  # c = f⊙c + i⊙g
            np.tanh(c[t + 1], out=tc[t])
            np.multiply(o, tc[t], out=h[t + 1])             # h = o⊙tanh(c)
        out, prev = self.outputs(hs)
        return out, (prev, cs, acts, tcs), np.stack([hs[T], cs[T]])

    def backward(self, p, dhs, cache, g):
        prev, cs, acts, tcs = cache
        T, H, B = tcs.shape
        dhs = self.step_major("dhs", dhs, B)
        WhT = self.transposed("WhT", p["Wh"], B)
        # 1) local derivatives of every step at once; dz (the gate pre-activations' grads) is
        #    then k ⊙ [dc dc dh dc] per step, written over k
        dz = self.buf("dz", acts.shape, acts.dtype)
        s = acts[:, :3 * H]
        np.subtract(1.0, s, out=dz[:, :3 * H])
        dz[:, :3 * H] *= s                                   # σ' = σ(1-σ) for i, f, o
        dz[:, :H] *= acts[:, 3 * H:]                         # di = dc·g·σ'(i)
        dz[:, H:2 * H] *= cs[:-1]                            # df = dc·c_{t-1}·σ'(f)
        dz[:, 2 * H:3 * H] *= tcs                            # do = dh·tanh(c)·σ'(o)
        gg = acts[:, 3 * H:]
        np.multiply(gg, gg, out=dz[:, 3 * H:])
        np.subtract(1.0, dz[:, 3 * H:], out=dz[:, 3 * H:])
        dz[:, 3 * H:] *= acts[:, :H]                         # dg = dc·i·(1-g²)
        kc = self.buf("kc", tcs.shape, tcs.dtype)
        np.multiply(tcs, tcs, out=kc)
        np.subtract(1.0, kc, out=kc)
        kc *= acts[:, 2 * H:3 * H]                           # ∂c from h = o⊙tanh(c): o·(1-tanh²c)
        # 2) the recurrence, backwards
        dh, dc = (block(self.buf(n, (H, B), dhs.dtype)) for n in ("dh", "dc"))
        dhnext, dcnext = (block(np.zeros((H, B), dtype=dhs.dtype)) for _ in range(2))
        d_out, D, K = self.steps("d_out", dhs), self.steps("D", dz), self.steps("K", kc)
        F = steps(acts[:, H:2 * H])
        for t in reversed(range(T)):
            d = D[t]
            np.add(d_out[t], dhnext, out=dh)                 # into h from above and from t+1
            np.multiply(dh, K[t], out=dc)
            dc += dcnext                                     # into c from h and from t+1
            d[:H] *= dc
            d[H:2 * H] *= dc
            d[2 * H:3 * H] *= dh
            d[3 * H:] *= dc
            np.multiply(dc, F[t], out=dcnext)                # into c_{t-1}
            np.dot(WhT, d, out=dhnext)                       # into h_{t-1}
        dxproj = self.feature_major("dxproj", dz)
        np.matmul(dxproj, prev.T, out=g["Wh"])               # dWh = Σ dz_t·h_{t-1}ᵀ
        return dxproj

    def init_biases(self, p):
        H = self.H
        p["b"][H:2 * H] = 1.0                                # remember by default: forget gate open

    def record(self, cache) -> dict[str, np.ndarray]:
        """h, c, c_prev, tanh_c and the gates i, f, o, g, step-major (T, H, B): views into the
        workspace (h is computed), valid until the cell runs again."""
        _, cs, acts, tcs = cache
        gates = self.split(acts, "ifog")
        return {"h": gates["o"] * tcs, "c": cs[1:], "c_prev": cs[:-1], "tanh_c": tcs, **gates}

    def back(self, p, rec, m) -> LSTMBack:
        return LSTMBack(p, rec, m)

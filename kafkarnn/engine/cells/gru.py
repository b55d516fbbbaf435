"""The GRU (gated recurrent unit): forward, backward, one-step form, trace and gradient through time."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.cells.base import Cell, rows, sigmoid
from kafkarnn.engine.layout import block, column, steps


class GRUBack:
    """h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}, n = tanh(Wxn·x + bn + r ⊙ (Whn·h_{t-1} + bhn)),
    backwards for a set of columns (through_time.py)."""

    def __init__(self, p, rec, m):
        r, z, n, hn = (rows(rec[k]) for k in ("r", "z", "n", "hn"))
        T, B, H = r.shape
        self.kn = (1 - z) * (1 - n * n)                      # ∂n-pre from h: (1-z)(1-n²)
        self.kr = hn * r * (1 - r)                           # ∂r-pre from n-pre: (Whn·h + bhn)·σ'(r)
        self.kz = (rows(rec["h_prev"]) - n) * z * (1 - z)    # ∂z-pre from h: (h_{t-1} - n)·σ'(z)
        self.r, self.z, self.W, self.H = r, z, p["Wh"], H
        self.da = np.empty((m, B, H), r.dtype)
        self.zh = np.empty((m, B, H), r.dtype)
        self.d = np.empty((m, B, 3 * H), r.dtype)
        self.carried = []

    def step(self, t, dh):
        live, H = len(dh), self.H
        da, zh, d = self.da[:live], self.zh[:live], self.d[:live]
        np.multiply(dh, self.kn[t], out=da)                  # through h = (1-z)n + z·h_prev, tanh
        np.multiply(da, self.kr[t], out=d[..., :H])          # r
        np.multiply(dh, self.kz[t], out=d[..., H:2 * H])     # z
        np.multiply(da, self.r[t], out=d[..., 2 * H:])       # Whn·h + bhn, inside r⊙(·)
        np.multiply(dh, self.z[t], out=zh)
        np.matmul(d.reshape(-1, 3 * H), self.W, out=dh.reshape(-1, H))
        dh += zh                                             # into h_{t-1}: through z⊙h_prev and Wh
        d[..., 2 * H:] = da                                  # the input's grads: n's pre-activation's
        return d


class GRUCell(Cell):
    """Gated recurrent unit, the three gates' recurrent products fused into one matmul per step.

        r = σ(Wxr·x + Whr·h_{t-1} + br)
        z = σ(Wxz·x + Whz·h_{t-1} + bz)
        n = tanh(Wxn·x + bn + r ⊙ (Whn·h_{t-1} + bhn))
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    Parameters: Wx (3H, n_in), Wh (3H, H), b (3H), bhn (H); gate rows in the order r, z, n.
    """

    kind = "gru"
    activations = ("r", "z", "n")
    gates = ("r", "z")
    recurrent_key = "Wh"

    def shapes(self):
        H = self.H
        return {"Wx": (3 * H, self.n_in), "Wh": (3 * H, H), "b": (3 * H,), "bhn": (H,)}

    def step(self, p, x, state):
        H = self.H
        h, hr, a = state[0], self.buf("step", (3 * H,), x.dtype), self.buf("step.a", (3 * H,), x.dtype)
        np.dot(p["Wh"], h, out=hr)
        np.add(x[:2 * H], hr[:2 * H], out=a[:2 * H])
        sigmoid(a[:2 * H], out=a[:2 * H])                    # r, z
        hn, n = hr[2 * H:], a[2 * H:]
        hn += p["bhn"]
        np.multiply(a[:H], hn, out=n)
        n += x[2 * H:]
        np.tanh(n, out=n)                                    # n = tanh(x + r⊙(Whn·h + bhn))
        h -= n
        h *= a[H:2 * H]
        h += n                                               # h = n + z⊙(h_prev - n)

    def forward(self, p, xproj, state):
        T, G, B = xproj.shape
        H = self.H
        Wh, bhn = p["Wh"], column(p["bhn"], B)
        hs = self.buf("hs", (T + 1, H, B), xproj.dtype)
        rzn = self.buf("rzn", (T, G, B), xproj.dtype)    # r, z, n activations
        hns = self.buf("hns", (T, H, B), xproj.dtype)    # Whn·h + bhn
        hr = block(self.buf("hr", (G, B), xproj.dtype))
        hs[0] = state[0]
        h, x = self.steps("h", hs), self.steps("x", xproj)
        A, hn = self.steps("A", rzn), self.steps("hn", hns)
        for t in range(T):
            a, xt = A[t], x[t]
            np.dot(Wh, h[t], out=hr)
            np.add(xt[:2 * H], hr[:2 * H], out=a[:2 * H])
            sigmoid(a[:2 * H], out=a[:2 * H])                 # r, z
            np.add(hr[2 * H:], bhn, out=hn[t])
            n = a[2 * H:]
            np.multiply(a[:H], hn[t], out=n)
            n += xt[2 * H:]
            np.tanh(n, out=n)                                 # n = tanh(x + r⊙(Whn·h + bhn))
            z = a[H:2 * H]
            np.subtract(h[t], n, out=h[t + 1])
            h[t + 1] *= z
            h[t + 1] += n                                     # h = n + z⊙(h_prev - n)
        out, prev = self.outputs(hs)
        return out, (hs, prev, rzn, hns), hs[T][None].copy()

    def backward(self, p, dhs, cache, g):
        hs, prev, rzn, hns = cache
        T, H, B = hns.shape
        dhs = self.step_major("dhs", dhs, B)
        WhT = self.transposed("WhT", p["Wh"], B)
        r, z, n = rzn[:, :H], rzn[:, H:2 * H], rzn[:, 2 * H:]
        # 1) local derivatives of every step at once
        kn = self.buf("kn", hns.shape, hns.dtype)            # ∂n-pre from h: (1-z)(1-n²)
        np.multiply(n, n, out=kn)
        np.subtract(1.0, kn, out=kn)
        kn *= 1.0 - z
        dhr = self.buf("dhr", rzn.shape, rzn.dtype)          # grads of Wh·h (+ bhn for n)
        kr, kz = dhr[:, :H], dhr[:, H:2 * H]
        np.subtract(1.0, r, out=kr)
        kr *= r
        kr *= hns                                            # ∂r-pre from n-pre: (Whn·h + bhn)·σ'(r)
        np.subtract(hs[:-1], n, out=kz)
        kz *= z
        kz *= 1.0 - z                                        # ∂z-pre from h: (h_{t-1} - n)·σ'(z)
        dan = self.buf("dan", hns.shape, hns.dtype)          # grads of n's pre-activation
        # 2) the recurrence, backwards
        dh = block(self.buf("dh", (H, B), dhs.dtype))
        dhnext = block(np.zeros((H, B), dtype=dhs.dtype))
        d_out, D, DA = self.steps("d_out", dhs), self.steps("D", dhr), self.steps("DA", dan)
        KN = self.steps("KN", kn)
        R, Z = steps(r), steps(z)
        for t in reversed(range(T)):
            d, da = D[t], DA[t]
            np.add(d_out[t], dhnext, out=dh)                 # into h from above and from t+1
            np.multiply(dh, KN[t], out=da)                   # through h = (1-z)n + z·h_prev, then tanh
            d[:H] *= da                                      # r
            d[H:2 * H] *= dh                                 # z
            np.multiply(da, R[t], out=d[2 * H:])             # Whn·h + bhn, inside r⊙(·)
            np.dot(WhT, d, out=dhnext)
            np.multiply(dh, Z[t], out=dh)
            dhnext += dh                                     # into h_{t-1}: through z⊙h_prev and Wh
        dx = self.feature_major("dxproj", dhr)
        np.matmul(dx, prev.T, out=g["Wh"])                   # dWh = Σ dhr_t·h_{t-1}ᵀ
        self.row_sums(dx[2 * H:], out=g["bhn"])
        # the input's grads differ in the n rows: there they are n's pre-activation's, dan
        if B == 1:
            np.copyto(dhr[:, 2 * H:], dan)                   # dx is a view of dhr
        else:
            np.copyto(dx[2 * H:].reshape(H, T, B), dan.transpose(1, 0, 2))
        return dx

    def record(self, cache) -> dict[str, np.ndarray]:
        """h, h_prev, hn = Whn·h_prev + bhn and the activations r, z, n, step-major (T, H, B):
        views into the workspace, valid until the cell runs again."""
        hs, _, rzn, hns = cache
        return {"h": hs[1:], "h_prev": hs[:-1], "hn": hns, **self.split(rzn, "rzn")}

    def back(self, p, rec, m) -> GRUBack:
        return GRUBack(p, rec, m)

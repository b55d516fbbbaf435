"""Recurrent cells: vanilla RNN, LSTM and GRU, each run over a whole sequence with one contract.

Column form, as in min-char-rnn: a state is one column per stream, h (H, B), and a weight maps
columns, `Whh @ h`; B streams are B columns side by side, so a step is one matrix multiply.
Sequences are (T, X, B) — time, features, streams — so each step's (X, B) block is contiguous:
the per-step product and the gate arithmetic both run on contiguous memory, faster than on the
row form's strided gate slices (the timings: benchmarks/README.md, "Notes behind the engine's
choices").

Every cell receives its input already projected, xproj[t] = Wx·x_t + b for all t (the model
does that with a column lookup for characters, or one product for a layer below), so the
Python loop over time holds only the recurrence. What goes in and out in bulk is feature-major,
one matrix (X, T·B) with the columns in (t, b) order, because every weight gradient and the
products between layers are then single matrix multiplies. Contract:

    forward(p, xproj, state)    -> hs (H, T·B), cache, new state     xproj is (T, G, B)
    backward(p, dhs, cache, g)  -> dxproj (G, T·B), writing the recurrent grads into g
                                                                      dhs is (H, T·B)
    step(p, x, state)           one step for one stream (vectors), updating state in place:
                                what sampling runs, character by character

A state is one array (S, H, B): S = 1 (h) for rnn and gru, S = 2 (h, c) for lstm.

Big per-sequence arrays come from a workspace kept by each cell (layout.py), reused while the
shape stays the same. A buffer is only valid until the same cell runs again with the same shape,
which is after the backward pass that used it.
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.layout import Workspace, block, column, steps


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function written through tanh, which never overflows: σ(x) = ½·tanh(x/2) + ½."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


class Cell(Workspace):
    """What every cell shares: sizes, the workspace, and the bulk layout at the boundary."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.n_in, self.H = n_in, hidden

    def outputs(self, hs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All T+1 states hs (T+1, H, B) feature-major: (h_0..h_{T-1}, h_{-1}..h_{T-2}), both views
        of one (H, (T+1)·B) copy. The first is the layer's output, the second what the recurrent
        weight gradient pairs each step with."""
        B = hs.shape[2]
        hs_f = self.feature_major("hs_f", hs)
        return hs_f[:, B:], hs_f[:, :-B]


class RNNCell(Cell):
    """The seed's cell.

        h_t = tanh(Wxh·x_t + Whh·h_{t-1} + bh)

    Parameters: Wxh (H, n_in), Whh (H, H), bh (H).
    """

    kind = "rnn"
    recurrent_key = "Whh"
    n_state = 1
    gates = 1
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


class LSTMCell(Cell):
    """Long short-term memory with the four gates fused into one matmul per step.

        [i f o g] = [σ σ σ tanh](Wx·x_t + Wh·h_{t-1} + b)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    Parameters: Wx (4H, n_in), Wh (4H, H), b (4H), gate rows in the order i, f, o, g.
    """

    kind = "lstm"
    recurrent_key = "Wh"
    n_state = 2
    gates = 4
    input_keys = ("Wx", "b")

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


class GRUCell(Cell):
    """Gated recurrent unit, the three gates' recurrent products fused into one matmul per step.

        r = σ(Wxr·x + Whr·h_{t-1} + br)
        z = σ(Wxz·x + Whz·h_{t-1} + bz)
        n = tanh(Wxn·x + bn + r ⊙ (Whn·h_{t-1} + bhn))
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    Parameters: Wx (3H, n_in), Wh (3H, H), b (3H), bhn (H); gate rows in the order r, z, n.
    """

    kind = "gru"
    recurrent_key = "Wh"
    n_state = 1
    gates = 3
    input_keys = ("Wx", "b")

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


CELLS = {c.kind: c for c in (RNNCell, LSTMCell, GRUCell)}

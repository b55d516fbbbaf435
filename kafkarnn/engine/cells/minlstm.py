"""minLSTM (Feng et al. 2024): an LSTM whose gates and candidate see only the input, the two gates
normalised so that they add up to one; over time only the elementwise recurrence of scan.py."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.cells import scan
from kafkarnn.engine.cells.base import Cell, rows, sigmoid
from kafkarnn.engine.layout import block


class MinLSTMBack:
    """h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t, backwards for a set of columns (through_time.py)."""

    def __init__(self, p, rec, m):
        f, i, ht, h_prev, cf, ci = (rows(rec[k]) for k in (
            "f", "i", "ht", "h_prev", "one_minus_f_raw", "one_minus_i_raw"))
        w = (h_prev - ht) * f * i                            # −∂h_t/∂d, d = log(i/f)
        self.kf, self.ki = w * cf, -w * ci                   # ∂d/∂k_f = −(1 − f), ∂d/∂k_i = 1 − i
        self.kh, self.a = i, f                               # ∂h_t/∂h̃ = i'; ∂h_t/∂h_{t−1} = f'
        B, H = f.shape[1:]
        self.H, self.d = H, np.empty((m, B, 3 * H), f.dtype)
        self.carried = []

    def step(self, t, dh):
        live, H = len(dh), self.H
        d = self.d[:live]
        np.multiply(dh, self.kf[t], out=d[..., :H])          # f
        np.multiply(dh, self.ki[t], out=d[..., H:2 * H])     # i
        np.multiply(dh, self.kh[t], out=d[..., 2 * H:])      # h̃
        dh *= self.a[t]                                      # into h_{t−1}: through f'_t alone
        return d


class MinLSTMCell(Cell):
    """minLSTM: two gates and the candidate from the input alone, the gates normalised.

        f_t = σ(Wxf·x_t + bf),  i_t = σ(Wxi·x_t + bi),  h̃_t = Wxh·x_t + bh
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t) = 1 − f'_t
        h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t = a_t ⊙ h_{t−1} + b_t

    Where both gates underflow to 0 (pre-activations below about −17 in float32), f' is taken as
    its limit σ(k_f − k_i). The log-space form (scan.py) uses d = log(i/f) = softplus(−k_f) −
    softplus(−k_i): log f' = −softplus(d). Parameters: Wx (3H, n_in), b (3H), rows in the order
    f, i, h̃. No recurrent matrix.
    """

    kind = "minlstm"
    activations = ("f", "i", "ht")
    gates = ("f", "i")                       # the normalised f', i' that act on the state
    per_step_input = False
    through_time_note = scan.GRADIENT_NOTE
    shown = staticmethod(scan.shown)         # h is not bounded by ±1: through tanh for the shading
    form = "loop"                            # or "scan": the log-space form (scan.py)

    def shapes(self):
        H = self.H
        return {"Wx": (3 * H, self.n_in), "b": (3 * H,)}

    def gates_of(self, kf, ki, f, i, cf, ci) -> None:
        """From the gates' pre-activations kf, ki: f' into f, i' into i, and for the backward
        1 − σ(k_f) into cf, 1 − σ(k_i) into ci."""
        sigmoid(kf, out=f)
        sigmoid(ki, out=i)
        np.subtract(1.0, f, out=cf)
        np.subtract(1.0, i, out=ci)
        s = np.add(f, i, out=self.buf(f"s{f.ndim}", f.shape, f.dtype))
        with np.errstate(invalid="ignore"):
            f /= s                                       # f' = f / (f + i)
            i /= s                                       # i' = i / (f + i)
        shut = s == 0.0                                  # both gates below float's smallest: f'
        if shut.any():                                   # is then σ(k_f − k_i) to rounding
            f[shut] = sigmoid(kf - ki)[shut]
            i[shut] = 1.0 - f[shut]

    def step(self, p, x, state):
        H = self.H
        h = state[0]
        f, i, cf, ci, b = (self.buf(f"step.{n}", (H,), x.dtype) for n in ("f", "i", "cf", "ci", "b"))
        self.gates_of(x[:H], x[H:2 * H], f, i, cf, ci)
        np.multiply(i, x[2 * H:], out=b)                 # b = i' ⊙ h̃
        h *= f
        h += b                                           # h = f' ⊙ h + b

    def forward(self, p, xproj, state):
        T, G, B = xproj.shape
        H, dt = self.H, xproj.dtype
        f, i, cf, ci, ht, b = (self.buf(n, (T, H, B), dt) for n in ("f", "i", "cf", "ci", "ht", "b"))
        self.gates_of(xproj[:, :H], xproj[:, H:2 * H], f, i, cf, ci)   # every step at once
        np.copyto(ht, xproj[:, 2 * H:])                  # h̃_t (kept: xproj is the model's)
        np.multiply(i, ht, out=b)                        # b_t = i'_t ⊙ h̃_t
        hs = self.buf("hs", (T + 1, H, B), dt)           # hs[0] is h_{−1}
        hs[0] = state[0]
        if self.form == "scan":
            d = scan.softplus(-xproj[:, :H]) - scan.softplus(-xproj[:, H:2 * H])
            scan.scan(-scan.softplus(d), b, hs)          # log f' = −softplus(d), d = log(i/f)
        else:
            scan.loop(f, b, hs)
        return self.outputs(hs)[0], (hs, f, i, cf, ci, ht), hs[T][None].copy()

    def backward(self, p, dhs, cache, g):
        hs, f, i, cf, ci, ht = cache
        T, H, B = f.shape
        delta = self.step_major("dhs", dhs, B)
        scan.loop_backward(f, delta, block(self.buf("tmp", (H, B), dhs.dtype)))   # δ_t
        dx = self.buf("dx", (T, 3 * H, B), dhs.dtype)
        df, di, dh = dx[:, :H], dx[:, H:2 * H], dx[:, 2 * H:]
        np.subtract(hs[:-1], ht, out=df)
        df *= delta
        df *= f
        df *= i                                          # w = δ·(h_{t−1} − h̃)·f'i' = −∂L/∂d
        np.multiply(df, ci, out=di)
        np.negative(di, out=di)                          # ∂i-pre = −w·(1 − i)
        df *= cf                                         # ∂f-pre = w·(1 − f)
        np.multiply(delta, i, out=dh)                    # ∂h̃ = δ·i'
        return self.feature_major("dxproj", dx)

    def record(self, cache) -> dict[str, np.ndarray]:
        """h, h_prev, the normalised gates f (f') and i (i'), the candidate ht (h̃) and 1 − σ of
        each raw gate, step-major (T, H, B): views into the workspace, valid until the cell runs
        again."""
        hs, f, i, cf, ci, ht = cache
        return {"h": hs[1:], "h_prev": hs[:-1], "f": f, "i": i, "ht": ht,
                "one_minus_f_raw": cf, "one_minus_i_raw": ci}

    def back(self, p, rec, m) -> MinLSTMBack:
        return MinLSTMBack(p, rec, m)

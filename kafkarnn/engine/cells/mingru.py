"""minGRU (Feng et al. 2024): a GRU whose gate and candidate see only the input, so the only
work over time is the elementwise recurrence of scan.py."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.cells import scan
from kafkarnn.engine.cells.base import Cell, rows, sigmoid
from kafkarnn.engine.layout import block


class MinGRUBack:
    """h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t, backwards for a set of columns (through_time.py)."""

    def __init__(self, p, rec, m):
        z, ht, h_prev = (rows(rec[k]) for k in ("z", "ht", "h_prev"))
        self.a = 1.0 - z                                     # ∂h_t/∂h_{t−1}, a diagonal
        self.kz = (ht - h_prev) * z * (1.0 - z)              # ∂z-pre: (h̃ − h_{t−1})·σ'(z)
        self.kh = z                                          # ∂h̃: z
        B, H = z.shape[1:]
        self.H, self.d = H, np.empty((m, B, 2 * H), z.dtype)
        self.carried = []

    def step(self, t, dh):
        live, H = len(dh), self.H
        d = self.d[:live]
        np.multiply(dh, self.kz[t], out=d[..., :H])         # z
        np.multiply(dh, self.kh[t], out=d[..., H:])         # h̃
        dh *= self.a[t]                                      # into h_{t−1}: through a_t alone
        return d


class MinGRUCell(Cell):
    """minGRU: the gate and the candidate from the input alone.

        z_t = σ(Wxz·x_t + bz)
        h̃_t = Wxh·x_t + bh
        h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t = a_t ⊙ h_{t−1} + b_t

    Parameters: Wx (2H, n_in), b (2H), rows in the order z, h̃. No recurrent matrix.
    """

    kind = "mingru"
    activations = ("z", "ht")
    gates = ("z",)
    per_step_input = False
    through_time_note = scan.GRADIENT_NOTE
    shown = staticmethod(scan.shown)         # h is not bounded by ±1: through tanh for the shading
    form = "loop"                            # or "scan": the log-space form (scan.py)

    def shapes(self):
        H = self.H
        return {"Wx": (2 * H, self.n_in), "b": (2 * H,)}

    def step(self, p, x, state):
        H = self.H
        h, z, b = state[0], self.buf("step.z", (H,), x.dtype), self.buf("step.b", (H,), x.dtype)
        sigmoid(x[:H], out=z)
        np.multiply(z, x[H:], out=b)                     # b = z ⊙ h̃
        np.subtract(1.0, z, out=z)                       # a = 1 − z
        h *= z
        h += b                                           # h = a ⊙ h + b

    def forward(self, p, xproj, state):
        T, G, B = xproj.shape
        H, dt = self.H, xproj.dtype
        z, ht, a, b = (self.buf(n, (T, H, B), dt) for n in ("z", "ht", "a", "b"))
        sigmoid(xproj[:, :H], out=z)                     # z_t, every step at once
        np.copyto(ht, xproj[:, H:])                      # h̃_t (kept: xproj is the model's)
        np.multiply(z, ht, out=b)                        # b_t = z_t ⊙ h̃_t
        np.subtract(1.0, z, out=a)                       # a_t = 1 − z_t
        hs = self.buf("hs", (T + 1, H, B), dt)           # hs[0] is h_{−1}
        hs[0] = state[0]
        if self.form == "scan":
            scan.scan(-scan.softplus(xproj[:, :H]), b, hs)   # log(1 − σ(k)) = −softplus(k)
        else:
            scan.loop(a, b, hs)
        return self.outputs(hs)[0], (hs, z, ht, a), hs[T][None].copy()

    def backward(self, p, dhs, cache, g):
        hs, z, ht, a = cache
        T, H, B = z.shape
        delta = self.step_major("dhs", dhs, B)
        scan.loop_backward(a, delta, block(self.buf("tmp", (H, B), dhs.dtype)))   # δ_t
        dx = self.buf("dx", (T, 2 * H, B), dhs.dtype)
        dz, dh = dx[:, :H], dx[:, H:]
        np.subtract(ht, hs[:-1], out=dz)
        dz *= delta
        dz *= z
        dz *= a                                          # ∂z-pre = δ·(h̃ − h_{t−1})·z(1 − z)
        np.multiply(delta, z, out=dh)                    # ∂h̃ = δ·z
        return self.feature_major("dxproj", dx)

    def record(self, cache) -> dict[str, np.ndarray]:
        """h, h_prev, the gate z and the candidate ht (h̃), step-major (T, H, B): views into the
        workspace, valid until the cell runs again."""
        hs, z, ht, _ = cache
        return {"h": hs[1:], "h_prev": hs[:-1], "z": z, "ht": ht}

    def back(self, p, rec, m) -> MinGRUBack:
        return MinGRUBack(p, rec, m)

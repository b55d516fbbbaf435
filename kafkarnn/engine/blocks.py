"""What wraps each layer of the stack (`ModelSpec.block`): the residual blocks of the min-cells' paper.

Feng et al. (2024) stack minGRU and minLSTM for language modelling as pre-norm residual blocks:
the cell reads a normalised copy of the layer's input and adds its output to it, and an MLP does
the same after it. In column form, u^l (H, N) the input of layer l (the output of the one below),
N = T·B columns, d(·) dropout when training:

    a^l = LN₁(u^l)                           (the first layer reads characters: no a, no residual)
    h^l = cell(Wx·a^l + b)                   (the cell, as in a plain stack)
    r^l = u^l + d(h^l)
    z^l = W1·LN₂(r^l) + b1,   q^l = relu(z^l)          z, q: (k·H, N)        ("mlp" only)
    v^l = r^l + d(W2·q^l + b2)               (the layer's output; "residual": v^l = r^l)
    y   = Why·LN(v^top) + by                 (a last norm before the output, as pre-norm stacks do)

Dropout acts on each branch before it joins the residual stream, never on the stream itself: a
stream dropped at every layer would lose what lower layers put in it a little more at each.

LN(x) = γ ⊙ (x − μ)/σ + β down each column, μ and σ² the column's mean and variance (+ EPS).
Kinds: "plain" (none of this: a stack of cells, the only kind before blocks), "residual" (the
norms and residual paths, no MLP), "mlp" (all of it). relu, not GELU: its derivative is a mask,
where GELU's tanh costs several passes over z, the widest array in the model.

Every block is position-wise: it carries no state, so the model's state and the cells' views are
unchanged (the Inside views show the cells' units, h^l, not the residual stream v^l).
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.layout import Workspace

KINDS = ("plain", "residual", "mlp")
EPS = 1e-5                 # added to each column's variance: a constant column stays finite


class LayerNorm:
    """y = γ ⊙ x̂ + β, x̂ = (x − μ)/σ down each column of x (H, N). Keeps x̂ and 1/σ for backward."""

    def __init__(self, ws: Workspace, name: str):
        self.ws, self.name = ws, name

    def forward(self, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
        H, N = x.shape
        ones, ws = self.ws.ones(H, x.dtype), self.ws
        xhat = self.xhat = ws.buf(self.name + ".xhat", (H, N), x.dtype)
        np.subtract(x, (ones @ x) / H, out=xhat)                  # x − μ
        var = (ones @ np.square(xhat)) / H                        # σ² (N,)
        self.inv = 1.0 / np.sqrt(var + EPS)                       # 1/σ (N,)
        xhat *= self.inv                                          # x̂
        y = ws.buf(self.name + ".y", (H, N), x.dtype)
        np.multiply(xhat, gamma[:, None], out=y)
        y += beta[:, None]                                        # y = γ ⊙ x̂ + β
        self.y = y
        return y

    def backward(self, dy: np.ndarray, gamma: np.ndarray, dgamma: np.ndarray,
                 dbeta: np.ndarray) -> np.ndarray:
        """dx from dy; writes dγ = Σ dy ⊙ x̂ and dβ = Σ dy (sums over the columns)."""
        xhat, ws = self.xhat, self.ws
        H = len(xhat)
        ones = ws.ones(H, xhat.dtype)
        dx = ws.buf(self.name + ".dx", xhat.shape, xhat.dtype)
        np.multiply(dy, xhat, out=dx)
        ws.row_sums(dx, out=dgamma)                               # dγ = Σ dy ⊙ x̂
        ws.row_sums(dy, out=dbeta)                                # dβ = Σ dy
        np.multiply(dy, gamma[:, None], out=dx)                   # dx̂ = γ ⊙ dy
        mean_dxhat = (ones @ dx) / H                              # (N,)
        mean_dxhat_xhat = (ones @ (dx * xhat)) / H                # (N,)
        dx -= mean_dxhat
        dx -= xhat * mean_dxhat_xhat
        dx *= self.inv                                            # dx = (dx̂ − mean dx̂ − x̂·mean(dx̂ ⊙ x̂))/σ
        return dx


class Block:
    """Layer l's wrapping, for one of the kinds "residual" and "mlp" (module docstring). The
    first layer reads characters: it has no LN₁ and no residual path around its cell."""

    def __init__(self, kind: str, first: bool, H: int, ratio: int):
        self.mlp, self.first, self.H, self.width = kind == "mlp", first, H, ratio * H
        self.ws = Workspace()
        self.norm_in = None if first else LayerNorm(self.ws, "in")
        self.norm_mlp = LayerNorm(self.ws, "mlp") if self.mlp else None

    def shapes(self) -> dict[str, tuple[int, ...]]:
        H, K = self.H, self.width
        out = {} if self.first else {"gamma1": (H,), "beta1": (H,)}
        if self.mlp:
            out.update({"gamma2": (H,), "beta2": (H,), "W1": (K, H), "b1": (K,),
                        "W2": (H, K), "b2": (H,)})
        return out

    def init(self, p: dict[str, np.ndarray]) -> None:
        """The norms' gains start at 1 (the model has zeroed every vector)."""
        for name in ("gamma1", "gamma2"):
            if name in p:
                p[name][...] = 1.0

    def cell_input(self, p, u):
        """a = LN₁(u): what the cell's input product reads (the first layer: the ids u)."""
        return u if self.first else self.norm_in.forward(u, p["gamma1"], p["beta1"])

    def output(self, p, u, h, mask=None) -> np.ndarray:
        """v = r + d(W2·relu(W1·LN₂(r) + b1) + b2), r = u + h (the first layer: r = h); h comes
        dropped already, and `mask` is the MLP branch's dropout (None: none)."""
        ws, dt = self.ws, h.dtype
        if self.first:
            r = h
        else:
            r = np.add(u, h, out=ws.buf("r", h.shape, dt))        # r = u + h
        if not self.mlp:
            return r
        n = self.norm_mlp.forward(r, p["gamma2"], p["beta2"])     # LN₂(r)
        q = self.q = ws.buf("q", (self.width, h.shape[1]), dt)
        np.matmul(p["W1"], n, out=q)
        q += p["b1"][:, None]                                     # z = W1·n + b1
        np.maximum(q, 0.0, out=q)                                 # q = relu(z)
        v = np.matmul(p["W2"], q, out=ws.buf("v", h.shape, dt))
        v += p["b2"][:, None]
        self.mask = mask
        if mask is not None:
            v *= mask                                             # d(W2·q + b2)
        v += r                                                    # v = r + d(W2·q + b2)
        return v

    def backward(self, p, dv, g) -> np.ndarray:
        """dr = ∂L/∂r from dv = ∂L/∂v, writing the MLP's gradients into g. dr is also ∂L/∂d(h),
        and (but the first layer) the residual path's share of ∂L/∂u."""
        if not self.mlp:
            return dv
        q, n = self.q, self.norm_mlp.y
        dm = dv if self.mask is None else dv * self.mask          # through the branch's dropout
        np.matmul(dm, q.T, out=g["W2"])                           # dW2 = Σ dm·qᵀ
        self.ws.row_sums(dm, out=g["b2"])
        dz = p["W2"].T @ dm                                       # dq
        dz *= q > 0                                               # through relu: dz = dq ⊙ [z > 0]
        np.matmul(dz, n.T, out=g["W1"])                           # dW1 = Σ dz·nᵀ
        self.ws.row_sums(dz, out=g["b1"])
        dn = p["W1"].T @ dz
        dr = self.norm_mlp.backward(dn, p["gamma2"], g["gamma2"], g["beta2"])
        dr += dv                                                  # v = r + …: the residual path
        return dr

    def back(self, p, B: int) -> "BlockBack":
        return BlockBack(self, p, B)

    def input_grad(self, p, da, dr, g) -> np.ndarray:
        """∂L/∂u = LN₁ᵀ(da) + dr: through the norm the cell read, and along the residual path."""
        du = self.norm_in.backward(da, p["gamma1"], g["gamma1"], g["beta1"])
        du += dr
        return du


def rows_of(a: np.ndarray, B: int) -> np.ndarray:
    """A feature-major (X, T·B) cache as rows (T, B, X), a copy (what a step's columns read)."""
    X = a.shape[0]
    return np.ascontiguousarray(a.reshape(X, -1, B).transpose(1, 2, 0))


def norm_back_rows(dy, xhat, inv, gamma):
    """LayerNorm's backward for rows dy (…, B, H) at one step, from that step's x̂ (B, H), 1/σ (B,)."""
    g = dy * gamma                                                # dx̂ = γ ⊙ dy
    g -= g.mean(axis=-1, keepdims=True)
    g -= xhat * (dy * gamma * xhat).mean(axis=-1, keepdims=True)
    g *= inv[:, None]
    return g


class BlockBack:
    """A block's backward at one step t for m columns side by side, as rows (m, B, H): what the
    gradient through time (through_time.py) carries through it. Made right after a forward pass,
    from the block's caches then."""

    def __init__(self, block: Block, p, B: int):
        self.block, self.p = block, p
        if block.norm_in is not None:
            self.xhat1, self.inv1 = rows_of(block.norm_in.xhat, B), block.norm_in.inv.reshape(-1, B)
        if block.mlp:
            n = block.norm_mlp
            self.xhat2, self.inv2 = rows_of(n.xhat, B), n.inv.reshape(-1, B).copy()
            self.on = rows_of(block.q, B) > 0                     # relu'(z) at each step (T, B, K)

    def output(self, t: int, dv: np.ndarray) -> np.ndarray:
        """dr from dv at step t: through the MLP's branch and along the residual."""
        if not self.block.mlp:
            return dv.copy()
        p = self.p
        dz = (dv @ p["W2"]) * self.on[t]                          # (m, B, K)
        dn = dz @ p["W1"]                                         # (m, B, H)
        return dv + norm_back_rows(dn, self.xhat2[t], self.inv2[t], p["gamma2"])

    def input(self, t: int, da: np.ndarray, dr: np.ndarray) -> np.ndarray:
        """du = LN₁ᵀ(da) + dr at step t."""
        return norm_back_rows(da, self.xhat1[t], self.inv1[t], self.p["gamma1"]) + dr


def make(kind: str, layers: int, H: int, ratio: int) -> list[Block] | None:
    """One Block per layer, or None for "plain"; ValueError for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"no block called {kind!r}: the blocks are {', '.join(KINDS)}")
    if kind == "plain":
        return None
    return [Block(kind, l == 0, H, ratio) for l in range(layers)]

"""Memory layout: a workspace of reusable arrays, and the two forms a sequence takes.

- step-major (T, X, B): time, features, streams; each step's (X, B) block is contiguous, as the
  recurrence wants it (one matrix multiply and a few elementwise operations per step);
- feature-major (X, T·B): one matrix whose columns are every step of every stream, in (t, b)
  order, as whole-sequence products and weight gradients want it.

Allocating tens of MB afresh every training step costs page faults, so the big arrays are kept
in a Workspace and reused while their shape stays the same.
"""

from __future__ import annotations

import numpy as np


def steps(a) -> list[np.ndarray]:
    """The per-step blocks a[t] made once; for one stream (B = 1) as vectors, which multiply faster.
    A Lookup is its own sequence of steps."""
    if isinstance(a, Lookup):
        return a
    return list(a[:, :, 0]) if a.shape[2] == 1 else list(a)


class Lookup:
    """A sequence (T, G, B) whose step t is rows of a table picked by ids[t], seen transposed:
    the first layer's xproj[t] = table[x_t]ᵀ, gathered when the step asks for it, so that the
    gathered rows are still in cache when the step adds them (gathering all T·B rows first,
    megabytes for an LSTM, and reading them back later was measurably slower)."""

    def __init__(self, table: np.ndarray, ids: np.ndarray, G: int, rows: np.ndarray):
        self.table, self.ids, self.rows = table, ids, rows           # rows: (B, G + pad) scratch
        self.view = rows[0, :G] if len(rows) == 1 else rows[:, :G].T  # (G, B), a vector for B = 1
        self.shape, self.dtype = (len(ids), G, ids.shape[1]), table.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> np.ndarray:
        np.take(self.table, self.ids[t], axis=0, out=self.rows)
        return self.view


class Workspace:
    """Named scratch arrays, reused while their shape and dtype stay the same."""

    def __init__(self):
        self._ws: dict[str, np.ndarray] = {}
        self._kept: dict[str, tuple] = {}

    def kept(self, name: str, a, make):
        """make(a), made again only when a is another array than last time. What is kept holds
        a alive: use it for small arrays only."""
        hit = self._kept.get(name)
        if hit is None or hit[0] is not a:
            hit = self._kept[name] = (a, make(a))
        return hit[1]

    def steps(self, name: str, a) -> list[np.ndarray]:
        """steps(a), for one stream kept while a is the same array: there making the T views is
        a visible share of a step. With many streams they are made afresh: a kept list would hold
        a replaced buffer alive when validation runs with other shapes."""
        return self.kept(name, a, steps) if a.shape[2] == 1 else steps(a)

    def buf(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        a = self._ws.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._ws[name] = np.empty(shape, dtype=dtype)
        return a

    def transposed(self, name: str, w: np.ndarray, B: int) -> np.ndarray:
        """wᵀ for products with B columns a step: a contiguous copy (a product with a copy runs
        faster than with a transposed view), but for one stream the view, as fast there."""
        if B == 1:
            return w.T
        out = self.buf(name, w.shape[::-1], w.dtype)
        np.copyto(out, w.T)
        return out

    def ones(self, n: int, dtype) -> np.ndarray:
        """n ones, a view of one vector kept for the largest n asked: sums are done as products
        with it, faster than np.sum at these sizes."""
        ones = self._ws.get("ones")
        if ones is None or len(ones) < n or ones.dtype != dtype:
            ones = self._ws["ones"] = np.ones(n, dtype=dtype)
        return ones[:n]

    def row_sums(self, a: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Σ over the columns of a (X, N): a matrix-vector product with ones, faster than
        a.sum(axis=1) at these sizes (bias gradients are such sums over all steps and streams)."""
        return np.dot(a, self.ones(a.shape[1], a.dtype), out=out)

    def feature_major(self, name: str, a: np.ndarray) -> np.ndarray:
        """A sequence (T, X, B) as one matrix (X, T·B), columns in (t, b) order (a copy; a view
        for one stream)."""
        T, X, B = a.shape
        if B == 1:
            return a[:, :, 0].T                              # already that layout, seen transposed
        out = self.buf(name, (X, T, B), a.dtype)
        np.copyto(out, a.transpose(1, 0, 2))
        return out.reshape(X, T * B)

    def step_major(self, name: str, a: np.ndarray, B: int) -> np.ndarray:
        """A matrix (X, T·B) as a sequence (T, X, B) whose steps are contiguous blocks (a copy)."""
        X, TB = a.shape
        out = self.buf(name, (TB // B, X, B), a.dtype)
        np.copyto(out, a.reshape(X, TB // B, B).transpose(1, 0, 2))
        return out


def column(v: np.ndarray, B: int) -> np.ndarray:
    """A bias vector shaped to add to an (X, B) block (or to a vector when B = 1)."""
    return v if B == 1 else v[:, None]


def block(a: np.ndarray) -> np.ndarray:
    """One step's (X, B) block, as a vector when B = 1 (like `steps`)."""
    return a[:, 0] if a.shape[1] == 1 else a

"""Character n-gram models with interpolated modified Kneser-Ney smoothing: what counting gets.

The baseline a network is judged by (Chen and Goodman 1998). For an n-gram h·w (context h of
n−1 characters, next character w) and h' = h without its first character:

    P_n(w | h) = ( max(c(hw) − D(c(hw)), 0) + γ(h) · P_{n−1}(w | h') ) / c(h·)
    γ(h)       = D1·N1(h·) + D2·N2(h·) + D3·N3+(h·)          (the mass the discounts freed)
    P_0(w)     = 1 / V                                        (uniform over the vocabulary)

where c(h·) = Σ_w c(hw), and N1, N2, N3+ count the w with c(hw) = 1, 2, ≥ 3. An unseen context
(c(h·) = 0) hands over to the lower order whole. The top order counts n-grams; every lower order
counts *continuation counts* instead, c'(h'w) = N1+(·h'w), the number of distinct characters seen
before h'w. Each order and each kind of count has its own three discounts, from its counts of
counts n1 … n4 (n_r: how many n-grams occur exactly r times):

    Y = n1 / (n1 + 2·n2),  D1 = 1 − 2Y·n2/n1,  D2 = 2 − 3Y·n3/n2,  D3+ = 3 − 4Y·n4/n3

Counting is vectorised: every distinct string of k characters in the training text gets a dense
id, from the pair (id of its first k−1 characters, last character) by `np.unique` — exact, no
hashing — so a level is one sort of the text. A new text is looked up with `np.searchsorted`.
A character outside the vocabulary (an id < 0 or ≥ V) costs log V, the uniform floor.

API
    NGram(train_ids, vocab_size, max_order=MAX_ORDER)
    NGram.nll(ids, order) -> (N,) nats of each character given the ones before it in `ids`;
        ids (B, N) -> (B, N), each row its own text
    NGram.nll_by_order(ids) -> (max_order, N) or (max_order, B, N) for B texts: [n−1] is order n
    NGram.distribution(context_ids, order) -> (V,) probabilities of the next character
    NGram.distributions(ids, order) -> (N, V): row t, the probabilities of ids[t] given ids[:t]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ORDER = 10        # orders 1 … 10 are fitted; validation picks among them


@dataclass(frozen=True)
class _Counts:
    """One kind of count (raw or continuation) of the k-grams, and its per-context sums."""
    count: np.ndarray     # (n_k,) the count of each distinct k-gram
    D: np.ndarray         # (4,) discount for a count of 0, 1, 2, ≥ 3 (D[0] = 0)
    total: np.ndarray     # (n_{k−1},) c(h·) per context id
    gamma: np.ndarray     # (n_{k−1},) D1·N1 + D2·N2 + D3·N3+ per context id


@dataclass(frozen=True)
class _Level:
    """The distinct strings of k characters of the training text (k = 1 … max_order)."""
    keys: np.ndarray      # (n_k,) sorted: id of the first k−1 characters · V + last character
    raw: _Counts
    cont: _Counts | None  # continuation counts; None at the top level (never a lower order)


def discounts(count: np.ndarray) -> np.ndarray:
    """Modified Kneser-Ney's D1, D2, D3+ from the counts of counts (Chen and Goodman's estimate),
    each kept in [0, r] so that no count goes negative; [0, D1, D2, D3+]."""
    n1, n2, n3, n4 = (float(np.count_nonzero(count == r)) for r in (1, 2, 3, 4))
    D = np.array([0.0, 0.5, 1.0, 1.5])     # for tables too small to estimate from
    if n1 > 0 and n2 > 0:
        Y = n1 / (n1 + 2 * n2)
        D[1] = 1 - 2 * Y * n2 / n1
        D[2] = 2 - 3 * Y * n3 / n2
        if n3 > 0:
            D[3] = 3 - 4 * Y * n4 / n3
    return np.clip(D, 0.0, [0.0, 1.0, 2.0, 3.0])


def _counts(count: np.ndarray, parent: np.ndarray, n_contexts: int) -> _Counts:
    D = discounts(count)
    total = np.bincount(parent, weights=count, minlength=n_contexts)
    gamma = np.bincount(parent, weights=D[np.minimum(count, 3)], minlength=n_contexts)
    return _Counts(count, D, total, gamma)


class NGram:
    """Interpolated modified Kneser-Ney over character ids 0 … V−1, fitted on `train` only."""

    def __init__(self, train: np.ndarray, vocab_size: int, max_order: int = MAX_ORDER):
        if max_order < 1:
            raise ValueError(f"max_order must be at least 1, not {max_order}")
        self.V, self.max_order = int(vocab_size), int(max_order)
        x = np.asarray(train, dtype=np.int64)
        levels: list[_Level] = []
        ids_prev = np.zeros(len(x), dtype=np.int64)    # the empty string, id 0, before every t
        n_prev = 1
        raw_prev = None
        for k in range(1, self.max_order + 1):
            # the k-gram ending at t = (k−1)-gram ending at t−1, then x[t]
            prev = ids_prev if k == 1 else np.concatenate(([-1], ids_prev[:-1]))
            at = np.flatnonzero(prev >= 0)
            keys, inverse, count = np.unique(prev[at] * self.V + x[at], return_inverse=True,
                                             return_counts=True)
            ids = np.full(len(x), -1, dtype=np.int64)
            ids[at] = inverse.reshape(-1)
            if k > 1:
                # a k-gram's last k−1 characters are the (k−1)-gram ending at the same t:
                # the number of distinct k-grams per suffix is the suffix's continuation count
                suffix = np.empty(len(keys), dtype=np.int64)
                suffix[inverse.reshape(-1)] = ids_prev[at]
                cont = np.bincount(suffix, minlength=n_prev)
                levels[-1] = _Level(levels[-1].keys, raw_prev,
                                    _counts(cont, levels[-1].keys // self.V, len(raw_prev.total)))
            raw_prev = _counts(count, keys // self.V, n_prev)
            levels.append(_Level(keys, raw_prev, None))
            ids_prev, n_prev = ids, len(keys)
        self.levels = levels
        self._edges: dict[int, np.ndarray] = {}     # per level, where each context's k-grams start

    # -- looking a text up ---------------------------------------------------------------------

    def _ids(self, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per level k: (context id, k-gram id) at every position of y (B, T); −1 where unseen
        in training or where the text has fewer than k characters up to t."""
        out, ids_prev = [], np.zeros(y.shape, dtype=np.int64)
        for k, level in enumerate(self.levels, start=1):
            if k == 1:
                prev = ids_prev
            else:
                prev = np.full(y.shape, -1, dtype=np.int64)
                prev[:, 1:] = ids_prev[:, :-1]
            pair = np.where(prev >= 0, prev * self.V + y, -1)
            i = np.minimum(np.searchsorted(level.keys, pair), len(level.keys) - 1)
            ids = np.where((prev >= 0) & (level.keys[i] == pair), i, -1)
            out.append((prev, ids))
            ids_prev = ids
        return out

    @staticmethod
    def _interpolate(counts: _Counts, ctx: np.ndarray, gram: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """P_k from P_{k−1} (`lower`) at every position: the module docstring's first line."""
        total = np.where(ctx >= 0, counts.total[np.maximum(ctx, 0)], 0.0)
        gamma = np.where(ctx >= 0, counts.gamma[np.maximum(ctx, 0)], 0.0)
        c = np.where(gram >= 0, counts.count[np.maximum(gram, 0)], 0)
        kept = np.maximum(c - counts.D[np.minimum(c, 3)], 0.0)          # the discounted count
        seen = total > 0
        return np.where(seen, (kept + gamma * lower) / np.where(seen, total, 1.0), lower)

    def _probs_by_order(self, y: np.ndarray, orders: list[int]) -> dict[int, np.ndarray]:
        """P_n(y_t | y_<t) at every position of y (B, T) for each order n in `orders`."""
        y = np.asarray(y, dtype=np.int64)
        known = (y >= 0) & (y < self.V)
        looked = self._ids(np.where(known, y, -1))
        lower = np.full(y.shape, 1.0 / self.V)                          # P_0: uniform
        out = {}
        for k in range(1, max(orders) + 1):
            ctx, gram = looked[k - 1]
            level = self.levels[k - 1]
            if k in orders:                                             # k as the top order
                out[k] = np.where(known, self._interpolate(level.raw, ctx, gram, lower), 1.0 / self.V)
            if k < max(orders):                                         # k as a lower order
                lower = self._interpolate(level.cont, ctx, gram, lower)
        return out

    def _check_order(self, order: int) -> None:
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order must be in 1 … {self.max_order}, not {order}")

    def nll(self, ids: np.ndarray, order: int) -> np.ndarray:
        """Nats of each character of `ids` (N,) given those before it (from the text's start);
        ids (B, N): B texts, each read from its own start."""
        self._check_order(order)
        ids = np.asarray(ids)
        probs = self._probs_by_order(ids.reshape(-1, ids.shape[-1]), [order])[order]
        return -np.log(probs.reshape(ids.shape))

    def nll_by_order(self, ids: np.ndarray) -> np.ndarray:
        """(max_order, *ids.shape): [n − 1] holds `nll(ids, n)`; ids (N,) or (B, N), B texts."""
        ids = np.asarray(ids)
        orders = list(range(1, self.max_order + 1))
        probs = self._probs_by_order(ids.reshape(-1, ids.shape[-1]), orders)
        return -np.log(np.stack([probs[n].reshape(ids.shape) for n in orders]))

    def distribution(self, context: np.ndarray, order: int) -> np.ndarray:
        """(V,) P_order(w | context) for every w in the vocabulary."""
        context = np.asarray(context, dtype=np.int64)
        return self.distributions(np.append(context, 0), order)[-1]

    def distributions(self, ids: np.ndarray, order: int, chunk: int = 1 << 15) -> np.ndarray:
        """(N, V): row t is P_order(w | ids[:t]) for every w, ids (N,) one text read from its
        start. The contexts are looked up once; the k-grams that follow a context are one
        contiguous stretch of the level's sorted keys, so each row needs no search of its own."""
        self._check_order(order)
        ids = np.asarray(ids, dtype=np.int64)
        looked = self._ids(np.where((ids >= 0) & (ids < self.V), ids, -1)[None, :])
        out = np.empty((len(ids), self.V))
        for a in range(0, len(ids), chunk):                             # (chunk, V) at a time
            rows = np.full((min(chunk, len(ids) - a), self.V), 1.0 / self.V)
            for k in range(1, order + 1):
                counts = self.levels[k - 1].raw if k == order else self.levels[k - 1].cont
                rows = self._rows(k, counts, looked[k - 1][0][0, a:a + chunk], rows)
            out[a:a + chunk] = rows
        return out

    def _rows(self, k: int, counts: _Counts, ctx: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """`_interpolate` for every w at once: P_k (n, V) from P_{k−1} (`lower`), contexts ctx (n,)."""
        level = self.levels[k - 1]
        edges = self._edges.get(k)                                           # context c's k-grams:
        if edges is None:
            edges = self._edges[k] = np.searchsorted(level.keys, np.arange(len(counts.total) + 1) * self.V)
        c, known = np.maximum(ctx, 0), ctx >= 0                              # keys[edges[c]:edges[c+1]]
        deg = np.where(known, edges[c + 1] - edges[c], 0)
        row = np.repeat(np.arange(len(ctx)), deg)
        gram = np.arange(deg.sum()) + np.repeat(edges[c] - (np.cumsum(deg) - deg), deg)
        kept = np.zeros_like(lower)                                          # discounted counts
        count = counts.count[gram]
        kept[row, level.keys[gram] % self.V] = np.maximum(count - counts.D[np.minimum(count, 3)], 0.0)
        total = np.where(known, counts.total[c], 0.0)[:, None]
        gamma = np.where(known, counts.gamma[c], 0.0)[:, None]
        seen = total > 0
        return np.where(seen, (kept + gamma * lower) / np.where(seen, total, 1.0), lower)

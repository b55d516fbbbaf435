"""Stream groups: a batch computed in fixed groups of streams, on as many threads as are free,
with the same bits at any thread count.

Why: OpenBLAS splits one product among its threads, and with some kernels (AVX2) the split
changes how float32 sums are rounded, so a run whose thread count changed (the tuner's sweep at
the start of every process, a neighbour taking a core) drifted from the same run trained
straight. Streams do not meet within a step — each column of the batch is its own place in the
text — until the weight gradients are summed over them. So the batch is cut into G groups, G
fixed when the run is created (`groups_for`); each group's forward and backward pass is one
computation on one BLAS thread, done by whichever thread is free; and

    grads = grads_0 + grads_1 + … + grads_{G-1}        (always in this order)
    loss  = Σ_g loss_g · (T·B_g) / (T·B)

The thread count then changes who computes a group, never how. With G = 1 this is the model's
own `loss_and_grads`, bit for bit. Dropout masks come from one generator per group, seeded from
the trainer's; DropConnect's masks (one per step for all streams) are drawn before the split.

API
    groups_for(batch, hidden, cores) -> G
    StreamGroups(model, G): .loss_and_grads(...) as CharModel's, .char_nll(...) likewise;
        .workers: the Workers that run the groups (a ThreadTuner's pool: get(), set(n))
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_STREAMS = 16         # streams per group at least: narrower products waste the kernels
MIN_WIDTH = 2048         # hidden × streams per group at least: below it Python's overhead,
                         # which threads cannot share, outweighs the arithmetic


def groups_for(batch: int, hidden: int, cores: int) -> int:
    """How many groups a new run of `batch` streams gets on `cores` cores (or threads asked
    for): one per core while each group keeps MIN_STREAMS streams and MIN_WIDTH columns·units."""
    by_width = (batch * hidden) // MIN_WIDTH
    return max(1, min(cores, batch // MIN_STREAMS, by_width))


def bounds(batch: int, groups: int) -> list[tuple[int, int]]:
    """Group g's streams are [start, stop): sizes differ by at most one, larger first."""
    size, extra = divmod(batch, groups)
    edges = np.cumsum([0] + [size + (g < extra) for g in range(groups)])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


class Workers:
    """Up to `limit` threads that take jobs 0, 1, … in turn, the caller being one of them."""

    def __init__(self, limit: int):
        self.limit, self.n = limit, 1
        self._pool: ThreadPoolExecutor | None = None

    def get(self) -> int:
        return self.n

    def set(self, n: int) -> int:
        """Use n threads from the next run on (at most `limit`); returns the count now in use."""
        n = max(1, min(n, self.limit))
        if n != self.n:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(n - 1, "kafkarnn-streams") if n > 1 else None
            self.n = n
        return self.n

    def run(self, job, count: int) -> list:
        """[job(0), …, job(count - 1)], each computed by whichever thread takes it first."""
        results, lock, todo = [None] * count, threading.Lock(), iter(range(count))

        def take():
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                results[i] = job(i)

        pool = self._pool
        helpers = [pool.submit(take) for _ in range(min(self.n, count) - 1)] if pool else []
        try:
            take()
        finally:
            for h in helpers:              # wait for every helper, and raise what one raised
                h.result()
        return results


class StreamGroups:
    def __init__(self, model, groups: int):
        self.model, self.G = model, groups
        self.replicas = [model] + [model.replica() for _ in range(groups - 1)]
        self.own = [model.new_grads(zero=False) for _ in range(groups)] if groups > 1 else []
        self.workers = Workers(groups)

    def zero_state(self, batch: int) -> list[np.ndarray]:
        return self.model.zero_state(batch)

    def set_dropout(self, dropout: float, weight_drop: float) -> None:
        for m in self.replicas:                    # each replica reads its own spec
            m.set_dropout(dropout, weight_drop)

    def loss_and_grads(self, inputs, targets, state, rng=None, reduction="mean", out=None,
                       teacher=None):
        """CharModel.loss_and_grads over the whole batch, computed group by group."""
        if self.G == 1:
            return self.model.loss_and_grads(inputs, targets, state, rng, reduction, out,
                                             teacher=teacher)
        T, B = inputs.shape
        wmasks = self.model.weight_masks(rng) if rng is not None else None
        seeds = rng.integers(2 ** 63, size=self.G) if rng is not None else [None] * self.G
        parts = bounds(B, self.G)

        def group(g):
            a, b = parts[g]
            r = None if rng is None else np.random.default_rng(seeds[g])
            return self.replicas[g].loss_and_grads(
                inputs[:, a:b], targets[:, a:b], [s[:, :, a:b] for s in state], r, reduction,
                out=self.own[g], wmasks=wmasks, streams=B,
                teacher=None if teacher is None else (teacher[0], teacher[1][:, a:b]))

        done = self.workers.run(group, self.G)
        grads = self.model.new_grads(zero=False) if out is None else out
        np.add(self.own[0].flat, self.own[1].flat, out=grads.flat)
        for own in self.own[2:]:
            grads.flat += own.flat
        loss = sum(l * (b - a) for (l, _, _), (a, b) in zip(done, parts)) / B
        new_state = [np.concatenate([d[2][l] for d in done], axis=2)
                     for l in range(len(state))]
        return loss, grads, new_state

    def char_nll(self, inputs, targets, state):
        """CharModel.char_nll over K streams, in groups of the same rule when there are enough."""
        K = inputs.shape[1]
        G = min(self.G, max(1, K // MIN_STREAMS))
        if G == 1:
            return self.model.char_nll(inputs, targets, state)
        parts = bounds(K, G)

        def group(g):
            a, b = parts[g]
            return self.replicas[g].char_nll(inputs[:, a:b], targets[:, a:b],
                                             [s[:, :, a:b] for s in state])

        done = self.workers.run(group, G)
        T = inputs.shape[0]
        nll = np.concatenate([d[0].reshape(T, -1) for d in done], axis=1).reshape(-1)
        new_state = [np.concatenate([d[1][l] for d in done], axis=2) for l in range(len(state))]
        return nll, new_state

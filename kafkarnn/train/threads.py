"""The thread count, chosen by measuring training steps while training.

`ThreadTuner.step_done(seconds, chars)` is told how long each training step took and how many
characters it trained; between steps it may resize its pool: a trainer's stream-group workers
(or, given no pool, NumPy's BLAS threads through threadpoolctl):

1) sweep: it tries the candidate counts (1, 2, … up to the cores this process may use) in
   turn, each for one probe, and keeps the fastest — the smallest count within `margin` of it;
2) watch: it keeps the rates of the last few steps; when their median falls below `drop` × the
   rate the count was chosen at, or one step alone is `abort` times too slow and longer than a
   probe (a neighbour took a core), it probes a neighbouring count at once, fewer threads first;
3) recheck: every `recheck_every` seconds of training it probes the next count up or down in
   turn, so that a core set free is used again; a recheck that finds nothing better doubles the
   interval, up to `max_backoff` times. A probe that wins is followed by one of the next count
   the same way.

A probe discards `settle_steps` steps, then takes the median rate of at least `probe_steps`
steps and `probe_s` seconds: never one step. It moves to another count only for `margin` more
speed, and only if that lasts `confirm` times as many steps, so two close counts do not alternate.
A probe step `abort` times slower than the count it is compared with ends the probe at once
(spinning BLAS threads that share a core run many times slower). Its clock is the sum of the
step seconds it is given, so its decisions follow from its inputs alone (tests feed it made-up
timings); between probes it costs an append and a few comparisons per step.

`ThreadTuner(fixed=N)` sets N once and never changes it (`--threads N`).

What the count sizes: a trainer's stream-group workers (engine/streams.py), with NumPy's BLAS
held at one thread (`one_blas_thread`). OpenBLAS computes a large product differently for
different thread counts on some kernels (AVX2), so a run whose BLAS count changed was not
bit-reproducible; the groups' count changes who computes a group, never how, so a run's bits do
not depend on it. tests/train/test_threads.py checks this at the default's sizes, and a resume
with the tuner changing the count.
"""

from __future__ import annotations

import os
import statistics
from collections import deque
from dataclasses import dataclass, field


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def candidate_counts(cores: int) -> list[int]:
    """Every count up to 8 cores; above that a ladder 1, 2, 3, 4, 6, 8, 12, 16, 24, … ending at `cores`."""
    if cores <= 8:
        return list(range(1, cores + 1))
    ladder, n = [1, 2, 3, 4, 6], 8
    while n < cores:
        ladder += [n, n * 3 // 2]
        n *= 2
    return sorted({c for c in ladder if c < cores} | {cores})


def one_blas_thread() -> None:
    """Hold NumPy's BLAS at one thread in this process: a trainer's threads share the work by
    stream groups instead (engine/streams.py), whose bits do not depend on how many there are."""
    global _BLAS
    _BLAS = _BLAS or BlasPool()
    if _BLAS.get() not in (None, 1):
        _BLAS.set(1)


_BLAS = None


class BlasPool:
    """NumPy's BLAS thread pools, read and set through threadpoolctl."""

    def __init__(self):
        import numpy  # noqa: F401  (loads the BLAS library that threadpoolctl looks for)
        from threadpoolctl import ThreadpoolController
        self.libs = ThreadpoolController().select(user_api="blas").lib_controllers

    def get(self) -> int | None:
        """The thread count in use; None when there is no BLAS pool to control."""
        return self.libs[0].get_num_threads() if self.libs else None

    def set(self, n: int) -> int | None:
        """Ask every BLAS pool for n threads; returns the count now in use."""
        for lib in self.libs:
            lib.set_num_threads(n)
            clear = getattr(lib, "clear_controlling_thread", None)
            if lib.get_num_threads() != n and clear is not None:
                clear(force=True)          # threadpoolctl lets one thread size OpenBLAS: this one
                lib.set_num_threads(n)
        return self.get()


@dataclass
class _Probe:
    threads: int
    against: float | None          # the rate to beat (None: the sweep's first count)
    why: str                       # sweep | recheck | slower
    settle: int                    # steps still to discard
    rates: list = field(default_factory=list)
    seconds: float = 0.0


class ThreadTuner:
    """Chooses the thread count (its pool's size) from the speed of training steps (see the module doc).

    `threads` is the count in use now (a probe's while it runs), `chosen` the one kept, `auto`
    whether it changes at all, `history` the decisions as (training seconds, count, why).
    """

    def __init__(self, candidates=None, *, fixed: int | None = None, pool=None,
                 probe_steps: int = 3, probe_s: float = 0.5, settle_steps: int = 1,
                 recheck_every: float = 60.0, margin: float = 0.04, drop: float = 0.75,
                 abort: float = 3.0, max_backoff: int = 2, confirm: int = 3):
        self.pool = pool if pool is not None else BlasPool()
        self.candidates = sorted(set(candidates or candidate_counts(usable_cores())))
        self.probe_steps, self.probe_s, self.settle_steps = probe_steps, probe_s, settle_steps
        self.recheck_every, self.margin, self.drop = recheck_every, margin, drop
        self.abort, self.max_backoff, self.confirm = abort, max_backoff, confirm
        self.threads = self.pool.set(fixed) if fixed is not None else self.pool.get()
        self.chosen = self.threads
        self.auto = fixed is None and self.threads is not None
        self.elapsed = 0.0                   # training seconds seen: the tuner's only clock
        self.measured: dict[int, float] = {}  # count -> median chars/s of its last probe
        self.history: deque = deque(maxlen=200)
        self.probes = 0
        self._started = False
        self._probe: _Probe | None = None
        self._sweep: dict[int, tuple[float, int]] | None = None   # count -> (rate, steps)
        self._misses = 0                     # sweep counts in a row that were no faster
        self._recent: deque = deque(maxlen=confirm * probe_steps)   # rates at the chosen count
        self._unchecked = 0                  # steps since the last look at their median
        self._ref = 0.0                      # the rate the chosen count was kept at
        self._next_check = recheck_every
        self._backoff = 1
        self._up = True                      # the next recheck tries more threads first

    def describe(self) -> str:
        return f"{self.threads} ({'auto' if self.auto else 'fixed'})"

    def step_done(self, seconds: float, chars: int) -> int | None:
        """One training step took `seconds` for `chars` characters; returns the count for the next."""
        if not self.auto or seconds <= 0 or chars <= 0:
            return self.threads
        self.elapsed += seconds
        rate = chars / seconds
        if not self._started:                # the first step is cold (buffers, caches): no measure
            self._started = True
            self._sweep = {}
            self._begin(self.candidates[0], None, "sweep")
        elif self._probe is not None:
            self._probe_step(seconds, rate)
        else:
            self._watch(seconds, rate)
        return self.threads

    # -- probes ---------------------------------------------------------------------------------

    def _begin(self, n: int, against: float | None, why: str) -> None:
        got = self.pool.set(n)
        if got != n:                         # the pool cannot have n threads: drop such counts
            self.candidates = [c for c in self.candidates if c < n] or [got or 1]
            self.threads = got
            if self._sweep is not None:
                self._choose()
            else:
                self._return()
            return
        self.threads = n
        self.probes += 1
        self._probe = _Probe(n, against, why, self.settle_steps)

    def _probe_step(self, seconds: float, rate: float) -> None:
        p = self._probe
        if p.against is not None and rate < p.against / self.abort:
            self._probe_done(rate, 1)        # many times slower: no need to measure it well
            return
        if p.settle > 0:
            p.settle -= 1
            return
        p.rates.append(rate)
        p.seconds += seconds
        if len(p.rates) >= self.probe_steps and p.seconds >= self.probe_s:
            rate = statistics.median(p.rates)
            wins = self._sweep is None and rate >= p.against * (1 + self.margin)
            if wins and len(p.rates) < self.confirm * self.probe_steps:
                return                       # a win must last `confirm` times as many steps
            self._probe_done(rate, len(p.rates))

    def _probe_done(self, rate: float, steps: int) -> None:
        p, self._probe = self._probe, None
        self.measured[p.threads] = rate
        if self._sweep is not None:
            self._sweep_result(p, rate, steps)
            return
        if rate >= p.against * (1 + self.margin):
            direction = 1 if p.threads > self.chosen else -1
            self._backoff = 1
            self._keep(p.threads, rate, steps, p.why)
            nxt = self._neighbour(p.threads, direction)
            if nxt is not None:              # it helped: try one further the same way
                self._begin(nxt, rate, p.why)
            return
        if p.why == "recheck":
            self._backoff = min(2 * self._backoff, self.max_backoff)
        self._ref = p.against                # the chosen count's fresh rate, slower or not
        self._return()

    def _return(self) -> None:
        """Back to the chosen count after a probe that found nothing better."""
        self.threads = self.pool.set(self.chosen)
        self._recent.clear()
        self._schedule()

    def _sweep_result(self, p: _Probe, rate: float, steps: int) -> None:
        best = max((r for r, _ in self._sweep.values()), default=0.0)
        self._sweep[p.threads] = (rate, steps)
        self._misses = 0 if rate >= best * (1 + self.margin) else self._misses + 1
        nxt = self._neighbour(p.threads, 1)
        if nxt is not None and self._misses < 2:   # two counts in a row no faster: past the top
            self._begin(nxt, max(best, rate), "sweep")
        else:
            self._choose()

    def _choose(self) -> None:
        """End of the sweep: the smallest count within `margin` of the fastest."""
        results, self._sweep = self._sweep or {}, None
        if not results:                      # no count could be measured: keep what is in use
            self.chosen = self.threads
            self._return()
            return
        top = max(r for r, _ in results.values())
        pick = min(c for c, (r, _) in results.items() if r >= top * (1 - self.margin))
        if pick != self.threads:
            self.threads = self.pool.set(pick)
        self._keep(pick, *results[pick], "sweep")

    def _keep(self, n: int, rate: float, steps: int, why: str) -> None:
        self.chosen, self._ref = n, rate
        self._recent = deque(maxlen=max(self.confirm * self.probe_steps, steps))
        self.history.append((round(self.elapsed, 3), n, why))
        self._schedule()

    def _schedule(self) -> None:
        self._next_check = self.elapsed + self.recheck_every * self._backoff

    def _neighbour(self, n: int, direction: int) -> int | None:
        i = self.candidates.index(n) + direction
        return self.candidates[i] if 0 <= i < len(self.candidates) else None

    # -- between probes -------------------------------------------------------------------------

    def _watch(self, seconds: float, rate: float) -> None:
        recent = self._recent
        recent.append(rate)
        self._unchecked += 1
        if rate < self._ref / self.abort and seconds >= self.probe_s:
            self._recheck("slower", rate)    # one step took longer than a probe: act on it now
            return
        if self._unchecked >= max(1, recent.maxlen // 8) and len(recent) == recent.maxlen:
            self._unchecked = 0              # the median every eighth of the window: cheap
            median = statistics.median(recent)
            if median < self.drop * self._ref:
                self._recheck("slower", median)
                return
        if self.elapsed >= self._next_check:
            self._recheck("recheck", statistics.median(recent))

    def _recheck(self, why: str, against: float) -> None:
        if why == "slower":
            order = (-1, 1)                  # fewer threads first: a neighbour took a core
        else:
            order = (1, -1) if self._up else (-1, 1)
            self._up = not self._up
        for direction in order:
            nxt = self._neighbour(self.chosen, direction)
            if nxt is not None:
                self._begin(nxt, against, why)
                return
        self._schedule()                     # one candidate: nothing to try

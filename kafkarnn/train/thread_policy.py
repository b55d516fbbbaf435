"""Whose word sets a process's BLAS thread count, in one place. Imports no NumPy: `set_blas_threads`
runs before NumPy loads, because its BLAS library reads the environment once.

1) `--threads N` fixes the count, and travels with a hand-off to a background trainer (a
   trainer's count sizes its stream-group workers, its BLAS being held at one thread: threads.py);
2) else the user's own environment variable (THREAD_VARS) fixes it, and a background trainer
   inherits it with the environment;
3) else a process that trains lets its `ThreadTuner` pick the count by timing steps; one that does not train (sample, inspect,
   score) takes 1 thread on up to 2 cores and half the cores above that: on a small shared box
   a BLAS thread per core is a trap when another process holds a core.
"""

from __future__ import annotations

import os

from kafkarnn.train.threads import ThreadTuner

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")   # read once, at load


def set_blas_threads(threads: int | None, training: bool = False) -> None:
    """Set the environment for NumPy's BLAS before NumPy loads (rules 1-3 above)."""
    if threads is None:
        if training or any(n in os.environ for n in THREAD_VARS):
            return
        cores = os.cpu_count() or 1
        threads = 1 if cores <= 2 else cores // 2
    for n in THREAD_VARS:
        os.environ[n] = str(threads)


def fixed_count(threads: int | None) -> int | None:
    """The count the user fixed: `--threads N`, else their own variable; None: kafkarnn chooses."""
    if threads is not None:
        return threads
    for name in THREAD_VARS:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def tuner_for(threads: int | None, pool=None) -> ThreadTuner:
    """A trainer's thread count: `--threads N`, else the user's own variable, fixed; else chosen
    by timing the training steps. pool: what the count sizes (a trainer's stream-group workers)."""
    return ThreadTuner(fixed=fixed_count(threads), pool=pool)


def handed_on(threads: int | None) -> list[str]:
    """The options that carry the count to a background trainer (the environment carries the rest)."""
    return [] if threads is None else ["--threads", str(threads)]

"""What stream groups (engine/streams.py) cost or gain: whole training steps of a preset, interleaved.

Variants, at every thread count given, taking turns round by round (A B A B …) in one process:
  blas      one group, OpenBLAS at N threads: how kafkarnn trained before the groups (its bits
            depend on N on some kernels)
  groups    the run's G groups on N worker threads, OpenBLAS at 1 thread (the same bits at any N)
Prints the median chars/s of each and the ratio groups / blas at the same count.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/streams_cost.py --preset default
"""

from __future__ import annotations

import argparse
import statistics
import time

import common                                 # noqa: F401  (puts this checkout first on sys.path)

from kafkarnn.engine.streams import groups_for
from kafkarnn.engine.vocab import Vocab
from kafkarnn.train.config import PRESETS, check
from kafkarnn.train.threads import BlasPool, usable_cores
from kafkarnn.train.trainer import Trainer


def trainer_for(cfg, ids, vocab) -> Trainer:
    cut = int(len(ids) * 0.9)
    return Trainer(cfg, vocab, ids[:cut], ids[cut:])


def rate(t: Trainer, seconds: float) -> float:
    """chars/s of whole steps for at least `seconds` (after one warm-up step)."""
    t.step()
    chars, start = t.chars, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t.step()
    return (t.chars - chars) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--corpus", default=str(common.DEFAULT_CORPUS))
    ap.add_argument("--counts", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--groups", type=int, default=None, help="default: groups_for(this machine)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0, help="per variant per round")
    args = ap.parse_args()
    text = open(args.corpus, encoding="utf-8").read()
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    cfg = check(PRESETS[args.preset])
    G = args.groups or groups_for(cfg.batch, cfg.hidden, usable_cores())
    blas = BlasPool()
    one, grouped = trainer_for(cfg.replace(groups=1), ids, vocab), trainer_for(cfg.replace(groups=G), ids, vocab)
    counts = [int(c) for c in args.counts.split(",")]
    got = {(v, n): [] for v in ("blas", "groups") for n in counts}
    for r in range(args.rounds):
        for n in counts:
            blas.set(n)
            got[("blas", n)].append(rate(one, args.seconds))
            blas.set(1)
            grouped.groups.workers.set(n)
            got[("groups", n)].append(rate(grouped, args.seconds))
        print(f"round {r + 1}: " + ", ".join(f"{v} {n}: {got[(v, n)][-1]:,.0f}" for v, n in got), flush=True)
    print(f"\n{args.preset}, G = {G}, {common.blas_summary()}")
    print("| threads | blas (one group, OpenBLAS N) | groups (G on N workers) | ratio |")
    print("|---|---|---|---|")
    for n in counts:
        a, b = statistics.median(got[("blas", n)]), statistics.median(got[("groups", n)])
        print(f"| {n} | {a:,.0f} | {b:,.0f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()

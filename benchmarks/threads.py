"""BLAS threads chosen while training (ThreadTuner) against each fixed count, quiet and with a neighbour.

For each preset (--presets, default `default,small`) and each policy — `auto` (a ThreadTuner with
its defaults) and every fixed count from 1 to the usable cores (`--threads N` caps it) — a fresh
Trainer trains for --seconds of wall time, in two scenarios:
(a) quiet: nothing else of ours runs; chars/s over the whole run, the tuner's first sweep included;
(b) neighbour: half-way through, a CPU-bound process pinned to one core (os.sched_setaffinity)
    starts and spins until the run ends; chars/s over the part after it started.
The policies take turns within each of --rounds rounds, so drift of the machine hits them alike.
Reported per preset and scenario: the median chars/s of each policy, the best fixed count, and
auto / best fixed (targets: ≥ 0.95 quiet, ≥ 0.90 with the neighbour); for auto also the count it
ended on and its decisions.
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)                       # before NumPy loads

import argparse                               # noqa: E402
import os                                     # noqa: E402
import subprocess                             # noqa: E402
import time                                   # noqa: E402

import common                                 # noqa: E402
from kafkarnn.train.config import PRESETS, check  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402
from kafkarnn.train.threads import ThreadTuner, candidate_counts, usable_cores  # noqa: E402
from kafkarnn.train.trainer import Trainer    # noqa: E402

TARGETS = {"quiet": 0.95, "neighbour": 0.90}
SPIN = ("import os, sys\nos.sched_setaffinity(0, {%d})\nprint('ready', flush=True)\n"
        "while True:\n    pass\n")


def start_neighbour(core: int) -> subprocess.Popen:
    """A CPU-bound process pinned to `core`; returns once it runs there."""
    proc = subprocess.Popen([sys.executable, "-c", SPIN % core], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the neighbour process did not start")
    return proc


def train_for(cfg, vocab, train, val, policy, seconds: float, neighbour_core: int | None,
              candidates: list[int], tuner_options: dict) -> dict:
    """Train a fresh Trainer for `seconds` under `policy` ("auto" or a count); with a neighbour
    core, the neighbour starts half-way and only what follows is measured."""
    tr = Trainer(cfg, vocab, train, val)
    tuner = ThreadTuner(candidates, fixed=None if policy == "auto" else policy, **tuner_options)
    now = time.perf_counter
    start = now()
    mark, neighbour = (start, 0), None
    try:
        while now() - start < seconds:
            if neighbour_core is not None and neighbour is None and now() - start >= seconds / 2:
                neighbour = start_neighbour(neighbour_core)
                mark = (now(), tr.chars)
            t0, c0 = now(), tr.chars
            tr.step()
            tuner.step_done(now() - t0, tr.chars - c0)
        end = now()
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return {"chars_per_s": (tr.chars - mark[1]) / (end - mark[0]), "measured_s": end - mark[0],
            "iterations": tr.iteration, "final_threads": tuner.threads,
            "decisions": list(tuner.history), "probes": tuner.probes}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--presets", default="default,small", help="comma-separated presets (default: default,small)")
    ap.add_argument("--seconds", type=float, default=120.0,
                    help="wall seconds per run; the neighbour starts half-way (default 120)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each policy per scenario (default 1)")
    ap.add_argument("--pause", type=float, default=1.0,
                    help="idle seconds between runs, so thread pools stop spinning (default 1)")
    args = ap.parse_args(argv)
    cores = usable_cores()
    top = min(args.threads or cores, cores)
    candidates = candidate_counts(top)
    tuner_options = {}
    shrink = {}
    if args.quick:                     # small models and a fast-forward tuner: it only has to run
        args.seconds, args.rounds, args.pause = 0.4, 1, 0.0
        shrink = {"hidden": 48, "seq_len": 16, "batch": 8}
        tuner_options = {"probe_s": 0.01, "recheck_every": 0.1}
    scenarios = ["quiet"]
    if hasattr(os, "sched_setaffinity") and cores >= 2:
        scenarios.append("neighbour")
    else:
        print("no neighbour scenario: it needs os.sched_setaffinity and 2 usable cores")
    neighbour_core = max(os.sched_getaffinity(0)) if "neighbour" in scenarios else None
    policies = ["auto", *candidates]
    names = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        ap.error(f"unknown presets: {', '.join(unknown)} (known: {', '.join(PRESETS)})")

    corpus = load_corpus(str(args.corpus))
    train, val = corpus.split(0.1)
    runs = len(names) * len(scenarios) * len(policies) * args.rounds
    print(f"corpus {args.corpus}; usable cores {cores}; counts {candidates}; BLAS: {common.blas_summary()}")
    print(f"{runs} runs of {args.seconds:g} s: about {runs * (args.seconds + args.pause) / 60:.1f} min")
    rows, summary = [], []
    for name in names:
        cfg = check(PRESETS[name].replace(**shrink))
        for scenario in scenarios:
            core = neighbour_core if scenario == "neighbour" else None
            results = {p: [] for p in policies}
            for _ in range(args.rounds):
                for policy in policies:
                    time.sleep(args.pause)
                    results[policy].append(train_for(cfg, corpus.vocab, train, val, policy, args.seconds,
                                                     core, candidates, tuner_options))
            med = {p: common.median([r["chars_per_s"] for r in rs]) for p, rs in results.items()}
            best = max(candidates, key=lambda n: med[n])
            for policy in policies:
                last = results[policy][-1]
                rows.append({"preset": name, "scenario": scenario, "policy": str(policy),
                             "chars_per_s": med[policy], "vs_best_fixed": med[policy] / med[best],
                             "final_threads": last["final_threads"] if policy == "auto" else policy,
                             "decisions": [r["decisions"] for r in results[policy]],
                             "rounds": [r["chars_per_s"] for r in results[policy]]})
            ratio = med["auto"] / med[best]
            summary.append({"preset": name, "scenario": scenario, "best_fixed": best,
                            "ratio": ratio, "target": TARGETS[scenario],
                            "met": ratio >= TARGETS[scenario]})
            print(f"  {name} {scenario}: auto {med['auto']:,.0f} chars/s, best fixed {best} "
                  f"{med[best]:,.0f}: {ratio:.3f} (target ≥ {TARGETS[scenario]:g})", flush=True)
    print(f"\nchars/s: median of {args.rounds} run(s) of {args.seconds:g} s; with the neighbour, "
          "over the part after it started")
    print(common.table(rows, [("preset", "preset"), ("scenario", "scenario"), ("policy", "threads"),
                              ("chars_per_s", "chars/s"), ("vs_best_fixed", "/ best fixed"),
                              ("final_threads", "ended on")]))
    print()
    print(common.table(summary, [("preset", "preset"), ("scenario", "scenario"),
                                 ("best_fixed", "best fixed"), ("ratio", "auto / best"),
                                 ("target", "target"), ("met", "met")]))
    path = common.write_results("threads", {"presets": names, "seconds": args.seconds,
                                            "rounds": args.rounds, "candidates": candidates,
                                            "scenarios": scenarios, "quick": args.quick,
                                            "rows": rows, "summary": summary}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""What a sweep gains from running its trials side by side, and what it loses to starting them.

    python benchmarks/sweep.py [--seconds 20] [--parallel 2] [--corpus FILE]

The same grid of four small trials (`--preset small --model rnn,gru --hidden 128,256`, each
with a training-time budget of --seconds) is swept three times, in fresh data folders: one
trial at a time with one BLAS thread, one at a time with --parallel threads, and --parallel
trials side by side with one thread each. For each: the wall time of `kafkarnn sweep` from
start to its comparison table, the sum of the trials' training time (their checkpoints'
elapsed_s), the characters they trained on per second of wall time, all trials together, and
the share of the slots' time not spent training: 1 − Σ training time / (wall time × slots),
i.e. start-up of each trainer (Python, NumPy, corpus, model), its last validation and save,
and the coordinator's hand-offs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

GRID = ["--preset", "small", "--model", "rnn,gru", "--hidden", "128,256"]


def sweep_once(corpus: Path, seconds: float, parallel: int, threads: int = 1) -> dict:
    from kafkarnn.runs.checkpoint import load_checkpoint
    from kafkarnn.sweep.folder import list_sweep_runs
    with tempfile.TemporaryDirectory(prefix="kafkarnn-sweep-bench-") as home:
        env = dict(os.environ, KAFKARNN_HOME=home, PYTHONPATH=str(common.REPO))
        argv = [sys.executable, "-m", "kafkarnn", "sweep", "b", "--corpus", str(corpus), *GRID,
                "--max-seconds", repr(seconds), "--threads", str(threads), "--parallel", str(parallel)]
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"the sweep failed: {done.stderr.strip()}")
        trials = []
        for name in list_sweep_runs(Path(home), "b"):
            _, meta = load_checkpoint(Path(home) / "runs" / name / "checkpoint.npz")
            trials.append({"run": name, "train_s": meta["elapsed_s"], "chars": meta["chars"],
                           "chars_per_s": meta["chars"] / meta["elapsed_s"]})
    train_s = sum(t["train_s"] for t in trials)
    chars = sum(t["chars"] for t in trials)
    return {"parallel": parallel, "threads": threads, "wall_s": wall, "train_s_sum": train_s,
            "chars_per_s_all": chars / wall, "lost_share": 1 - train_s / (wall * parallel),
            "trials": trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--seconds", type=float, default=20.0, help="each trial's training budget")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 2,
                        help="trials side by side in the second sweep (default: the cores)")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    results = [sweep_once(args.corpus, seconds, 1),
               sweep_once(args.corpus, seconds, 1, threads=args.parallel),
               sweep_once(args.corpus, seconds, args.parallel)]
    print(common.table(results, [("parallel", "side by side"), ("threads", "threads each"),
                                 ("wall_s", "wall s"),
                                 ("train_s_sum", "Σ training s"), ("chars_per_s_all", "chars/s, all"),
                                 ("lost_share", "share not training")]))
    for r in results:
        print(f"side by side {r['parallel']}, {r['threads']} threads: " + ", ".join(
            f"{t['run']} {t['chars_per_s']:,.0f} chars/s" for t in r["trials"]))
    speedup = results[2]["chars_per_s_all"] / results[0]["chars_per_s_all"]
    over_threads = results[2]["chars_per_s_all"] / results[1]["chars_per_s_all"]
    print(f"all trials' chars/s, {args.parallel} side by side against one at a time: {speedup:.2f}x "
          f"(with 1 thread), {over_threads:.2f}x (with {args.parallel} threads)")
    path = common.write_results("sweep", {"seconds": seconds, "grid": GRID, "results": results,
                                          "speedup": speedup, "speedup_over_threads": over_threads}, args.out)
    print(f"results: {path}")


if __name__ == "__main__":
    main()

"""The pause at a hand-off: how long a run does not train while it moves between trainers.

    python benchmarks/handoff.py [--preset default] [--rounds 3] [--seconds 12]

A run starts with `kafkarnn --detach`; then, each round: `kafkarnn attach` in a pseudo-terminal
(the monitor takes the run over from the background trainer), and after a while `d` in that
monitor (it hands the run to a new background trainer). Finally `kafkarnn stop`.

The pause is read from the run's metrics.jsonl: every line has the wall-clock `time` and the
run's training time `elapsed_s`. Across a hand-off, between the old owner's last line (written
after its final save) and the new owner's first, the wall clock advances by the pause plus the
training in between; the training time only by the latter. So
    pause = Δtime − Δelapsed_s,
which counts the old owner's save and exit and the new owner's start (Python, corpus, model,
checkpoint, the monitor's first frame) up to its first step (pause_since says how the old
owner's final save is counted in).
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def kafkarnn(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kafkarnn", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def records(run: Path) -> list[dict]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def pause_since(recs: list[dict], since: float) -> float:
    """The hand-off's pause among the lines written after `since`. Each pair of consecutive
    lines has an excess Δtime − Δelapsed: a few ms (a live sample) within one owner. The pair
    across the hand-off has the largest; the pair before it holds the old owner's final save.
    Their sum, less one ordinary pair's excess, is the time from the old owner's last step to
    the new owner's first."""
    recs = [r for r in recs if r["time"] >= since - 5]
    excess = [(b["time"] - a["time"]) - (b["elapsed_s"] - a["elapsed_s"])
              for a, b in zip(recs, recs[1:])]
    i = max(range(len(excess)), key=excess.__getitem__)
    others = [e for j, e in enumerate(excess) if j not in (i, i - 1)] or [0.0]
    return excess[i] + (excess[i - 1] if i > 0 else 0.0) - statistics.median(others)


def wait_new_owner(run: Path, holder_role: str, timeout: float = 120) -> None:
    """Until a trainer of `holder_role` holds the run and has written two metrics lines."""
    from kafkarnn.runs.folder import Run
    r = Run(run.parent.parent, run.name)
    deadline = time.monotonic() + timeout
    while True:
        h = r.holder()
        if h is not None and h.role is not None and h.role.value == holder_role:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for a {holder_role} trainer")
        time.sleep(0.05)
    n = len(records(run))
    while len(records(run)) < n + 3:
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the run's metrics")
        time.sleep(0.1)


def monitor(env, *args) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "kafkarnn", *args], env)
    common.drain(fd)
    return pid, fd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--preset", default="default", help="seed, default or small (default)")
    ap.add_argument("--rounds", type=int, default=3, help="attach + detach rounds (3)")
    ap.add_argument("--seconds", type=float, default=12.0, help="training between hand-offs (12)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.preset = 1, 3.0, "small"
    home = Path(tempfile.mkdtemp(prefix="kafkarnn-handoff-"))
    env = dict(os.environ, KAFKARNN_HOME=str(home), TERM="xterm-256color", COLUMNS="100",
               LINES="30", PYTHONPATH=str(common.REPO))
    run = home / "runs" / "handoff"
    takeovers, detaches = [], []
    try:
        started = kafkarnn("--detach", "--run", "handoff", "--preset", args.preset,
                           "--corpus", args.corpus, "--save-every", 1000, env=env)
        if started.returncode != 0:
            raise SystemExit(started.stderr)
        for _ in range(args.rounds):
            time.sleep(args.seconds)
            since = time.time()
            pid, fd = monitor(env, "attach", "--run", "handoff")
            wait_new_owner(run, "monitor")
            takeovers.append(pause_since(records(run), since))
            time.sleep(args.seconds)
            since = time.time()
            os.write(fd, b"d")
            os.waitpid(pid, 0)
            os.close(fd)
            wait_new_owner(run, "background")
            detaches.append(pause_since(records(run), since))
        kafkarnn("stop", "--run", "handoff", env=env)
    finally:
        kafkarnn("stop", "--run", "handoff", env=env)
        shutil.rmtree(home, ignore_errors=True)
    result = {"preset": args.preset, "corpus": str(args.corpus), "rounds": args.rounds,
              "take_over_pause_s": takeovers, "detach_pause_s": detaches,
              "take_over_median_s": statistics.median(takeovers),
              "detach_median_s": statistics.median(detaches), "blas": common.blas_summary()}
    print(f"hand-off pause, {args.preset} preset, {args.rounds} rounds: take-over (attach) "
          f"median {result['take_over_median_s']:.2f} s {[round(x, 2) for x in takeovers]}; "
          f"detach (d) median {result['detach_median_s']:.2f} s {[round(x, 2) for x in detaches]}")
    common.write_results("handoff", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the training monitor costs: throughput with the monitor open vs `--headless`, same config.

    python benchmarks/monitor_overhead.py [--seconds 20] [--repeats 3] [--preset small]
                                          [--corpus sample_texts] [--blas-threads N] [--inside]

Each trial is a fresh run in its own temporary KAFKARNN_HOME, `--max-seconds SECONDS`:
- headless: `python -m kafkarnn … --headless`, output discarded;
- monitor: the same command without `--headless`, in a pseudo-terminal (100×30,
  TERM=xterm-256color) whose output a reader thread drains; when the run's checkpoint
  appears (the save at the limit) the script types `q`. With --inside the script types `i` as
  soon as training has started (the first metrics line), so the Inside screen is open, looking
  inside every few seconds, for the whole trial (the issue's bar: ≥ 90% of headless).
Trials alternate (H M, M H, H M, …) so drift on the machine hits both sides alike. A trial's
figure is the median `chars_per_sec` over its metrics.jsonl lines, leaving out the first (warm-up)
and the last (written at the limit, it repeats the previous interval's rate); the wall-clock
rate over the same span is printed beside it. The result is the median over trials per mode and
the ratio monitor / headless. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def command(args, headless: bool) -> list[str]:
    cmd = [sys.executable, "-m", "kafkarnn", "--corpus", args.corpus, "--preset", args.preset,
           "--max-seconds", str(args.seconds), "--run", "bench",
           "--save-every", str(args.seconds * 10 + 60)]      # the only save: at the limit
    return cmd + (["--headless"] if headless else [])


def environment(args, home: Path) -> dict:
    env = dict(os.environ, KAFKARNN_HOME=str(home), TERM="xterm-256color", PYTHONPATH=str(REPO))
    env.pop("NO_COLOR", None)
    if args.blas_threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.blas_threads)
    return env


def run_headless(args, home: Path) -> None:
    subprocess.run(command(args, True), env=environment(args, home), cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                   timeout=args.seconds * 4 + 120)


def run_monitor(args, home: Path) -> None:
    argv, env = command(args, False), environment(args, home)
    pid, fd = pty.fork()
    if pid == 0:                                     # the child: the monitor, on the pty
        os.chdir(REPO)
        os.execve(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.kill(pid, signal.SIGWINCH)

    reader = common.drain(fd)
    checkpoint = home / "runs" / "bench" / "checkpoint.npz"
    metrics = home / "runs" / "bench" / "metrics.jsonl"
    deadline = time.monotonic() + args.seconds * 4 + 120
    inside = args.inside
    try:
        while not checkpoint.exists():
            if inside and metrics.exists():          # training runs: open the Inside screen
                os.write(fd, b"i")
                inside = False
            if time.monotonic() > deadline or os.waitpid(pid, os.WNOHANG)[0]:
                raise RuntimeError("the monitor did not reach its limit")
            time.sleep(0.2)
        time.sleep(1.0)                              # let the final validation finish
        os.write(fd, b"q")
        end = time.monotonic() + 30
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.monotonic() > end:
                raise RuntimeError("the monitor did not quit on q")
            time.sleep(0.1)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        reader.join(2)
        os.close(fd)


def measure(home: Path) -> tuple[float, float]:
    """(median chars/s over the metrics lines, wall-clock chars/s over the same span)."""
    lines = [json.loads(x) for x in (home / "runs" / "bench" / "metrics.jsonl").read_text().splitlines()
             if x.strip()]
    body = lines[1:-1]
    if len(body) < 2:
        raise RuntimeError(f"too few metrics lines ({len(lines)}): use more --seconds")
    median = statistics.median(r["chars_per_sec"] for r in body)
    first, last = lines[0], lines[-2]
    wall = (last["chars"] - first["chars"]) / max(last["time"] - first["time"], 1e-9)
    return median, wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="training time per trial (20)")
    p.add_argument("--repeats", type=int, default=3, help="trials per mode (3)")
    p.add_argument("--preset", default="small", help="model preset (small)")
    p.add_argument("--corpus", default=str(REPO / "sample_texts"), help="corpus (sample_texts)")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="set OPENBLAS/OMP/MKL_NUM_THREADS for both modes (default: leave as is)")
    p.add_argument("--inside", action="store_true",
                   help="open the monitor's Inside screen (type i) once training has started")
    args = p.parse_args()

    results: dict[str, list[tuple[float, float]]] = {"headless": [], "monitor": []}
    print(f"preset {args.preset}, {args.seconds:g} s per trial, {args.repeats} trials per mode, "
          f"BLAS threads {args.blas_threads or os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, "
          f"load average {os.getloadavg()[0]:.2f}{', Inside screen open' if args.inside else ''}")
    for i in range(args.repeats):
        order = ("headless", "monitor") if i % 2 == 0 else ("monitor", "headless")
        for mode in order:
            home = Path(tempfile.mkdtemp(prefix="kafkarnn-bench-"))
            try:
                (run_headless if mode == "headless" else run_monitor)(args, home)
                median, wall = measure(home)
            finally:
                shutil.rmtree(home, ignore_errors=True)
            results[mode].append((median, wall))
            print(f"  trial {i + 1} {mode:8s}  {median:10,.0f} chars/s (median)  "
                  f"{wall:10,.0f} chars/s (wall clock)", flush=True)
    h = statistics.median(m for m, _ in results["headless"])
    m = statistics.median(m for m, _ in results["monitor"])
    hw = statistics.median(w for _, w in results["headless"])
    mw = statistics.median(w for _, w in results["monitor"])
    print(f"headless {h:,.0f} chars/s, monitor {m:,.0f} chars/s: monitor/headless = {m / h:.3f} "
          f"(wall clock {mw / hw:.3f}); load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak: train for --minutes as the monitor does and check that memory stays flat.

The session is built exactly as `run_monitor()` builds it (a `Session` with a live sample
every 3 s and `stay_open`, tui/monitor.py `monitor_app`), and runs in a worker thread as in the App. Another thread plays the
App: it polls `snapshot()` at 4 Hz, drains `events()`, reads the history and the sample, and every
minute asks for a 200-character continuation (the `g` key). The main thread samples the process's
resident memory (RSS) every 10 s.

Reported: RSS over time; growth after the warm-up, measured on its envelope: the highest sample
of the last quarter of the run (and the highest of all) against the highest of the first quarter
after warm-up, so that memory which rises and falls by the same amount (buffers reallocated while
validation runs with other shapes, then again for training) reads as flat and only a rising peak
reads as growth; the range and the slope in MB/hour; the longest history the UI saw (bounded by
session.HISTORY); and whether every line of metrics.jsonl parses. The issue's bar: growth under 10%.

    python benchmarks/soak.py                 # 20 minutes, default preset
    python benchmarks/soak.py --minutes 3     # a smoke run

Without --threads, BLAS threads are chosen as the `kafkarnn` CLI chooses them.
"""

from __future__ import annotations

import sys

from common import early_threads

if early_threads(sys.argv) is None:          # before NumPy loads: as the CLI would
    from kafkarnn.train.thread_policy import set_blas_threads
    set_blas_threads(None)

import argparse                               # noqa: E402
import json                                   # noqa: E402
import os                                     # noqa: E402
import tempfile                               # noqa: E402
import threading                              # noqa: E402
import time                                   # noqa: E402
from pathlib import Path                      # noqa: E402

import common                                 # noqa: E402
from kafkarnn.train.cadence import Cadence    # noqa: E402
from kafkarnn.train.launch import prepare     # noqa: E402
from kafkarnn.train.session import HISTORY, Generate, Session  # noqa: E402

RSS_EVERY_S = 10.0
POLL_S = 0.25                 # the App's 4 Hz
GENERATE_EVERY_S = 60.0
LIMIT = 0.10                  # the bar: under 10% growth after warm-up


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class FakeApp:
    """What the monitor does to a session, from its own thread."""

    def __init__(self, session):
        self.session, self.stop = session, threading.Event()
        self.polls, self.events, self.generated, self.max_history = 0, 0, 0, 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        last_generate = time.monotonic()
        while not self.stop.wait(POLL_S):
            snap = self.session.snapshot()
            self.polls += 1
            self.max_history = max(self.max_history, len(snap.history))
            _ = (snap.sample, snap.sample_probs, snap.loss, snap.iteration)   # what the panes read
            self.events += len(self.session.events())
            if time.monotonic() - last_generate >= GENERATE_EVERY_S:
                cmd = Generate("The ", 200, temperature=0.8)
                self.session.send(cmd)
                try:
                    cmd.reply.result(timeout=60)
                    self.generated += 1
                except Exception as e:                          # noqa: BLE001 (report, go on)
                    print(f"generate failed: {e}", file=sys.stderr)
                last_generate = time.monotonic()


def check_metrics(path: Path) -> dict:
    lines = path.read_bytes().split(b"\n") if path.exists() else []
    bad, iters = 0, []
    for line in lines:
        if not line:
            continue
        try:
            iters.append(json.loads(line)["iter"])
        except (ValueError, KeyError, TypeError):
            bad += 1
    return {"lines": len(iters), "unreadable_lines": bad,
            "iter_never_decreases": all(a <= b for a, b in zip(iters, iters[1:])),
            "bytes": path.stat().st_size if path.exists() else 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--minutes", type=float, default=20.0, help="training time (default 20)")
    ap.add_argument("--warmup-minutes", type=float, default=None,
                    help="ignored for the growth figure (default: 2, or a third of a shorter run)")
    ap.add_argument("--preset", default="default", help="seed, default or small (default: default)")
    ap.add_argument("--data-dir", type=Path, default=None, help="where the run goes (default: a temp folder)")
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes = 0.5
    warmup = args.warmup_minutes if args.warmup_minutes is not None else min(2.0, args.minutes / 3)

    with tempfile.TemporaryDirectory(prefix="kafkarnn-soak-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        launch = prepare(data_dir=data_dir, corpus_spec=str(args.corpus), encoding=None, run_name="soak",
                         new=True, preset=args.preset, overrides={})
        try:
            session = Session(launch, cadence=Cadence(sample_every=3.0), stay_open=True)
            stop = threading.Event()
            trainer = threading.Thread(target=session.run, args=(stop.is_set,), daemon=True)
            app = FakeApp(session)
            print(f"soak: {args.minutes:g} min of {launch.trainer.cfg.describe()} ({args.preset}) on "
                  f"{launch.corpus.name}; warm-up {warmup:g} min; BLAS: {common.blas_summary()}", flush=True)
            started = time.monotonic()
            trainer.start()
            app.thread.start()
            samples = []
            while True:
                t = time.monotonic() - started
                snap = session.snapshot()
                samples.append({"t_s": round(t, 1), "iteration": snap.iteration,
                                "rss_mb": round(rss_bytes() / 2 ** 20, 2), "state": snap.state})
                print(f"  {t:7.0f} s  iter {snap.iteration:>8,}  rss {samples[-1]['rss_mb']:8.2f} MB  "
                      f"loss {snap.loss:.4f}", flush=True)
                if t >= args.minutes * 60:
                    break
                time.sleep(min(RSS_EVERY_S, args.minutes * 60 - t + 0.01))
            app.stop.set()
            app.thread.join(70)
            stop.set()
            trainer.join(300)
            final = session.snapshot()
        finally:
            launch.lock.unlock()
        metrics = check_metrics(launch.run.metrics_path)

    after = [s for s in samples if s["t_s"] >= warmup * 60] or samples[-1:]
    quarter = max(1, len(after) // 4)
    base = max(s["rss_mb"] for s in after[:quarter])              # the envelope at the start
    end = max(s["rss_mb"] for s in after[-quarter:])              # and at the end
    growth = (end - base) / base
    peak_growth = (max(s["rss_mb"] for s in after) - base) / base
    slope = 0.0
    if len(after) >= 2:
        ts = [s["t_s"] / 3600 for s in after]
        ys = [s["rss_mb"] for s in after]
        mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
        var = sum((x - mt) ** 2 for x in ts)
        slope = sum((x - mt) * (y - my) for x, y in zip(ts, ys)) / var if var else 0.0
    ok = (growth < LIMIT and peak_growth < LIMIT and app.max_history <= HISTORY and
          metrics["unreadable_lines"] == 0 and metrics["iter_never_decreases"] and final.state == "STOPPED")
    summary = {"minutes": args.minutes, "warmup_minutes": warmup, "preset": args.preset,
               "model": launch.trainer.cfg.describe(), "final_iteration": final.iteration,
               "rss_start_mb": samples[0]["rss_mb"], "rss_peak_first_quarter_mb": base,
               "rss_peak_last_quarter_mb": end, "rss_min_mb": min(s["rss_mb"] for s in after),
               "rss_max_mb": max(s["rss_mb"] for s in after), "growth": round(growth, 4),
               "peak_growth": round(peak_growth, 4), "slope_mb_per_hour": round(slope, 2),
               "max_history_points": app.max_history, "history_limit": HISTORY,
               "polls": app.polls, "events_drained": app.events, "generated": app.generated,
               "metrics": metrics, "final_state": final.state, "save_error": final.save_error,
               "pass": ok}
    print(common.table([summary], [("minutes", "min"), ("final_iteration", "iters"),
                                   ("rss_min_mb", "RSS min MB"), ("rss_max_mb", "max MB"),
                                   ("rss_peak_first_quarter_mb", "peak, first ¼"),
                                   ("rss_peak_last_quarter_mb", "peak, last ¼"), ("growth", "growth"),
                                   ("peak_growth", "peak growth"), ("slope_mb_per_hour", "MB/hour"),
                                   ("max_history_points", "history"), ("pass", "< 10%")]))
    print(f"metrics.jsonl: {metrics['lines']} lines, {metrics['unreadable_lines']} unreadable; "
          f"{app.polls} polls, {app.events} events, {app.generated} continuations")
    path = common.write_results("soak", {**summary, "samples": samples}, args.out)
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

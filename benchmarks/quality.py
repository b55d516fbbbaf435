"""Model quality for a time budget: train as a user does, on several texts, and report the best validation loss.

    python benchmarks/quality.py --threads 1 --corpus A.txt --corpus code/ --seconds 1800 --marks 300,1800
    python benchmarks/quality.py --threads 1 --presets default --set decay_iters=1000 --set dropout=0.3

Each corpus × preset is one `kafkarnn --headless --preset P --max-seconds SECONDS` in a fresh
data folder, with the CLI's default intervals (validation every 30 s of training, or more seldom
when a pass is slow; a checkpoint every 60 s; a sample every few seconds), so what is measured is
what a user's run does, including the default's fitting to the text. The last 10% of each text
is its validation split. From the run's metrics lines: the best validation loss reached within
each mark of training seconds, the iterations and chars/s, and the share of wall time that was
not training (validation, saving, samples). Then 200 characters from best.npz.

`--set key=value` (repeatable) passes `--key value` to every run: options given by the user win
over the preset and its fitting, e.g. `--set decay_iters=1000` for the schedule of a small text.
A trajectory depends on the iteration only, so the best loss by 300 s of a 1800-s run is what a
300-s run reaches (give or take the last validation: a run's limit validates at its very end).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from kafkarnn.train.config import PRESETS, Config

STEP_SLACK_S = 2.0        # a limit is checked between steps: a mark's last validation may be a step late


def parse_overrides(items: list[str]) -> dict:
    """["hidden=512", "dropout=0.25"] -> {"hidden": 512, "dropout": 0.25}, typed like Config's defaults."""
    defaults = Config()
    fields = {f.name for f in dataclasses.fields(Config)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        kind = type(getattr(defaults, key))
        try:
            out[key] = kind(float(value)) if kind is int and "e" in value.lower() else kind(value)
        except ValueError:
            raise SystemExit(f"--set {item!r}: {key} needs a {kind.__name__}") from None
    return out


def label(preset: str, overrides: dict) -> str:
    return preset + ("+" + ",".join(f"{k}={v}" for k, v in overrides.items()) if overrides else "")


def best_by(recs: list[dict], mark: float) -> tuple[float | None, float | None]:
    """(best validation loss, its training second) among the passes within `mark` training seconds."""
    vals = [(r["val_loss"], r["elapsed_s"]) for r in recs
            if "val_loss" in r and r["elapsed_s"] <= mark + STEP_SLACK_S]
    return min(vals) if vals else (None, None)


def train_one(corpus: Path, preset: str, overrides: dict, args) -> dict:
    kafkarnn = [sys.executable, "-m", "kafkarnn"]
    options = [a for k, v in overrides.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    if args.threads:
        options += ["--threads", str(args.threads)]
    if args.eval_every:
        options += ["--eval-every", str(args.eval_every)]
    if args.iters:
        options += ["--max-iters", str(args.iters)]
    env = dict(os.environ, PYTHONPATH=str(common.REPO))
    with tempfile.TemporaryDirectory(prefix="kafkarnn-quality-") as home:
        where = ["--run", "q", "--data-dir", home]
        proc = subprocess.run([*kafkarnn, "--headless", "--preset", preset, "--corpus", str(corpus),
                               "--max-seconds", str(args.seconds), *where, *options], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        run = Path(home) / "runs" / "q"
        if proc.returncode != 0 or not (run / "metrics.jsonl").exists():
            lines = proc.stderr.strip().splitlines() or ["no output"]
            return {"failed": f"kafkarnn exited {proc.returncode}: {lines[-1]}"}
        recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        cfg = json.loads((run / "config.json").read_text())
        sample = subprocess.run([*kafkarnn, "sample", *where, "--best", "--seed", str(args.sample_seed),
                                 "--length", str(args.sample_length)], env=env,
                                capture_output=True, text=True).stdout.removesuffix("\n")
    start = recs[0]["time"] - recs[0]["elapsed_s"]            # when the first step began
    train_s, wall_s = recs[-1]["elapsed_s"], recs[-1]["time"] - start
    best, best_at = best_by(recs, math.inf)
    return {"config": {k: v for k, v in cfg.items() if k != "corpus"},
            "chars": cfg["corpus"]["fingerprint"]["length"],
            "best_val": best, "best_at_s": best_at,
            "best_val_bits": best / math.log(2) if best is not None else None,
            "marks": {f"{m:g}": best_by(recs, m)[0] for m in args.marks if m <= args.seconds + STEP_SLACK_S},
            "iterations": recs[-1]["iter"], "chars_per_s": recs[-1]["chars"] / max(train_s, 1e-9),
            "train_s": train_s, "wall_s": wall_s, "not_training": 1 - train_s / wall_s,
            "validations": sum("val_loss" in r for r in recs),
            "val_history": [(r["elapsed_s"], r["val_loss"]) for r in recs if "val_loss" in r],
            "sample": sample, "failed": None}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap, corpus=False)
    ap.add_argument("--corpus", type=Path, action="append",
                    help=f"a text or folder (repeatable; default {common.DEFAULT_CORPUS})")
    ap.add_argument("--presets", default="default", help="comma-separated presets to train (default)")
    ap.add_argument("--seconds", type=float, default=300.0, help="training seconds per run (300)")
    ap.add_argument("--iters", type=int, default=None,
                    help="also stop at this iteration: compare methods at equal steps on a loaded "
                    "machine (give --seconds room enough)")
    ap.add_argument("--marks", default="", help="comma-separated training seconds to report the best "
                    "loss at, as well as at the end (e.g. 300,1800)")
    ap.add_argument("--eval-every", type=float, default=None,
                    help="seconds of training between validations (default: the CLI's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="pass --KEY VALUE to every run, e.g. --set hidden=512 (repeatable)")
    ap.add_argument("--sample-length", type=int, default=200, help="sample length (200)")
    ap.add_argument("--sample-seed", type=int, default=0, help="RNG seed of the sample (0)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds = 3.0
    args.marks = sorted({float(m) for m in args.marks.split(",") if m.strip()} | {args.seconds})
    overrides = parse_overrides(args.set)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        ap.error(f"unknown presets: {', '.join(unknown)} (known: {', '.join(PRESETS)})")
    corpora = args.corpus or [common.DEFAULT_CORPUS]
    print(f"{args.seconds:g} s of training per run, threads {args.threads or 'chosen by kafkarnn'}; "
          f"marks {', '.join(f'{m:g}' for m in args.marks)} s", flush=True)

    runs = []
    for corpus in corpora:
        for preset in presets:
            r = {"corpus": str(corpus), "preset": preset, "label": label(preset, overrides),
                 **train_one(corpus, preset, overrides, args)}
            runs.append(r)
            if r["failed"]:
                print(f"{corpus} {r['label']}: {r['failed']}", flush=True)
                continue
            c = r["config"]
            marks = "  ".join(f"{m} s: {v:.4f}" for m, v in r["marks"].items() if v is not None)
            print(f"{corpus} {r['label']}: {c['model']} {c['layers']}×{c['hidden']}, decay over "
                  f"{c['decay_iters']} steps, dropout {c['dropout']:g}, DropConnect {c['weight_drop']:g}; "
                  f"{r['iterations']:,} iterations, {r['chars_per_s']:,.0f} chars/s; best {marks}; "
                  f"not training {100 * r['not_training']:.1f}%", flush=True)

    done = [r for r in runs if not r["failed"]]
    for r in done:
        r.update({f"at {m} s": v for m, v in r["marks"].items()},
                 not_training_pct=100 * r["not_training"], name=Path(r["corpus"]).name)
    cols = [("name", "corpus"), ("label", "preset"), ("iterations", "iter"), ("chars_per_s", "chars/s")]
    cols += [(f"at {m:g} s", f"best at {m:g} s") for m in args.marks]
    cols += [("best_at_s", "reached at s"), ("not_training_pct", "not training %")]
    print("\nbest validation loss (nats/char) by training time\n" + common.table(done, cols))
    for r in done:
        print(f"\n--- {r['name']} {r['label']}: {args.sample_length} characters from best.npz ---\n{r['sample']}")
    name = "quality" + ("-" + re.sub(r"[^A-Za-z0-9.=,_-]", "_", label("", overrides)[1:])
                        if overrides else "")
    path = common.write_results(name, {"corpora": [str(c) for c in corpora], "seconds": args.seconds,
                                       "marks": args.marks, "overrides": overrides, "runs": runs},
                                args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

"""How much of the wall time is not training: validation, saving and samples, on texts of any size.

    python benchmarks/validation_cost.py --corpus A.txt --corpus B/ [--seconds 120]

For each corpus: `kafkarnn --headless --preset default --max-seconds SECONDS` in a fresh data
folder, with the CLI's default intervals (save every 60 s, validate every 30 s of training, or
more seldom when a pass is slow). From the run's metrics lines: the training time (`elapsed_s`
of the last line), the wall time from the first step to the last line (`time`), the share of it
that was not training, and the validation passes. Target: under 10% on any corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import common


def measure(corpus: Path, seconds: float, preset: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="kafkarnn-valcost-") as home:
        env = dict(os.environ, PYTHONPATH=str(common.REPO))
        proc = subprocess.run([sys.executable, "-m", "kafkarnn", "--headless", "--preset", preset,
                               "--corpus", str(corpus), "--max-seconds", str(seconds), "--run",
                               "bench", "--data-dir", home], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{corpus}: kafkarnn exited {proc.returncode}: {proc.stderr[-2000:]}")
        lines = (Path(home) / "runs" / "bench" / "metrics.jsonl").read_text().splitlines()
        recs = [json.loads(line) for line in lines]
        chars = json.loads((Path(home) / "runs" / "bench" / "config.json").read_text())
    start = recs[0]["time"] - recs[0]["elapsed_s"]              # when the first step began
    wall = recs[-1]["time"] - start
    train = recs[-1]["elapsed_s"]
    return {"corpus": str(corpus), "chars": chars["corpus"]["fingerprint"]["length"],
            "train_s": train, "wall_s": wall, "not_training": 1 - train / wall,
            "validations": sum("val_loss" in r for r in recs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap, corpus=False)
    ap.add_argument("--corpus", type=Path, action="append", help="a text or folder (repeatable)")
    ap.add_argument("--seconds", type=float, default=120.0, help="training seconds per corpus (120)")
    ap.add_argument("--preset", default="default", help="preset (default)")
    args = ap.parse_args(argv)
    corpora = args.corpus or [common.DEFAULT_CORPUS]
    if args.quick:
        args.seconds, args.preset = 3.0, "small"
    rows = []
    for c in corpora:
        rows.append(measure(c, args.seconds, args.preset))
        print(rows[-1], flush=True)
    print(f"{args.preset} preset, {args.seconds:g} s of training each; BLAS: {common.blas_summary()}")
    print(common.table(rows, [("corpus", "corpus"), ("chars", "chars"), ("train_s", "train s"),
                              ("wall_s", "wall s"), ("not_training", "not training"),
                              ("validations", "val passes")]))
    common.write_results("validation_cost", {"seconds": args.seconds, "preset": args.preset,
                                             "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ladder: counting, then each recurrent cell, on the same text for the same time and threads.

    python benchmarks/ladder.py --threads 1 --seconds 60 --corpus metamorphosis.txt
    python benchmarks/ladder.py --rungs ngram,rnn,lstm,gru,mingru,minlstm --corpus A.txt --corpus B/

Every rung goes through the real command line in a fresh data folder. The n-gram rung is
`kafkarnn baseline --corpus C --json`: interpolated Kneser-Ney of every order, fitted on the
training split, the best order chosen on validation; its loss is the line each network must
cross. Each network rung is `kafkarnn --headless --new --model X --max-seconds S --threads T`
with everything else the preset's (the default: 2 layers of 384, fitted to the text's size), so
the rungs differ in their cell alone; with --cell-presets a cell that has a preset of its own
(`--preset mingru`, `minlstm`) starts from that one instead, each cell at its best. Reported per
rung: parameters, chars/s of training (of counting, for the n-gram), the best validation loss,
and the first training second at which a validation pass went below the n-gram line (validation
every --eval-every seconds of training).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from kafkarnn.train.config import PRESETS  # noqa: E402  (common puts this checkout first)

CELLS = ("rnn", "lstm", "gru", "mingru", "minlstm")


def kafkarnn(*args: str, home: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(common.REPO))
    return subprocess.run([sys.executable, "-m", "kafkarnn", *args, "--data-dir", home], env=env,
                          capture_output=True, text=True)


def failed(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines() or ["no output"]
    return f"kafkarnn exited {proc.returncode}: {lines[-1]}"


def ngram_rung(corpus: Path, home: str) -> dict:
    proc = kafkarnn("baseline", "--corpus", str(corpus), "--json", home=home)
    if proc.returncode != 0:
        return {"rung": "ngram", "failed": failed(proc)}
    b = json.loads(proc.stdout)
    return {"rung": "ngram", "label": f"{b['best_order']}-gram", "params": None,
            "chars_per_s": b["train_chars"] / max(b["seconds"], 1e-9), "best_val": b["nats_per_char"],
            "best_val_bits": b["bits_per_char"], "seconds": b["seconds"], "sampled": b["sampled"],
            "orders": b["orders"], "below_ngram_at_s": None, "failed": None}


def rung_preset(cell: str, args) -> str:
    """The preset a network rung starts from: its cell's own with --cell-presets, else --preset."""
    return cell if args.cell_presets and cell in PRESETS else args.preset


def network_rung(cell: str, corpus: Path, line: float | None, home: str, args) -> dict:
    preset = rung_preset(cell, args)
    proc = kafkarnn("--headless", "--new", "--model", cell, "--corpus", str(corpus), "--run", cell,
                    "--preset", preset, "--max-seconds", str(args.seconds),
                    "--eval-every", str(args.eval_every),
                    *(["--threads", str(args.threads)] if args.threads else []), home=home)
    metrics = Path(home) / "runs" / cell / "metrics.jsonl"
    if proc.returncode != 0 or not metrics.exists():
        return {"rung": cell, "failed": failed(proc)}
    recs = [json.loads(line) for line in metrics.read_text().splitlines()]
    vals = [(r["elapsed_s"], r["val_loss"]) for r in recs if "val_loss" in r]
    found = re.search(r"([\d,]+) parameters", proc.stderr)
    best = min((v for _, v in vals), default=None)
    below = next((s for s, v in vals if line is not None and v < line), None)
    cfg = json.loads((Path(home) / "runs" / cell / "config.json").read_text())
    return {"rung": cell, "label": f"{cell} {cfg['layers']}×{cfg['hidden']}", "preset": preset,
            "params": int(found.group(1).replace(",", "")) if found else None,
            "chars_per_s": recs[-1]["chars"] / max(recs[-1]["elapsed_s"], 1e-9), "best_val": best,
            "best_val_bits": best / math.log(2) if best is not None else None,
            "iterations": recs[-1]["iter"], "below_ngram_at_s": below, "val_history": vals, "failed": None}


def climb(corpus: Path, rungs: list[str], args) -> list[dict]:
    """Every rung on one corpus, in one fresh data folder: the n-gram first (its loss is the
    line), then the networks."""
    out, line = [], None
    with tempfile.TemporaryDirectory(prefix="kafkarnn-ladder-") as home:
        if "ngram" in rungs:
            r = ngram_rung(corpus, home)
            line = r.get("best_val")
            out.append(r)
        for cell in (r for r in rungs if r != "ngram"):       # (the baseline is cached: no recount)
            out.append(network_rung(cell, corpus, line, home, args))
            print(f"{corpus.name} {cell}: {out[-1].get('failed') or 'done'}", flush=True)
    for r in out:
        r["corpus"] = str(corpus)
        r["name"] = corpus.name
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap, corpus=False)
    ap.add_argument("--corpus", type=Path, action="append",
                    help=f"a text or folder (repeatable; default {common.DEFAULT_CORPUS})")
    ap.add_argument("--rungs", default="ngram,rnn,lstm,gru",
                    help=f"comma-separated: ngram and any of {', '.join(CELLS)} (ngram,rnn,lstm,gru)")
    ap.add_argument("--seconds", type=float, default=60.0, help="training seconds per network (60)")
    ap.add_argument("--eval-every", type=float, default=10.0,
                    help="training seconds between validations, the resolution of 'below at' (10)")
    ap.add_argument("--preset", default="default", help="the preset every network starts from (default)")
    ap.add_argument("--cell-presets", action="store_true",
                    help="a cell with a preset of its own (mingru, minlstm) starts from that one")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.eval_every = 3.0, 1.0
    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    unknown = [r for r in rungs if r != "ngram" and r not in CELLS]
    if unknown:
        ap.error(f"unknown rungs: {', '.join(unknown)} (known: ngram, {', '.join(CELLS)})")
    corpora = args.corpus or [common.DEFAULT_CORPUS]
    print(f"{args.seconds:g} s of training per network, threads {args.threads or 'chosen by kafkarnn'}, "
          f"rungs {', '.join(rungs)}", flush=True)
    results = [r for corpus in corpora for r in climb(corpus, rungs, args)]

    for r in results:
        if r["rung"] == "ngram" and not r["failed"]:
            orders = "  ".join(f"{o['order']}: {o['nats_per_char']:.4f}" for o in r["orders"])
            print(f"\n{r['name']} n-gram nats/char by order (validation): {orders}")
    done = [r for r in results if not r["failed"]]
    cols = [("name", "corpus"), ("label", "rung"), ("params", "parameters"), ("chars_per_s", "chars/s"),
            ("best_val", "best val nats"), ("best_val_bits", "bits"),
            ("below_ngram_at_s", "below n-gram at s")]
    print("\n" + common.table(done, cols))
    for r in results:
        if r["failed"]:
            print(f"{r.get('name', '?')} {r['rung']}: {r['failed']}")
    path = common.write_results("ladder", {"corpora": [str(c) for c in corpora], "rungs": rungs,
                                           "seconds": args.seconds, "eval_every": args.eval_every,
                                           "preset": args.preset, "cell_presets": args.cell_presets,
                                           "results": results}, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    common.early_threads(sys.argv)
    main()

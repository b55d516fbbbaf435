"""`kafkarnn sample` and `kafkarnn runs`: a saved model's text, and the runs of a data folder."""

from __future__ import annotations

import json
import math
import sys

from kafkarnn.cli.options import eprint
from kafkarnn.errors import KafkarnnError


def cmd_sample(args) -> int:
    import numpy as np

    from kafkarnn.inspect.inference import load_for_sampling
    from kafkarnn.runs.folder import resolve_data_dir
    data_dir = resolve_data_dir(args.data_dir)
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise KafkarnnError(f"--temperature must be 0 or more, not {args.temperature}")
    prompt = args.prompt
    if args.prompt_file is not None:                 # a prompt with newlines, read as it is
        from kafkarnn.cli.inside import read_text_file
        prompt = read_text_file(args.prompt_file, "prompt file")
    sampler, run = load_for_sampling(data_dir, args.run, best=args.best)
    if args.run is None:                             # say which run "the latest" turned out to be
        eprint(f"kafkarnn: sampling from run {run.name} (iteration "
               f"{sampler.meta.get('iteration', '?')}{', best' if args.best else ''}{sampler.weights})")
    rng = np.random.default_rng(args.seed)
    text, _ = sampler.generate(prompt, args.length, rng, args.temperature, args.top_k)
    sys.stdout.write(prompt + text + "\n")
    return 0


def _with_baseline(data_dir, summary: dict) -> dict:
    """A run's summary with its text's n-gram baseline, if the cache holds it (never counted here)."""
    from kafkarnn.runs.folder import Run
    from kafkarnn.train import baseline
    try:
        config = json.loads(Run(data_dir, summary["name"]).config_path.read_bytes())
        base = baseline.cached(data_dir, config["corpus"]["fingerprint"]["sha256"],
                               float(config["val_fraction"]))
    except Exception:
        return summary  # a missing or corrupt config: no line, as the listing shows "?"
    if base is not None:
        summary["ngram_order"], summary["ngram_loss"] = base.order, base.loss
    return summary


def cmd_runs(args) -> int:
    from kafkarnn.runs.listing import list_runs
    from kafkarnn.runs.folder import resolve_data_dir
    data_dir = resolve_data_dir(args.data_dir)
    runs = [_with_baseline(data_dir, r) for r in list_runs(data_dir)]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print(f"no runs yet in {data_dir}")
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"runs in {data_dir / 'runs'}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    for col in ("name", "corpus", "model", "iter", "best val", "n-gram", "saved", "now"):
        table.add_column(col, no_wrap=col != "corpus", justify="right" if col == "iter" else "left")
    for r in runs:
        best = r.get("best_val_loss")
        saved = str(r.get("last_saved") or "-")[5:16].replace("T", " ") or "-"   # MM-DD HH:MM
        now = f"{r['where'] or 'pid'} {r['pid']}" if r.get("training") else "-"
        ngram = f"{r['ngram_loss']:.3f}" if r.get("ngram_loss") is not None else "-"   # (order: --json)
        table.add_row(str(r["name"]), str(r["corpus"]), str(r["model"]), f"{r['iter']}",
                      f"{best:.4f}" if isinstance(best, (int, float)) else "-", ngram, saved, now)
    Console().print(table)
    return 0

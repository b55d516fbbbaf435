"""Listing the runs of a data folder: one summary per run, read-only, never failing on one bad folder.

What `kafkarnn runs` shows and `--json` prints: name, corpus, model, iteration, best validation
loss, room for the text's n-gram baseline (filled in by the command line from train/baseline.py's
cache: runs/ sits below train/), last save, and who trains the run now (its lock's holder).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.folder import Run, parse_record


def list_runs(data_dir: Path) -> list[dict]:
    """One summary per run folder, sorted by name: name, corpus, model, iter, best_val_loss,
    ngram_order and ngram_loss (None here), last_saved, path, and who trains it now: training
    (bool), pid and where (its role), or None."""
    runs = Path(data_dir) / "runs"
    try:
        entries = sorted(p for p in runs.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise KafkarnnError(f"cannot list runs in {runs} ({e.strerror or e})") from None
    summaries = []
    for folder in entries:
        try:
            run = Run(data_dir, folder.name)
        except KafkarnnError:
            continue  # hidden or hand-made folders that are not run names
        summaries.append(_summary(run))
    return summaries


def _summary(run: Run) -> dict:
    summary = {
        "name": run.name, "corpus": "?", "model": "?", "iter": None,
        "best_val_loss": None, "ngram_order": None, "ngram_loss": None, "last_saved": None, "path": str(run.path),
        "training": False, "pid": None, "where": None,
    }
    holder = run.holder()
    if holder is not None:
        summary.update(training=True, pid=holder.pid or None,
                       where=holder.role.value if holder.role else None)
    try:
        config = json.loads(run.config_path.read_bytes())
        summary["corpus"], summary["model"] = _describe(config)
    except Exception:
        pass  # a missing or corrupt config shows as "?"
    try:
        summary["iter"], summary["best_val_loss"] = _scan_metrics(run.metrics_path)
    except Exception:
        pass
    try:
        mtime = run.checkpoint_path.stat().st_mtime
        summary["last_saved"] = dt.datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")
    except Exception:
        pass
    return summary


def _describe(config: object) -> tuple[str, str]:
    if not isinstance(config, dict):
        return "?", "?"
    corpus = config.get("corpus")
    if isinstance(corpus, dict):
        corpus = corpus.get("name")
    corpus = str(corpus) if corpus not in (None, "") else "?"
    if "model" not in config:
        return corpus, "?"
    return corpus, f"{config['model']} {config.get('layers', 1)}x{config.get('hidden', '?')}"


def _scan_metrics(path: Path) -> tuple[object, float | None]:
    """Last record's "iter", and the smallest finite "val_loss" of all records (json only on lines that have one)."""
    lines = path.read_bytes().split(b"\n")
    last_iter = None
    for line in reversed(lines):
        rec = parse_record(line)
        if rec is not None and "iter" in rec:
            last_iter = rec["iter"]
            break
    best = None
    for line in lines:
        if b'"val_loss"' not in line:
            continue
        rec = parse_record(line)
        value = rec.get("val_loss") if rec else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            best = value if best is None else min(best, value)
    return last_iter, best

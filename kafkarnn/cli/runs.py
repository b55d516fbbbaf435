"""`kafkarnn sample` and `kafkarnn runs`: a saved model's text, and the runs of a data folder."""

from __future__ import annotations

import json
import math
import sys

from kafkarnn.cli.options import eprint
from kafkarnn.errors import KafkarnnError


def cmd_sample(args) -> int:
    import numpy as np

    from kafkarnn.train.copy_index import describe
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
    checker = copy_checker(run, args.copy_min)       # reads or builds its index meanwhile
    rng = np.random.default_rng(args.seed)
    text, _ = sampler.generate(prompt, args.length, rng, args.temperature, args.top_k)
    copied = None
    if checker is not None:
        if not checker.cached:
            eprint("kafkarnn: indexing the training text for the copy check (once per text)")
        checker.wait()
        copied = checker.check(text)
        eprint(f"kafkarnn: {describe(copied)}")
    if args.json:
        print(json.dumps({"run": run.name, "prompt": prompt, "text": text,
                          "copied": copied and copied_json(copied)}, ensure_ascii=False))
    elif sys.stdout.isatty() and copied and copied.stretches:
        sys.stdout.write(prompt + marked_for_terminal(text, copied) + "\n")
    else:
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


def copy_checker(run, min_len: int):
    """The copy check of the run's training text, its index read or built in the background;
    None (and a line on stderr) when that text is gone or changed."""
    from kafkarnn.engine.vocab import Vocab
    from kafkarnn.train.copy_index import Checker, cache_path, cached_ids, source_stamp
    from kafkarnn.train.matching import run_corpus
    try:                                             # the ids kept from an unchanged file
        stored = run.read_config()["corpus"]
        stamp = source_stamp(stored["source"])
        n = stored["fingerprint"]["length"]
        n_train = n - round(n * run.read_config()["val_fraction"])
        path = cache_path(run.data_dir, stored["fingerprint"], n_train)
        ids = cached_ids(path, stamp)
        if ids is not None and len(ids) == n_train:
            return Checker(ids, Vocab(stored["vocab"]), path, min_len)
    except (KeyError, TypeError, ValueError, AttributeError, KafkarnnError):
        stamp = None                                 # a damaged record: the checks below say so
    try:
        corpus, cfg = run_corpus(run, download=False)
    except KafkarnnError as e:
        eprint(f"kafkarnn: no copy check, the training text is gone or changed: {e}")
        return None
    train, _ = corpus.split(cfg.val_fraction)
    path = cache_path(run.data_dir, corpus.fingerprint, len(train))
    return Checker(train, corpus.vocab, path, min_len, stamp=stamp)


def copied_json(copied) -> dict:
    return {"longest": copied.longest, "min_len": copied.min_len, "note": copied.note,
            "stretches": [{"start": s, "length": n, "corpus_start": c}
                          for s, n, c in copied.stretches]}


def marked_for_terminal(text: str, copied) -> str:
    """`text` with its copied stretches in reverse video (it reads without colour too)."""
    from kafkarnn.train.copying import marked
    mask = marked(len(text), copied)
    out, inside = [], False
    for ch, m in zip(text, mask):
        if m != inside:
            out.append("\x1b[7m" if m else "\x1b[27m")
            inside = bool(m)
        out.append(ch)
    return "".join(out) + ("\x1b[27m" if inside else "")


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
        table.add_row(str(r["name"]), str(r["corpus"]), str(r["model"]),
                      f"{r['iter']:,}" if type(r["iter"]) is int else str(r["iter"]),
                      f"{best:.4f}" if isinstance(best, (int, float)) else "-", ngram, saved, now)
    console = Console()
    if not console.is_terminal:                      # into a file or a pipe: nothing cut short
        wide = console.measure(table, options=console.options.update_width(1000)).maximum
        console.width = max(wide, len(table.title))  # (the measure leaves the title out)
    console.print(table)
    return 0

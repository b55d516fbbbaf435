"""`kafkarnn baseline`: what counting gets — the n-gram baseline of a run's corpus, or of any text.

Each order's nats and bits per character on the validation split, the best order marked
(train/baseline.py computes and caches it); --json the same as one object. --mix adds the run's
network mixed with the best order's table (inspect/mixture.py).
Part of the command line (it never imports the monitor); errors are KafkarnnError, one line.
"""

from __future__ import annotations

import json
import math

from kafkarnn.cli.options import eprint
from kafkarnn.errors import KafkarnnError


def _text_and_split(args, data_dir):
    """(corpus, validation fraction, what to call it, the run or None): of --corpus, else of the
    run (or the latest)."""
    from kafkarnn.train.config import Config
    from kafkarnn.train.corpus import load_corpus
    if args.corpus is not None and args.run is not None:
        raise KafkarnnError("give --run or --corpus, not both")
    if args.corpus is not None and args.mix:
        raise KafkarnnError("--mix mixes a run's network with the table: give --run (or neither)")
    if args.corpus is not None:
        fraction = Config().val_fraction if args.val_fraction is None else args.val_fraction
        if not 0 < fraction < 1:
            raise KafkarnnError(f"--val-fraction must be between 0 and 1, not {fraction:g}")
        corpus = load_corpus(args.corpus, encoding=args.encoding or "utf-8", data_dir=data_dir,
                             log=lambda s: eprint(f"kafkarnn: {s}"))
        return corpus, fraction, corpus.name, None
    if args.val_fraction is not None or args.encoding is not None:
        raise KafkarnnError("--val-fraction and --encoding go with --corpus (a run keeps its own)")
    from kafkarnn.inspect.inference import pick_run
    from kafkarnn.train.matching import run_corpus
    run = pick_run(data_dir, args.run)
    corpus, cfg = run_corpus(run, log=lambda s: eprint(f"kafkarnn: {s}"))
    return corpus, cfg.val_fraction, f"run {run.name}'s corpus {corpus.name}", run


def cmd_baseline(args) -> int:
    from kafkarnn.runs.folder import resolve_data_dir
    from kafkarnn.train import baseline
    data_dir = resolve_data_dir(args.data_dir)
    corpus, fraction, where, run = _text_and_split(args, data_dir)
    base = baseline.get(data_dir, corpus, fraction)
    if base is None:
        raise KafkarnnError(f"{where} is too short for a baseline: it needs two characters of "
                            f"training text and two of validation text")
    mixed = None
    if args.mix:
        from kafkarnn.inspect.mixture import of_run
        mixed, meta, checkpoint = of_run(run, corpus, fraction, base)
        step = meta.get("iteration")
        source = {"run": run.name, "iteration": step if type(step) is int else None,
                  "checkpoint": checkpoint}
    if args.json:
        out = dict(base.to_json(), corpus=corpus.name, val_fraction=fraction,
                   sha256=corpus.fingerprint["sha256"])
        if mixed is not None:
            out["mixed"] = dict(mixed.to_json(), **source)
        print(json.dumps(out, indent=1))
        return 0
    sampled = " (sampled from a bigger text)" if base.sampled else ""
    print(f"n-gram baseline of {where}: interpolated Kneser-Ney, fitted on {base.train_chars:,} "
          f"training characters, scored on {base.val_chars:,} validation characters{sampled}")
    print(f"{'order':>5}  {'nats/char':>9}  {'bits/char':>9}")
    for n, nats in enumerate(base.nats, start=1):
        mark = "  <- best" if n == base.order else ""
        print(f"{n:>5}  {nats:>9.4f}  {nats / math.log(2):>9.4f}{mark}")
    if mixed is not None:
        _print_mix(mixed, source)
    return 0


def _print_mix(m, source) -> None:
    step = "" if source["iteration"] is None else f", step {source['iteration']:,}"
    table = f"{m.order}-gram table"
    print(f"\nthe network of run {source['run']} ({source['checkpoint']}{step}) and the {table},\n"
          f"on the same {m.chars:,} validation characters:")
    print(f"  {'':<24} {'nats/char':>9}  {'bits/char':>9}")
    for name, nats in (("network alone", m.network), (f"{table} alone", m.table),
                       (f"mixed, λ = {m.weight:.2f}", m.nats), ("mixed, cross-fitted", m.cross_fitted)):
        print(f"  {name:<24} {nats:>9.4f}  {nats / math.log(2):>9.4f}")
    print("λ: the network's share of each character's probability, fitted on validation\n"
          "(cross-fitted: λ fitted on each half and scored on the other, so fitting flatters nothing)")

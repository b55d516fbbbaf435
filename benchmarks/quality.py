"""Model quality for a time budget: train presets (or candidate configs) and report the best validation loss.

Each preset trains for --seconds of training time (the time spent in `Trainer.step()`, as the
CLI's --max-seconds counts it; validation is not charged) on --corpus, whose last 10% is the
validation split. Validation runs every --eval-every seconds of training and at the end; the best
parameters are kept. Reported: best validation loss in nats/char and bits/char, when it was
reached, the iterations, and a 200-character sample drawn from the best parameters.

`--set key=value` (repeatable) overrides a config field for every preset run, e.g.
`--presets default --set hidden=512 --set dropout=0.25`, to try candidates for the default.
The Trainer is driven directly: no run folder, no checkpoints.
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)                       # before NumPy loads

import argparse                               # noqa: E402
import dataclasses                            # noqa: E402
import math                                   # noqa: E402
import re                                     # noqa: E402
import time                                   # noqa: E402

import numpy as np                            # noqa: E402

import common                                 # noqa: E402
from kafkarnn.errors import KafkarnnError     # noqa: E402
from kafkarnn.train.config import PRESETS, Config, check  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402
from kafkarnn.train.trainer import Trainer, TrainingDiverged  # noqa: E402


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


def train_for(tr: Trainer, seconds: float, eval_every: float, log) -> dict:
    """Train for `seconds` of step time, validating every `eval_every` and at the end; keep the best."""
    best, best_params, best_at, history = math.inf, None, None, []
    spent, next_eval, failed = 0.0, eval_every, None
    wall0 = time.perf_counter()
    while True:
        stop = spent >= seconds
        if spent >= next_eval or stop:
            v = tr.evaluate()
            history.append({"train_s": spent, "iteration": tr.iteration, "smooth_loss": tr.smooth_loss,
                            "val": v})
            if v is not None and v < best:
                best, best_at = v, spent
                best_params = {k: p.copy() for k, p in tr.model.params.items()}
            log(f"  {spent:7.1f} s  iter {tr.iteration:>8,}  smooth {tr.smooth_loss:.4f}  "
                f"val {v:.4f}  best {best:.4f}")
            next_eval = spent + eval_every
        if stop or failed:
            break
        t0 = time.perf_counter()
        try:
            tr.step()
        except TrainingDiverged as e:
            failed = str(e)
        spent += time.perf_counter() - t0
    if best_params is not None:
        for k, p in best_params.items():
            tr.model.params[k][...] = p                      # sample from the best parameters
    return {"best_val": best, "best_at_s": best_at, "train_s": spent, "iterations": tr.iteration,
            "chars": tr.chars, "wall_s": time.perf_counter() - wall0, "history": history,
            "failed": failed}


def label(preset: str, overrides: dict) -> str:
    return preset + ("+" + ",".join(f"{k}={v}" for k, v in overrides.items()) if overrides else "")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--presets", default=",".join(PRESETS),
                    help=f"comma-separated presets to train (default: {','.join(PRESETS)})")
    ap.add_argument("--seconds", type=float, default=300.0, help="training seconds per preset (default 300)")
    ap.add_argument("--eval-every", type=float, default=15.0,
                    help="seconds of training between validations (default 15)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set hidden=512 (repeatable)")
    ap.add_argument("--sample-length", type=int, default=200, help="sample length (default 200)")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    ap.add_argument("--sample-seed", type=int, default=0, help="RNG seed of the sample (default 0)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.eval_every = 1.5, 0.5
    overrides = parse_overrides(args.set)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        ap.error(f"unknown presets: {', '.join(unknown)} (known: {', '.join(PRESETS)})")

    corpus = load_corpus(str(args.corpus))
    print(f"corpus {args.corpus} ({len(corpus.data):,} chars, vocabulary {len(corpus.vocab)}); "
          f"{args.seconds:g} s per preset; BLAS: {common.blas_summary()}")
    runs = []
    for name in presets:
        try:
            cfg = check(PRESETS[name].replace(**overrides))
        except KafkarnnError as e:
            raise SystemExit(f"{label(name, overrides)}: {e}") from None
        train, val = corpus.split(cfg.val_fraction)
        tr = Trainer(cfg, corpus.vocab, train, val)
        print(f"\n{label(name, overrides)}: {cfg.describe()}, {tr.model.n_params():,} parameters, "
              f"batch {cfg.batch}, seq {cfg.seq_len}, {cfg.optimizer} lr {cfg.lr:g}, dropout {cfg.dropout:g}, "
              f"weight drop {cfg.weight_drop:g}, "
              f"{cfg.dtype}", flush=True)
        result = train_for(tr, args.seconds, args.eval_every, lambda s: print(s, flush=True))
        text, _ = tr.generate("", args.sample_length, np.random.default_rng(args.sample_seed),
                              temperature=args.temperature)
        runs.append({"preset": name, "label": label(name, overrides), "config": cfg.to_dict(),
                     "n_params": tr.model.n_params(), **result,
                     "best_val_bits": result["best_val"] / math.log(2),
                     "chars_per_s": result["chars"] / max(result["train_s"], 1e-9), "sample": text})
        if result["failed"]:
            print(f"  stopped early: {result['failed']}")

    print(f"\nbest validation loss after {args.seconds:g} s of training (nats/char and bits/char)")
    print(common.table(runs, [("label", "preset"), ("n_params", "params"), ("iterations", "iter"),
                              ("chars_per_s", "chars/s"), ("best_val", "best nats"),
                              ("best_val_bits", "bits"), ("best_at_s", "at s"), ("wall_s", "wall s")]))
    for r in runs:
        print(f"\n--- {r['label']}: {args.sample_length} characters from the best parameters ---")
        print(r["sample"])
    name = "quality" + ("-" + re.sub(r"[^A-Za-z0-9.=,_-]", "_", label("", overrides)[1:])
                        if overrides else "")
    path = common.write_results(name, {"corpus": str(args.corpus), "seconds": args.seconds,
                                       "eval_every": args.eval_every, "overrides": overrides,
                                       "runs": runs}, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

"""Good whenever it stops: validation loss along one training trajectory, by iteration, for the
weights the run validates and for moving averages of them read off the same trajectory.

    python benchmarks/anytime.py --threads 1 --iters 1150 --every 50 --betas 0.99,0.995,0.998
    python benchmarks/anytime.py --threads 1 --iters 1150 --set optimizer=sfadamw --set decay_iters=0

One trajectory per invocation: the default preset (or `--preset`) fitted to the text as a new run is
(config.fit_to_text), with `--set KEY=VALUE` on top (the user's options win, as on the command
line). A trajectory depends on the iteration alone, so on a loaded machine methods are compared at
equal iterations, not seconds: run several invocations side by side. Every `--every` iterations
and at the end it validates (the trainer's fixed subset) the run's validated weights ("run": the
weights themselves, or the run's own average, or schedule-free's x) and, for each of `--betas`, a
bias-corrected moving average of those (engine/optim.py WeightAverage): the averages are only
read, so they do not change the trajectory. Prints one line per validation and writes JSON.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import common

common.early_threads(sys.argv)

import numpy as np  # noqa: E402  (after the thread count is set)
from quality import parse_overrides  # noqa: E402

from kafkarnn.engine.optim import TailAverage, WeightAverage  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402
from kafkarnn.train.launch import new_config  # noqa: E402
from kafkarnn.train.scoring import validation_loss  # noqa: E402
from kafkarnn.train.trainer import Trainer, build_model  # noqa: E402


FAILED = 3.0          # nats/char over a window: the failures seen run at ~10, good windows ~1


def zero_state_failures(model, val, windows: int, length: int = 256) -> int:
    """How many of `windows` windows of `length` characters, evenly spaced over val and each read
    from a zero state, the model scores above FAILED nats per character."""
    starts = np.linspace(0, len(val) - length - 1, windows).astype(np.int64)
    idx = starts + np.arange(length + 1)[:, None]                     # (length + 1, W)
    ids = val[idx].astype(np.intp)
    nll, _ = model.char_nll(ids[:-1], ids[1:], model.zero_state(windows))
    return int((nll.reshape(length, windows).mean(axis=0) > FAILED).sum())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--iters", type=int, default=1150, help="iterations to train (1150: the "
                    "default's 300 s on a quiet machine, benchmarks/README.md)")
    ap.add_argument("--every", type=int, default=50, help="iterations between validations (50)")
    ap.add_argument("--betas", default="", help="comma-separated decays of extra moving averages")
    ap.add_argument("--tails", default="", help="comma-separated η of extra polynomial-decay "
                    "averages (weight (η+1)/(k+η): they span about the last k/(η+1) updates)")
    ap.add_argument("--of-learned", action="store_true", help="the extra averages follow the "
                    "weights being learned, not the ones the run validates (to compare other η "
                    "with the run's own tail average)")
    ap.add_argument("--ramp-dropout", type=int, default=None, metavar="N", help="the same as "
                    "--set dropout_ramp=N (the name of the trial before it became an option)")
    ap.add_argument("--train-gap", action="store_true", help="at each validation also score the "
                    "validated weights on as much of the training text (its start), as validation "
                    "does: the gap between the two is how far the model has learnt its text by heart")
    ap.add_argument("--zero-state", type=int, default=0, metavar="W", help="at each validation "
                    "also read W windows of 256 characters evenly spaced over the validation split, "
                    "each from a zero state, and count those the validated weights score above "
                    f"{FAILED} nats/char (a state fallen into a regime it does not leave)")
    ap.add_argument("--preset", default=None, help="the preset a new run starts from (default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration field over the fitted default (repeatable)")
    ap.add_argument("--label", default=None, help="the run's name in the output")
    args = ap.parse_args(argv)
    if args.quick:
        args.iters, args.every = 6, 3
    overrides = parse_overrides(args.set)
    if args.ramp_dropout is not None:
        overrides["dropout_ramp"] = args.ramp_dropout
    label = args.label or (",".join(f"{k}={v}" for k, v in overrides.items()) or args.preset
                           or "default")
    corpus = load_corpus(str(args.corpus))
    cfg = new_config(args.preset, overrides, corpus)
    train, val = corpus.split(cfg.val_fraction)
    trainer = Trainer(cfg, corpus.vocab, train, val)
    trainer.groups.workers.set(args.threads or 1)   # groups on threads: the same bits at any count
    betas = [float(b) for b in args.betas.split(",") if b.strip()]
    followed = trainer.learned_weights if args.of_learned else trainer.validated_weights
    averages = {f"ema {b:g}": WeightAverage(followed(), b) for b in betas}
    for eta in (float(e) for e in args.tails.split(",") if e.strip()):
        averages[f"tail {eta:g}"] = TailAverage(followed(), eta)
    reader = build_model(cfg, len(corpus.vocab))            # validates the averages

    seen = trainer.train[:len(trainer.val)]                 # for --train-gap

    def validate() -> dict:
        out = {"run": trainer.evaluate()}
        if args.zero_state:
            with trainer.validated():
                out["failed"] = zero_state_failures(trainer.model, trainer.val, args.zero_state)
        if args.train_gap:
            with trainer.validated():
                out["train"] = validation_loss(trainer.groups, seen, True, 256)
        for name, avg in averages.items():
            reader.params.flat[...] = avg.validated
            out[name] = validation_loss(reader, trainer.val, True, 256)
        return out

    print(f"{label}: {cfg.optimizer}, lr {cfg.lr:g}, decay over {cfg.decay_iters}, warmup "
          f"{cfg.warmup_iters}, validates {cfg.weights()}; {common.blas_summary()}",
          flush=True)
    history, start = [], time.perf_counter()
    while trainer.iteration < args.iters:
        trainer.step()
        for avg in averages.values():
            avg.update(followed())
        it = trainer.iteration
        if it % args.every == 0 or it == args.iters:
            losses = validate()
            history.append({"iter": it, "wall_s": round(time.perf_counter() - start, 1), **losses})
            print(f"{label} iter {it:5d}  " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in losses.items()),
                  flush=True)
    names = ["run", *averages]
    best = {n: min((h[n], h["iter"]) for h in history) for n in names}
    final = {n: history[-1][n] for n in names}
    print(f"{label} best by iteration {args.iters}: " +
          "  ".join(f"{n} {v:.4f} (at {i})" for n, (v, i) in best.items()), flush=True)
    path = common.write_results("anytime-" + "".join(c if c.isalnum() or c in "=,._-" else "_"
                                                     for c in label),
                                {"label": label, "config": cfg.to_dict(), "iters": args.iters,
                                 "corpus": str(args.corpus), "history": history,
                                 "best": {n: {"val": v, "iter": i} for n, (v, i) in best.items()},
                                 "final": final,
                                 "bits": {n: v / math.log(2) for n, (v, _) in best.items()}},
                                args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

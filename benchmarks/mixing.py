"""The network and counting mixed: what each n-gram order adds to the network's best weights.

    python benchmarks/mixing.py --threads 1 --corpus ../shared/corpora/metamorphosis.txt --iters 1150
    python benchmarks/mixing.py --threads 1 --corpus /tmp/kjv1m.txt --iters 1150 --orders 6,8,10

One trajectory of the default preset fitted to the text as a new run is (`--set KEY=VALUE` on
top), at equal iterations as anytime.py: it validates every `--every` iterations and keeps the
validated weights of the best validation. Then, on the characters validation predicts, it mixes
those weights with the table of each order in `--orders` (inspect/mixture.py: λ by EM, and
cross-fitted on the halves), as `kafkarnn baseline --mix` does for a saved run.
"""

from __future__ import annotations

import argparse
import sys

import common

common.early_threads(sys.argv)

import numpy as np  # noqa: E402  (after the thread count is set)
from quality import parse_overrides  # noqa: E402

from kafkarnn.engine.ngram import NGram  # noqa: E402
from kafkarnn.inspect.mixture import mix, validation_characters  # noqa: E402
from kafkarnn.train.baseline import sample_train  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402
from kafkarnn.train.launch import new_config  # noqa: E402
from kafkarnn.train.trainer import Trainer, build_model  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--iters", type=int, default=1150, help="iterations to train (1150: the "
                    "default's 300 s on a quiet machine)")
    ap.add_argument("--every", type=int, default=50, help="iterations between validations (50)")
    ap.add_argument("--orders", default="4,6,8,10", help="the table orders to mix with")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration field over the fitted default (repeatable)")
    args = ap.parse_args(argv)
    if args.quick:
        args.iters, args.every = 6, 3
    corpus = load_corpus(str(args.corpus))
    cfg = new_config(None, parse_overrides(args.set), corpus)
    train, val = corpus.split(cfg.val_fraction)
    trainer = Trainer(cfg, corpus.vocab, train, val)
    trainer.groups.workers.set(args.threads or 1)
    best = (np.inf, 0, None)
    while trainer.iteration < args.iters:
        trainer.step()
        if trainer.iteration % args.every == 0 or trainer.iteration == args.iters:
            loss = trainer.evaluate()
            print(f"iter {trainer.iteration:5d}  val {loss:.4f}", flush=True)
            if loss < best[0]:
                best = (loss, trainer.iteration, trainer.validated_weights().copy())
    loss, at, weights = best
    reader = build_model(cfg, len(corpus.vocab))
    reader.params.flat[...] = weights                  # the best validation's weights
    network, windows = validation_characters(reader, val)
    orders = [int(o) for o in args.orders.split(",")]
    table = NGram(sample_train(train), len(corpus.vocab), max(orders))
    rows = []
    for order in orders:
        m = mix(network, table.nll(windows, order)[:, 1:], order)
        rows.append(m.to_json())
        print(f"best validation {loss:.4f} at {at}: network {m.network:.4f}  {order}-gram "
              f"{m.table:.4f}  mixed {m.nats:.4f} (λ {m.weight:.2f})  cross-fitted "
              f"{m.cross_fitted:.4f}", flush=True)
    path = common.write_results("mixing", {"corpus": str(args.corpus), "iters": args.iters,
                                           "config": cfg.to_dict(), "best_val": loss,
                                           "best_iter": at, "mixes": rows}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Sampling speed: the time to generate 200 characters from a preset's model (median of 20).

The model has fresh weights (the cost of a draw does not depend on training) and the corpus's
vocabulary. Timed: `Trainer.generate`, the same path as the CLI's sample command and the monitor:
prime with the prompt, then forward one character, scale, softmax, draw, 200 times. Beside it,
the matrix-vector products of those 200 characters timed alone: the part no NumPy sampler of this
model can avoid.
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)                       # before NumPy loads

import argparse                               # noqa: E402
import time                                   # noqa: E402

import numpy as np                            # noqa: E402

import common                                 # noqa: E402
from kafkarnn.train.config import PRESETS, check  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402
from kafkarnn.train.trainer import Trainer    # noqa: E402

TARGET_MS = 20.0    # the target for 200 characters from the default model


def products_alone_ms(model, length: int, repeats: int) -> float:
    """Milliseconds that `length` characters spend in the matrix-vector products alone: per
    character each layer's recurrent product, the input product of every layer above the first
    and the output product, each timed on its own (best of `repeats` samples).
    For big layers these products stream their matrices from cache or memory once a character,
    so this is the floor the cache bandwidth sets."""
    mats = [model.layer_params[l][c.recurrent_key] for l, c in enumerate(model.cells)]
    mats += [model.layer_params[l][c.input_keys[0]] for l, c in enumerate(model.cells) if l > 0]
    mats.append(model.params["Why"])
    total = 0.0
    for W in mats:
        v, out = np.ones(W.shape[1], dtype=W.dtype), np.empty(W.shape[0], dtype=W.dtype)
        total += min(common.seconds_per_call(lambda: np.dot(W, v, out=out), repeats)) * length
    return 1000 * total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--presets", default="default", help="comma-separated presets (default: default)")
    ap.add_argument("--length", type=int, default=200, help="characters per sample (default 200)")
    ap.add_argument("--repeats", type=int, default=20, help="timed samples (default 20)")
    ap.add_argument("--prompt", default="", help="priming text (default: none)")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 5
    corpus = load_corpus(str(args.corpus))
    train, val = corpus.split(0.1)
    print(f"vocabulary {len(corpus.vocab)}; {args.length} characters, median of {args.repeats}; "
          f"BLAS: {common.blas_summary()}")
    rows = []
    for name in (p.strip() for p in args.presets.split(",") if p.strip()):
        if name not in PRESETS:
            ap.error(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
        cfg = check(PRESETS[name])
        tr = Trainer(cfg, corpus.vocab, train, val)          # fresh weights from cfg.init
        rng = np.random.default_rng(0)
        tr.generate(args.prompt, args.length, rng, temperature=args.temperature)   # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            tr.generate(args.prompt, args.length, rng, temperature=args.temperature)
            times.append(time.perf_counter() - t0)
        ms = [1000 * t for t in times]
        med = common.median(ms)
        floor = products_alone_ms(tr.model, args.length, args.repeats)
        rows.append({"preset": name, "model": cfg.describe(), "median_ms": med, "min_ms": min(ms),
                     "max_ms": max(ms), "us_per_char": 1000 * med / args.length,
                     "products_alone_ms": floor,
                     "target_ms": TARGET_MS if name == "default" else None,
                     "met": (med < TARGET_MS) if name == "default" else None, "times_ms": ms})
    print(common.table(rows, [("preset", "preset"), ("model", "model"), ("median_ms", "median ms"),
                              ("min_ms", "min ms"), ("max_ms", "max ms"), ("us_per_char", "µs/char"),
                              ("products_alone_ms", "products alone ms"),
                              ("met", f"< {TARGET_MS:g} ms")]))
    path = common.write_results("sampling", {"length": args.length, "repeats": args.repeats,
                                             "prompt": args.prompt, "temperature": args.temperature,
                                             "rows": rows}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

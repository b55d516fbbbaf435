"""Sampling speed: the time to generate 200 characters from a preset's model (median of 20).

The model has fresh weights (the cost of a draw does not depend on training) and the corpus's
vocabulary. Timed: `Trainer.generate`, the same path as the CLI's sample command and the monitor:
prime with the prompt, then forward one character, scale, softmax, draw, 200 times.
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
        rows.append({"preset": name, "model": cfg.describe(), "median_ms": med, "min_ms": min(ms),
                     "max_ms": max(ms), "us_per_char": 1000 * med / args.length,
                     "target_ms": TARGET_MS if name == "default" else None,
                     "met": (med < TARGET_MS) if name == "default" else None, "times_ms": ms})
    print(common.table(rows, [("preset", "preset"), ("model", "model"), ("median_ms", "median ms"),
                              ("min_ms", "min ms"), ("max_ms", "max ms"), ("us_per_char", "µs/char"),
                              ("met", f"< {TARGET_MS:g} ms")]))
    path = common.write_results("sampling", {"length": args.length, "repeats": args.repeats,
                                             "prompt": args.prompt, "temperature": args.temperature,
                                             "rows": rows}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

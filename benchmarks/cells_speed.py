"""The minimal cells' speed: the log-space scan against the plain loop, and training against the GRU.

(a) scan vs loop: one minGRU / minLSTM layer's forward at batch 32, seq 128, hidden 384, float32,
    both forms of the recurrence h_t = a_t h_{t-1} + b_t (engine/cells/scan.py), the median of
    --repeats timed calls each (and the largest difference between their outputs).
(b) training: the default preset's shape (2 layers of 384, batch 32, seq-len 128, dropout,
    Adam, clip-norm) as the Trainer runs it, for gru (with its DropConnect 0.3, as trained by
    default), gru without DropConnect, mingru and minlstm (no recurrent matrix: no DropConnect);
    timed blocks taking turns, median chars/s of each and its ratio to the gru's. With
    `--blocks mlp,residual` also mingru and minlstm in those blocks (engine/blocks.py), beside
    their plain stacks; `--mlp-ratios 4,2` the mlp block's widths to time (in multiples of H).

`--threads N` sets the BLAS/OpenMP thread count before NumPy loads (compare 1 and 2 threads).
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)                       # before NumPy loads

import argparse                               # noqa: E402
import time                                   # noqa: E402

import numpy as np                            # noqa: E402

import common                                 # noqa: E402
from throughput import KafkarnnRunner, alternate   # noqa: E402
from kafkarnn.engine.cells import cell_class  # noqa: E402
from kafkarnn.train.config import PRESETS, fit_to_cell  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402

SHAPE = dict(T=128, B=32, H=384)


def scan_vs_loop(name: str, repeats: int) -> dict:
    T, B, H = SHAPE["T"], SHAPE["B"], SHAPE["H"]
    cell = cell_class(name)(H, H)
    G = {"mingru": 2, "minlstm": 3}[name] * H
    rng = np.random.default_rng(0)
    xproj = rng.normal(0, 1, (T, G, B)).astype(np.float32)
    state = rng.normal(0, 0.5, (1, H, B)).astype(np.float32)
    out, times = {}, {}
    for form in ("loop", "scan"):
        cell.form = form
        call = lambda: cell.forward({}, xproj, state)   # noqa: E731
        out[form] = np.array(call()[0])
        times[form] = common.median(common.seconds_per_call(call, repeats=repeats))
    return {"cell": name, "loop_ms": 1e3 * times["loop"], "scan_ms": 1e3 * times["scan"],
            "scan/loop": times["scan"] / times["loop"],
            "max_diff": float(np.abs(out["loop"] - out["scan"]).max())}


def training(args) -> list[dict]:
    corpus = load_corpus(str(args.corpus))
    base = PRESETS["default"]
    configs = {"gru": base, "gru no DropConnect": base.replace(weight_drop=0.0),
               "mingru": fit_to_cell(base.replace(model="mingru")),
               "minlstm": fit_to_cell(base.replace(model="minlstm"))}
    for cell in ("mingru", "minlstm"):
        for kind in args.blocks:
            for ratio in (args.mlp_ratios if kind == "mlp" else [4]):
                label = f"{cell} {kind}" + (f" ×{ratio}" if kind == "mlp" else "")
                configs[label] = configs[cell].replace(block=kind, mlp_ratio=ratio)
    train, val = corpus.split(base.val_fraction)
    runners = []
    for name, cfg in configs.items():
        r = KafkarnnRunner(cfg, corpus.vocab, train, val)
        r.name = name
        runners.append(r)
    rates = alternate(runners, args.rounds, args.seconds, warmup=args.seconds)
    gru = common.median(rates[0])
    return [{"model": r.name, "chars_per_s": common.median(rs), "vs_gru": common.median(rs) / gru}
            for r, rs in zip(runners, rates)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p)
    p.add_argument("--repeats", type=int, default=15, help="timed calls per form in (a)")
    p.add_argument("--rounds", type=int, default=5, help="timed blocks per model in (b)")
    p.add_argument("--seconds", type=float, default=3.0, help="length of one block in (b)")
    p.add_argument("--blocks", default="", help="comma-separated blocks to time the min-cells in "
                   "as well in (b): residual, mlp")
    p.add_argument("--mlp-ratios", default="4", help="comma-separated widths of the mlp block (4)")
    p.add_argument("--no-scan", action="store_true", help="skip (a)")
    args = p.parse_args(argv)
    args.blocks = [b for b in args.blocks.split(",") if b]
    args.mlp_ratios = [int(r) for r in args.mlp_ratios.split(",")]
    t0 = time.time()
    scans = [] if args.no_scan else [scan_vs_loop(n, args.repeats) for n in ("mingru", "minlstm")]
    if scans:
        print(common.table(scans, [("cell", "cell"), ("loop_ms", "loop ms"), ("scan_ms", "scan ms"),
                                   ("scan/loop", "scan/loop"), ("max_diff", "max |Δh|")]))
    train = training(args)
    print(common.table(train, [("model", "model"), ("chars_per_s", "chars/s"), ("vs_gru", "× gru")]))
    print(common.blas_summary(), f"· {time.time() - t0:.0f} s")
    common.write_results(f"cells_speed_t{args.threads}", {"scan_vs_loop": scans, "training": train},
                         args.out)


if __name__ == "__main__":
    main()

"""Copied or new: the cost of the copy index, and how copying grows as a model overfits.

1. build: the suffix array of texts of growing size (a source text repeated), by libdivsufsort
   (pydivsufsort, when installed) and by NumPy prefix doubling, each in a fresh child process:
   build seconds, peak extra memory (VmHWM after minus before, the ids already loaded:
   the array and what the build needs besides), the time to check a
   200-character sample (median of 50: half copied from the text, half random symbols), and the
   time to read the cached array back memory-mapped.
2. overhead: training steps of the small preset alone, then while a Checker builds the index of
   the largest text in its background thread (what the monitor does at start).
3. growth: one run on --corpus with a big model and no dropout; at checkpoints along the way
   the train and validation loss and the longest stretch that samples share with the training
   text (median and max over --samples samples of 200 characters at temperature 1).
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)                       # before NumPy loads

import argparse                               # noqa: E402
import glob                                   # noqa: E402
import json                                   # noqa: E402
import subprocess                             # noqa: E402
import tempfile                               # noqa: E402
import time                                   # noqa: E402
from pathlib import Path                      # noqa: E402

import numpy as np                            # noqa: E402

import common                                 # noqa: E402

STDLIB = f"{sys.base_prefix}/lib/python{sys.version_info.major}.{sys.version_info.minor}/*.py"

CHILD = r"""
import json, resource, sys, time
import numpy as np
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from kafkarnn.train.copying import CopyIndex, check, suffix_array
from kafkarnn.train.copy_index import load_or_build
ids = np.load(sys.argv[2])                 # the text's ids, and nothing else, before the build
symbols = int(sys.argv[3])
def rss():
    # the peak of this process's own memory: ru_maxrss would start at the parent's (Linux)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024    # MiB
before = rss()
t0 = time.perf_counter()
sa = suffix_array(ids, fast=sys.argv[4] == "libdivsufsort")
build = time.perf_counter() - t0
peak = rss() - before
index = CopyIndex(ids, sa)
rng = np.random.default_rng(0)
times = []
for k in range(50):
    if k % 2:
        start = int(rng.integers(0, len(ids) - 200))
        sample = ids[start:start + 200].astype(np.int64)
    else:
        sample = rng.integers(0, symbols, 200)
    t0 = time.perf_counter()
    check(index, sample)
    times.append(time.perf_counter() - t0)
cache = Path(sys.argv[5])
load_or_build(ids, cache)                  # writes the cache
t0 = time.perf_counter()
again, built = load_or_build(ids, cache)
load = time.perf_counter() - t0
assert not built and np.array_equal(again, sa)
print(json.dumps({"build_s": build, "peak_extra_mib": peak, "check_ms": 1000 * float(np.median(times)),
                  "check_max_ms": 1000 * max(times), "cached_load_ms": 1000 * load,
                  "symbols": symbols}))
"""


def source_text(path: str | None, mb: float, folder: Path) -> Path:
    """A text of at least `mb` MB: --source, else the stdlib's *.py files, repeated."""
    raw = Path(path).read_text(encoding="utf-8") if path else "".join(
        Path(p).read_text(encoding="utf-8", errors="replace") for p in sorted(glob.glob(STDLIB)))
    target = int(mb * 1e6)
    text = raw * (target // len(raw) + 1)
    out = folder / "source.txt"
    out.write_text(text[:target], encoding="utf-8")
    return out


def build_rows(sizes, methods, numpy_max_mb, src: Path, folder: Path) -> list[dict]:
    from kafkarnn.engine.vocab import Vocab
    rows = []
    for mb in sizes:
        text = src.read_text(encoding="utf-8")[:int(mb * 1e6)]
        vocab = Vocab.from_text(text)
        ids_path = folder / "ids.npy"
        np.save(ids_path, vocab.encode(text))
        del text
        for method in methods:
            if method == "numpy" and mb > numpy_max_mb:
                continue
            cache = folder / f"sa-{method}-{mb}.npy"
            proc = subprocess.run([sys.executable, "-c", CHILD, str(common.REPO), str(ids_path),
                                   str(len(vocab)), method, str(cache)],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(proc.stderr[-2000:])
            row = {"mb": mb, "method": method, **json.loads(proc.stdout)}
            cache.unlink(missing_ok=True)
            print(common.table([row], COLUMNS), flush=True)
            rows.append(row)
    return rows


COLUMNS = [("mb", "MB"), ("method", "method"), ("build_s", "build s"),
           ("peak_extra_mib", "peak extra MiB"), ("check_ms", "check 200 ms"),
           ("check_max_ms", "max ms"), ("cached_load_ms", "cached load ms")]


def overhead(src: Path, mb: float, corpus: Path, folder: Path, steps: int) -> dict:
    """Seconds per training step alone, then while the index of `mb` MB builds beside it."""
    from kafkarnn.engine.vocab import Vocab
    from kafkarnn.train.copy_index import Checker
    from kafkarnn.train.config import PRESETS, check
    from kafkarnn.train.corpus import load_corpus
    from kafkarnn.train.trainer import Trainer
    c = load_corpus(str(corpus))
    train, val = c.split(0.1)
    tr = Trainer(check(PRESETS["small"]), c.vocab, train, val)

    def timed(n):
        t0 = time.perf_counter()
        for _ in range(n):
            tr.step()
        return (time.perf_counter() - t0) / n

    timed(5)
    alone = timed(steps)
    text = src.read_text(encoding="utf-8")[:int(mb * 1e6)]
    big = Vocab.from_text(text)
    ids = big.encode(text)
    del text
    t0 = time.perf_counter()
    checker = Checker(ids, big, folder / "overhead.npy")
    during = timed(steps)
    building = not checker.wait(0.0)
    checker.wait()
    return {"mb": mb, "step_s_alone": alone, "step_s_while_building": during,
            "still_building_after_steps": building, "index_ready_s": time.perf_counter() - t0}


def growth(corpus: Path, seconds: float, points: int, samples: int, hidden: int) -> list[dict]:
    from kafkarnn.train.copying import CopyIndex, check as copy_check, suffix_array
    from kafkarnn.train.config import PRESETS, check
    from kafkarnn.train.corpus import load_corpus
    from kafkarnn.train.scoring import validation_loss
    from kafkarnn.train.trainer import Trainer
    c = load_corpus(str(corpus))
    train, val = c.split(0.1)
    cfg = check(PRESETS["small"].__class__(**{**PRESETS["small"].to_dict(), "hidden": hidden,
                                             "layers": 2, "dropout": 0.0}))
    tr = Trainer(cfg, c.vocab, train, val)
    index = CopyIndex(train, suffix_array(train))
    rng = np.random.default_rng(1)
    rows, spent = [], 0.0
    for k in range(points + 1):
        if k:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / points:
                tr.step()
            spent += time.perf_counter() - t0
        train_loss = validation_loss(tr.model, train[:len(val)])    # the same length as val
        val_loss = tr.evaluate()
        longest = []
        for _ in range(samples):
            text, _ = tr.generate("", 200, rng, 1.0)
            longest.append(copy_check(index, [c.vocab.index[ch] for ch in text]).longest)
        row = {"iter": tr.iteration, "train_s": round(spent, 1), "train_loss": train_loss,
               "val_loss": val_loss, "gap": val_loss - train_loss,
               "longest_median": float(np.median(longest)), "longest_max": max(longest)}
        print(common.table([row], [(k, k) for k in row]), flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--sizes", default="0.118,1,10,30,100", help="MB of text to index")
    ap.add_argument("--source", help="the text repeated for --sizes (default: stdlib *.py)")
    ap.add_argument("--numpy-max-mb", type=float, default=30, help="largest size for NumPy")
    ap.add_argument("--parts", default="build,overhead,growth")
    ap.add_argument("--growth-seconds", type=float, default=240)
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=256)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.growth_seconds, args.points, args.samples = "0.05", 2, 2, 2
        args.hidden = 32
    try:
        import pydivsufsort  # noqa: F401
        methods = ["libdivsufsort", "numpy"]
    except ImportError:
        methods = ["numpy"]
    sizes = [float(s) for s in args.sizes.split(",")]
    parts = args.parts.split(",")
    out: dict = {"methods": methods}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = source_text(args.source, max(sizes), folder)
        if "build" in parts:
            out["build"] = build_rows(sizes, methods, args.numpy_max_mb, src, folder)
        if "overhead" in parts:
            out["overhead"] = overhead(src, max(sizes), args.corpus, folder, 20 if args.quick else 100)
            print(out["overhead"], flush=True)
        if "growth" in parts:
            out["growth"] = growth(args.corpus, args.growth_seconds, args.points, args.samples,
                                   args.hidden)
    print(f"wrote {common.write_results('copying', out, args.out)}")


if __name__ == "__main__":
    main()

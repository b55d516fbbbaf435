"""Corpus scaling: load time and peak memory of `load_corpus` on generated 10 MB and 100 MB texts.

The texts are a shuffled mix of made-up words with punctuation and newlines over ~80 distinct
characters (26 + 26 letters, 10 digits, 18 punctuation and whitespace: 80; ASCII by default, so a byte is a character; --non-ascii mixes in a few characters
that take 2–3 bytes in UTF-8 and make Python store the text at 2 bytes per character).

Each load runs in a fresh child process. Peak memory is the child's maximum resident set size
(resource.getrusage(RUSAGE_CHILDREN).ru_maxrss, read after the child ends) minus that of a baseline
child that only imports kafkarnn's corpus module. RUSAGE_CHILDREN is a running maximum over all
children, so the children run from small to large, and each child also reports its own
RUSAGE_SELF figure, which is the number used. The parent imports no NumPy and generates the files
a chunk at a time so that its own peak (which Linux carries into a child across fork/exec) stays
below the baseline child's. The files are freshly written, so they are read from the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

common.early_threads(sys.argv)        # the loader children inherit the thread settings

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from kafkarnn.train.corpus import load_corpus
t1 = time.perf_counter()
out = {"import_s": t1 - t0}
if len(sys.argv) > 1:
    c = load_corpus(sys.argv[1])
    out.update(load_s=time.perf_counter() - t1, chars=int(len(c.data)), vocab=len(c.vocab),
               dtype=str(c.data.dtype))
out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""

LETTERS = "abcdefghijklmnopqrstuvwxyz"
ASCII_EXTRA = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NON_ASCII = "éüäöß’“”—"
MB = 1_000_000


def word_pool(rng: random.Random, non_ascii: bool, n: int = 20_000) -> list[str]:
    lower = LETTERS + ("éüäöß" if non_ascii else "")
    pool = []
    for _ in range(n):
        w = "".join(rng.choices(lower, k=rng.choice((1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 11))))
        r = rng.random()
        if r < 0.15:
            w = w.capitalize()
        elif r < 0.18:
            w = w.upper()
        elif r < 0.21:
            w = "".join(rng.choices(ASCII_EXTRA[:10], k=rng.randint(1, 4)))       # numbers
        pool.append(w)
    return pool


def separators(non_ascii: bool) -> tuple[list[str], list[float]]:
    seps = [" ", ", ", ". ", ".\n", "; ", ": ", "! ", "? ", "\n", "\n\n", " - ", " (", ") ",
            ' "', '" ', " '", "' ", " [", "] ", " & ", " * ", "/"]             # 18 distinct
    weights = [70, 8, 6, 2, 1, 1, 0.5, 0.5, 3, 1] + [0.2] * (len(seps) - 10)
    if non_ascii:
        seps += [" — ", "’", " “", "” "]
        weights += [0.5, 0.5, 0.3, 0.3]
    return seps, weights


def generate(path: Path, size: int, seed: int, non_ascii: bool) -> dict:
    """Write about `size` bytes of text to path; returns its size and distinct characters."""
    rng = random.Random(seed)
    pool = word_pool(rng, non_ascii)
    seps, weights = separators(non_ascii)
    written, chars = 0, set()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while written < size:
            n = 100_000
            words = rng.choices(pool, k=n)
            gaps = rng.choices(seps, weights, k=n)
            chunk = "".join(w + s for w, s in zip(words, gaps))
            data = chunk.encode("utf-8")
            if written + len(data) > size:
                data = chunk[:size - written].encode("utf-8")   # ASCII: exactly size bytes
            f.write(data.decode("utf-8"))
            chars.update(chunk[:2000])
            written += len(data)
    return {"bytes": path.stat().st_size, "distinct_chars_sampled": len(chars)}


def run_child(path: Path | None) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(common.REPO),
                                                                    os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *([str(path)] if path else [])],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"loading {path} failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    out["children_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap, corpus=False)
    ap.add_argument("--sizes", default="10,100", help="file sizes in MB, comma-separated (default 10,100)")
    ap.add_argument("--repeats", type=int, default=1, help="loads per size; the median time is reported")
    ap.add_argument("--non-ascii", action="store_true", help="mix in characters beyond ASCII")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the files (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0, help="text generator seed")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes = "1,5"
    sizes = sorted(float(s) for s in args.sizes.split(",") if s.strip())

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        files = []
        for mb in sizes:
            path = Path(tmp) / f"corpus_{mb:g}MB.txt"
            t0 = time.perf_counter()
            info = generate(path, int(mb * MB), args.seed, args.non_ascii)
            files.append((mb, path, info))
            print(f"generated {path.name}: {info['bytes']:,} bytes in {time.perf_counter() - t0:.1f} s",
                  flush=True)
        base = run_child(None)
        print(f"baseline child (imports only): {base['maxrss_kib'] / 1024:.1f} MiB peak", flush=True)
        rows = []
        for mb, path, info in files:                   # small to large: RUSAGE_CHILDREN only grows
            loads = [run_child(path) for _ in range(args.repeats)]
            peak_kib = max(l["maxrss_kib"] for l in loads)
            extra = (peak_kib - base["maxrss_kib"]) * 1024
            load_s = common.median([l["load_s"] for l in loads])
            rows.append({"size_mb": mb, "bytes": info["bytes"], "chars": loads[0]["chars"],
                         "vocab": loads[0]["vocab"], "load_s": load_s,
                         "mb_per_s": info["bytes"] / MB / load_s, "peak_mib": peak_kib / 1024,
                         "extra_mib": extra / 2**20, "ratio": extra / info["bytes"],
                         "load_s_all": [l["load_s"] for l in loads], "children": loads})
            print(f"loaded {path.name}: {load_s:.2f} s, peak {extra / 2**20:.0f} MiB above baseline",
                  flush=True)
    print(common.table(rows, [("size_mb", "MB"), ("chars", "chars"), ("vocab", "vocab"),
                              ("load_s", "load s"), ("mb_per_s", "MB/s"), ("peak_mib", "child peak MiB"),
                              ("extra_mib", "above baseline MiB"), ("ratio", "peak / file size")]))
    print(f"targets: 100 MB loads in < 20 s with peak < 4× the file size; parent peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    path = common.write_results("corpus_scaling", {
        "non_ascii": args.non_ascii, "seed": args.seed, "baseline_child": base, "rows": rows,
        "parent_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Does a resumed run end with the bits of a straight one, at the automatic thread count?

    python benchmarks/same_bits.py --coretype Haswell --coretype SkylakeX [--iters 16] [--preset default]

For each kernel family named (OPENBLAS_CORETYPE, set in the children's environment alone; `own`
leaves the processor's choice), three fresh runs through the real command line, no `--threads`:
straight to N iterations, then N/2 and a resume to N. Prints how many of the checkpoint's arrays
differ between them (the metadata, with its clock times, left out). The promise (docs/ssh.md,
"Threads"): none, on any kernels.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import common
import numpy as np


def train(home: Path, iters: int, coretype: str, args) -> None:
    env = {k: v for k, v in os.environ.items() if k not in common.CORE_VARS + common.THREAD_VARS}
    if coretype != "own":
        env["OPENBLAS_CORETYPE"] = coretype
    env["PYTHONPATH"] = str(common.REPO)
    proc = subprocess.run([sys.executable, "-m", "kafkarnn", "--headless", "--corpus", args.corpus,
                           "--run", "r", "--preset", args.preset, "--max-iters", str(iters),
                           "--schedule", "fixed",      # (a budget would fit each part's decay to its limit)
                           "--eval-every", "1e9", "--save-every", "1e9", "--data-dir", str(home)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"kafkarnn failed: {proc.stderr.strip().splitlines()[-1:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coretype", action="append", help="OPENBLAS_CORETYPE values, or own")
    ap.add_argument("--iters", type=int, default=16)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--corpus", default=str(common.DEFAULT_CORPUS))
    args = ap.parse_args()
    for coretype in args.coretype or ["own"]:
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp, "straight"), Path(tmp, "resumed")
            train(a, args.iters, coretype, args)
            train(b, args.iters // 2, coretype, args)
            train(b, args.iters, coretype, args)
            one = np.load(a / "runs" / "r" / "checkpoint.npz")
            two = np.load(b / "runs" / "r" / "checkpoint.npz")
            keys = [k for k in one.files if k != "__meta__"]
            differ = [k for k in keys if not np.array_equal(one[k], two[k])]
            print(f"{coretype}: {len(differ)} of {len(keys)} arrays differ"
                  + (f" ({', '.join(differ[:4])}{', …' if len(differ) > 4 else ''})" if differ else ""),
                  flush=True)


if __name__ == "__main__":
    main()

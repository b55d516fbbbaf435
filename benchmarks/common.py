"""What every benchmark script shares: the BLAS thread option, machine facts, tables and JSON results.

This module imports no NumPy at load time, so a script can call `early_threads()` first and set
the BLAS thread count before NumPy (and its OpenBLAS) is loaded.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "metamorphosis.txt"   # ../shared/corpora/…
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CORE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")     # set, they pin OpenBLAS to other kernels

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))        # benchmark this checkout's kafkarnn


def early_threads(argv: list[str]) -> int | None:
    """Apply `--threads N` from argv to the BLAS environment variables; call before importing NumPy.

    Returns N, or None when the option is absent (the environment is left as it is).
    """
    n = None
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif arg.startswith("--threads="):
            n = arg.split("=", 1)[1]
    if n is None:
        return None
    try:
        n = int(n)
    except ValueError:
        return None                       # argparse reports the bad value
    if "numpy" in sys.modules and any(os.environ.get(v) != str(n) for v in THREAD_VARS):
        print("warning: numpy was imported before --threads was applied; the setting may not take",
              file=sys.stderr)
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    return n


def add_common_args(parser, *, corpus: bool = True) -> None:
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="BLAS/OpenMP threads (sets OPENBLAS_NUM_THREADS and OMP_NUM_THREADS "
                             "before NumPy loads); default: leave the environment as it is")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON results (default: benchmarks/results/<name>.json)")
    if corpus:
        parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                            help=f"text file to train on (default: {DEFAULT_CORPUS})")


def blas_threads() -> list[dict]:
    """The thread pools loaded in this process (threadpoolctl), else what the environment asks for."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"source": "environment", **{v: os.environ.get(v) for v in THREAD_VARS}}]
    return [{k: info.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                      "architecture", "prefix")}
            for info in threadpool_info()]


def blas_summary() -> str:
    pools = blas_threads()
    if pools and pools[0].get("source") == "environment":
        return ", ".join(f"{k}={v}" for k, v in pools[0].items() if k != "source")
    return ", ".join(f"{p['internal_api']}({p['prefix']}): {p['num_threads']} threads"
                     + (f", {p['architecture']} kernels" if p.get("architecture") else "") for p in pools)


def machine() -> dict:
    """Facts about this machine and process that a reader needs to compare two results."""
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "env": {v: os.environ.get(v) for v in THREAD_VARS + CORE_VARS}}
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    if "numpy" in sys.modules:
        info["numpy"] = sys.modules["numpy"].__version__
    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    info["blas"] = blas_threads()
    return info


def median(values) -> float:
    return float(statistics.median(values))


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Rows of dicts as a fixed-width text table; columns are (key, header) pairs."""
    cells = [[h for _, h in columns]]
    for r in rows:
        cells.append([_fmt(r.get(k)) for k, _ in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if v == 0 or abs(v) >= 0.01:
            return f"{v:.3f}"
        return f"{v:.2e}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_results(name: str, payload: dict, out: Path | None = None) -> Path:
    """Write payload (plus the machine facts and the command line) as JSON; returns the path."""
    path = out or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "argv": sys.argv[1:], "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": machine(), **payload}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def seconds_per_call(call, repeats: int = 7, min_time: float = 0.01) -> list[float]:
    """`repeats` timings of call(), in seconds per call; each sample runs it enough times to
    take at least min_time seconds. Warmed up by one call first."""
    call()
    t0 = time.perf_counter()
    call()
    reps = max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        samples.append((time.perf_counter() - t0) / reps)
    return samples


def gemm_gflops(m: int, k: int, n: int, dtype: str = "float32", repeats: int = 7,
                min_time: float = 0.02) -> float:
    """Median GFLOP/s of (m, k) @ (k, n) in NumPy; each timed sample runs at least min_time seconds."""
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.empty((m, n), dtype=dtype)
    seconds = seconds_per_call(lambda: np.matmul(a, b, out=c), repeats, min_time)
    return median([2.0 * m * k * n / t / 1e9 for t in seconds])


def drain(fd: int):
    """Read a pseudo-terminal's output in a daemon thread and drop it: a terminal that nobody
    reads would block the app writing to it. Returns the thread."""
    import threading

    def read():
        while True:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


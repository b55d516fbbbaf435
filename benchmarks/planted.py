"""Planted bugs: is each promise of the newer work guarded by a test that fails when it breaks?

Every row of planted_bugs.BUGS is one realistic mistake: an exact snippet of one source file and
its broken replacement. For each, this script copies the checkout (`git ls-files`) to a temporary
folder, makes that one replacement (refusing when the snippet is not found exactly once, so the
table cannot go stale silently), and runs the row's test files there:

    python -m pytest -q -x -p no:cacheprovider -n 0 <test files>     (PYTHONPATH at the copy)

under a shared flock on /tmp/kafkarnn-bench.lock, so a benchmark holding it exclusively is never
disturbed (the script also holds it shared from the first bug to the last). A bug is `caught` when the tests fail, `MISSED` when they pass. Exit status 1 if any
bug was missed or could not be planted.

    python benchmarks/planted.py                           # every bug, its own test files
    python benchmarks/planted.py --only ema-not-validated  # one bug
    python benchmarks/planted.py --all-tests               # the default test command for each bug (slow)
    python benchmarks/planted.py --list                    # the table, nothing run
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planted_bugs import BUGS, Bug

REPO = Path(__file__).resolve().parent.parent
LOCK = "/tmp/kafkarnn-bench.lock"


def tracked_files(repo: Path) -> list[str]:
    """The files git tracks in the checkout (what a clone would have), as paths relative to it."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True)
    return [p for p in out.stdout.decode("utf-8").split("\0") if p]


def copy_tree(repo: Path, into: Path) -> None:
    for rel in tracked_files(repo):
        src = repo / rel
        if not src.is_file():               # deleted in the working tree but still tracked
            continue
        dst = into / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def plant(root: Path, bug: Bug) -> None:
    """Make the bug's one replacement under root; ValueError unless its snippet occurs exactly once."""
    path = root / bug.file
    text = path.read_text(encoding="utf-8")
    found = text.count(bug.snippet)
    if found != 1:
        raise ValueError(f"{bug.name}: the snippet occurs {found} times in {bug.file}, not once")
    path.write_text(text.replace(bug.snippet, bug.broken), encoding="utf-8")


def check_table(repo: Path) -> list[str]:
    """What is wrong with the table against this checkout: stale snippets, missing test files."""
    problems = []
    for bug in BUGS:
        if bug.snippet == bug.broken:
            problems.append(f"{bug.name}: the replacement changes nothing")
        found = (repo / bug.file).read_text(encoding="utf-8").count(bug.snippet)
        if found != 1:
            problems.append(f"{bug.name}: the snippet occurs {found} times in {bug.file}, not once")
        problems += [f"{bug.name}: no test file {t}" for t in bug.tests
                     if not (repo / t.split("::")[0]).is_file()]
    return problems


def hold_shared_lock() -> int:
    """A shared hold on the benchmark lock for the whole table: a benchmark waiting for it
    exclusively would otherwise slip in between two bugs (while the next copy is made) and make
    every bug wait for a whole benchmark. Each bug's pytest also runs under `flock -s`."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def run_one(repo: Path, bug: Bug, all_tests: bool) -> tuple[str, float, str]:
    """(verdict, seconds the tests ran, their last lines) for one bug planted in a fresh copy."""
    with tempfile.TemporaryDirectory(prefix=f"planted-{bug.name}-") as tmp:
        root = Path(tmp)
        copy_tree(repo, root)
        plant(root, bug)
        tests = [] if all_tests else list(bug.tests)
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
        cmd = ["flock", "-s", LOCK, sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               "-n", "0", *tests]                   # in one process: a bug's few files start faster
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
    seconds = pytest_seconds(tail, seconds)
    if proc.returncode == 1:
        return "caught", seconds, tail
    if proc.returncode == 0:
        return "MISSED", seconds, tail
    return f"ERROR (pytest exit {proc.returncode})", seconds, tail     # collection error, usage …


def pytest_seconds(tail: str, wall: float) -> float:
    """The seconds pytest says it ran ("1 failed, 3 passed in 4.21s"), not the wait for the lock;
    the wall time when it says none."""
    found = re.findall(r" in ([0-9.]+)s", tail)
    return float(found[-1]) if found else wall


def first_failure(tail: str) -> str:
    """The test that failed, from pytest's short summary (`FAILED path::name - why`)."""
    for line in tail.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].split(" ", 1)[1]
    return ""


def run_table(chosen: list[Bug], all_tests: bool, verbose: bool) -> list[str]:
    """Plant and test each bug in turn, printing a line for each; the names of those not caught."""
    held = hold_shared_lock()
    print(f"{'bug':<30} {'area':<10} {'verdict':<8} {'s':>6}  caught by")
    missed, started = [], time.perf_counter()
    for bug in chosen:
        verdict, seconds, tail = run_one(REPO, bug, all_tests)
        print(f"{bug.name:<30} {bug.area:<10} {verdict:<8} {seconds:6.1f}  {first_failure(tail)}",
              flush=True)
        if verbose or verdict != "caught":
            print("    " + tail.replace("\n", "\n    "), flush=True)
        if verdict != "caught":
            missed.append(bug.name)
    os.close(held)
    print(f"{len(chosen) - len(missed)} of {len(chosen)} caught in {time.perf_counter() - started:.0f} s"
          + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="NAME", action="append",
                        help="run only this bug (may be repeated)")
    parser.add_argument("--all-tests", action="store_true",
                        help="run the default test command for each bug, not its test files (slow)")
    parser.add_argument("--list", action="store_true", help="print the table and run nothing")
    parser.add_argument("--verbose", action="store_true", help="print the tests' last lines for each bug")
    args = parser.parse_args(argv)

    names = [b.name for b in BUGS]
    if len(set(names)) != len(names):
        print("planted: two bugs share a name", file=sys.stderr)
        return 2
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        print(f"planted: no bug named {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    problems = check_table(REPO)
    if problems:
        print("planted: the table is stale:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    chosen = [b for b in BUGS if not args.only or b.name in args.only]
    if args.list:
        for b in chosen:
            print(f"{b.name:<30} {b.area:<10} {b.file:<36} {b.promise}")
        return 0

    missed = run_table(chosen, args.all_tests, args.verbose)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The view of a running sweep: a Rich live table in a terminal, plain progress lines in a log;
then the comparison of its runs. Ctrl-C or `q` leaves the view, never the sweep."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time

from kafkarnn.cli.options import eprint
from kafkarnn.errors import KafkarnnError
from kafkarnn.sweep.folder import TrialStatus
from kafkarnn.sweep.table import Row, counts, rows, seconds_left

REFRESH_S = 1.0
POLL_S = 0.1                 # how soon the view sees that the coordinator ended
LINE_EVERY_S = 10.0          # without a terminal: a progress line this often, or on a change


def watch(folder) -> int:
    """Show the sweep until its coordinator ends, then compare its runs; exit code."""
    terminal = sys.stdout.isatty() and sys.stdin.isatty()
    try:
        (_live if terminal else _lines)(folder)
    except KeyboardInterrupt:
        _detached(folder)
        return 0
    return finish(folder)


def _detached(folder) -> None:
    pid = folder.coordinator()
    goes_on = f"goes on in the background (process {pid})" if pid else "is not running"
    eprint(f"kafkarnn: sweep {folder.name} {goes_on} — `kafkarnn sweep {folder.name}` shows it "
           f"again, `kafkarnn sweep {folder.name} --stop` ends it")


def finish(folder) -> int:
    """The comparison table, and how the sweep ended: exit 2 if a trial failed or Ray refused."""
    table, state = rows(folder)
    print_comparison(folder.name, table)
    if state.get("error"):
        raise KafkarnnError(f"sweep {folder.name}: {state['error']}")
    failed = [r.trial.run for r in table if r.status == TrialStatus.FAILED]
    if failed:
        raise KafkarnnError(f"sweep {folder.name}: {len(failed)} trial(s) failed: "
                            f"{', '.join(failed[:3])} (see their train.log; `kafkarnn sweep "
                            f"{folder.name}` tries them again)")
    unfinished = [r for r in table if r.status != TrialStatus.DONE]
    if unfinished:
        eprint(f"kafkarnn: sweep {folder.name}: {len(unfinished)} trial(s) unfinished — "
               f"`kafkarnn sweep {folder.name}` resumes them")
    return 0


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _left(table: list[Row], state: dict) -> str:
    s = seconds_left(table, int(state.get("slots") or 1))
    if s is None:
        return "time left unknown yet"
    return f"about {s / 60:.1f} min left" if s >= 60 else f"about {s:.0f} s left"


def _summary(name: str, table: list[Row], state: dict) -> str:
    said = ", ".join(f"{n} {s}" for s, n in counts(table).items())
    going = any(r.status in (TrialStatus.WAITING, TrialStatus.RUNNING) for r in table)
    return f"sweep {name}: {said}" + (f" · {_left(table, state)}" if going else "")


def _render(folder):
    from rich.table import Table
    table, state = rows(folder)
    keys = list(table[0].trial.differs) if table else []
    t = Table(title=_summary(folder.name, table, state), title_justify="left",
              caption="Ctrl-C or q leaves the view; the sweep goes on", caption_justify="left")
    for col in ("trial", *keys, "status", "iter", "loss", "best val", "chars/s", "trained"):
        t.add_column(col.replace("_", "-"), justify="left" if col in ("trial", "status") else "right")
    for r in table:
        style = {TrialStatus.RUNNING: "bold", TrialStatus.FAILED: "red", TrialStatus.DONE: "green"}
        t.add_row(r.trial.run, *(str(r.trial.differs[k]) for k in keys), r.status.value,
                  str(r.iteration), _fmt(r.loss, ".3f"), _fmt(r.best_val, ".4f"),
                  _fmt(r.chars_per_sec, ",.0f"), f"{r.done_share:.0%}", style=style.get(r.status))
    return t


def _live(folder) -> None:
    from rich.live import Live
    with _keys() as pressed, Live(_render(folder), refresh_per_second=2, screen=False) as live:
        while folder.coordinator() is not None:
            if pressed(REFRESH_S) == "q":
                raise KeyboardInterrupt
            live.update(_render(folder))
        live.update(_render(folder))


@contextlib.contextmanager
def _keys():
    """A function that waits up to S seconds for a key (cbreak mode, restored at the end)."""
    import termios
    import tty
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 16).decode(errors="replace")[-1:] if ready else ""
    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _lines(folder) -> None:
    """A line every LINE_EVERY_S seconds, or when a trial starts or ends (readable in a log)."""
    said, last, looked = None, 0.0, 0.0
    while True:
        running = folder.coordinator() is not None
        if time.monotonic() - looked >= REFRESH_S or not running:
            table, state = rows(folder)
            looked, now = time.monotonic(), counts(table)
            if now != said or looked - last > LINE_EVERY_S:
                live = "; ".join(f"{r.trial.run} it {r.iteration} loss {_fmt(r.loss, '.3f')}"
                                 for r in table if r.status == TrialStatus.RUNNING)
                print(f"{time.strftime('%H:%M:%S')} {_summary(folder.name, table, state)}"
                      f"{' · ' + live if live else ''}", flush=True)
                said, last = now, looked
        if not running:
            return
        time.sleep(POLL_S)


def print_comparison(name: str, table: list[Row]) -> None:
    """The sweep's runs, best validation loss first: what differs, loss, speed."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    keys = list(table[0].trial.differs) if table else []
    t = Table(title=f"sweep {name}: best validation loss first", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("run", *keys, "best val", "chars/s", "iter", "trained s", "status"):
        t.add_column(col.replace("_", "-"), justify="left" if col in ("run", "status") else "right")
    ranked = sorted(table, key=lambda r: (r.best_val is None, r.best_val or 0.0))
    for r in ranked:
        t.add_row(r.trial.run, *(str(r.trial.differs[k]) for k in keys), _fmt(r.best_val, ".4f"),
                  _fmt(r.chars_per_sec, ",.0f"), str(r.iteration), f"{r.train_s:.1f}", r.status.value)
    Console(width=max(100, Console().width)).print(t)

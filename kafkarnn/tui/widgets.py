"""The monitor's panes: loss (a chart of training and validation), speed and run; the sample
panes are in samples.py.

Each pane turns a `Snapshot` (or a generated continuation) into Rich text and re-renders only
when what it shows has changed; the App decides how often to ask. Text the model wrote always
goes in as `rich.text.Text`, never as markup, with control characters made visible, so `[`,
escape sequences or a carriage return in a sample cannot break the screen.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from kafkarnn.pictures.text import line_chart
from kafkarnn.seam import Snapshot, State
from kafkarnn.train.progress import format_duration

LN2 = math.log(2)
def human(n: float) -> str:
    """12,345 / 1.23M / 4.56G: compact counts for narrow panes."""
    for size, unit in ((1e9, "G"), (1e6, "M")):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:,.0f}"


def _grid(rows: list[tuple[str, str | Text]], fold: bool = False) -> Table:
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold" if fold else "ellipsis", no_wrap=not fold, ratio=1)
    for label, value in rows:
        table.add_row(label, value)
    return table


class _Pane(Static):
    """A Static that skips updates when its key (what it shows) is unchanged."""

    _key: object = None

    def show_if_changed(self, key, make) -> None:
        if key != self._key:
            self._key = key
            self.update(make())


TRAIN, VAL, BEST = ("·", ""), ("•", "bold #e0a030"), ("◆", "bold reverse #40c060")


def loss_series(s: Snapshot) -> list:
    """The chart's series from a snapshot: smoothed training loss, validation, the best validation."""
    iters = s.history_iters if len(s.history_iters) == len(s.history) else range(len(s.history))
    train = [(i, h) for i, h in zip(iters, s.history) if math.isfinite(h)]
    val = [(i, v) for i, v in s.val_history if math.isfinite(v)]
    best = [min(val, key=lambda p: p[1])] if val else []
    return [(train, *TRAIN), (val, *VAL), (best, *BEST)]


def ngram_level(s: Snapshot) -> tuple[float, str] | None:
    """The n-gram baseline's line on the loss chart, e.g. (1.71, "6-gram 1.71"), once it is known."""
    if s.ngram_loss is None or s.ngram_order is None:
        return None
    return s.ngram_loss, f"{s.ngram_order}-gram {s.ngram_loss:.2f}"


def loss_legend() -> Text:
    return Text.assemble((TRAIN[0], TRAIN[1]), " train  ", (VAL[0], VAL[1]), " val  ",
                         (BEST[0], BEST[1]), " best val")


class LossChart(Static):
    """Training and validation loss on one chart, with a labelled axis in nats."""

    data: list[float] = []                 # the training points drawn, oldest first
    _key: object = None
    _last: Snapshot | None = None

    def on_resize(self) -> None:               # drawn before layout at a guessed size: redraw
        if self._last is not None:
            self.show(self._last)

    def show(self, s: Snapshot) -> None:
        self._last = s
        series = loss_series(s)
        width, height = self.content_size.width or 60, self.content_size.height or 6
        key = (tuple(series[0][0]), tuple(series[1][0]), width, height, s.ngram_loss)
        if key == self._key:
            return
        self._key = key
        self.data = [y for _, y in series[0][0]]
        self.update(line_chart(series, width, max(2, height - 1), level=ngram_level(s)))


class LossPane(Vertical):
    """A chart of the smoothed training loss and the validation loss, and the losses in nats
    and bits per character."""

    def compose(self) -> ComposeResult:
        yield LossChart(id="curve")
        yield _Pane(id="loss-numbers")

    def on_mount(self) -> None:
        self.border_title = "Loss"
        self.border_subtitle = loss_legend()

    def show_curve(self, s: Snapshot) -> None:
        self.query_one(LossChart).show(s)

    def show_numbers(self, s: Snapshot) -> None:
        def row(name, nats, at=None):
            if nats is None or not math.isfinite(nats):
                return name, Text("-")
            return name, Text.assemble((f"{nats:.4f}", "bold"), " nats  ",
                                       (f"{nats / LN2:.3f}", "bold"), " bits",
                                       "" if at is None else f"  (it {at:,})")
        # the last validation with its iteration: after a resume or a re-attach it comes from the
        # run's history until this session validates again
        at, val = s.val_history[-1] if s.val_history else (None, s.val_loss)
        key = (round(s.loss, 4), at, val, s.best_val_loss)
        self.query_one("#loss-numbers", _Pane).show_if_changed(key, lambda: _grid([
            row("train", s.loss), row("val", val, at), row("best val", s.best_val_loss)]))


class SpeedPane(_Pane):
    """Iterations and characters per second, counts, the learning rate (and dropout and the
    teacher's weight while they rise), which weights are validated and sampled (when not the
    trained ones as they are), elapsed time, ETA when a limit is set."""

    def on_mount(self) -> None:
        self.border_title = "Speed"

    def show(self, s: Snapshot) -> None:
        key = (s.state, round(s.iters_per_sec, 1), round(s.chars_per_sec), s.iteration,
               round(s.elapsed_s), round(s.session_s), None if s.eta_s is None else round(s.eta_s),
               s.threads, s.threads_auto, s.lr, s.dropout, s.teacher, s.weights)
        self.show_if_changed(key, lambda: self._render_speed(s))

    @staticmethod
    def _render_speed(s: Snapshot) -> Table:
        idle = s.state not in (State.RUNNING, State.SAVING, State.STARTING)
        if idle:
            rate = lambda v: Text("- (not training)", style="dim")
        elif s.iters_per_sec == 0:                 # before the first 2-s interval is measured
            rate = lambda v: Text("measuring…", style="dim")
        else:
            rate = lambda v: Text(v, "bold")
        rows = [("it/s", rate(f"{s.iters_per_sec:,.1f}")),
                ("chars/s", rate(f"{s.chars_per_sec:,.0f}")),
                ("iteration", Text(f"{s.iteration:,}", "bold")),
                ("chars seen", human(s.chars)),
                *([("lr", f"{s.lr:.2e}")] if s.lr is not None else []),
                *([(s.dropout[0], f"{s.dropout[1]:.3f} → {s.dropout[2]:g}")] if s.dropout else []),
                *([("teacher α", f"{s.teacher[0]:.3f} → {s.teacher[1]:g}")] if s.teacher else []),
                *([("validates", s.weights)] if s.weights not in ("", "as trained") else []),
                *([("threads", f"{s.threads} ({'auto' if s.threads_auto else 'fixed'})")]
                  if s.threads is not None else []),
                ("elapsed", format_duration(s.elapsed_s)),
                ("this session", format_duration(s.session_s))]
        limits = []
        if s.max_iters:
            limits.append(f"{s.max_iters:,} it")
        if s.max_seconds:
            limits.append(format_duration(s.max_seconds))
        if limits:
            rows.append(("limit", " or ".join(limits)))
            rows.append(("ETA", Text("done" if s.state == State.FINISHED else format_duration(s.eta_s),
                                     "bold")))
        return _grid(rows)


HINTS = {State.STARTING: "starting", State.RUNNING: "space pauses", State.PAUSED: "space resumes",
         State.SAVING: "writing checkpoint", State.FINISHED: "press g or q",
         State.FAILED: "see note · q quits", State.STOPPED: "stopping"}


class RunPane(Vertical):
    """Run name, corpus, model and size, data folder, last checkpoint, and the state word."""

    _state: State | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="state-row"):
            yield Static(id="state")
            yield Static(id="state-hint")
        yield _Pane(id="run-info")

    def on_mount(self) -> None:
        self.border_title = "Run"

    def show(self, s: Snapshot, now: float | None = None) -> None:
        if s.state != self._state:
            word = self.query_one("#state", Static)
            if self._state:
                word.remove_class(f"-{self._state.value.lower()}")
            word.add_class(f"-{s.state.value.lower()}")
            word.update(Text(f" {s.state} "))
            self.query_one("#state-hint", Static).update(Text(HINTS.get(s.state, "")))
            self._state = s.state
        now = time.time() if now is None else now
        saved = "not yet"
        if s.last_saved is not None:
            ago = format_duration(max(0.0, now - s.last_saved))
            saved = f"{datetime.fromtimestamp(s.last_saved):%H:%M:%S} ({ago} ago)"
        save_error = s.save_error
        key = (s.run_name, s.corpus, s.model, s.n_params, s.data_dir, saved, s.message, s.state,
               save_error)

        def make() -> Table:
            rows = [("run", Text(s.run_name, "bold")), ("corpus", Text(s.corpus)),
                    ("model", Text(s.model)), ("size", Text(f"{s.n_params:,} parameters")),
                    ("data", Text(s.data_dir)), ("saved", saved)]
            if save_error:
                rows.append(("SAVE", Text(f"FAILED: {save_error}", "bold reverse")))
            if s.state in (State.FAILED, State.FINISHED) and s.message:
                rows.append(("note", Text(s.message, "bold" if s.state == State.FAILED else "")))
            return _grid(rows, fold=True)
        self.query_one("#run-info", _Pane).show_if_changed(key, make)

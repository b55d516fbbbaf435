"""The comparison screen (`c`): the live run's validation curve against the other runs on the
same text, the table of what each costs and reached, the settings that differ, and a sample
from each run's best.npz — what `kafkarnn compare` prints (inspect/compare.py, compare_view.py).

The live run is highlighted (its markers in reverse video) and keeps moving: the screen polls
the session's snapshot once a second and, when the iteration moved, reads the lines the
session appended to the run's metrics since the last read. The other runs are read again
every OTHERS_S seconds (they may be training in other processes). The samples are drawn once,
in a thread, when the screen opens, and again on `r`.

Keys: x the x-axis (chars, seconds, iters) · t training curves · r read again · escape or c back.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from kafkarnn.errors import KafkarnnError
from kafkarnn.pictures import comparison as view
from kafkarnn.inspect.compare import (AXES, Comparison, RunCurves, best_sample, load_run,
                                      same_text_runs)
from kafkarnn.inspect.curves import MetricsTail

POLL_S = 1.0              # the live run, from the snapshot
OTHERS_S = 30.0           # the other runs, from their folders
TABLE_ROWS = 5            # the table's lines besides one per run


class Sampled(Message):
    """The samples from every run's best.npz are drawn."""

    def __init__(self, samples: dict) -> None:
        super().__init__()
        self.samples = samples


class CompareScreen(Screen):
    """The live run and the other runs on its text, side by side."""

    BINDINGS = [
        Binding("escape,c", "close", "Back", key_display="esc"),
        Binding("x", "axis", "x-axis"),
        Binding("t", "train", "Train curves"),
        Binding("r", "reload", "Read again"),
        Binding("q", "quit", "Save & quit", show=False),
    ]

    def __init__(self, session, axis: str = "chars") -> None:
        super().__init__()
        self.session = session
        snap = session.snapshot()
        self.data_dir, self.live_name = Path(snap.data_dir), snap.run_name
        self.comparison = Comparison([], axis)
        self.tails: dict[str, MetricsTail] = {}
        self.train = False
        self.seen_iteration: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        with VerticalScroll(id="compare-body"):
            yield Static(id="compare-chart")
            yield Static(id="compare-table")
            yield Static(id="compare-more")
        yield Footer()

    def on_mount(self) -> None:
        self.read_runs()
        self.poll()
        self.draw_samples_later()
        self.set_interval(POLL_S, self.poll)
        self.set_interval(OTHERS_S, self.read_others)

    # -- reading ------------------------------------------------------------------------------

    def read_runs(self) -> None:
        """Which runs (the live one first, then the others on its text), and their curves."""
        try:
            names = same_text_runs(self.data_dir, self.live_name)
        except KafkarnnError:
            names = [self.live_name]
        names = [self.live_name] + [n for n in names if n != self.live_name]
        runs = []
        for name in names:
            try:
                curves, self.tails[name] = load_run(self.data_dir, name)
            except KafkarnnError as e:
                curves = RunCurves(name, {}, problem=str(e))
            curves.live = name == self.live_name
            runs.append(curves)
        self.comparison.runs = runs
        snap = self.session.snapshot()              # the live run's text's n-gram line, if counted
        if snap.ngram_loss is not None:
            self.comparison.baseline, self.comparison.baseline_name = snap.ngram_loss, f"{snap.ngram_order}-gram"

    def read_others(self) -> None:
        for r in self.comparison.runs:
            tail = self.tails.get(r.name)
            if not r.live and tail is not None and tail.read():
                r.take(tail)
        self.draw()

    def poll(self) -> None:
        """The live run: new metrics lines once the snapshot shows that training moved on."""
        snap = self.session.snapshot()
        moved = snap.iteration != self.seen_iteration
        self.seen_iteration = snap.iteration
        live = next((r for r in self.comparison.runs if r.live), None)
        tail = self.tails.get(self.live_name)
        if moved and live is not None and tail is not None:
            try:
                if tail.read():
                    live.take(tail)
            except KafkarnnError as e:
                live.problem = str(e)
        self.draw_title(snap)
        if moved:
            self.draw()

    def draw_samples_later(self) -> None:
        c = self.comparison
        names = [r.name for r in c.runs]

        def draw() -> None:
            self.post_message(Sampled({n: best_sample(self.data_dir, n, c.prompt, 200, c.seed,
                                                      c.temperature) for n in names}))
        self.run_worker(draw, thread=True, group="compare", exit_on_error=False)

    @on(Sampled)
    def show_samples(self, message: Sampled) -> None:
        self.comparison.samples = message.samples
        self.draw()

    # -- drawing ------------------------------------------------------------------------------

    def draw_title(self, snap) -> None:
        title = Text.assemble(("Compare", "bold reverse"), " ",
                              (f"x: {AXES[self.comparison.axis]}", "bold"),
                              (f" · live {snap.run_name} {snap.state}, iteration {snap.iteration:,}"
                               f" · {len(self.comparison.runs)} runs on {snap.corpus}", "dim"))
        self.query_one("#compare-title", Static).update(title)

    def draw(self) -> None:
        c = self.comparison
        box = self.query_one("#compare-chart", Static)
        width = max(box.content_size.width, 30)
        height = max(8, self.size.height - 3 - TABLE_ROWS - len(c.runs))   # chart and table fit
        box.update(Group(view.legend(c, self.train), view.chart(c, width, height - 1, self.train)))
        self.query_one("#compare-table", Static).update(view.table(c))
        more = [view.settings_table(c)]
        if c.samples:
            more.append(view.samples_table(c))
        self.query_one("#compare-more", Static).update(Group(*more))

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw)

    # -- keys ---------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_quit(self) -> None:
        self.app.leave()

    def action_axis(self) -> None:
        axes = list(AXES)
        self.comparison.axis = axes[(axes.index(self.comparison.axis) + 1) % len(axes)]
        self.draw_title(self.session.snapshot())
        self.draw()

    def action_train(self) -> None:
        self.train = not self.train
        self.draw()

    def action_reload(self) -> None:
        self.read_runs()
        self.draw()
        self.draw_samples_later()

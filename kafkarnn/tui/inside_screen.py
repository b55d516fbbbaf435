"""The Inside screen: what the network's units track, what it expects next, how far back the
gradient reaches — live, while training goes on.

Every REFRESH_S seconds, and no sooner than LOOK_PACE times the last look's own duration after it,
while the screen is open (never when it is closed), a thread worker
asks the training loop for a probe (`LookInside`: copies, taken between two steps), runs the
heavy `inside.look` on it off the UI thread, reads the live sample and the last continuation
with the same copy, and posts the result. A refresh is skipped while the previous look runs,
so the cost stays at most one look per interval. The screen only draws (inside_views.py).

Keys: 1 units · 2 next character · 3 gradient through time; ←/→ or j/k the unit (or the
cursor); l the layer; c h/c (LSTM); t the text; ↑/↓ + enter a row of the feature table;
pgup/pgdn scroll; n shades the next character view against the n-gram baseline; escape or i back.
"""

from __future__ import annotations

import time
from typing import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Static
from textual.worker import get_current_worker

from kafkarnn.engine.cells import cell_class
from kafkarnn.errors import KafkarnnError
from kafkarnn.pictures.text import activation_legend, activation_text, surprise_legend, versus_legend
from kafkarnn.inspect import inside
from kafkarnn.seam import LookInside
from kafkarnn.train.session import Session
from kafkarnn.tui.inside_views import TEXTS, Look, gradient_view, next_view, unit_info

REFRESH_S = 5.0           # between looks at least, and
LOOK_PACE = 20            # at least 20× a look's own time: the look shares the GIL with training
ANSWER_S = 30.0           # the loop answers between steps; a stopped loop never does
VIEWS = {"units": "units", "next": "next character", "gradient": "gradient through time"}


class Looked(Message):
    """A look finished (or failed, with why)."""

    def __init__(self, look: Look | None, error: str = "") -> None:
        super().__init__()
        self.look, self.error = look, error


class InsideScreen(Screen):
    """Look inside the network that is training."""

    BINDINGS = [
        Binding("escape,i", "close", "Back", key_display="esc"),
        Binding("1", "view('units')", "Units"),
        Binding("2", "view('next')", "Next char"),
        Binding("3", "view('gradient')", "Gradient"),
        Binding("left,j", "move(-1)", "unit/cursor", key_display="←/j", priority=True),
        Binding("right,k", "move(1)", "", key_display="→/k", priority=True),
        Binding("l", "layer", "Layer"),
        Binding("c", "state", "h/c", show=False),
        Binding("t", "text", "Text"),
        Binding("n", "versus", "vs n-gram"),
        Binding("pageup", "scroll_text(-1)", "", show=False),
        Binding("pagedown", "scroll_text(1)", "", show=False),
        Binding("q", "quit", "Save & quit", show=False),
    ]

    def __init__(self, session: Session, texts: Callable[[], dict[str, str]] = dict) -> None:
        super().__init__()
        self.session, self.texts = session, texts
        self.look: Look | None = None
        self.looking = False
        self.next_look_at = 0.0                # monotonic time before which no new look starts
        self.looked_at = 0.0
        self.view, self.text_name = "units", "validation"
        self.at_layer, self.at_unit, self.at_state = 0, 0, "h"
        self.cursor, self.first_line = 0, 0
        self.versus = False                    # shade the next-character view against the n-gram

    def compose(self) -> ComposeResult:
        yield Static(id="inside-title")
        with ContentSwitcher(initial="units", id="inside-views"):
            with Horizontal(id="units"):
                yield Static(id="unit-text")
                with Vertical(id="unit-side"):
                    yield Static(id="unit-info")
                    yield DataTable(id="unit-table", cursor_type="row", zebra_stripes=False)
            yield Static(id="next")
            yield Static(id="gradient")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("feature", "unit", "r")
        self.draw()
        self.refresh_look()
        self.set_interval(REFRESH_S, self.refresh_look)

    # -- looking ------------------------------------------------------------------------------

    def refresh_look(self) -> None:
        if self.looking or time.monotonic() < self.next_look_at:   # one at a time, and paced
            return
        self.looking = True
        texts = {name: text for name, text in self.texts().items() if len(text) >= 2}
        self.run_worker(lambda: self._look(texts), thread=True, group="inside",
                        exit_on_error=False)          # a failed look must not end the monitor

    def _look(self, texts: dict[str, str]) -> None:
        """In a thread: a probe from the loop, then the heavy part here."""
        worker = get_current_worker()
        try:
            command = LookInside(inside.take)
            self.session.send(command)
            deadline = time.monotonic() + ANSWER_S
            while not command.reply.done():        # in slices, so that leaving never waits long
                if worker.is_cancelled:                # the screen closed
                    return
                if time.monotonic() > deadline:
                    self.post_message(Looked(None, "the trainer did not answer"))
                    return
                worker.cancelled_event.wait(0.05)
            probe = command.reply.result()
            started = time.monotonic()
            try:
                result = inside.look(probe)
            except (ValueError, FloatingPointError, KafkarnnError) as e:   # e.g. a diverged model
                self.post_message(Looked(None, f"could not look inside: {e}"))
                return
            read = {"validation": (result.text, result.trace, result.guesses)}
            for name, text in texts.items():
                try:
                    read[name] = (text, *inside.read(probe, text))
                except KafkarnnError:
                    pass                           # a text the model cannot read is not shown
            ngram = {name: s for name, (text, *_) in read.items()
                     if self.versus and (s := self.session.ngram.surprise(text)) is not None}
            self.post_message(Looked(Look(result, read, ngram)))
            self.next_look_at = time.monotonic() + LOOK_PACE * (time.monotonic() - started)
        finally:
            self.looking = False

    @on(Looked)
    def show_look(self, message: Looked) -> None:
        if message.look is None:
            self.notify(message.error, severity="warning", markup=False)
            return
        first = self.look is None
        self.look, self.looked_at = message.look, time.monotonic()
        if first and self.look.inside.units:       # start on the unit that tracks most
            top = self.look.inside.units[0]
            self.at_layer, self.at_unit, self.at_state = top["layer"], top["unit"], top["state"]
        self.fill_table()
        self.draw()

    def fill_table(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for feature, u in self.look.inside.best.items():
            table.add_row(feature, f"{u['layer']}:{u['unit']}{'c' if u['state'] == 'c' else ''}",
                          f"{u['correlation']:+.2f}", key=feature)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    # -- drawing ------------------------------------------------------------------------------

    def current_text(self):
        texts = self.look.texts
        return texts.get(self.text_name) or texts["validation"]

    def draw(self) -> None:
        title = Text.assemble(("Inside", "bold reverse"), " ", (VIEWS[self.view], "bold"))
        if self.look is None:
            self.query_one("#inside-title", Static).update(
                title + Text("  · looking inside the network…", "dim"))
            return
        ins = self.look.inside
        at = "" if ins.iteration is None else f" · iteration {ins.iteration:,}"
        text, trace, guesses = self.current_text()
        name = self.text_name if self.text_name in self.look.texts else "validation"
        if self.view != "gradient":
            title.append(f"  · text: {name} (t)", "dim")
        title.append(f"{at} · {ins.cell}", "dim")
        self.query_one("#inside-title", Static).update(title)
        self.cursor = min(self.cursor, len(text) - 1)
        if self.view == "units":
            box = self.query_one("#unit-text", Static)
            width, height = max(box.content_size.width, 10), max(box.content_size.height, 4)
            values = inside.unit_values(trace, self.at_layer, self.at_unit, self.at_state)
            body = activation_text(text, values, width, first_line=self.first_line,
                                   max_lines=(height - 1) // 2)
            box.update(body + Text("\n") + activation_legend())
            self.query_one("#unit-info", Static).update(
                unit_info(ins, self.at_layer, self.at_unit, self.at_state))
        elif self.view == "next":
            box = self.query_one("#next", Static)
            width = max(box.content_size.width, 10)
            lines = max(2, box.content_size.height - 10)
            ngram = self.look.ngram.get(name) if self.versus else None
            box.update(next_view(text, guesses, self.cursor, width, lines, ngram))
            box.border_subtitle = surprise_legend() if ngram is None else versus_legend()
        else:
            box = self.query_one("#gradient", Static)
            box.update(gradient_view(ins, max(box.content_size.width, 20)))

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw)

    # -- keys ---------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_quit(self) -> None:
        self.app.leave()

    def action_view(self, name: str) -> None:
        self.view = name
        self.query_one(ContentSwitcher).current = name
        if name == "units":
            self.query_one(DataTable).focus()
        self.call_after_refresh(self.draw)

    def action_move(self, delta: int) -> None:
        if self.look is None:
            return
        if self.view == "next":
            self.cursor = max(0, min(len(self.current_text()[0]) - 1, self.cursor + delta))
        elif self.view == "units":
            units = self.current_text()[1].h[self.at_layer].shape[1]
            self.at_unit = (self.at_unit + delta) % units
        self.draw()

    def action_layer(self) -> None:
        if self.look is not None:
            self.at_layer = (self.at_layer + 1) % len(self.look.inside.trace.h)
            self.draw()

    def action_state(self) -> None:
        if self.look is not None and "c" in cell_class(self.look.inside.cell).state_names:
            self.at_state = "c" if self.at_state == "h" else "h"
            self.draw()

    def action_text(self) -> None:
        if self.look is None:
            return
        names = [n for n in TEXTS if n in self.look.texts]
        self.text_name = names[(names.index(self.text_name) + 1) % len(names)] \
            if self.text_name in names else names[0]
        self.cursor, self.first_line = 0, 0
        self.draw()

    def action_versus(self) -> None:
        self.versus = not self.versus
        if self.versus and self.look is not None and not self.look.ngram:
            self.next_look_at = 0.0            # look again now, with the n-gram's surprise
            self.refresh_look()
        self.draw()

    def action_scroll_text(self, pages: int) -> None:
        if self.view == "units":
            box = self.query_one("#unit-text", Static)
            self.first_line = max(0, self.first_line + pages * max(1, (box.content_size.height - 1) // 2))
        elif self.view == "next" and self.look is not None:
            step = self.query_one("#next", Static).content_size.width
            self.cursor = max(0, min(len(self.current_text()[0]) - 1, self.cursor + pages * step))
        self.draw()

    @on(DataTable.RowSelected)
    def select_feature(self, event: DataTable.RowSelected) -> None:
        u = self.look.inside.best[event.row_key.value] if self.look else None
        if u is not None:
            self.at_layer, self.at_unit, self.at_state = u["layer"], u["unit"], u["state"]
            self.first_line = 0
            self.draw()

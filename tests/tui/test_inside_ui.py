"""Tests for the Inside screen and the loss chart: the monitor driven with Pilot over a real,
tiny trainer (as in test_tui.py: each step slowed by a few milliseconds), at 80×24.

Pilot waits for the process to look idle after each key (at most 0.1 s: tests/conftest.py),
which a training thread never does: the keys are pressed while training is paused (the loop
still answers between steps), and training resumes to show that it goes on under the Inside
screen."""

import io
import threading
import time

import pytest
from rich.console import Console
from rich.style import Style
from test_tui import STEP_SLEEP, corpus, open_run, run, screen_text, snap, until  # noqa: F401
from textual.widgets import ContentSwitcher, DataTable, Static

from kafkarnn.pictures import text as pictures
from kafkarnn.inspect import inside
from kafkarnn.train.cadence import Cadence
from kafkarnn.train.session import Session
from kafkarnn.seam import Pause, Resume
from kafkarnn.tui import inside_screen
from kafkarnn.tui.app import MonitorApp
from kafkarnn.tui.inside_screen import InsideScreen
from kafkarnn.tui.training import TrainingScreen
from kafkarnn.tui.widgets import LossChart

SIZE = (80, 24)


def monitor(launch, tmp_path, eval_every=30.0) -> MonitorApp:
    session = Session(launch, cadence=Cadence(eval_every=eval_every, sample_every=0.3, metrics_every=0.1),
                      stay_open=True)
    step = launch.trainer.step

    def slow_step():
        time.sleep(STEP_SLEEP)
        return step()
    launch.trainer.step = slow_step
    return MonitorApp(session)


def plain(renderable, width=78) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


class Counted:
    """Counts the probes taken and the looks running at once (patched into train.inside)."""

    def __init__(self, monkeypatch, look_sleep=0.0):
        self.takes, self.running, self.most, self.look_sleep = 0, 0, 0, look_sleep
        self.done = 0                                  # looks finished
        self.lock = threading.Lock()
        take, look = inside.take, inside.look

        def counted_take(trainer, *a, **kw):
            self.takes += 1
            return take(trainer, *a, **kw)

        def counted_look(probe, *a, **kw):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(self.look_sleep)
                return look(probe, *a, **kw)
            finally:
                with self.lock:
                    self.running -= 1
                    self.done += 1
        monkeypatch.setattr(inside, "take", counted_take)
        monkeypatch.setattr(inside, "look", counted_look)


async def open_inside(app, pilot) -> InsideScreen:
    """Train a few steps, pause, and open the Inside screen at its first look."""
    await until(pilot, lambda: snap(app).iteration > 3)
    app.session.send(Pause())
    await until(pilot, lambda: snap(app).state == "PAUSED")
    await pilot.press("i")
    assert isinstance(app.screen, InsideScreen)
    await until(pilot, lambda: app.screen.look is not None)
    await pilot.pause(0.1)
    return app.screen


async def test_inside_views_units_cursor_and_back(run, tmp_path, monkeypatch):
    monkeypatch.setattr(inside_screen, "REFRESH_S", 0.5)
    monkeypatch.setattr(inside_screen, "LOOK_PACE", 2)      # 20 in use: 16 s after a 0.8-s look
    counted = Counted(monkeypatch)
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inside(app, pilot)
        opened_at = screen.look.inside.iteration
        text = screen.look.inside.text
        shown = screen.query_one("#unit-text", Static).content.plain
        line, glyphs = shown.splitlines()[:2]                 # a line of the text, and under it
        assert line and "".join(map(pictures.visible, text)).startswith(line)   # its glyph row
        assert len(glyphs) == len(line) and set(glyphs) <= set(pictures.GLYPHS)
        unit = screen.at_unit
        await pilot.press("right")
        assert screen.at_unit == (unit + 1) % 16
        assert f"unit {screen.at_unit}" in screen.query_one("#unit-info", Static).content.plain
        await pilot.press("j")
        assert screen.at_unit == unit

        await pilot.press("2")
        assert screen.query_one(ContentSwitcher).current == "next"
        await pilot.press("right", "right", "right")
        assert screen.cursor == 3
        drawn = plain(screen.query_one("#next", Static).content)
        look = screen.look
        expected = inside.next_guesses(look.inside.trace, run.trainer.vocab, look.inside.text).top(3)
        for rank, (ch, p) in enumerate(expected, 1):
            shown_ch = "␣" if ch == " " else pictures.visible(ch)
            assert any(line.split()[:3] == [str(rank), shown_ch, f"{p:.3f}"]
                       for line in drawn.splitlines() if line.split()), (rank, ch, drawn)
        assert f"{look.inside.guesses.surprise[3]:.2f} nats" in drawn

        await pilot.press("3")
        assert screen.query_one(ContentSwitcher).current == "gradient"
        drawn = plain(screen.query_one("#gradient", Static).content)
        assert "layer 0" in drawn and "layer 1" in drawn and "k=0" in drawn and "clipping" in drawn

        await until(pilot, lambda: not screen.looking and time.monotonic() > screen.next_look_at)
        counted.look_sleep = 0.8                     # a look slower than the interval:
        looks, done = counted.takes, counted.done
        screen.refresh_look()
        screen.refresh_look()                        # skipped, the first still runs
        await until(pilot, lambda: counted.done > done)
        slow_done = time.monotonic()
        counted.look_sleep = 0.0
        assert counted.takes == looks + 1 and counted.most == 1
        await until(pilot, lambda: counted.takes > looks + 1)
        assert time.monotonic() - slow_done > 2 * 0.8 - 0.3      # paced: 2× the look's own time

        app.session.send(Resume())
        await until(pilot, lambda: screen.look.inside.iteration > opened_at + 5)   # it refreshes
        await pilot.press("escape")                  # while training goes on
        assert isinstance(app.screen, TrainingScreen)
        await until(pilot, lambda: counted.running == 0)
        closed = counted.takes
        await pilot.pause(1.2)
        assert counted.takes == closed               # no probe while the screen is closed
        assert snap(app).iteration > opened_at + 5
        await pilot.press("q")
        assert app.trained.wait(10)


async def test_feature_table_selects_a_unit_and_t_switches_text(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: snap(app).sample_id > 0)
        screen = await open_inside(app, pilot)              # paused: no refresh comes between
        table = screen.query_one(DataTable)
        assert table.row_count == len(screen.look.inside.best) >= 2
        table.focus()
        now = (screen.at_layer, screen.at_unit, screen.at_state)
        rows = [u for u in screen.look.inside.best.values()
                if (u["layer"], u["unit"], u["state"]) != now]          # one that is not shown
        assert rows and table.cursor_row == 0
        row = list(screen.look.inside.best.values()).index(rows[0])
        await pilot.press(*["down"] * row, "enter")
        best = rows[0]
        assert (screen.at_layer, screen.at_unit, screen.at_state) == \
            (best["layer"], best["unit"], best["state"])
        await pilot.press("l")
        assert screen.at_layer == (best["layer"] + 1) % 2
        assert "validation" in str(screen.query_one("#inside-title", Static).content)
        await pilot.press("t")
        assert screen.text_name == "sample"
        sample = screen.look.texts["sample"][0]
        first_line = screen.query_one("#unit-text", Static).content.plain.splitlines()[0]
        assert first_line and "".join(map(pictures.visible, sample)).startswith(first_line)
        await pilot.press("i")                          # i goes back too
        assert isinstance(app.screen, TrainingScreen)
        await pilot.press("q")
        assert app.trained.wait(10)


async def test_the_loss_chart_shows_validation_and_its_best(tmp_path, corpus):
    run = open_run(tmp_path, corpus)
    app = monitor(run, tmp_path, eval_every=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(snap(app).val_history) >= 2)
        await pilot.pause(1.2)                          # the chart redraws at 1 Hz
        chart = app.query_one(LossChart).content.plain
        assert "◆" in chart and "·" in chart and "nats" in chart
        assert "best val" in str(app.query_one("#loss").border_subtitle)
        palette = {c.title: c.callback for c in app.screen.system_commands()}
        assert palette["Look inside the network"] == app.screen.action_inside
        await pilot.press("q")
        assert app.trained.wait(10)
    before = snap(app)
    run.lock.unlock()
    again = open_run(tmp_path, corpus)
    try:                                                # resume brings the validation points back
        kept = [p for p in before.val_history if p[0] <= before.iteration]
        assert [i for i, _ in again.val_history] == [i for i, _ in kept]       # metrics.jsonl
        assert [v for _, v in again.val_history] == pytest.approx([v for _, v in kept], abs=1e-5)
        assert again.val_history and again.history_iters == sorted(again.history_iters)
    finally:
        again.lock.unlock()


async def test_after_a_resume_the_loss_pane_shows_the_last_validation_and_its_iteration(tmp_path,
                                                                                       corpus):
    run = open_run(tmp_path, corpus)
    app = monitor(run, tmp_path, eval_every=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(snap(app).val_history) >= 1)
        await pilot.press("q")
        assert app.trained.wait(10)
    run.lock.unlock()
    again = open_run(tmp_path, corpus)
    try:
        at, val = again.val_history[-1]
        app = monitor(again, tmp_path, eval_every=1e9)          # no validation in this session
        app.session.send(Pause())
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: snap(app).state == "PAUSED")
            await pilot.pause(0.3)
            assert snap(app).val_loss is None
            numbers = plain(app.query_one("#loss-numbers", Static).content, width=60)
            line = next(x for x in numbers.splitlines() if x.startswith("val "))
            assert f"{val:.4f} nats" in line and f"(it {at:,})" in line
            assert f"(it {at:,})" in screen_text(app)             # and it fits at 80 × 24
            await pilot.press("q")
            assert app.trained.wait(10)
    finally:
        again.lock.unlock()


def test_the_activation_shading_reads_without_colour():
    text = pictures.activation_text("ab", [-1.0, 1.0], width=10)
    lines = text.plain.splitlines()
    assert lines == ["ab", "▁█"]                        # the glyph row carries the value
    styles = [s.style if isinstance(s.style, Style) else Style.parse(s.style) for s in text.spans[:2]]
    bare = [Style(bold=s.bold, dim=s.dim, reverse=s.reverse, underline=s.underline) for s in styles]
    assert bare[0] != bare[1]                           # distinct with the colour taken away
    assert pictures.level(-1) == 0 and pictures.level(0.0) == 4 and pictures.level(1) == 7


@pytest.mark.parametrize("values", [[0.5, 1.0, 2.0], [1e-9, 1e-3, 1.0]])
def test_log_rows_fall_with_the_values(values):
    chart, lo, hi = pictures.log_rows([("l0", values[::-1])], width=20)
    row = chart.plain.split(" ", 1)[1]
    assert row[0] == "█" and row[-1] == "▁" and lo == pytest.approx(values[0])

"""The n-gram baseline in the monitor: on the loss chart (it arrives through the snapshot, and is drawn
as a labelled dashed line that fits 80×24 and reads without colour), and as the shading of the
Inside screen's next-character view (key n)."""

import io
import time

import numpy as np
from rich.console import Console
from test_inside_ui import monitor, open_inside
from test_tui import corpus, open_run, run, until  # noqa: F401  (fixtures)

from kafkarnn.inspect.inside import Guesses
from kafkarnn.pictures.text import line_chart, surprise_style, versus_style
from kafkarnn.tui.inside_views import next_view
from kafkarnn.seam import Role
from kafkarnn.train import baseline
from kafkarnn.train.cadence import Cadence
from kafkarnn.train.launch import TrainOptions
from kafkarnn.train.life import Life
from kafkarnn.tui.app import MonitorApp
from kafkarnn.tui.widgets import LossChart

TINY = {"hidden": 16, "batch": 4, "seq_len": 16, "model": "rnn"}


def test_the_level_line_sits_at_its_value_with_its_label():
    train = ([(i, 3.0 - i / 25) for i in range(50)], "·", "")
    chart = line_chart([train], 60, 9, level=(1.0, "6-gram 1.00"))
    rows = chart.plain.splitlines()
    assert "6-gram 1.00" in rows[-2] and rows[-2].count("╌") > 20     # the bottom row: y = 1.00
    assert rows[-2].startswith("  1.00┤")                              # the range reaches down to it
    assert "╌" not in "".join(rows[:-2])
    out = Console(width=60, no_color=True, record=True)
    out.print(chart)
    assert "6-gram 1.00" in out.export_text()
    assert line_chart([train], 60, 9, level=(float("nan"), "x")).plain == line_chart([train], 60, 9).plain


async def test_the_monitor_draws_the_baseline_the_session_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKARNN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    book = tmp_path / "book.txt"
    book.write_text("the clerk said nothing to anyone in the long hall.\n" * 80, encoding="utf-8")
    opts = TrainOptions(data_dir=tmp_path / "home", corpus=str(book), run="tiny", overrides=dict(TINY),
                        max_iters=40)
    life = Life(opts, Role.HEADLESS, say=lambda text: None)
    life.open()
    try:
        session = life.start_session(Cadence(metrics_every=0.05), stay_open=True)
        app = MonitorApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 30
            while not (session.snapshot().ngram_loss and "-gram" in app.query_one(LossChart).content.plain):
                assert time.monotonic() < deadline, "no n-gram line on the chart"
                await pilot.pause(0.2)
            s = session.snapshot()
            label = f"{s.ngram_order}-gram {s.ngram_loss:.2f}"
            chart = app.query_one(LossChart)
            assert label in chart.content.plain and chart.content.plain.count("╌") >= 3
            rows = chart.content.plain.splitlines()                      # it fits the 80×24 pane:
            at = next(i for i, row in enumerate(rows) if label in row)
            assert at < chart.content_size.height and chart.region.bottom <= 24
            assert max(map(len, rows)) <= chart.content_size.width <= 80
            await pilot.press("q")
            assert app.trained.wait(10)
    finally:
        life.let_go()


def test_the_next_view_shades_by_the_advantage_over_the_ngram():
    text = "abcab"
    surprise = np.array([0.5, 3.0, 0.2, 2.0, np.nan])            # the network, at characters 1 … 4
    ngram = np.array([1.6, 3.0, 0.5, 0.1, 4.0])                  # the n-gram, at characters 0 … 4
    guesses = Guesses("abc", np.zeros((5, 1), int), np.ones((5, 1)), surprise)
    shown, *_, verdict = next_view(text, guesses, 0, 40, 2, ngram).renderables
    styles = [shown.get_style_at_offset(Console(), i) for i in range(1, 5)]
    assert styles == [versus_style(a) for a in (3.0 - 0.5, 0.5 - 3.0, 0.1 - 0.2, 4.0 - 2.0)]
    assert len(set(map(str, styles))) == 3 and "3.00 nats" in verdict.plain     # the n-gram at 'b'
    shown, *_ = next_view(text, guesses, 0, 40, 2).renderables
    assert shown.get_style_at_offset(Console(), 2) == surprise_style(3.0)


async def test_n_in_the_inside_screen_shades_against_the_ngram(run, tmp_path):
    run.baseline = baseline.compute(run.corpus, run.trainer.cfg.val_fraction)   # as open_run's quick()
    app = monitor(run, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.session.snapshot().ngram_order is not None)
        screen = await open_inside(app, pilot)
        await pilot.press("2")
        assert "expected" in str(screen.query_one("#next").border_subtitle)
        await pilot.press("n")
        await until(pilot, lambda: screen.look.ngram)
        await pilot.pause(0.1)
        text, *_ = screen.current_text()
        counted = screen.look.ngram["validation"]
        assert len(counted) == len(text) and np.all(np.isfinite(counted))
        assert "network" in str(screen.query_one("#next").border_subtitle)
        out = Console(width=78, record=True, color_system=None, file=io.StringIO())
        out.print(screen.query_one("#next").content)
        assert "n-gram table's" in out.export_text()
        await pilot.press("n")
        assert "expected" in str(screen.query_one("#next").border_subtitle)
        await pilot.press("q")
        assert app.trained.wait(10)

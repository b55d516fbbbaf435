"""The monitor's comparison screen (`c`): snapshots at 80×24 and 120×40, the live curve that
keeps moving, the keys, and markers that tell the runs apart without colour.

Runs are written by hand (config.json and metrics.jsonl with fixed numbers) so the screen is
the same every time; the samples are fixed too. Regenerate the snapshots after a deliberate
change with

    KAFKARNN_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_compare_ui.py -k snapshot
"""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from rich.console import Console
from test_monitor_promises import SGR, FakeSession, grey, screen_lines, sgr
from test_monitor_promises import compare as compare_snapshot
from test_tui import until

from kafkarnn.pictures import comparison as compare_view
from kafkarnn.inspect.compare import Sample
from kafkarnn.runs.folder import Run
from kafkarnn.tui import compare_screen
from kafkarnn.tui.app import MonitorApp
from kafkarnn.tui.compare_screen import CompareScreen

CORPUS = {"name": "porter.txt", "fingerprint": {"sha256": "ab" * 32, "length": 2840},
          "vocab": " .;TIadefhilnoprstuwy\n"}
RUNS = {   # name: (model, batch, validation losses, chars/s)
    "porter-lstm": ("lstm", 32, [3.1, 2.4, 2.0, 1.8, 1.7], 41_000.0),
    "porter-rnn": ("rnn", 1, [3.0, 2.6, 2.45, 2.4], 9_000.0),
    "porter-gru": ("gru", 32, [3.0, 2.2, 1.9, 1.75, 1.72, 1.74], 38_000.0),
}


def write_run(home, name, model, batch, vals, rate, corpus=CORPUS) -> Run:
    run = Run(home, name)
    run.create()
    run.write_config({"model": model, "hidden": 128, "layers": 1, "batch": batch, "seq_len": 64,
                      "dropout": 0.0 if model == "rnn" else 0.2, "preset": "small",
                      "corpus": corpus, "created": "2026-12-05T06:00:00"})
    for k, v in enumerate(vals):
        iters = (k + 1) * 100 * (32 // batch)           # the rnn takes smaller steps, more of them
        run.append_metrics({"iter": iters, "chars": iters * batch * 64, "loss": v + 0.1,
                            "chars_per_sec": rate, "elapsed_s": 30.0 * (k + 1), "val_loss": v})
    return run


@pytest.fixture
def runs(tmp_path, monkeypatch):
    home = tmp_path / "home"
    for name, spec in RUNS.items():
        write_run(home, name, *spec)
    write_run(home, "other-text", "lstm", 32, [1.0], 1.0,
              corpus=dict(CORPUS, fingerprint={"sha256": "cd" * 32, "length": 9}))
    monkeypatch.setattr(compare_screen, "best_sample", lambda data_dir, name, *a: Sample(
        text=f"the door of {name} was open;\nnow I shall shut it."))
    return home


class LiveSession(FakeSession):
    """The fixed session of the monitor's snapshots, training porter-lstm in `home`."""

    def __init__(self, home):
        super().__init__()
        self.snap = dataclasses.replace(self.snap, data_dir=str(home), run_name="porter-lstm")

    def step(self, iteration: int) -> None:
        self.snap = dataclasses.replace(self.snap, iteration=iteration)


async def opened(app, pilot) -> CompareScreen:
    await pilot.press("c")
    assert isinstance(app.screen, CompareScreen)
    await until(pilot, lambda: app.screen.comparison.samples)
    await pilot.pause()
    return app.screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_snapshot_compare(runs, size):
    app = MonitorApp(LiveSession(runs))
    async with app.run_test(size=size) as pilot:
        screen = await opened(app, pilot)
        lines = screen_lines(app)
        compare_snapshot(f"compare_{size[0]}x{size[1]}", lines)
        assert [r.name for r in screen.comparison.runs] == ["porter-lstm", "porter-gru", "porter-rnn"]
        assert "esc Back" in lines[-1] and "x x-axis" in lines[-1]
        await pilot.press("escape", "q")


async def test_the_live_curve_moves_and_the_others_stay(runs):
    session = LiveSession(runs)
    app = MonitorApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(app, pilot)
        table = lambda: "\n".join(screen_lines(app))                      # noqa: E731
        assert "1.7000" in table() and "1.5500" not in table()
        Run(runs, "porter-lstm").append_metrics({"iter": 600, "chars": 600 * 32 * 64, "loss": 1.6,
                                                 "elapsed_s": 180.0, "val_loss": 1.55})
        Run(runs, "porter-gru").append_metrics({"iter": 700, "chars": 1, "loss": 1.0,
                                                "elapsed_s": 210.0, "val_loss": 1.0})
        session.step(600)                      # the snapshot moves: the live run is read again
        await until(pilot, lambda: "1.5500" in table(), timeout=5)
        live = screen.comparison.runs[0]
        assert live.live and len(live.val) == 6 and live.best.chars == 600 * 32 * 64
        assert "1.0000" not in table()         # another run: read only every OTHERS_S seconds
        await pilot.press("r")
        await until(pilot, lambda: "1.0000" in table(), timeout=5)
        await pilot.press("escape", "q")


async def test_x_cycles_the_axis_t_adds_training_curves_and_escape_returns(runs):
    app = MonitorApp(LiveSession(runs))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await opened(app, pilot)
        axes = []
        for _ in range(3):
            axes.append(screen.comparison.axis)
            title = str(screen.query_one("#compare-title").content)
            assert f"x: {compare_view.AXES[axes[-1]]}" in title
            await pilot.press("x")
        assert axes == ["chars", "seconds", "iters"] and screen.comparison.axis == "chars"
        await pilot.press("t")
        assert screen.train and "dim: training loss" in "\n".join(screen_lines(app))
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("q")


async def test_the_palette_offers_the_comparison(runs):
    app = MonitorApp(LiveSession(runs))
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Compare runs" in titles
        await pilot.press("q")


def test_runs_keep_their_own_marker_without_colour_and_the_live_one_is_reversed():
    from kafkarnn.inspect.compare import Comparison, RunCurves
    from kafkarnn.inspect.curves import Point
    runs = [RunCurves(f"r{i}", {}, val=[Point(10, 10 * (i + 1), 1.0, 3.0 - i * 0.3)])
            for i in range(8)]
    runs[2].live = True
    text = compare_view.chart(Comparison(runs), 60, 12)
    glyphs = {m for m, _ in compare_view.MARKERS}
    drawn = [ch for ch in text.plain if ch in glyphs]
    assert len(set(drawn)) == 8                                # eight runs, eight shapes
    live = compare_view.marker(2)[0]
    styles = [str(s.style) for s in text.spans if text.plain[s.start:s.end] == live]
    assert styles and all("reverse" in s for s in styles)
    others = [str(s.style) for s in text.spans if text.plain[s.start:s.end] in glyphs - {live}]
    assert others and not any("reverse" in s for s in others)


async def test_under_no_color_the_screen_is_grey_and_the_runs_still_apart(runs, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")                  # (the App reads it when it is made)
    app = MonitorApp(LiveSession(runs))
    async with app.run_test(size=(80, 24)) as pilot:
        await opened(app, pilot)
        console = Console(width=80, height=24, file=io.StringIO(), force_terminal=True,
                          color_system="truecolor", record=True)
        console.print(app.screen._compositor.render_update(full=True))
        out = console.export_text(styles=True)
        lines = screen_lines(app)
        await pilot.press("escape", "q")
    hues = {c for params in SGR.findall(out) for c in sgr(params)[1] if not grey(*c)}
    assert not hues, sorted(hues)[:10]
    chart = "\n".join(lines[2:14])
    for glyph in "●▲■":                                   # each run's shape on the chart
        assert chart.count(glyph) >= 3, (glyph, chart)
    live = [sgr(p)[0] for p in re.findall(r"\x1b\[([0-9;:]*)m●", out)]
    assert live and all(7 in attrs for attrs in live)    # the live run: reverse video


def test_the_live_run_is_drawn_on_top_where_runs_meet():
    from kafkarnn.inspect.compare import Comparison, RunCurves
    from kafkarnn.inspect.curves import Point
    same = [Point(10, 640, 1.0, 2.0), Point(20, 1280, 2.0, 1.5)]
    live, other = RunCurves("live", {}, val=same, live=True), RunCurves("other", {}, val=same)
    drawn = compare_view.chart(Comparison([live, other]), 40, 8).plain
    assert drawn.count("●") == 2 and "▲" not in drawn

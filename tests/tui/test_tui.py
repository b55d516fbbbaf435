"""Tests for kafkarnn.tui: the monitor driven with Pilot over a real, tiny trainer (hand-offs and a
dropped connection: test_handover.py).

The trainer is real (rnn, 16 units, 4 streams of 16) but each step is slowed by a few
milliseconds, so the process looks idle between steps. `pilot.press` would still wait up to a
second, twice per key, for the CPU to settle while the monitor redraws; tests/conftest.py caps
that at 0.1 s and the tests wait for what they check (`until`).
"""

import math
import time

import pytest
from rich.text import Text
from textual.app import App
from textual.widgets import Input

from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.train.launch import prepare
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.session import Session
from kafkarnn.train.session import Pause
from kafkarnn.train.trainer import TrainingDiverged
from kafkarnn.tui.app import MonitorApp
from kafkarnn.tui.monitor import start_note
from kafkarnn.tui.finish_screen import FinishScreen
from kafkarnn.tui.screens import GenerateScreen
from kafkarnn.tui.samples import GeneratedPane, SamplePane, shaded, visible
from kafkarnn.tui.widgets import LossChart

TINY = {"hidden": 16, "batch": 4, "seq_len": 16, "model": "rnn"}
STEP_SLEEP = 0.01          # seconds added to each training step (see the module docstring)
SIZE = (100, 30)


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKARNN_HOME", str(tmp_path / "home"))
    words = "the door was open and the clerk said nothing to anyone in the long hall".split()
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(9)) + "." for i in range(120)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def open_run(tmp_path, corpus):
    return prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None,
                   run_name="tiny", new=False, preset=None, overrides=dict(TINY))


def monitor(launch, tmp_path, max_iters=None, **kw) -> MonitorApp:
    session = Session(launch, Limits(max_iters=max_iters), Cadence(sample_every=0.3, metrics_every=0.1),
                      stay_open=True, **kw)
    step = launch.trainer.step

    def slow_step():
        time.sleep(STEP_SLEEP)
        return step()
    launch.trainer.step = slow_step
    return MonitorApp(session, note=start_note(launch))


@pytest.fixture
def run(tmp_path, corpus):
    """A fresh tiny run; its lock is released at the end."""
    launch = open_run(tmp_path, corpus)
    yield launch
    launch.lock.unlock()


async def until(pilot, condition, timeout=30.0, step=0.05):   # generous: CI boxes get busy
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(step)


def snap(app):
    return app.session.snapshot()


def state_word(app) -> str:
    return str(app.query_one("#state").content)


def screen_text(app) -> str:
    return app.export_screenshot().replace("&#160;", " ")


def checkpoint_meta(launch) -> dict:
    return load_checkpoint(launch.run.checkpoint_path)[1]


async def quit_app(app, pilot) -> None:
    await pilot.press("q")
    assert app.trained.wait(10), "the training thread did not end"


async def quit_app_from_dialog(app, pilot):
    await pilot.press("escape")
    assert not isinstance(app.screen, GenerateScreen)
    await quit_app(app, pilot)


# ---- keys and states -----------------------------------------------------------------------------

async def test_pause_stops_steps_and_resume_continues(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: snap(app).iteration > 3)
        assert app.screen.active_bindings["space"].binding.description == "Pause"
        await pilot.press("space")
        await until(pilot, lambda: snap(app).state == "PAUSED")
        await until(pilot, lambda: "PAUSED" in state_word(app))
        assert app.screen.active_bindings["space"].binding.description == "Resume"
        paused_at = snap(app).iteration
        await pilot.pause(0.4)
        assert snap(app).iteration == paused_at           # no step runs while paused
        await pilot.press("space")
        await until(pilot, lambda: snap(app).iteration > paused_at)
        await until(pilot, lambda: "RUNNING" in state_word(app))
        assert app.screen.active_bindings["space"].binding.description == "Pause"
        await quit_app(app, pilot)


async def test_generate_shows_the_continuation(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: snap(app).iteration > 3)
        await pilot.press("g")
        assert isinstance(app.screen, GenerateScreen)
        await pilot.press(*"the ")
        app.screen.query_one("#length", Input).value = "50"
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, GenerateScreen))
        shown = app.query_one(GeneratedPane).content
        assert isinstance(shown, Text)
        assert shown.plain.startswith("the ") and len(shown.plain) == 4 + 50
        assert snap(app).state == "RUNNING"                 # training went on meanwhile
        await quit_app(app, pilot)


async def test_unknown_characters_are_reported_in_the_dialog(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        app.screen.query_one("#seed", Input).value = "the Ω ["
        await pilot.press("enter")
        status = app.screen.query_one("#dialog-status")
        await until(pilot, lambda: "never saw" in str(status.content))
        assert "'Ω'" in str(status.content) and "'['" in str(status.content)
        assert isinstance(app.screen, GenerateScreen)       # still open, nothing crashed
        app.screen.query_one("#length", Input).value = "0"
        await pilot.press("enter")
        assert "length must be" in str(status.content)
        await quit_app_from_dialog(app, pilot)


async def test_escape_cancels_the_dialog(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.press("t", "h", "e")
        await pilot.press("escape")
        assert not isinstance(app.screen, GenerateScreen)
        assert "press g" in str(app.query_one(GeneratedPane).content)   # nothing was generated
        assert app.is_running
        await quit_app(app, pilot)


async def test_s_saves_now_with_a_notification(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: snap(app).iteration > 3)
        await pilot.press("s")
        await until(pilot, lambda: run.run.checkpoint_path.exists())
        first = checkpoint_meta(run)["iteration"]
        first_mtime = run.run.checkpoint_path.stat().st_mtime_ns
        await until(pilot, lambda: any("saved at" in str(n.message) for n in app._notifications))
        await until(pilot, lambda: snap(app).iteration > first + 3)
        await pilot.press("s")
        await until(pilot, lambda: checkpoint_meta(run)["iteration"] > first)
        assert run.run.checkpoint_path.stat().st_mtime_ns > first_mtime
        await quit_app(app, pilot)


async def test_a_failed_save_is_shown_and_training_goes_on(run, tmp_path):
    app = monitor(run, tmp_path)
    run.run.checkpoint_path.mkdir()                    # the checkpoint cannot replace a folder
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: snap(app).iteration > 3)
        await pilot.press("s")
        await until(pilot, lambda: any(n.severity == "error" and "save failed" in str(n.message)
                                       for n in app._notifications))
        await until(pilot, lambda: "FAILED:" in screen_text(app))       # the Run pane says so
        at = snap(app).iteration
        await until(pilot, lambda: snap(app).iteration > at)           # still training
        run.run.checkpoint_path.rmdir()
        await pilot.press("s")
        await until(pilot, lambda: run.run.checkpoint_path.is_file())
        await until(pilot, lambda: "FAILED:" not in screen_text(app))
        await quit_app(app, pilot)


async def test_q_quits_and_the_checkpoint_holds_the_last_iteration(run, tmp_path):
    app = monitor(run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: snap(app).iteration > 5)
        await quit_app(app, pilot)
    assert not app.is_running
    final = snap(app)
    assert final.state == "STOPPED"
    assert checkpoint_meta(run)["iteration"] == final.iteration > 5


async def test_resume_restores_iteration_and_curve(tmp_path, corpus):
    first = open_run(tmp_path, corpus)
    app = monitor(first, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(snap(app).history) >= 3)
        await quit_app(app, pilot)
    before = snap(app)
    first.lock.unlock()

    second = open_run(tmp_path, corpus)
    try:
        assert second.resumed and second.trainer.iteration == before.iteration
        app = monitor(second, tmp_path)
        app.session.send(Pause())                       # hold it where it resumed
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: snap(app).state == "PAUSED")
            await pilot.pause(0.3)
            assert snap(app).iteration == before.iteration
            assert f"{before.iteration:,}" in screen_text(app)
            curve = app.query_one(LossChart).data
            assert len(curve) >= len(before.history)
            for restored, was in zip(curve, before.history):
                assert math.isclose(restored, was, abs_tol=1e-5)
            assert any(f"at iteration {before.iteration:,}" in str(n.message)
                       for n in app._notifications)
            await quit_app(app, pilot)
    finally:
        second.lock.unlock()


async def test_limit_reached_finishes_and_stays_open(run, tmp_path):
    app = monitor(run, tmp_path, max_iters=12)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: snap(app).state == "FINISHED")
        await until(pilot, lambda: "FINISHED" in state_word(app))
        await pilot.pause(0.3)
        assert app.is_running and snap(app).iteration == 12
        assert "space" not in app.screen.active_bindings      # nothing to pause any more
        assert checkpoint_meta(run)["iteration"] == 12
        await pilot.press("g")                                # generating still works
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, GenerateScreen))
        assert len(app.query_one(GeneratedPane).content.plain) == 200
        await quit_app(app, pilot)


async def test_f_finishes_the_run_with_a_cooldown_and_it_stops_where_the_dialog_said(tmp_path, corpus):
    launch = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None,
                     run_name="cool", new=False, preset=None, overrides={**TINY, "lr_min": 1e-4, "decay_iters": 0})
    app = monitor(launch, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: snap(app).iteration >= 5)
            await pilot.press("f")
            assert isinstance(app.screen, FinishScreen)
            steps, status = app.screen.query_one("#steps", Input), app.screen.query_one("#dialog-status")
            steps.value = "0"
            await pilot.press("enter")
            assert "at least 1" in str(status.content) and snap(app).max_iters is None
            steps.value = "8"
            await pilot.press("enter")
            await until(pilot, lambda: not isinstance(app.screen, FinishScreen))
            end = snap(app).max_iters
            assert end is not None and end >= 5 + 8
            await until(pilot, lambda: snap(app).state == "FINISHED")
            assert snap(app).iteration == end and snap(app).lr == pytest.approx(1e-4)
            meta = checkpoint_meta(launch)
            assert (meta["iteration"], meta["decay"], meta["cooldown"]) == (end, [end - 8, 8], True)
            await until(pilot, lambda: "FINISHED" in state_word(app))
            await pilot.press("f")                           # nothing left to finish
            assert not isinstance(app.screen, FinishScreen)
            await quit_app(app, pilot)
    finally:
        launch.lock.unlock()


async def test_a_failure_in_training_shows_in_the_app(run, tmp_path):
    app = monitor(run, tmp_path)
    step = run.trainer.step

    def diverging():                                # fails a few steps after the first save
        if run.run.checkpoint_path.exists() and run.trainer.iteration >= saved[0] + 3:
            raise TrainingDiverged("training diverged: the loss was not finite (test)")
        return step()
    run.trainer.step = diverging
    saved = [10**9]
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: snap(app).iteration > 3)
        await pilot.press("s")
        await until(pilot, lambda: run.run.checkpoint_path.exists())
        saved[0] = checkpoint_meta(run)["iteration"]
        await until(pilot, lambda: "FAILED" in state_word(app))
        assert app.is_running and snap(app).iteration > saved[0]
        # the Run pane's note: it grows the pane, so it is on screen from the next layout on
        await until(pilot, lambda: "training diverged" in screen_text(app))
        assert any(n.severity == "error" for n in app._notifications)
        await quit_app(app, pilot)
    assert checkpoint_meta(run)["iteration"] == saved[0]          # the last good one stays


# ---- text the model wrote ------------------------------------------------------------------------

class PanesApp(App):
    def compose(self):
        yield SamplePane()
        yield GeneratedPane()


async def test_sample_with_brackets_and_control_characters_renders_as_text():
    nasty = "[bold]x[/] [link=http://a]y\x1b[31m red\r\t\x07\x00 \x7f\u202e\x85 end\nnext [/"
    probs = [0.9, 0.05, 0.3] * len(nasty)
    app = PanesApp()
    async with app.run_test(size=(80, 12)) as pilot:
        app.query_one(SamplePane).show_text(nasty)            # unshaded: one run of text
        app.query_one(GeneratedPane).show("[prompt]", nasty, probs, 0.8, 7)
        await pilot.pause()
        shown = app.query_one(SamplePane).content.plain
        assert "[bold]x[/]" in shown and "[link=http://a]" in shown and "\nnext [/" in shown
        assert not any(ord(c) < 0x20 and c != "\n" for c in shown)
        assert "␛" in shown and "␍" in shown and "␉" in shown and "␇" in shown and "␀" in shown
        assert "\x7f" not in shown and "\u202e" not in shown and "\x85" not in shown
        assert app.query_one(GeneratedPane).content.plain.startswith("[prompt][bold]")
        assert "[bold]x[/]" in screen_text(app)


def test_shading_marks_sure_and_unsure_characters_with_styles():
    text = shaded("abc", [0.9, 0.3, 0.05])
    styles = {text.plain[s.start:s.end]: str(s.style) for s in text.spans}
    assert styles == {"a": "bold", "c": "dim underline"}       # b is plain
    assert shaded("ab", [0.9]).plain == "ab"                  # missing probabilities: plain
    assert visible("\t") == "␉" and visible("\n") == "\n" and visible("é") == "é"

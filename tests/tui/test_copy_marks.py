"""The monitor marks what its samples share with the training text: the live sample and a `g`
continuation, the stretches in reverse video and the longest in the pane's title."""

import time

import pytest
from textual.widgets import Input

from kafkarnn.seam import Copied
from kafkarnn.train.cadence import Cadence
from kafkarnn.train.launch import copy_checker, prepare
from kafkarnn.train.session import Session
from kafkarnn.tui.app import MonitorApp
from kafkarnn.tui.monitor import start_note
from kafkarnn.tui.screens import GenerateScreen
from kafkarnn.tui.samples import STYLE_COPIED, GeneratedPane, SamplePane, mark_copies, shaded

TINY = {"hidden": 16, "batch": 4, "seq_len": 16, "model": "rnn"}
TEXT = "".join(f"line {i}: the clerk of room {i * 7 % 13} kept the ledger shut.\n" for i in range(60))


@pytest.fixture
def launch(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKARNN_HOME", str(tmp_path / "home"))
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    launch = prepare(data_dir=tmp_path / "home", corpus_spec=str(path), encoding=None,
                     run_name="tiny", new=False, preset=None, overrides=dict(TINY))
    yield launch
    launch.lock.unlock()


async def until(pilot, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


def copied_ranges(text):
    return [(s.start, s.end) for s in text.spans if STYLE_COPIED in str(s.style)]


def test_marks_cover_each_stretch_after_the_prompt():
    copied = Copied(longest=4, stretches=((1, 4, 0), (7, 2, 5)), min_len=2)
    assert copied_ranges(mark_copies(shaded("abcdefghij"), copied)) == [(1, 5), (7, 9)]
    after_prompt = mark_copies(shaded("klmnopqrst", prefix="ab"), copied, offset=2)
    assert copied_ranges(after_prompt) == [(3, 7), (9, 11)]
    assert copied_ranges(mark_copies(shaded("abc"), None)) == []


async def test_the_live_sample_and_a_continuation_show_what_they_copy(launch, tmp_path):
    quote = TEXT[100:160]
    launch.trainer.generate = lambda *a, **k: (quote, [0.5] * len(quote))   # a model that quotes
    step = launch.trainer.step

    def slow_step():                     # tiny steps would keep the GIL from the app
        time.sleep(0.01)
        return step()
    launch.trainer.step = slow_step
    session = Session(launch, cadence=Cadence(sample_every=0.2, metrics_every=0.1), stay_open=True,
                      copying=copy_checker(launch, 20))
    app = MonitorApp(session, note=start_note(launch))
    async with app.run_test(size=(100, 30)) as pilot:
        def checked():
            c = session.snapshot().sample_copied
            return c is not None and not c.note
        await until(pilot, checked)
        pane = app.query_one(SamplePane)
        await until(pilot, lambda: copied_ranges(pane.content) == [(0, 60)], timeout=3.0)  # next poll
        assert "longest copied 60" in str(pane.border_title)
        assert "copied" in str(pane.border_subtitle)
        await pilot.press("g")
        await pilot.press(*"ab")
        app.screen.query_one("#length", Input).value = "60"
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, GenerateScreen))
        generated = app.query_one(GeneratedPane)
        assert generated.content.plain == "ab" + quote
        assert copied_ranges(generated.content) == [(2, 62)]
        assert "longest copied 60" in str(generated.border_title)
        await pilot.press("q")
        assert app.trained.wait(10)

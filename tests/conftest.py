"""Fixtures shared by the tests that run kafkarnn: a private data dir, a small book, terminals;
and Pilot's keys made quick."""

import pytest
import textual.app

TINY = ["--model", "rnn", "--hidden", "16", "--batch", "2", "--seq-len", "8"]
TEXT = "The porter said the door was open for you alone; now I shall shut it.\n" * 30


@pytest.fixture
def home(tmp_path, monkeypatch):
    """KAFKARNN_HOME in tmp_path, and no network: the default corpus falls back at once."""
    monkeypatch.setenv("KAFKARNN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAFKARNN_METAMORPHOSIS_URL", "http://127.0.0.1:9/unreachable")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return tmp_path / "home"


@pytest.fixture
def book(tmp_path):
    p = tmp_path / "porter.txt"
    p.write_text(TEXT)
    return p


@pytest.fixture
def long_book(tmp_path):
    """The book four times over: enough text for a few streams of real-process runs."""
    p = tmp_path / "porter.txt"
    p.write_text(TEXT * 4)
    return p


@pytest.fixture
def terminals():
    """Terminals (tests/terminal.py) a test opened; whatever still runs at the end is killed."""
    opened = []
    yield opened
    for t in opened:
        t.kill()



@pytest.fixture(autouse=True)
def keys_do_not_wait_for_an_idle_process(monkeypatch):
    """Pilot waits up to a second, twice per key, for the process to look idle, which it never
    does while a training thread steps: ~2 s a key. The monitor's tests wait for what they need
    (`until`), so a key waits at most 0.1 s. If Textual renames this, keys are only slower again."""
    idle = getattr(textual.app, "wait_for_idle", None)
    if idle is None:
        return

    async def brief(min_sleep=0.0, max_sleep=1.0):
        await idle(min_sleep, min(max_sleep, 0.1))
    monkeypatch.setattr(textual.app, "wait_for_idle", brief)

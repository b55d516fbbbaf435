"""The monitor's promises in the README, each with a test that fails if it breaks.

- SIGINT and SIGTERM to the monitor save, print the one ending line and exit 0; the checkpoint
  holds the iteration the line names (the real app in a pty: tests/terminal.py).
- `+` and `-` change the live sample's temperature, clamped to 0…5 (Pilot, tiny real trainer).
- 80×24 and NO_COLOR: every pane title and footer key is on screen at 80×24; with NO_COLOR=1
  the real app draws in greys only, and the state word is still marked (bold, reverse).
- Snapshots of the screens at 80×24 (RUNNING, PAUSED, the generate and finish dialogs), drawn from a fixed
  Snapshot by a fake session (no clock, no live rates, never saved), as plain text under
  tests/tui/snapshots/. After a deliberate layout change, regenerate them with one command:

      KAFKARNN_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_monitor_promises.py -k snapshot

  and review the diff of tests/tui/snapshots/ before committing it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import io
import os
import re
import signal
import threading
from pathlib import Path

import pytest
from rich.console import Console
from terminal import Terminal, last_iteration, until
from test_tui import corpus, monitor, run, snap  # noqa: F401  (corpus, run: fixtures)
from test_tui import until as until_app
from textual import events

from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.seam import Pause, Resume, Snapshot, State
from kafkarnn.tui.app import MonitorApp
from kafkarnn.tui.finish_screen import FinishScreen
from kafkarnn.tui.screens import GenerateScreen
from kafkarnn.tui.samples import SamplePane

TINY = ["--model", "rnn", "--hidden", "16", "--batch", "2", "--seq-len", "8"]
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("KAFKARNN_UPDATE_SNAPSHOTS") == "1"
TEXTUAL = importlib.metadata.version("textual")


def training_in(term: Terminal, run_dir: Path) -> None:
    """Wait until the monitor trains: its App is mounted, so its signal handlers are in place."""
    until(lambda: last_iteration(run_dir) > 0 or term.status is not None, what="the monitor to train")
    assert term.status is None, term.text()[-1500:]


# ---- 1. SIGINT and SIGTERM ------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_monitor_saves_and_exits_0_with_the_saved_line(home, long_book, terminals, sig):
    run_dir = home / "runs" / "sig"
    term = Terminal("--corpus", long_book, *TINY, "--run", "sig", "--save-every", "1000", home=home)
    terminals.append(term)
    training_in(term, run_dir)
    before = last_iteration(run_dir)
    os.kill(term.pid, sig)
    assert term.wait(30) == 0, term.text()[-1500:]
    lines = re.findall(rf"kafkarnn: {sig.name}: saved run sig at iteration ([\d,]+) — run the "
                       r"same command to continue\r?\n", term.text())
    assert len(lines) == 1, term.text()[-1500:]
    named = int(lines[0].replace(",", ""))
    assert named >= before > 0
    assert load_checkpoint(run_dir / "checkpoint.npz")[1]["iteration"] == named   # saved on the signal


# ---- 2. the + and - keys ---------------------------------------------------------------------------

async def test_plus_and_minus_set_the_live_sample_temperature_within_0_and_5(run, tmp_path):
    app = monitor(run, tmp_path)

    async def press(key: str, times: int, expect: float) -> None:
        # as the terminal driver posts them (pilot.press waits for an idle process after each
        # key: about a second each while a trainer runs)
        for _ in range(times):
            app.post_message(events.Key(key, CHARACTERS[key]))
        title = lambda: str(app.query_one(SamplePane).border_title)        # noqa: E731
        try:      # the loop reads commands between steps, the pane polls at 4 Hz: 10 s is ample
            await until_app(pilot, lambda: snap(app).temperature == expect
                            and title() == f"Sample · T {expect:.2f}", timeout=10)
        except AssertionError:
            pytest.fail(f"after {times}× {key}: the session's temperature is "
                        f"{snap(app).temperature}, the pane's title {title()!r}; expected {expect}")

    async with app.run_test(size=(100, 30)) as pilot:
        await until_app(pilot, lambda: snap(app).iteration > 3)
        assert snap(app).temperature == 1.0
        await press("plus", 1, 1.1)
        await press("minus", 12, 0.0)          # 11 steps down to 0, then one more: stays at 0
        await press("plus", 1, 0.1)            # and one step up from there
        await press("plus", 50, 5.0)           # 49 steps up to 5, then one more: stays at 5
        await press("minus", 1, 4.9)
        assert "Sample · T 4.90" in app.export_screenshot().replace("&#160;", " ")
        assert snap(app).state == State.RUNNING            # all of it while training
    assert app.trained.wait(10)


CHARACTERS = {"plus": "+", "minus": "-"}


# ---- a session with a fixed Snapshot, for layout and snapshots ----------------------------------

class FakeSession:
    """In place of kafkarnn.train.session.Session (the App's one seam): a fixed Snapshot, no
    training, no clock, never saved. Pause and Resume change its state, as the real loop does."""

    def __init__(self):
        self.snap = _fixed(State.RUNNING)
        self.sent = []
        self.stopped = threading.Event()

    def snapshot(self) -> Snapshot:
        return self.snap

    def events(self) -> list:
        return []

    def send(self, command) -> None:
        self.sent.append(command)
        if isinstance(command, Pause):
            self.snap = _fixed(State.PAUSED)
        elif isinstance(command, Resume):
            self.snap = _fixed(State.RUNNING)

    def run(self, stop) -> State:
        while not stop():
            self.stopped.wait(0.02)
        return State.STOPPED


def _fixed(state: State) -> Snapshot:
    sample = "the door was open for you alone;\nnow I shall shut it. the clerk said nothing"
    return Snapshot(
        state=state, run_name="porter-lstm", corpus="porter.txt", model="lstm 2×128",
        n_params=215_338, data_dir="/home/k/.local/share/kafkarnn", iteration=12_345,
        chars=12_345 * 32 * 64, elapsed_s=754.0, session_s=300.0, iters_per_sec=41.2,
        chars_per_sec=84_377.0, loss=1.4321, val_loss=1.5012, best_val_loss=1.4876,
        history=tuple(3.0 * 0.97 ** i + 0.02 * (i % 3) for i in range(60)), eta_s=None,
        last_saved=None, sample=sample, sample_probs=tuple((i * 37 % 100) / 100 for i in
                                                           range(len(sample))),
        sample_id=3, temperature=1.0, lr=1.25e-3, weights="EMA 0.99")


def screen_lines(app) -> list[str]:
    """The screen as plain text lines, drawn as `export_screenshot()` draws it (the compositor
    of the current screen, which includes what a modal dialog covers)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    return [line.rstrip() for line in console.export_text(styles=False).splitlines()]


# ---- 3. 80×24 and NO_COLOR --------------------------------------------------------------------------

TITLES = ["Loss", "Sample · T 1.00", "Generated", "Run", "Speed"]
FOOTER = ["space Pause", "g Prompt", "i Inside", "c Runs", "+", "-", "f Finish", "d Detach", "q Quit"]


async def test_every_title_and_footer_key_is_on_screen_at_80x24():
    app = MonitorApp(FakeSession())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        await pilot.press("q")
    assert len(lines) == 24 and max(map(len, lines)) <= 80
    top = "\n".join(lines[:-1])
    for title in TITLES:
        assert f"─ {title} ─" in top, title                     # in a pane's top border
    footer = lines[-1]
    for key in FOOTER:
        assert key in footer, (key, footer)


SGR = re.compile(r"\x1b\[([0-9;:]*)m")
BASIC_GREYS = {30, 37, 90, 97, 40, 47, 100, 107}             # black, white and their bright kin


def sgr(params: str) -> tuple[set[int], list[tuple[str, object]]]:
    """What one SGR sequence (its parameters) sets: the attributes (1 bold, 7 reverse, …) and
    the colours, as ("basic", code), ("256", index) or ("rgb", (r, g, b))."""
    codes = [int(p) if p else 0 for p in re.split("[;:]", params)]
    attrs, colours, i = set(), [], 0
    while i < len(codes):
        c = codes[i]
        if c in (38, 48, 58) and i + 2 < len(codes) and codes[i + 1] == 5:
            colours.append(("256", codes[i + 2]))
            i += 3
        elif c in (38, 48, 58) and i + 4 < len(codes) and codes[i + 1] == 2:
            colours.append(("rgb", tuple(codes[i + 2:i + 5])))
            i += 5
        else:
            if 30 <= c <= 37 or 40 <= c <= 47 or 90 <= c <= 97 or 100 <= c <= 107:
                colours.append(("basic", c))
            elif c not in (39, 49):                 # 39, 49: the terminal's own colours
                attrs.add(c)
            i += 1
    return attrs, colours


def grey(kind: str, value) -> bool:
    if kind == "basic":
        return value in BASIC_GREYS
    if kind == "256":
        if value >= 232 or value in (0, 7, 8, 15):
            return True
        if 16 <= value <= 231:
            r, g, b = (value - 16) // 36, (value - 16) // 6 % 6, (value - 16) % 6
            return r == g == b
        return False
    return len(set(value)) == 1


def test_no_color_in_the_real_app_at_80x24_greys_only_and_the_state_word_marked(home, long_book,
                                                                                  terminals):
    run_dir = home / "runs" / "mono"
    term = Terminal("--corpus", long_book, *TINY, "--run", "mono", home=home, size=(80, 24),
                    env={"NO_COLOR": "1"})
    terminals.append(term)
    training_in(term, run_dir)
    until(lambda: "Detach" in term.text() and " RUNNING " in term.text(),
          what="the screen to be drawn")
    term.type("q")
    assert term.wait(30) == 0
    out = term.text()
    hues = {c for params in SGR.findall(out) for c in sgr(params)[1] if not grey(*c)}
    assert not hues, f"colours drawn with NO_COLOR=1: {sorted(hues)[:10]}"
    marked = [sgr(p)[0] for p in re.findall(r"\x1b\[([0-9;:]*)m RUNNING ", out)]
    assert marked and all({1, 7} <= m for m in marked), marked       # bold, reverse video
    assert any(4 in sgr(p)[0] for p in SGR.findall(out))      # the legend's "unsure": underlined
    moves = list(CUP.finditer(out))
    assert max(int(m[1]) for m in moves) == 24 and max(int(m[2]) for m in moves) <= 80
    footer = last_line(out, 24, 80)
    for key in FOOTER:
        assert key in footer, (key, footer)
    for title in TITLES:                                        # each drawn as one border line
        assert f"─ {title} ─" in plain(out), title


CUP = re.compile(r"\x1b\[(\d+);(\d+)H")                          # cursor to line;column


def plain(output: str) -> str:
    return re.sub(r"\x1b\[[0-9;:?<>=]*[A-Za-z~]", "", output)


def last_line(output: str, line: int, width: int) -> str:
    """What `output` left on the terminal's `line`: the text written after each move of the
    cursor to that line, put at its column (Textual draws each footer key on its own)."""
    cells = [" "] * width
    moves = list(CUP.finditer(output))
    for move, after in zip(moves, moves[1:] + [None]):
        if int(move[1]) == line:
            text = plain(output[move.end():after.start() if after else len(output)])
            text = text.split("\r")[0].split("\n")[0]
            col = int(move[2]) - 1
            cells[col:col + len(text)] = text[:width - col]
    return "".join(cells[:width])


# ---- 4. snapshots of the screens at 80×24 ----------------------------------------------------------

def compare(name: str, lines: list[str]) -> None:
    """The screen against tests/tui/snapshots/<name>.txt (its first line: what drew it)."""
    path = SNAPSHOTS / f"{name}.txt"
    drawn_by = f"# textual {TEXTUAL}"
    got = "\n".join(lines) + "\n"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{drawn_by}\n{got}", encoding="utf-8")
        return
    assert path.exists(), f"no {path}: see this module's docstring to make it"
    stored_by, _, want = path.read_text(encoding="utf-8").partition("\n")
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            f"{path.name} (stored)", f"{path.name} (now)"))
        pytest.fail(f"the screen differs from {path.name}, stored with {stored_by[2:]}, now "
                    f"{drawn_by[2:]} (a change meant? regenerate it: see this module's "
                    f"docstring)\n{diff}", pytrace=False)


async def test_snapshot_running():
    app = MonitorApp(FakeSession())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        compare("running_80x24", screen_lines(app))
        await pilot.press("q")


async def test_snapshot_paused():
    session = FakeSession()
    app = MonitorApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("space")
        await until_app(pilot, lambda: "PAUSED" in str(app.screen.query_one("#state").content))
        await pilot.pause()
        assert session.sent == [Pause()]
        compare("paused_80x24", screen_lines(app))
        await pilot.press("q")


async def test_snapshot_generate_dialog():
    app = MonitorApp(FakeSession())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("g")
        assert isinstance(app.screen, GenerateScreen)
        await pilot.pause()
        compare("generate_dialog_80x24", screen_lines(app))
        await pilot.press("escape", "q")


async def test_snapshot_finish_dialog():
    app = MonitorApp(FakeSession())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f")
        assert isinstance(app.screen, FinishScreen)
        await pilot.pause()
        compare("finish_dialog_80x24", screen_lines(app))
        await pilot.press("escape", "q")


def test_the_speed_pane_says_measuring_until_the_first_interval_and_idle_when_not_training():
    import dataclasses
    from kafkarnn.tui.widgets import SpeedPane

    def rates(snap):
        cells = SpeedPane._render_speed(snap).columns[1]._cells
        return [str(c) for c in cells[:2]]

    running = _fixed(State.RUNNING)
    assert rates(running) == ["41.2", "84,377"]
    assert rates(dataclasses.replace(running, iters_per_sec=0.0, chars_per_sec=0.0)) == \
        ["measuring…", "measuring…"]                          # never "0 chars/s" at the start
    assert rates(dataclasses.replace(running, state=State.PAUSED)) == ["- (not training)"] * 2

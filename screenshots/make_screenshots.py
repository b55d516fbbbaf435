"""Make the README's screenshots of the training monitor: a real run on sample_texts, as SVG.

    python screenshots/make_screenshots.py [--seconds 60]

Trains a fresh `--preset small` run in a temporary data folder inside the monitor (headless
Textual, 100×30) for a while so the sample reads like words, then writes
  monitor.svg   the monitor while training
  prompt.svg    the `g` dialog with a seed text typed in
  generate.svg  the monitor with that seed's continuation in the Generated pane
  inside-units.svg     the Inside screen (i): the validation text shaded by one unit
  inside-next.svg      its next-character view: the top-5 guesses at a cursor
  inside-gradient.svg  its gradient through time, gate saturation and clipping
and then, for the vanishing gradient, the same view of two more runs trained alike on the same
text to the same iteration, a vanilla rnn and an lstm (one layer of 64, seq-len 64, 400 steps):
  gradient-rnn.svg, gradient-lstm.svg
and, for runs side by side, three runs on the same text (the small preset's lstm, a gru like
it, and the seed preset's rnn: one stream, Adagrad), each trained for the same seconds, then
the lstm resumed in the monitor with its comparison screen (c) open:
  compare.svg
next to this script (`--only compare` makes just that one). Timings and text differ from run
to run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # see benchmarks/monitor_overhead.py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from kafkarnn.train.cadence import Cadence, Limits  # noqa: E402
from kafkarnn.train.launch import prepare  # noqa: E402
from kafkarnn.train.session import Session  # noqa: E402
from kafkarnn.tui.app import MonitorApp  # noqa: E402
from kafkarnn.tui.compare_screen import CompareScreen  # noqa: E402
from kafkarnn.tui.inside_screen import InsideScreen  # noqa: E402
from kafkarnn.tui.monitor import start_note  # noqa: E402
from kafkarnn.tui.screens import GenerateScreen  # noqa: E402

SIZE = (100, 30)
PROMPT = "The clerk opened the door and"


async def shoot(seconds: float, out: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="kafkarnn-"))
    launch = prepare(data_dir=home, corpus_spec=str(REPO / "sample_texts"), encoding=None,
                     run_name=None, new=False, preset="small", overrides={})
    try:
        cadence = Cadence(eval_every=15.0, save_every=30.0, sample_every=3.0)
        session = Session(launch, cadence=cadence, stay_open=True)
        app = MonitorApp(session, note=start_note(launch))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                await asyncio.sleep(1.0)
                print(f"\rtraining {time.monotonic() - start:4.0f}s  "
                      f"iteration {session.snapshot().iteration:,}", end="", flush=True)
            print()
            await pilot.pause(1.0)
            app.save_screenshot(filename="monitor.svg", path=str(out))
            await pilot.press("g")
            app.screen.query_one("#seed").value = PROMPT
            await pilot.pause(0.5)
            app.save_screenshot(filename="prompt.svg", path=str(out))
            await pilot.press("enter")
            deadline = time.monotonic() + 30
            while isinstance(app.screen, GenerateScreen) and time.monotonic() < deadline:
                await pilot.pause(0.2)
            await pilot.pause(1.0)
            app.save_screenshot(filename="generate.svg", path=str(out))
            await inside_shots(app, pilot, out)
            await pilot.press("q")
        app.trained.wait(30)
    finally:
        launch.lock.unlock()
    print(f"wrote monitor.svg, prompt.svg, generate.svg and inside-*.svg to {out} "
          f"(run data in {home})")


async def inside_shots(app, pilot, out: Path) -> None:
    """The three views of the Inside screen, at its first look."""
    await pilot.press("i")
    deadline = time.monotonic() + 60
    while app.screen.look is None and time.monotonic() < deadline:
        await pilot.pause(0.2)
    await pilot.pause(0.5)
    app.save_screenshot(filename="inside-units.svg", path=str(out))
    await pilot.press("2", *["right"] * 24)            # a cursor a little way into the text
    await pilot.pause(0.5)
    app.save_screenshot(filename="inside-next.svg", path=str(out))
    await pilot.press("3")
    await pilot.pause(0.5)
    app.save_screenshot(filename="inside-gradient.svg", path=str(out))
    await pilot.press("escape")
    assert not isinstance(app.screen, InsideScreen)


async def gradient_shot(cell: str, iterations: int, out: Path) -> None:
    """The gradient-through-time view of a fresh one-layer `cell` run after `iterations` steps."""
    home = Path(tempfile.mkdtemp(prefix="kafkarnn-"))
    launch = prepare(data_dir=home, corpus_spec=str(REPO / "sample_texts"), encoding=None,
                     run_name=f"gradient-{cell}", new=False, preset="small",
                     overrides={"model": cell, "hidden": 64, "layers": 1, "seq_len": 64})
    try:
        session = Session(launch, Limits(max_iters=iterations), Cadence(sample_every=3.0),
                          stay_open=True)
        app = MonitorApp(session, note=start_note(launch))
        async with app.run_test(size=SIZE) as pilot:
            while not session.snapshot().state.ended:
                await asyncio.sleep(0.5)
            await pilot.press("i")
            deadline = time.monotonic() + 60
            while app.screen.look is None and time.monotonic() < deadline:
                await pilot.pause(0.2)
            await pilot.press("3")
            await pilot.pause(0.5)
            app.save_screenshot(filename=f"gradient-{cell}.svg", path=str(out))
            await pilot.press("escape", "q")
        app.trained.wait(30)
    finally:
        launch.lock.unlock()
    print(f"wrote gradient-{cell}.svg")


COMPARED = {"sample_texts-lstm": ("small", {}), "sample_texts-gru": ("small", {"model": "gru"}),
            "sample_texts-rnn": ("seed", {})}


async def compare_shot(seconds: float, out: Path) -> None:
    """Three runs on sample_texts, `seconds` of training each, then the lstm live again in the
    monitor with the comparison open (training curves on), at 120×40."""
    home = Path(tempfile.mkdtemp(prefix="kafkarnn-"))
    for name, (preset, overrides) in COMPARED.items():
        launch = prepare(data_dir=home, corpus_spec=str(REPO / "sample_texts"), encoding=None,
                         run_name=name, new=False, preset=preset, overrides=overrides)
        try:
            Session(launch, Limits(max_seconds=seconds), Cadence(eval_every=seconds / 12)).run()
        finally:
            launch.lock.unlock()
        print(f"trained {name} for {seconds:.0f} s")
    launch = prepare(data_dir=home, corpus_spec=None, encoding=None, run_name="sample_texts-lstm",
                     new=False, preset=None, overrides={})
    try:
        session = Session(launch, cadence=Cadence(eval_every=5.0), stay_open=True)
        app = MonitorApp(session)
        async with app.run_test(size=(120, 40)) as pilot:
            await asyncio.sleep(12.0)                      # a validation pass in this session
            await pilot.press("c", "t")
            deadline = time.monotonic() + 30
            while not app.screen.comparison.samples and time.monotonic() < deadline:
                await pilot.pause(0.2)
            await pilot.pause(1.0)
            assert isinstance(app.screen, CompareScreen)
            app.save_screenshot(filename="compare.svg", path=str(out))
            await pilot.press("escape", "q")
        app.trained.wait(30)
    finally:
        launch.lock.unlock()
    print(f"wrote compare.svg (run data in {home})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="training time before the shots (60)")
    p.add_argument("--out", type=Path, default=HERE, help="folder for the SVG files (this one)")
    p.add_argument("--only", choices=("all", "compare"), default="all",
                   help="all the screenshots (default), or only compare.svg")
    a = p.parse_args()
    if a.only == "all":
        asyncio.run(shoot(a.seconds, a.out))
        for cell in ("rnn", "lstm"):
            asyncio.run(gradient_shot(cell, 400, a.out))
    asyncio.run(compare_shot(a.seconds, a.out))


if __name__ == "__main__":
    main()

"""The training monitor App, and `run_monitor()`, which the CLI calls when it has a terminal.

The App is thin: the session's loop runs in a Textual thread worker and never touches a
widget; the App polls `session.snapshot()` at 4 Hz (the sparkline at 1 Hz, the sample only when
a new one exists), drains `session.events()` into notifications, and sends commands.

Quitting in any way (q, ctrl+q, SIGHUP, SIGTERM, SIGINT) cancels the worker; the session's
loop then saves the checkpoint before the thread ends, and `run_monitor()` prints one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer
from textual.worker import get_current_worker

from kafkarnn.train.seam import Generate, Pause, Resume, SaveNow, SetTemperature
from kafkarnn.train.session import Session
from kafkarnn.tui.screens import Continuation, GenerateScreen
from kafkarnn.tui.widgets import GeneratedPane, LossPane, RunPane, SamplePane, SpeedPane

POLL_S, CURVE_S = 0.25, 1.0        # numbers at 4 Hz, the sparkline at 1 Hz
GENERATE_TIMEOUT_S = 60.0
ENDED = ("FINISHED", "FAILED", "STOPPED")
TEMP = Binding.Group("temp", compact=True)


class MonitorApp(App[None]):
    """Watch, pause, prompt and save one training session."""

    CSS_PATH = "app.tcss"
    TITLE = "kafkarnn"
    BINDINGS = [
        Binding("space", "pause", "Pause"),
        Binding("space", "resume", "Resume"),
        Binding("g", "generate", "Generate"),
        Binding("s", "save", "Save"),
        Binding("plus,equals_sign", "temperature(0.1)", "hotter", key_display="+", group=TEMP),
        Binding("minus", "temperature(-0.1)", "cooler", key_display="-", group=TEMP),
        Binding("q", "quit", "Save & quit"),
        Binding("ctrl+c", "quit", "Save & quit", show=False, priority=True),  # what people press
    ]

    paused = reactive(False, bindings=True)
    ended = reactive(False, bindings=True)

    def __init__(self, session: Session, note: str = "") -> None:
        super().__init__()
        self.session = session
        self.note = note
        self.trained = threading.Event()        # set when the training thread has ended
        snap = session.snapshot()
        self.temperature = snap.temperature
        self.last_prompt = ("", 200, snap.temperature)
        self.save_requested = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield LossPane(id="loss")
                yield SamplePane(id="sample")
                yield GeneratedPane(id="generated")
            with Vertical(id="right"):
                yield RunPane(id="run")
                yield SpeedPane(id="speed")
        yield Footer()

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for name in ("SIGHUP", "SIGTERM", "SIGINT"):  # exit cleanly, so the final save runs
            with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(getattr(signal, name), self.exit)
        self.loss, self.sample = self.query_one(LossPane), self.query_one(SamplePane)
        self.run_pane, self.speed = self.query_one(RunPane), self.query_one(SpeedPane)
        self.poll()
        self.loss.show_curve(self.session.snapshot().history)
        self.set_interval(POLL_S, self.poll)
        self.set_interval(CURVE_S, lambda: self.loss.show_curve(self.session.snapshot().history))
        if self.note:
            self.notify(self.note, markup=False, timeout=15)
        self.train()

    @work(thread=True, exclusive=True, group="train")
    def train(self) -> None:
        worker = get_current_worker()
        try:
            self.session.run(stop=lambda: worker.is_cancelled)
        finally:
            self.trained.set()

    # -- polling ------------------------------------------------------------------------------

    def poll(self) -> None:
        snap = self.session.snapshot()
        self.run_pane.show(snap)
        self.speed.show(snap)
        self.loss.show_numbers(snap)
        self.sample.show(snap)
        self.ended = snap.state in ENDED
        for event in self.session.events():
            if event.kind == "saved":
                if self.save_requested:             # periodic saves show in the Run pane only
                    self.save_requested -= 1
                    self.notify(event.text, title="Checkpoint", markup=False)
            elif event.kind in ("save_failed", "error"):
                self.notify(event.text, severity="error", timeout=30, markup=False)
            elif event.kind == "info":
                self.notify(event.text, severity="warning", markup=False)
            else:
                self.notify(event.text, markup=False, timeout=10)

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "pause":
            return not (self.paused or self.ended)
        if action == "resume":
            return self.paused and not self.ended
        return True

    def action_pause(self) -> None:
        self.session.send(Pause())
        self.paused = True

    def action_resume(self) -> None:
        self.session.send(Resume())
        self.paused = False

    def action_toggle_pause(self) -> None:
        self.action_resume() if self.paused else self.action_pause()

    def action_save(self) -> None:
        self.save_requested += 1
        self.session.send(SaveNow())

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(5.0, max(0.0, self.temperature + delta)), 2)
        self.session.send(SetTemperature(self.temperature))     # the Sample title shows it

    def action_generate(self) -> None:
        prompt, length, temperature = self.last_prompt
        self.push_screen(GenerateScreen(self.generate_text, prompt, length, temperature),
                         self.show_continuation)

    async def generate_text(self, prompt: str, length: int, temperature: float):
        """Ask the training loop for a continuation (between steps) and wait for it."""
        command = Generate(prompt, length, temperature)
        self.session.send(command)
        return await asyncio.wait_for(asyncio.wrap_future(command.reply), GENERATE_TIMEOUT_S)

    def show_continuation(self, result: Continuation | None) -> None:
        if result is None:
            return
        self.last_prompt = (result.prompt, result.length, result.temperature)
        self.query_one(GeneratedPane).show(result.prompt, result.text, result.probs,
                                           result.temperature, self.session.snapshot().iteration)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if not self.ended:
            yield SystemCommand("Resume training" if self.paused else "Pause training",
                                "space: stop or continue the training steps", self.action_toggle_pause)
        yield SystemCommand("Generate from a prompt", "g: continue a seed text with the current model",
                            self.action_generate)
        yield SystemCommand("Save checkpoint now", "s: write the run's checkpoint", self.action_save)
        yield SystemCommand("Hotter live sample", "+: raise the live sample's temperature by 0.1",
                            lambda: self.action_temperature(0.1))
        yield SystemCommand("Cooler live sample", "-: lower the live sample's temperature by 0.1",
                            lambda: self.action_temperature(-0.1))
        yield SystemCommand("Save and quit", "q: save the checkpoint and leave", self.action_quit)


def start_note(launch) -> str:
    """The first notification: where this session starts."""
    where = (f"resumed {launch.run.name} at iteration {launch.trainer.iteration:,}"
             if launch.resumed else f"new run {launch.run.name}")
    notice = getattr(launch.corpus, "notice", None)     # e.g. offline: the bundled texts instead
    return f"{where} — {notice}" if notice else where


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:                                  # the terminal may be gone (SIGHUP)
        pass


def run_monitor(args, launch, data_dir) -> int:
    """Run the monitor until the user leaves; print where the run stands. 0, or 2 if training failed."""
    from kafkarnn.cli import make_session

    session = make_session(args, launch, data_dir, sample_every=3.0, stay_open=True)
    started = time.time()
    if launch.resumed:                               # "saved" shows the checkpoint we resumed from
        with contextlib.suppress(OSError):
            session.last_saved = launch.run.checkpoint_path.stat().st_mtime
    app = MonitorApp(session, note=start_note(launch))
    app.run(mouse=not getattr(args, "no_mouse", False))
    app.trained.wait(timeout=300)                    # the final save happens in the worker
    snap = session.snapshot()
    if snap.state == "FAILED":
        _say(f"kafkarnn: error: {' '.join(snap.message.split())}")
        return 2
    why = getattr(snap, "save_error", "")
    if not why and (snap.last_saved is None or snap.last_saved < started):
        why = f"no checkpoint was written at iteration {snap.iteration:,}"
    if why:                                          # never end with unsaved progress silently
        _say(f"kafkarnn: error: run {snap.run_name}: {' '.join(why.split())}; the previous "
             "checkpoint is intact and the progress since it is lost")
        return 2
    _say(f"kafkarnn: saved run {snap.run_name} at iteration {snap.iteration:,} — "
         "run the same command to continue")
    return app.return_code or 0

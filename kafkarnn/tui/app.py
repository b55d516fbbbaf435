"""The training monitor App: thin. It runs the session's loop in a worker thread, shows the
training screen (training.py), and knows why it ends.

Ways out: q or ctrl+c (save and quit); SIGTERM or SIGINT (the same, e.g. a take-over from
another terminal); `d` (hand the run to a background trainer, between two steps, and leave;
if that fails the monitor says so and trains on); SIGHUP, the terminal gone (the worker saves,
starts the background trainer and ends the process itself: nothing can be drawn any more).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from typing import Callable

from textual import work
from textual.app import App
from textual.worker import get_current_worker

from kafkarnn.seam import HandOff, State
from kafkarnn.train.session import Session
from kafkarnn.tui.training import TrainingScreen


class MonitorApp(App[None]):
    """Watch one training session; its loop runs in a worker thread."""

    CSS_PATH = "app.tcss"
    TITLE = "kafkarnn"

    def __init__(self, session: Session, note: str = "",
                 start_background: Callable[[], int] | None = None,
                 on_hangup: Callable[[], None] | None = None, early_signals=None) -> None:
        super().__init__()
        self.session = session
        self.note = note
        self.start_background = start_background   # starts the trainer that goes on, -> its PID
        self.on_hangup = on_hangup                 # the worker's last call after a hang-up
        self.trained = threading.Event()           # set when the training thread has ended
        self.signal_name: str | None = None        # the signal that ended the app, if any
        self.paused_detach = False                 # `d` (or a hang-up) while paused
        self.hung_up = False
        self.early_signals = early_signals          # caught before the App could handle them

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        handlers = {"SIGHUP": self.hang_up, "SIGTERM": lambda: self.end_by("SIGTERM"),
                    "SIGINT": lambda: self.end_by("SIGINT")}
        for name, handler in handlers.items():      # leave cleanly, so the final save runs
            with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(getattr(signal, name), handler)
        self.train()
        for name in (self.early_signals.caught if self.early_signals else ()):
            handlers[name]()

    def get_default_screen(self) -> TrainingScreen:
        return TrainingScreen(self.session, self.note)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, TrainingScreen):
            yield from screen.system_commands()

    @work(thread=True, exclusive=True, group="train")
    def train(self) -> None:
        worker = get_current_worker()
        try:
            self.session.run(stop=lambda: worker.is_cancelled or self.hung_up)
        finally:
            self.trained.set()
        if self.hung_up and self.on_hangup is not None:
            self.on_hangup()

    def end_by(self, name: str) -> None:
        self.signal_name = name
        self.exit()

    def detach(self, paused: bool) -> None:
        """`d`: a running session is handed over; a paused or ended one is saved and left."""
        if paused or self.session.snapshot().state.ended or self.start_background is None:
            self.paused_detach = paused
            self.exit()
            return
        self.notify("handing the run over to a background trainer…", markup=False)
        self.session.send(HandOff(self.start_background))

    def hang_up(self) -> None:
        """SIGHUP: the terminal is gone. The loop stops and saves; the worker takes it from there."""
        self.paused_detach = self.session.snapshot().state == State.PAUSED
        self.hung_up = True

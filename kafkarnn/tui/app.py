"""The training monitor App: thin. It runs the session's loop in a worker thread, shows the
training screen (training.py), passes on how the user or a signal asked it to end (`Leaving`),
and returns the run's `Ending` (train/life.py decides it).

Ways out: q, ctrl+c or ctrl+q (save and quit); SIGTERM or SIGINT (the same, e.g. a take-over
from another terminal); `d` (hand the run to a background trainer, between two steps, and
leave; if that fails the monitor says so and trains on); SIGHUP, the terminal gone (the worker
saves, hands on, and ends the process itself: nothing can be drawn any more). In each case the
loop stops first and saves; the worker then ends the App with the Ending.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading

from textual import work
from textual.app import App
from textual.worker import get_current_worker

from kafkarnn.seam import Ending, HandOff, State, StopSignal
from kafkarnn.train.life import Leaving, Life
from kafkarnn.train.session import Session
from kafkarnn.tui.training import TrainingScreen


class MonitorApp(App[Ending]):
    """Watch one training session; its loop runs in a worker thread. Without a `life` (tests
    with a stand-in session) it trains nothing of its own and returns None."""

    CSS_PATH = "app.tcss"
    TITLE = "kafkarnn"

    def __init__(self, session: Session, note: str = "", life: Life | None = None,
                 early_signals=()) -> None:
        super().__init__()
        self.session = session
        self.note = note
        self.life = life
        self.trained = threading.Event()           # set when the training thread has ended
        self.leaving = Leaving()                   # what asked the loop to end
        self.stopping = False                      # the loop ends at its next check, and saves
        self.early_signals = early_signals         # caught before the App could handle them

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        handlers = {StopSignal.SIGHUP: self.hang_up,
                    StopSignal.SIGTERM: lambda: self.end_by(StopSignal.SIGTERM),
                    StopSignal.SIGINT: lambda: self.end_by(StopSignal.SIGINT)}
        for sig, handler in handlers.items():      # leave cleanly, so the final save runs
            with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(getattr(signal, sig.value), handler)
        self.train()
        for sig in self.early_signals:
            handlers[sig]()

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
            self.session.run(stop=lambda: worker.is_cancelled or self.stopping)
        finally:
            self.trained.set()
        if self.leaving.hung_up and self.life is not None:
            self.end_without_terminal()
        ending = self.life.end(self.leaving).ending if self.life is not None else None
        with contextlib.suppress(RuntimeError):    # the App is leaving already (an error in it)
            self.call_from_thread(self.exit, ending)

    def end_without_terminal(self) -> None:
        """In the worker, after a hang-up: the run's life ends (handed on, its line in train.log),
        and so does the process, here: the App cannot leave cleanly without its terminal."""
        code = 2
        try:
            code = self.life.end_after_hangup(self.leaving).code
        finally:
            os._exit(code)

    def leave(self) -> None:
        """Save and leave: the loop stops between two steps, then the worker ends the App."""
        self.stopping = True

    async def action_quit(self) -> None:
        self.leave()                               # ctrl+q too: never leave without the save

    def end_by(self, sig: StopSignal) -> None:
        self.leaving.signals.append(sig)
        self.leave()

    def detach(self, paused: bool) -> None:
        """`d`: a running session is handed over; a paused or ended one is saved and left."""
        if paused or self.session.snapshot().state.ended or self.life is None:
            self.leaving.paused = paused
            self.leave()
            return
        self.notify("handing the run over to a background trainer…", markup=False)
        self.session.send(HandOff(self.life.start_background))

    def hang_up(self) -> None:
        """SIGHUP: the terminal is gone. The loop stops and saves; the worker takes it from there."""
        self.leaving.paused = self.session.snapshot().state == State.PAUSED
        self.leaving.hung_up = True
        self.leave()

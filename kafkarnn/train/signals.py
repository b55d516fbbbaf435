"""The signals that ask a trainer to stop (SIGINT, SIGTERM, SIGHUP), recorded instead of ending
the process, so that the loop stops between two steps and saves."""

from __future__ import annotations

import signal
import threading

NAMES = ("SIGINT", "SIGTERM", "SIGHUP")


class Signals:
    """While in the `with` block: each of NAMES is appended to `caught` and sets `event`."""

    def __init__(self):
        self.caught: list[str] = []
        self.event = threading.Event()

    def __enter__(self) -> "Signals":
        def on_signal(signum, frame):
            self.caught.append(signal.Signals(signum).name)
            self.event.set()
        self.old = {name: signal.signal(getattr(signal, name), on_signal) for name in NAMES}
        return self

    def __exit__(self, *exc) -> None:
        for name, handler in self.old.items():
            signal.signal(getattr(signal, name), handler)

    @property
    def first(self) -> str | None:
        return self.caught[0] if self.caught else None

"""The signals that ask a trainer to stop (seam.StopSignal: SIGINT, SIGTERM, SIGHUP), recorded
instead of ending the process, so that the loop stops between two steps and saves."""

from __future__ import annotations

import signal
import threading

from kafkarnn.seam import StopSignal


class Signals:
    """While in the `with` block: each StopSignal is appended to `caught` and sets `event`."""

    def __init__(self):
        self.caught: list[StopSignal] = []
        self.event = threading.Event()

    def __enter__(self) -> "Signals":
        def on_signal(signum, frame):
            self.caught.append(StopSignal(signal.Signals(signum).name))
            self.event.set()
        self.old = {s: signal.signal(getattr(signal, s.value), on_signal) for s in StopSignal}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.old.items():
            signal.signal(getattr(signal, s.value), handler)

    @property
    def first(self) -> StopSignal | None:
        return self.caught[0] if self.caught else None

    @property
    def last(self) -> StopSignal | None:
        return self.caught[-1] if self.caught else None

"""The seam between the training loop and its front ends: the words they share, defined once.

- `State`: where a session is (RUNNING, PAUSED, …); `EventKind`: what can happen once;
  `Role`: how a process trains a run (in the monitor, headless in a terminal, or in the
  background), as the run's lock file names it;
- `Snapshot`: an immutable picture of the session that the loop replaces a few times a second
  and a UI reads whenever it likes (never a half-updated state: nothing in it changes);
- `Copied`: the stretches a sample shares with the training text (marked in the sample panes);
- `Event`: something that happened once (saved, save failed, finished, error, info);
- commands (`Pause`, `Resume`, `SaveNow`, `SetTemperature`, `Generate`, `LookInside`, `HandOff`):
  sent by a UI with `Session.send()` and carried out by the loop between two training steps.

Plain types only: no threads, no NumPy, no UI.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable


class State(str, Enum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SAVING = "SAVING"
    FINISHED = "FINISHED"        # a limit was reached
    FAILED = "FAILED"            # training cannot go on (it diverged)
    STOPPED = "STOPPED"          # the loop ended: quit, a signal, or handed over

    @property
    def ended(self) -> bool:
        return self in (State.FINISHED, State.FAILED, State.STOPPED)

    def __str__(self) -> str:
        return self.value


class EventKind(str, Enum):
    SAVED = "saved"
    SAVE_FAILED = "save_failed"
    FINISHED = "finished"
    ERROR = "error"
    INFO = "info"


class Role(str, Enum):
    MONITOR = "monitor"          # the Textual app's worker thread
    HEADLESS = "headless"        # `--headless` in the foreground (nohup, systemd, scripts)
    BACKGROUND = "background"    # detached: a new session with no terminal, output to train.log


@dataclass(frozen=True)
class Copied:
    """What a sample shares with the training text (inspect/copying.py), or why that is unknown."""
    longest: int = 0                 # the longest stretch, in characters, that also occurs there
    stretches: tuple[tuple[int, int, int], ...] = ()   # (start in sample, length, start in text)
    min_len: int = 20                # the stretches are those at least this long
    note: str = ""                   # e.g. "checking…" while the index builds: then no figures


@dataclass(frozen=True)
class Snapshot:
    """What the UI shows. Immutable: the loop replaces it, never changes it."""
    state: State
    run_name: str
    corpus: str
    model: str                       # e.g. "lstm 1×256"
    n_params: int
    data_dir: str
    iteration: int
    chars: int
    elapsed_s: float                 # the run's training time, all sessions
    session_s: float                 # this session's training time
    iters_per_sec: float
    chars_per_sec: float
    loss: float                      # smoothed training loss, nats per character
    val_loss: float | None
    best_val_loss: float | None
    history: tuple[float, ...]       # smoothed loss, oldest first
    eta_s: float | None
    last_saved: float | None         # unix time of the last good save
    sample: str                      # latest live sample
    sample_probs: tuple[float, ...]  # the probability the model gave each sample character
    sample_id: int                   # changes when a new sample arrives
    temperature: float               # of the live sample
    message: str = ""                # why FAILED, or the last notice
    max_iters: int | None = None
    max_seconds: float | None = None
    save_error: str = ""             # why the last checkpoint save failed; "" once a save works
    handed_to: int | None = None     # PID of the background trainer this session handed over to
    threads: int | None = None       # BLAS threads in use (None: the session does not set them)
    threads_auto: bool = False       # chosen by measuring steps, not fixed by --threads
    history_iters: tuple[int, ...] = ()                # the iteration of each `history` point
    val_history: tuple[tuple[int, float], ...] = ()    # (iteration, validation loss), oldest first
    sample_copied: Copied | None = None  # what the live sample shares with the training text


@dataclass(frozen=True)
class Event:
    kind: EventKind
    text: str


# -- commands (UI → loop) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Pause:
    """Stop stepping; the loop idles until Resume."""


@dataclass(frozen=True)
class Resume:
    """Continue stepping after Pause."""


@dataclass(frozen=True)
class SaveNow:
    """Write the checkpoint now."""


@dataclass(frozen=True)
class SetTemperature:
    """Temperature of the live sample."""
    value: float


@dataclass(frozen=True)
class Generate:
    """Continue `prompt` from the current parameters; the result (text, probs) arrives in `reply`."""
    prompt: str
    length: int = 200
    temperature: float = 1.0
    top_k: int | None = None
    reply: Future = field(default_factory=Future, compare=False)


@dataclass(frozen=True)
class LookInside:
    """A probe of the trainer as it is now (train/inside.py `take`: copies, milliseconds); it
    arrives in `reply`, and the heavy `inside.look(probe)` is the asker's to run, in its own thread."""
    reply: Future = field(default_factory=Future, compare=False)


@dataclass(frozen=True)
class HandOff:
    """Save, then `start()` the trainer that goes on (it returns its PID) and end the loop. If
    the save or the start fails, say so and keep training here. A paused or ended session is
    saved and not handed on."""
    start: Callable[[], int] = field(compare=False)

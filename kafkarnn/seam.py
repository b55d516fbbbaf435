"""The seam between the training loop and its front ends: the words they share, defined once.

- `State`: where a session is (RUNNING, PAUSED, …); `EventKind`: what can happen once;
  `Role`: how a process trains a run (in the monitor, headless in a terminal, or in the
  background), as the run's lock file names it;
- `Ending`: how a session ended, the value a front end returns (its last line and exit code
  follow from it, train/outcome.py); `StopSignal`: the signals that ask a trainer to save and
  end; `Ask`: why another process asked for the run (its hand-over note says);
- `Snapshot`: an immutable picture of the session that the loop replaces a few times a second
  and a UI reads whenever it likes (never a half-updated state: nothing in it changes);
- `Copied`: the stretches a sample shares with the training text (marked in the sample panes);
- `Event`: something that happened once (saved, save failed, finished, error, info);
- commands (`Pause`, `Resume`, `SaveNow`, `SetTemperature`, `Generate`, `CoolDown`,
  `LookInside`, `HandOff`):
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


class StopSignal(str, Enum):
    """A signal that asks a trainer to save and end (never to die mid-step)."""
    SIGINT = "SIGINT"            # ctrl+c in the terminal
    SIGTERM = "SIGTERM"          # a take-over or `kafkarnn stop` (its note says which), or a service manager
    SIGHUP = "SIGHUP"            # the terminal is gone (a dropped SSH connection)

    def __str__(self) -> str:
        return self.value


class Ask(str, Enum):
    """What another process asks of a run's trainer; its hand-over note names it, as written on disk."""
    TAKE_OVER = "take-over"      # a monitor or background trainer takes the run over
    STOP = "stop"                # `kafkarnn stop`: save and end


class Ending(str, Enum):
    """How a training session ended: what a front end returns, and what its last line says."""
    FINISHED = "finished"        # a limit was reached, and saved
    SAVED = "saved"              # quit or a signal: saved; the same command goes on
    PAUSED = "paused"            # asked to hand over while paused: saved, not handed on
    HANDED_OVER = "handed over"  # a background trainer goes on with the run
    TAKEN_OVER = "taken over"    # another process took the run over
    STOPPED = "stopped"          # `kafkarnn stop` asked it to end
    NOT_STARTED = "not started"  # a signal came before training began: the run is as it was
    FAILED = "failed"            # training cannot go on (it diverged)
    UNSAVED = "unsaved"          # the last save did not reach the disk: progress is lost
    HAND_OVER_FAILED = "hand-over failed"   # the background trainer ended at once

    @property
    def code(self) -> int:
        """The process's exit status: 2 when something is lost or wrong, else 0."""
        return 2 if self in (Ending.FAILED, Ending.UNSAVED, Ending.HAND_OVER_FAILED) else 0


@dataclass(frozen=True)
class Copied:
    """What a sample shares with the training text (train/copying.py), or why that is unknown."""
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
    ngram_order: int | None = None   # the text's n-gram baseline (train/baseline.py): its order
    ngram_loss: float | None = None  # … and its validation loss, nats per character; None: not yet
    lr: float | None = None          # the learning rate of the next step
    dropout: tuple[str, float, float] | None = None   # ("dropout" or "DropConnect", the next
                                     # step's rate, the run's) while it rises (--dropout-ramp);
                                     # None when it is at the run's
    teacher: tuple[float, float] | None = None   # (the next step's teacher α, its last) while it
                                     # is still to rise (--teacher-rise); None otherwise
    weights: str = ""                # which weights are validated and sampled ("as trained",
                                     # "EMA 0.99", "x (schedule-free)"); "" when not known
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
class CoolDown:
    """End the run the way a budget would: the learning rate falls from its peak to the floor
    over the next `steps` steps, and training stops there (`--cooldown`). `reply` gets the
    iteration it stops at, or the KafkarnnError that says why not (a limit, a rate not at its
    peak, schedule-free training)."""
    steps: int
    reply: Future = field(default_factory=Future, compare=False)


@dataclass(frozen=True)
class LookInside:
    """`take(trainer)`, a probe of the trainer as it is now (inspect/inside.py `take`: copies,
    milliseconds), run between two steps; it arrives in `reply`, and the heavy `inside.look(probe)`
    is the asker's to run, in its own thread. The asker brings `take`: training never imports
    the code that looks inside."""
    take: Callable = field(compare=False)
    reply: Future = field(default_factory=Future, compare=False)


@dataclass(frozen=True)
class HandOff:
    """Save, then `start()` the trainer that goes on (it returns its PID) and end the loop. If
    the save or the start fails, say so and keep training here. A paused or ended session is
    saved and not handed on."""
    start: Callable[[], int] = field(compare=False)

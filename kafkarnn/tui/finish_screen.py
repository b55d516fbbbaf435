"""The finish dialog (`f`): end the run with a cooldown, as `--cooldown N` does from the shell.

Like the generate dialog it does not know the trainer: it is given an async `begin(steps)` that
returns the iteration the run will stop at, or raises KafkarnnError (a limit, a rate not at its
peak); the error stays in the dialog, a success dismisses it with that iteration.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Static

from kafkarnn.errors import KafkarnnError
from kafkarnn.train.schedule import DECAY_SHARE
from kafkarnn.tui.screens import Dialog

MAX_STEPS = 10 ** 9
BeginFn = Callable[[int], Awaitable[int]]


def suggested_steps(iteration: int) -> int:
    """A budget's share of the steps so far: what a budget of this length would have decayed over."""
    return max(1, round(DECAY_SHARE * iteration))


def parse_steps(value: str) -> int:
    """The dialog's step count, or KafkarnnError with what is wrong."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_STEPS:
        raise KafkarnnError("steps must be a whole number of at least 1")
    return n


class FinishScreen(Dialog):
    """Ask how many steps the cooldown takes, then begin it."""

    def __init__(self, begin: BeginFn, iteration: int, lr: float | None) -> None:
        super().__init__()
        self.begin, self.iteration, self.lr = begin, iteration, lr
        self.busy = False

    def compose(self) -> ComposeResult:
        rate = f" (now {self.lr:.2e})" if self.lr is not None else ""
        with Vertical(id="dialog"):
            yield Static("Finish the run: cool down, then stop", id="dialog-title")
            yield Static(f"The learning rate{rate} falls to its floor over the next steps, and "
                         "training stops when it gets there: what a budget's last fifth does, "
                         f"decided now. A fifth of the {self.iteration:,} steps so far is "
                         f"{suggested_steps(self.iteration):,}. Trained again later, the run goes "
                         "on at the floor rate.")
            with Horizontal(id="dialog-options"):
                yield Label("Steps", classes="option-label")
                yield Input(str(suggested_steps(self.iteration)), type="integer", id="steps")
            yield Static(id="dialog-status")
            yield Static("Enter begins the cooldown · Esc cancels", id="dialog-help")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#steps", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        try:
            steps = parse_steps(self.query_one("#steps", Input).value)
        except KafkarnnError as e:
            self.status(str(e), error=True)
            return
        self.busy = True
        self.status("asking the trainer…")
        self.run_worker(self._begin(steps), exclusive=True, group="finish")

    async def _begin(self, steps: int) -> None:
        try:
            end = await self.begin(steps)
        except KafkarnnError as e:
            self.status(str(e), error=True)
        except asyncio.TimeoutError:
            self.status("the trainer did not answer in time; try again", error=True)
        else:
            self.dismiss(end)
        finally:
            self.busy = False

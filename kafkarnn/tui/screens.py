"""The generate dialog, and `Dialog`: the status line and Escape that every monitor dialog shares.

The dialog does not know about the trainer. It is given an async `generate(prompt, length,
temperature)` that returns (text, probs) or raises KafkarnnError (for instance for characters
the model never saw); errors stay in the dialog, and a success dismisses it with a
`Continuation` for the App to show.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Awaitable, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from kafkarnn.errors import KafkarnnError

MAX_LENGTH = 5000
MAX_TEMPERATURE = 5.0
GenerateFn = Callable[[str, int, float], Awaitable[tuple[str, tuple]]]


@dataclass(frozen=True)
class Continuation:
    """What the dialog hands back: the prompt and the text the model wrote after it."""
    prompt: str
    text: str
    probs: tuple
    temperature: float
    length: int


def parse_options(length: str, temperature: str) -> tuple[int, float]:
    """The dialog's numbers, or KafkarnnError with what is wrong."""
    try:
        n = int(length)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_LENGTH:
        raise KafkarnnError(f"length must be a whole number from 1 to {MAX_LENGTH}")
    try:
        t = float(temperature)
    except ValueError:
        t = -1.0
    if not (math.isfinite(t) and 0.0 <= t <= MAX_TEMPERATURE):
        raise KafkarnnError(f"temperature must be a number from 0 to {MAX_TEMPERATURE:g} "
                            "(0 always picks the likeliest character)")
    return n, t


class Dialog(ModalScreen):
    """What the monitor's dialogs share: a status line (#dialog-status) that shows progress or
    an error, and Escape to cancel (dismissing with None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def status(self, text: str, error: bool = False) -> None:
        line = self.query_one("#dialog-status", Static)
        line.set_class(error, "-error")
        line.update(Text(("✗ " if error else "") + text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class GenerateScreen(Dialog):
    """Ask for a seed text, a length and a temperature, then generate from the current model."""

    def __init__(self, generate: GenerateFn, prompt: str = "", length: int = 200,
                 temperature: float = 1.0) -> None:
        super().__init__()
        self.generate = generate
        self.defaults = (prompt, length, temperature)
        self.busy = False

    def compose(self) -> ComposeResult:
        prompt, length, temperature = self.defaults
        with Vertical(id="dialog"):
            yield Static("Continue a prompt with the current model", id="dialog-title")
            yield Label("Seed text")
            yield Input(prompt, placeholder="text to continue (may be empty)", id="seed")
            with Horizontal(id="dialog-options"):
                yield Label("Length", classes="option-label")
                yield Input(str(length), type="integer", id="length")
                yield Label("Temperature", classes="option-label")
                yield Input(f"{temperature:g}", type="number", id="temperature")
            yield Static(id="dialog-status")
            yield Static("Enter generates · Tab next field · Esc cancels", id="dialog-help")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#seed", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        if self.busy:
            return
        prompt = self.query_one("#seed", Input).value
        try:
            length, temperature = parse_options(self.query_one("#length", Input).value,
                                                self.query_one("#temperature", Input).value)
        except KafkarnnError as e:
            self.status(str(e), error=True)
            return
        self.busy = True
        self.status("generating…")
        self.run_worker(self._generate(prompt, length, temperature), exclusive=True,
                        group="generate")

    async def _generate(self, prompt: str, length: int, temperature: float) -> None:
        try:
            text, probs = await self.generate(prompt, length, temperature)
        except KafkarnnError as e:
            self.status(str(e), error=True)
        except asyncio.TimeoutError:
            self.status("the trainer did not answer in time; try again", error=True)
        else:
            self.dismiss(Continuation(prompt, text, tuple(probs), temperature, length))
        finally:
            self.busy = False

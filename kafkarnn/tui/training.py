"""The monitor's main screen: the panes, the keys, and polling the session's snapshot.

The screen never touches the trainer: it reads `session.snapshot()` once a second and shows it
when it is new (the sample only when a new one exists), turns `session.events()` into
notifications, and sends commands. Leaving (quit, detach) is the App's business: the keys call it.
"""

from __future__ import annotations

import asyncio
import time

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer

from kafkarnn.seam import CoolDown, EventKind, Generate, Pause, Resume, SaveNow, SetTemperature
from kafkarnn.train.session import Session
from kafkarnn.tui.compare_screen import CompareScreen
from kafkarnn.tui.finish_screen import FinishScreen
from kafkarnn.tui.inside_screen import InsideScreen
from kafkarnn.tui.screens import Continuation, GenerateScreen
from kafkarnn.tui.samples import GeneratedPane, SamplePane
from kafkarnn.tui.widgets import LossPane, RunPane, SpeedPane

POLL_S = 1.0       # numbers and chart once a second, and only from a new snapshot: every render
                   # holds the GIL the training threads need (at 4 Hz the monitor cost 5-7%)
STALE_S = 5.0      # the numbers at least this often, new or not ("saved 5s ago" moves on)
GENERATE_TIMEOUT_S = 60.0
TEMP = Binding.Group("T", compact=True)     # the footer says "+- T": it must fit 80 columns
FULL_FOOTER = 92                            # narrower, the footer's keys go compact to fit


class TrainingScreen(Screen):
    """Watch, pause, prompt and save one training session."""

    BINDINGS = [
        Binding("space", "pause", "Pause"),
        Binding("space", "resume", "Resume"),
        Binding("g", "generate", "Prompt"),     # a seed text to continue
        Binding("i", "inside", "Inside"),
        Binding("c", "compare", "Runs"),          # the runs side by side
        Binding("s", "save", "Save", show=False),   # saves come every minute and with q; room for f
        Binding("plus,equals_sign", "temperature(0.1)", "hotter", key_display="+", group=TEMP),
        Binding("minus", "temperature(-0.1)", "cooler", key_display="-", group=TEMP),
        Binding("f", "finish", "Finish"),         # a cooldown, then stop (--cooldown)
        Binding("d", "detach", "Detach"),
        Binding("q", "quit", "Quit"),          # it saves first, as the palette says
        Binding("ctrl+c", "quit", "Save & quit", show=False, priority=True),  # what people press
    ]

    paused = reactive(False, bindings=True)
    ended = reactive(False, bindings=True)

    def __init__(self, session: Session, note: str = "") -> None:
        super().__init__()
        self.session = session
        self.note = note
        snap = session.snapshot()
        self.temperature = snap.temperature
        self.last_prompt = ("", 200, snap.temperature)
        self.save_requested = 0
        self._shown, self._shown_at = None, 0.0   # the snapshot last shown, and when
        self.continuation = ""             # the last `g` prompt and continuation, for Inside
        self.copied = ("", None)           # (continuation, what it shares with the training text)

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

    def on_resize(self, event) -> None:
        self.query_one(Footer).compact = event.size.width < FULL_FOOTER

    def on_mount(self) -> None:
        self.loss, self.sample = self.query_one(LossPane), self.query_one(SamplePane)
        self.run_pane, self.speed = self.query_one(RunPane), self.query_one(SpeedPane)
        self.poll()
        self.set_interval(POLL_S, self.poll)
        if self.note:
            self.notify(self.note, markup=False, timeout=15)

    # -- polling ------------------------------------------------------------------------------

    def poll(self) -> None:
        snap, now = self.session.snapshot(), time.monotonic()
        if snap is not self._shown or now - self._shown_at >= STALE_S:
            if snap is not self._shown:
                self.loss.show_curve(snap)
            self._shown, self._shown_at = snap, now
            self.run_pane.show(snap)
            self.speed.show(snap)
            self.loss.show_numbers(snap)
            self.sample.show(snap)
            self.ended = snap.state.ended
        for event in self.session.events():
            if event.kind == EventKind.SAVED:
                if self.save_requested:             # periodic saves show in the Run pane only
                    self.save_requested -= 1
                    self.notify(event.text, title="Checkpoint", markup=False)
            elif event.kind in (EventKind.SAVE_FAILED, EventKind.ERROR):
                self.notify(event.text, severity="error", timeout=30, markup=False)
            elif event.kind == EventKind.INFO:
                self.notify(event.text, severity="warning", markup=False)
            else:
                self.notify(event.text, markup=False, timeout=10)

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "pause":
            return not (self.paused or self.ended)
        if action == "resume":
            return self.paused and not self.ended
        if action == "finish":
            return not self.ended
        return True

    def command(self, command) -> None:
        """Send a command, and show its effect soon, not at the next once-a-second poll."""
        self.session.send(command)
        self.set_timer(0.3, self.poll)

    def action_pause(self) -> None:
        self.command(Pause())
        self.paused = True

    def action_resume(self) -> None:
        self.command(Resume())
        self.paused = False

    def action_toggle_pause(self) -> None:
        self.action_resume() if self.paused else self.action_pause()

    def action_save(self) -> None:
        self.save_requested += 1
        self.session.send(SaveNow())

    def action_detach(self) -> None:
        self.app.detach(paused=self.paused)

    def action_quit(self) -> None:
        self.app.leave()

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(5.0, max(0.0, self.temperature + delta)), 2)
        self.command(SetTemperature(self.temperature))          # the Sample title shows it

    def action_generate(self) -> None:
        prompt, length, temperature = self.last_prompt
        self.app.push_screen(GenerateScreen(self.generate_text, prompt, length, temperature),
                             self.show_continuation)

    async def generate_text(self, prompt: str, length: int, temperature: float):
        """Ask the training loop for a continuation (between steps) and wait for it."""
        command = Generate(prompt, length, temperature)
        self.session.send(command)
        text, probs = await asyncio.wait_for(asyncio.wrap_future(command.reply), GENERATE_TIMEOUT_S)
        checker = getattr(self.session, "copying", None)   # checked off the UI thread
        self.copied = (text, checker and await asyncio.to_thread(checker.check, text))
        return text, probs

    def show_continuation(self, result: Continuation | None) -> None:
        if result is None:
            return
        self.last_prompt = (result.prompt, result.length, result.temperature)
        self.continuation = result.prompt + result.text
        text, copied = self.copied
        self.query_one(GeneratedPane).show(result.prompt, result.text, result.probs,
                                           result.temperature, self.session.snapshot().iteration,
                                           copied if text == result.text else None)

    def action_finish(self) -> None:
        snap = self.session.snapshot()
        self.app.push_screen(FinishScreen(self.cool_down, snap.iteration, snap.lr))

    async def cool_down(self, steps: int) -> int:
        """Ask the training loop for a cooldown (between steps); the iteration it will stop at."""
        command = CoolDown(steps)
        self.command(command)
        return await asyncio.wait_for(asyncio.wrap_future(command.reply), GENERATE_TIMEOUT_S)

    def action_inside(self) -> None:
        self.app.push_screen(InsideScreen(self.session, self.inside_texts))

    def action_compare(self) -> None:
        self.app.push_screen(CompareScreen(self.session))

    def inside_texts(self) -> dict[str, str]:
        """The texts besides the validation passage that the Inside screen can shade."""
        return {"sample": self.session.snapshot().sample, "continuation": self.continuation}

    def system_commands(self):
        """The command palette's entries for this screen."""
        if not self.ended:
            yield SystemCommand("Resume training" if self.paused else "Pause training",
                                "space: stop or continue the training steps", self.action_toggle_pause)
        yield SystemCommand("Generate from a prompt", "g: continue a seed text with the current model",
                            self.action_generate)
        yield SystemCommand("Look inside the network", "i: units, next-character guesses, "
                            "gradient through time", self.action_inside)
        yield SystemCommand("Compare runs", "c: this run's validation curve against the other "
                            "runs on its text", self.action_compare)
        yield SystemCommand("Save checkpoint now", "s: write the run's checkpoint", self.action_save)
        yield SystemCommand("Hotter live sample", "+: raise the live sample's temperature by 0.1",
                            lambda: self.action_temperature(0.1))
        yield SystemCommand("Cooler live sample", "-: lower the live sample's temperature by 0.1",
                            lambda: self.action_temperature(-0.1))
        if not self.ended:
            yield SystemCommand("Finish with a cooldown", "f: lower the learning rate to its floor "
                                "over the next steps, then stop", self.action_finish)
        yield SystemCommand("Detach", "d: leave; training goes on in the background",
                            self.action_detach)
        yield SystemCommand("Save and quit", "q: save the checkpoint and leave", self.action_quit)


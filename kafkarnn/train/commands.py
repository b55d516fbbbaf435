"""The commands a front end sends a session (their types are in seam.py), carried out by the loop
between two steps, so that none of them reads the parameters in the middle of an update.

`Commands` is a part of `Session` (session.py): the handlers read and change the session's state.
"""

from __future__ import annotations

import queue

from kafkarnn.errors import KafkarnnError
from kafkarnn.seam import (CoolDown, EventKind, Generate, HandOff, LookInside, Pause, Resume,
                           SaveNow, SetTemperature, State)
from kafkarnn.train.cadence import Limits
from kafkarnn.train.schedule import cooldown, describe_cooldown


class Commands:
    """The session's side of the command queue: one handler per command type."""

    def _drain(self, wait: bool) -> None:
        """Carry out every command waiting (after one, if `wait`, has come within 0.1 s)."""
        while True:
            try:
                cmd = self.commands.get(timeout=0.1) if wait else self.commands.get_nowait()
            except queue.Empty:
                return
            wait = False
            HANDLERS[type(cmd)](self, cmd)
            if self.handed_to is not None:
                return
            self._publish()

    def _pause(self, cmd: Pause) -> None:
        if self.state == State.RUNNING:
            self.state = State.PAUSED

    def _resume(self, cmd: Resume) -> None:
        if self.state == State.PAUSED:
            self.state = State.RUNNING

    def _hand_off(self, cmd: HandOff) -> None:
        """Save, start the next trainer, and let the loop end; on a failure, train on here."""
        if self.state == State.PAUSED or self.done:
            return                                    # saved at the end, not handed on
        if not self._save():
            self._event(EventKind.ERROR, "could not hand the run over: the save failed; "
                        "training goes on here")
            return
        try:
            self.handed_to = cmd.start()
        except (OSError, KafkarnnError) as e:
            self._event(EventKind.ERROR, f"could not start the background trainer "
                        f"({getattr(e, 'strerror', None) or e}); training goes on here")

    def _save_now(self, cmd: SaveNow) -> None:
        self._save()

    def _set_temperature(self, cmd: SetTemperature) -> None:
        self.temperature = min(5.0, max(0.0, cmd.value))
        self._live_sample()

    def _generate(self, cmd: Generate) -> None:
        if cmd.reply.done():
            return
        try:
            cmd.reply.set_result(self.trainer.generate(cmd.prompt, cmd.length, self.sample_rng,
                                                       cmd.temperature, cmd.top_k))
        except KafkarnnError as e:
            cmd.reply.set_exception(e)

    def _cool_down(self, cmd: CoolDown) -> None:
        """`--cooldown` asked from a front end: the decay from here, and a limit where it ends."""
        if cmd.reply.done():
            return
        t = self.trainer
        try:
            if self.done:
                raise KafkarnnError("training has ended")
            if self.limits.max_iters is not None or self.limits.max_seconds is not None:
                raise KafkarnnError("this session stops at its own limit (--max-iters or "
                                    "--max-seconds); a cooldown ends the run itself")
            decay = cooldown(t.cfg, t.iteration, t.lr_at(t.iteration), cmd.steps)
        except KafkarnnError as e:
            cmd.reply.set_exception(e)
            return
        self.limits = Limits(max_iters=t.begin_cooldown(decay))
        self._event(EventKind.INFO, describe_cooldown(t.cfg, decay))
        cmd.reply.set_result(self.limits.max_iters)

    def _look_inside(self, cmd: LookInside) -> None:
        if not cmd.reply.done():
            cmd.reply.set_result(cmd.take(self.trainer))


HANDLERS = {Pause: Commands._pause, Resume: Commands._resume, HandOff: Commands._hand_off,
            SaveNow: Commands._save_now, SetTemperature: Commands._set_temperature,
            Generate: Commands._generate, CoolDown: Commands._cool_down,
            LookInside: Commands._look_inside}

"""The commands a front end sends a session (their types are in seam.py), carried out by the loop
between two steps, so that none of them reads the parameters in the middle of an update."""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING

from kafkarnn.errors import KafkarnnError
from kafkarnn.seam import (EventKind, Generate, HandOff, LookInside, Pause, Resume, SaveNow,
                           SetTemperature, State)

if TYPE_CHECKING:
    from kafkarnn.train.session import Session


def drain(session: Session, wait: bool) -> None:
    """Carry out every command waiting (after one, if `wait`, has come within 0.1 s)."""
    while True:
        try:
            cmd = session.commands.get(timeout=0.1) if wait else session.commands.get_nowait()
        except queue.Empty:
            return
        wait = False
        HANDLERS[type(cmd)](session, cmd)
        if session.handed_to is not None:
            return
        session._publish()


def _pause(session: Session, cmd: Pause) -> None:
    if session.state == State.RUNNING:
        session.state = State.PAUSED


def _resume(session: Session, cmd: Resume) -> None:
    if session.state == State.PAUSED:
        session.state = State.RUNNING


def _hand_off(session: Session, cmd: HandOff) -> None:
    """Save, start the next trainer, and let the loop end; on a failure, train on here."""
    if session.state == State.PAUSED or session.done:
        return                                    # saved at the end, not handed on
    if not session._save():
        session._event(EventKind.ERROR, "could not hand the run over: the save failed; "
                       "training goes on here")
        return
    try:
        session.handed_to = cmd.start()
    except (OSError, KafkarnnError) as e:
        session._event(EventKind.ERROR, f"could not start the background trainer "
                       f"({getattr(e, 'strerror', None) or e}); training goes on here")


def _save_now(session: Session, cmd: SaveNow) -> None:
    session._save()


def _set_temperature(session: Session, cmd: SetTemperature) -> None:
    session.temperature = min(5.0, max(0.0, cmd.value))
    session._live_sample()


def _generate(session: Session, cmd: Generate) -> None:
    if cmd.reply.done():
        return
    try:
        cmd.reply.set_result(session.trainer.generate(cmd.prompt, cmd.length, session.sample_rng,
                                                      cmd.temperature, cmd.top_k))
    except KafkarnnError as e:
        cmd.reply.set_exception(e)


def _look_inside(session: Session, cmd: LookInside) -> None:
    if not cmd.reply.done():
        cmd.reply.set_result(cmd.take(session.trainer))


HANDLERS = {Pause: _pause, Resume: _resume, HandOff: _hand_off, SaveNow: _save_now,
            SetTemperature: _set_temperature, Generate: _generate, LookInside: _look_inside}

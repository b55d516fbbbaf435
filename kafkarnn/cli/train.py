"""`kafkarnn train` without the monitor (headless, --detach, the background trainer) and
`kafkarnn stop`: training from the shell, and handing a run on.

Part of the command line (it never imports the monitor); errors are KafkarnnError, one line.
"""

from __future__ import annotations

import os
import time

from kafkarnn.cli.options import eprint, stdout_to_devnull
from kafkarnn.errors import KafkarnnError


def train_headless(opts, role, after_pid: int | None = None) -> int:
    """Train in this process without a monitor: progress lines on stdout (the background
    trainer's go to its train.log, with the time)."""
    from kafkarnn.seam import Role
    from kafkarnn.train.cadence import Cadence
    from kafkarnn.train.launch import describe_start
    from kafkarnn.train.life import Leaving, Life
    from kafkarnn.train.progress import progress_line
    from kafkarnn.train.signals import Signals

    background = role == Role.BACKGROUND
    lines = Lines(stamp=background)
    say = lines if background else eprint
    life = Life(opts, role, say, after_pid=after_pid)
    with Signals() as signals:                   # a signal during start-up stops at the first step
        life.open()
        try:
            for note in life.notes():
                say(f"kafkarnn: {note}")
            who = f"background trainer, process {os.getpid()}: " if background else ""
            say(f"kafkarnn: {who}{describe_start(life.launch, life.cooldown)}")
            session = life.start_session(Cadence(report_every=30.0 if background else 5.0),
                                         log=lines)
            # (a background trainer whose train.log cannot be written trains on without it)
            session.run(lambda: signals.event.is_set() or (lines.gone and not background))
            lines(progress_line(session.snapshot()))
        except BaseException:
            life.let_go()
            raise
        outcome = life.end(Leaving(signals=list(signals.caught)))
    say(outcome.line)
    return outcome.code


class Lines:
    """Progress lines on stdout (with the time, for a background trainer's train.log). Once no
    one reads them (a closed pipe, as under `| head`; a terminal gone) `gone` is set: the run
    stops between two steps and saves, as on a stop signal, instead of ending in a traceback."""

    def __init__(self, stamp: bool = False):
        self.stamp, self.gone = stamp, False

    def __call__(self, text: str) -> None:
        if self.gone:
            return
        try:
            print(time.strftime("%Y-%m-%d %H:%M:%S ") + text if self.stamp else text, flush=True)
        except OSError:                          # EPIPE, or EIO from a hung-up terminal
            self.gone = True
            stdout_to_devnull()


def cmd_detach(opts) -> int:
    """Check everything here (errors show at once), then hand the run to a background trainer."""
    from kafkarnn.seam import Role
    from kafkarnn.train.life import Life

    life = Life(opts, Role.HEADLESS, eprint)
    life.open()
    if life.launch.corpus.notice:
        eprint(f"kafkarnn: {life.launch.corpus.notice}")
    pid, run = life.detach(), life.run
    eprint(f"kafkarnn: run {run.name} is training in the background (process {pid}, log "
           f"{run.log_path}) — `kafkarnn attach --run {run.name}` opens the monitor on it, "
           f"`kafkarnn stop --run {run.name}` ends it")
    return 0


def pick_training_run(data_dir, name: str | None, what: str):
    """The run `name`, or else the one run that is training now (an error lists several)."""
    from kafkarnn.runs.folder import Run
    if name is not None:
        run = Run(data_dir, name)
        if not run.exists():
            raise KafkarnnError(f"no run named {name} in {data_dir} (see `kafkarnn runs`)")
        return run
    busy = _busy(data_dir)
    if not busy:
        raise KafkarnnError(f"no run is training in {data_dir}: nothing to {what}")
    if len(busy) > 1:
        listed = ", ".join(f"{run.name} ({h.role.value if h.role else 'process'} {h.pid})"
                           for run, h in busy[:5])
        raise KafkarnnError(f"{len(busy)} runs are training: {listed}; pass --run NAME")
    return busy[0][0]


def cmd_stop(args) -> int:
    from kafkarnn.runs.checkpoint import load_checkpoint
    from kafkarnn.runs.handover import stop
    from kafkarnn.runs.folder import resolve_data_dir
    data_dir = resolve_data_dir(args.data_dir)
    if args.run is None and (sweep := _the_running_sweep(data_dir)) is not None:
        from kafkarnn.cli.sweep import stop_sweep
        return stop_sweep(sweep)
    run = pick_training_run(data_dir, args.run, "stop")
    holder = stop(run)
    try:
        at = f" at iteration {load_checkpoint(run.checkpoint_path)[1]['iteration']:,}"
    except (KafkarnnError, KeyError, TypeError):
        at = ""
    eprint(f"kafkarnn: stopped run {run.name} (process {holder.pid}), saved{at}")
    return 0


def _the_running_sweep(data_dir):
    """The one sweep running now when every run in training is one of its trials (plain `stop`
    then ends the sweep: stopping a trial alone would only start the next); None when no sweep
    runs. Several sweeps, or a sweep beside a run of its own, is an error that names them."""
    from kafkarnn.sweep.folder import SweepFolder, list_sweep_runs
    sweeps = [SweepFolder(data_dir, p.name) for p in sorted((data_dir / "sweeps").glob("*"))]
    running = [f for f in sweeps if f.coordinator() is not None]
    if not running:
        return None
    trials = {name for f in running for name in list_sweep_runs(data_dir, f.name)}
    alone = [run.name for run, _ in _busy(data_dir) if run.name not in trials]
    if len(running) == 1 and not alone:
        return running[0]
    names = [f"sweep {f.name}" for f in running] + [f"run {name}" for name in alone]
    raise KafkarnnError(f"{len(names)} are training: {', '.join(names[:5])}; pass --run NAME, "
                        "or end a sweep with `kafkarnn sweep NAME --stop`")


def _busy(data_dir):
    """(run, holder) for every run of data_dir that a trainer holds now."""
    from kafkarnn.runs.folder import Run
    from kafkarnn.runs.handover import training_runs
    from kafkarnn.runs.listing import list_runs
    return training_runs([Run(data_dir, r["name"]) for r in list_runs(data_dir)])

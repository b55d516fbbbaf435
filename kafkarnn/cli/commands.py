"""The command line's own commands (those that open no monitor): a table from a command to the
function that carries it out and returns its exit code."""

from __future__ import annotations

from kafkarnn.cli import baseline, compare, inside, runs, sweep, train
from kafkarnn.cli.options import train_options
from kafkarnn.seam import Role


def _train(args) -> int:
    """`train` without the monitor: --detach hands it off, else headless or the background trainer."""
    if args.detach:
        return train.cmd_detach(train_options(args))
    role = Role.BACKGROUND if getattr(args, "background", False) else Role.HEADLESS
    return train.train_headless(train_options(args), role, getattr(args, "after", None))


COMMANDS = {
    "train": _train,
    "stop": train.cmd_stop,
    "sample": runs.cmd_sample,
    "runs": runs.cmd_runs,
    "inspect": inside.cmd_inspect,
    "score": inside.cmd_score,
    "baseline": baseline.cmd_baseline,
    "compare": compare.cmd_compare,
    "sweep": sweep.cmd_sweep,
}


def run_command(args) -> int:
    """A command of the command line's own: its exit code."""
    return COMMANDS[args.command](args)

"""The program: parse the command line, then hand it to the monitor or to the command line's
own commands. The two front ends (kafkarnn.tui and kafkarnn.cli) stand side by side here and
never import each other."""

from __future__ import annotations

import dataclasses
import sys

from kafkarnn import cli, cli_train
from kafkarnn.errors import KafkarnnError


def main(argv: list[str] | None = None) -> int:
    try:
        args = cli.parse(argv)
        trains = args.command in ("train", "attach")    # (--detach's trainer inherits the env)
        cli.set_blas_threads(getattr(args, "threads", None), training=trains)
        if cli.wants_monitor(args):
            opts = cli.train_options(args)
            if args.command == "attach":
                run = cli_train.pick_training_run(opts.data_dir, opts.run, "attach to")
                opts = dataclasses.replace(opts, run=run.name)
            from kafkarnn.tui.monitor import run_monitor
            return run_monitor(opts)
        return run_command(args)
    except KafkarnnError as e:
        cli.eprint(f"kafkarnn: error: {' '.join(str(e).split())}")
        return 2
    except KeyboardInterrupt:
        cli.eprint("kafkarnn: interrupted")
        return 130


def run_command(args) -> int:
    """A command of the command line's own (no monitor): its exit code."""
    if args.command == "sample":
        return cli.cmd_sample(args)
    if args.command == "runs":
        return cli.cmd_runs(args)
    if args.command in ("inspect", "score"):
        from kafkarnn import cli_inside
        return (cli_inside.cmd_inspect if args.command == "inspect" else cli_inside.cmd_score)(args)
    if args.command == "stop":
        return cli_train.cmd_stop(args)
    if args.command == "train" and args.detach:
        return cli_train.cmd_detach(cli.train_options(args))
    from kafkarnn.train.seam import Role
    role = Role.BACKGROUND if getattr(args, "background", False) else Role.HEADLESS
    return cli_train.train_headless(cli.train_options(args), role, getattr(args, "after", None))


if __name__ == "__main__":
    sys.exit(main())

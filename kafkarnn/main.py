"""The program: parse the command line, then hand it to the monitor or to the command line's
own commands. The two front ends (kafkarnn.tui and kafkarnn.cli) stand side by side here and
never import each other."""

from __future__ import annotations

import dataclasses
import sys

from kafkarnn.cli import options as cli
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.thread_policy import set_blas_threads     # (imports no NumPy)


def main(argv: list[str] | None = None) -> int:
    try:
        args = cli.parse(argv)
        trains = args.command in ("train", "attach")    # (--detach's trainer inherits the env)
        set_blas_threads(getattr(args, "threads", None), training=trains)
        if cli.wants_monitor(args):
            opts = cli.train_options(args)
            if args.command == "attach":
                from kafkarnn.cli.train import pick_training_run
                run = pick_training_run(opts.data_dir, opts.run, "attach to")
                opts = dataclasses.replace(opts, run=run.name)
            from kafkarnn.tui.monitor import run_monitor
            return run_monitor(opts)
        from kafkarnn.cli.commands import run_command
        return run_command(args)
    except KafkarnnError as e:
        cli.eprint(f"kafkarnn: error: {' '.join(str(e).split())}")
        return 2
    except MemoryError:                     # a model (or sample) too big for this machine
        cli.eprint("kafkarnn: error: out of memory: try a smaller --hidden, --layers, --batch or --seq-len")
        return 2
    except KeyboardInterrupt:
        cli.eprint("kafkarnn: interrupted")
        return 130
    except BrokenPipeError:                 # no one reads stdout any more (`| head`): end quietly
        cli.stdout_to_devnull()
        return 141                          # as a process ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())

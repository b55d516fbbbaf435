"""The command line: its options (the option tables are in parsing.py, the options of the commands
that compare runs in comparing.py), and the commands that need no monitor.

`parse()` reads the arguments; `sample` and `runs` are here, training from the shell and `stop`
in kafkarnn.cli.train, `inspect` and `score` in kafkarnn.cli.inside. The monitor is the other
front end (kafkarnn.tui); `kafkarnn.main` picks between them, and they never import each other.
Every KafkarnnError becomes one line on stderr (`kafkarnn: error: …`) with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from kafkarnn import __version__
from kafkarnn.cli import comparing
from kafkarnn.cli.parsing import (CONFIG_OPTIONS, METAVARS, MODEL_OPTIONS, OPTIM_OPTIONS,  # noqa: F401
                                  MAX_LENGTH, PRESETS_TEXT, Parser, _common, _subparser,
                                  positive)
from kafkarnn.errors import KafkarnnError

COMMANDS = ("train", "attach", "stop", "sample", "runs", "inspect", "score", "baseline", "compare",
            "sweep")
EXAMPLES = """examples:
  kafkarnn                                   train the default model on Metamorphosis (resumes)
  kafkarnn --corpus mybook.txt               any UTF-8 text file, or a folder of them
  kafkarnn --preset seed                     min-char-rnn exactly
  kafkarnn --detach                          train in the background; `kafkarnn attach` to watch
  kafkarnn sample --prompt "Gregor woke" --length 300
  kafkarnn runs                              every run, and which are training now
  kafkarnn inspect --feature in_quotes       the unit that tracks quotation marks, on the text
  kafkarnn score letter.txt                  how well the latest run predicts a text
  kafkarnn baseline                          what n-gram counting gets on the latest run's text
  kafkarnn compare                           the runs on the latest run's text, side by side
  kafkarnn sweep cmp --model rnn,gru --max-seconds 300   a run per setting, side by side

`kafkarnn COMMAND --help` tells more about each command."""

def _training_limits(g) -> None:
    g.add_argument("--max-iters", type=positive(int), metavar="N",
                   help="stop when the run reaches iteration N")
    g.add_argument("--max-seconds", type=positive(float), metavar="S",
                   help="stop after S seconds of training in this invocation")
    g.add_argument("--cooldown", type=positive(int), metavar="N",
                   help="end the run: decay the learning rate from its peak to --lr-min over "
                        "the next N steps, then stop (about a fifth of the steps so far)")
    g.add_argument("--save-every", type=positive(float), default=60.0, metavar="S",
                   help="seconds between checkpoints (60)")
    g.add_argument("--eval-every", type=positive(float), default=30.0, metavar="S",
                   help="seconds between validation passes (30)")
    g.add_argument("--threads", type=positive(int), metavar="N",
                   help="training threads (default: chosen while training by timing steps; "
                        "N fixes it; a new run gets at most N stream groups)")


def _copy_min(g) -> None:
    g.add_argument("--copy-min", type=positive(int), default=20, metavar="N",
                   help="mark stretches of N or more characters that the sample shares with "
                        "the training text (20)")


def build_parser() -> Parser:
    p = Parser(prog="kafkarnn", description="Teach a from-scratch NumPy character-level RNN to "
               "write like any text, and watch it learn in your terminal.", epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"kafkarnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = _subparser(sub, "train", "train a model (the default command; it resumes a run)", epilog=(
        "examples:\n  kafkarnn train --corpus ~/src/project --model lstm --hidden 256\n"
        "  kafkarnn train --headless --max-seconds 3600 >> train.out\n"
        "  kafkarnn train --detach --preset small\n\n"
        "Model and optimisation options are stored with the run and win on resume; giving a\n"
        "different one for an existing run is refused (pass --new). Limits belong to one\n"
        "invocation, and travel with a hand-off to the background."))
    g = t.add_argument_group("corpus and run")
    g.add_argument("--corpus", metavar="PATH",
                   help="a text file, a folder, 'metamorphosis' (default) or 'sample-texts'")
    g.add_argument("--encoding", metavar="NAME", help="text encoding of the corpus (utf-8)")
    _common(g)
    g.add_argument("--new", action="store_true", help="start a fresh run under a new name")
    g.add_argument("--preset", metavar="NAME", help=PRESETS_TEXT + " (docs/defaults.md)")
    g = t.add_argument_group("model")
    for flag, dest, kind, text in MODEL_OPTIONS:
        g.add_argument(flag, dest=dest, type=kind, metavar=METAVARS[kind], help=text)
    g = t.add_argument_group("optimisation")
    for flag, dest, kind, text in OPTIM_OPTIONS:
        g.add_argument(flag, dest=dest, type=kind, metavar=METAVARS[kind], help=text)
    g = t.add_argument_group("this invocation")
    _training_limits(g)
    g = t.add_argument_group("where it trains")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--headless", action="store_true",
                     help="no monitor: a progress line every 5 s (nohup, systemd, scripts)")
    how.add_argument("--detach", action="store_true",
                     help="train in the background, with no terminal; come back with attach")
    how.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--after", type=positive(int), help=argparse.SUPPRESS)   # the PID handing over
    g.add_argument("--no-mouse", action="store_true", help="monitor without mouse tracking (SSH)")
    _copy_min(g)

    a = _subparser(sub, "attach", "open the monitor on a run that trains in the background "
                   "(it takes the run over)")
    _common(a)
    _training_limits(a)
    a.add_argument("--no-mouse", action="store_true", help="monitor without mouse tracking (SSH)")
    _copy_min(a)

    s = _subparser(sub, "stop", "save and end a run's trainer (in the background or a monitor)")
    _common(s)

    s = _subparser(sub, "sample", "print text generated by a run's model", epilog=(
        "examples:\n  kafkarnn sample --prompt 'Gregor woke' --length 300 --temperature 0.8\n"
        "  kafkarnn sample --run metamorphosis-gru --best --top-k 5 --seed 1"))
    _common(s)
    given = s.add_mutually_exclusive_group()
    given.add_argument("--prompt", default="", help="text to continue")
    given.add_argument("--prompt-file", metavar="FILE", help="continue the text of FILE (UTF-8)")
    s.add_argument("--length", type=positive(int, MAX_LENGTH), default=200,
                   help="characters to generate (200, at most 10,000,000)")
    s.add_argument("--temperature", type=float, default=1.0, help="0 means always the likeliest (1)")
    s.add_argument("--top-k", type=positive(int), metavar="K", help="draw only from the K likeliest")
    s.add_argument("--seed", type=int, help="make the sample reproducible")
    s.add_argument("--best", action="store_true", help="use best.npz (lowest validation loss)")
    _copy_min(s)
    s.add_argument("--json", action="store_true", help="the text and the stretches it shares "
                   "with the training text (start in the sample, length, start in the text)")
    s.add_argument("--threads", type=positive(int), help=argparse.SUPPRESS)

    i = _subparser(sub, "inspect", "what a run's hidden units track, and how far back its "
                   "gradient reaches", epilog=(
        "examples:\n  kafkarnn inspect --run metamorphosis-lstm --feature in_quotes\n"
        "  kafkarnn inspect --unit 0:12 --text chapter.txt\n  kafkarnn inspect --json | jq .units[0]"))
    _common(i)
    which = i.add_mutually_exclusive_group()
    which.add_argument("--unit", metavar="LAYER:N", help="shade the text by this unit (default: "
                       "the unit that tracks a feature best)")
    which.add_argument("--feature", metavar="NAME", help="shade the text by the unit that tracks "
                       "this feature best (in_quotes, in_brackets, line_position, word_start, …)")
    i.add_argument("--text", metavar="FILE", help="a UTF-8 text to look on (default: the run's "
                   "validation text)")
    i.add_argument("--best", action="store_true", help="use best.npz (lowest validation loss)")
    i.add_argument("--json", action="store_true", help="units, gradient through time, gate "
                   "saturation as JSON")
    i.add_argument("--threads", type=positive(int), help=argparse.SUPPRESS)

    c = _subparser(sub, "score", "how well a run's model predicts a text: nats and bits per "
                   "character, perplexity")
    _common(c)
    c.add_argument("file", metavar="FILE", help="a UTF-8 text file")
    c.add_argument("--best", action="store_true", help="use best.npz (lowest validation loss)")
    c.add_argument("--json", action="store_true", help="chars, nats_per_char, bits_per_char, "
                   "perplexity as JSON")
    c.add_argument("--vs-ngram", action="store_true", help="shade where the network beats the "
                   "n-gram table of its text and where counting still wins (see `baseline`)")
    c.add_argument("--threads", type=positive(int), help=argparse.SUPPRESS)

    comparing.add_parsers(sub)

    r = _subparser(sub, "runs", "list the runs, and which are training now")
    r.add_argument("--data-dir", metavar="DIR", help="where runs live")
    r.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "train")
    return build_parser().parse_args(argv)


def eprint(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stdout_to_devnull() -> None:
    """After a failed write to stdout (no one reads it): send the rest, and the flush at exit,
    nowhere, so that the process ends without a second error."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


def train_options(args):
    """TrainOptions from `train` or `attach` arguments."""
    from kafkarnn.train.launch import TrainOptions
    from kafkarnn.runs.folder import resolve_data_dir
    overrides = {dest: getattr(args, dest) for _, dest, _, _ in CONFIG_OPTIONS
                 if getattr(args, dest, None) is not None}
    return TrainOptions(data_dir=resolve_data_dir(args.data_dir), corpus=getattr(args, "corpus", None),
                        encoding=getattr(args, "encoding", None), preset=getattr(args, "preset", None),
                        run=args.run, new=getattr(args, "new", False), overrides=overrides,
                        max_iters=args.max_iters, max_seconds=args.max_seconds,
                        cooldown=args.cooldown, save_every=args.save_every, eval_every=args.eval_every,
                        threads=args.threads, mouse=not args.no_mouse,
                        copy_min=getattr(args, "copy_min", 20))


def wants_monitor(args) -> bool:
    """`train` (not headless, detached or background) and `attach` open the monitor, in a terminal."""
    if args.command not in ("train", "attach"):
        return False
    if args.command == "train" and (args.headless or args.detach or args.background):
        return False
    terminal = sys.stdout.isatty() and sys.stdin.isatty() and sys.stderr.isatty()
    if args.command == "attach" and not terminal:
        raise KafkarnnError("attach opens the monitor, which needs a terminal; "
                            "`kafkarnn runs` shows how a run is doing without one")
    return terminal

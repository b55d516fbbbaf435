"""The command line: its options, and the commands that need no monitor.

`parse()` reads the arguments; `sample` and `runs` are here, training from the shell and `stop`
in kafkarnn.cli.train, `inspect` and `score` in kafkarnn.cli.inside. The monitor is the other
front end (kafkarnn.tui); `kafkarnn.main` picks between them, and they never import each other.
Every KafkarnnError becomes one line on stderr (`kafkarnn: error: …`) with exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from kafkarnn import __version__
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.threads import THREAD_VARS     # (imports no NumPy: threads are set first)

COMMANDS = ("train", "attach", "stop", "sample", "runs", "inspect", "score", "sweep")
EXAMPLES = """examples:
  kafkarnn                                   train the default model on Metamorphosis (resumes)
  kafkarnn --corpus mybook.txt               any UTF-8 text file, or a folder of them
  kafkarnn --preset seed                     min-char-rnn exactly
  kafkarnn --detach                          train in the background; `kafkarnn attach` to watch
  kafkarnn sample --prompt "Gregor woke" --length 300
  kafkarnn runs                              every run, and which are training now
  kafkarnn inspect --feature in_quotes       the unit that tracks quotation marks, on the text
  kafkarnn score letter.txt                  how well the latest run predicts a text
  kafkarnn sweep cmp --model rnn,gru --max-seconds 300   a run per setting, side by side

`kafkarnn COMMAND --help` tells more about each command."""

# options that change the model or its training; None means "not given" (preset or stored value)
MODEL_OPTIONS = [
    ("--model", "model", str, "rnn, lstm or gru"),
    ("--hidden", "hidden", int, "units per layer"),
    ("--layers", "layers", int, "stacked recurrent layers"),
    ("--dropout", "dropout", float,
     "dropout between layers and before the output, in [0, 1) (default preset: from the text's size)"),
    ("--weight-drop", "weight_drop", float,
     "DropConnect on the recurrent weights, in [0, 1) (default preset: like --dropout)"),
    ("--embed-init", "embed_init", float, "spread (std) of the first layer's input columns at start"),
    ("--dtype", "dtype", str, "float32 or float64"),
]
OPTIM_OPTIONS = [
    ("--batch", "batch", int, "parallel streams through the text (1: the seed's single stream)"),
    ("--seq-len", "seq_len", int, "characters per truncated-BPTT step"),
    ("--optimizer", "optimizer", str, "adagrad or adam"),
    ("--lr", "lr", float, "peak learning rate"),
    ("--lr-min", "lr_min", float, "learning rate at the end of the cosine decay"),
    ("--warmup-iters", "warmup_iters", int, "iterations of linear warmup"),
    ("--decay-iters", "decay_iters", int,
     "iterations of cosine decay, 0: a constant rate (default preset: four passes, ≥ 1000)"),
    ("--weight-decay", "weight_decay", float, "decoupled weight decay on the matrices (Adam)"),
    ("--clip", "clip", float, "clip each gradient entry to ±X, the seed's 5 (0: off)"),
    ("--clip-norm", "clip_norm", float, "clip the global gradient norm to X (0: off)"),
    ("--seed", "seed", int, "random seed for weights, dropout and samples"),
    ("--val-fraction", "val_fraction", float, "share of the text held out for validation (0.1)"),
]
CONFIG_OPTIONS = MODEL_OPTIONS + OPTIM_OPTIONS
METAVARS = {int: "N", float: "X", str: "NAME"}


class Parser(argparse.ArgumentParser):
    def error(self, message):                      # one line, exit 2, like every other error
        raise KafkarnnError(message)


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value
    return parse


def _subparser(sub, name: str, description: str, epilog: str = "") -> Parser:
    return sub.add_parser(name, help=description, description=description, epilog=epilog or None,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _common(p: Parser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="where runs live (default: $KAFKARNN_HOME, else the user data folder)")
    p.add_argument("--run", metavar="NAME", help="the run's name (default: <corpus>-<model>)")


def _training_limits(g) -> None:
    g.add_argument("--max-iters", type=positive(int), metavar="N",
                   help="stop when the run reaches iteration N")
    g.add_argument("--max-seconds", type=positive(float), metavar="S",
                   help="stop after S seconds of training in this invocation")
    g.add_argument("--save-every", type=positive(float), default=60.0, metavar="S",
                   help="seconds between checkpoints (60)")
    g.add_argument("--eval-every", type=positive(float), default=30.0, metavar="S",
                   help="seconds between validation passes (30)")
    g.add_argument("--threads", type=positive(int), metavar="N",
                   help="BLAS threads (default: chosen while training by timing steps; "
                        "N fixes it, and keeps hand-offs bit-reproducible)")


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
    g.add_argument("--preset", metavar="NAME", help="default, seed or small")
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

    a = _subparser(sub, "attach", "open the monitor on a run that trains in the background "
                   "(it takes the run over)")
    _common(a)
    _training_limits(a)
    a.add_argument("--no-mouse", action="store_true", help="monitor without mouse tracking (SSH)")

    s = _subparser(sub, "stop", "save and end a run's trainer (in the background or a monitor)")
    _common(s)

    s = _subparser(sub, "sample", "print text generated by a run's model", epilog=(
        "examples:\n  kafkarnn sample --prompt 'Gregor woke' --length 300 --temperature 0.8\n"
        "  kafkarnn sample --run metamorphosis-gru --best --top-k 5 --seed 1"))
    _common(s)
    given = s.add_mutually_exclusive_group()
    given.add_argument("--prompt", default="", help="text to continue")
    given.add_argument("--prompt-file", metavar="FILE", help="continue the text of FILE (UTF-8)")
    s.add_argument("--length", type=positive(int), default=200, help="characters to generate (200)")
    s.add_argument("--temperature", type=float, default=1.0, help="0 means always the likeliest (1)")
    s.add_argument("--top-k", type=positive(int), metavar="K", help="draw only from the K likeliest")
    s.add_argument("--seed", type=int, help="make the sample reproducible")
    s.add_argument("--best", action="store_true", help="use best.npz (lowest validation loss)")
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
    c.add_argument("--threads", type=positive(int), help=argparse.SUPPRESS)

    _sweep_parser(sub)
    r = _subparser(sub, "runs", "list the runs, and which are training now")
    r.add_argument("--data-dir", metavar="DIR", help="where runs live")
    r.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    return p


def _sweep_parser(sub) -> None:
    w = _subparser(sub, "sweep", "train a run for every combination of settings, side by side "
                   "(or on a Ray cluster), in the background", epilog=(
        "examples:\n  kafkarnn sweep cmp --model rnn,lstm,gru --hidden 256,384 --max-seconds 300\n"
        "  kafkarnn sweep cmp                  where it stands; resumes what is unfinished\n"
        "  kafkarnn sweep big --grid grid.json --ray auto --data-dir /shared/kafkarnn\n\n"
        "Every setting takes a comma list; the sweep is their product. Each trial is an ordinary\n"
        "run named NAME-SETTING_VALUE-…, trained by a background process: Ctrl-C or a dropped\n"
        "connection leaves the sweep going. See docs/sweeps.md."))
    w.add_argument("name", metavar="NAME", help="the sweep's name (and its runs' first part)")
    w.add_argument("--data-dir", metavar="DIR", help="where runs live (shared by every node with --ray)")
    g = w.add_argument_group("the grid (comma lists)")
    g.add_argument("--grid", metavar="FILE", help="settings from a JSON or TOML file: "
                   '{"model": ["rnn", "gru"], "max_seconds": 300}')
    for flag, dest, _, text in [("--corpus", "corpus", str, "text files or folders"),
                                ("--preset", "preset", str, "default, seed or small"),
                                *CONFIG_OPTIONS, ("--max-iters", "max_iters", int, "iteration limits"),
                                ("--max-seconds", "max_seconds", float, "training-time budgets")]:
        g.add_argument(flag, dest="grid_" + dest, metavar="LIST", help=text)
    g = w.add_argument_group("how it runs")
    g.add_argument("--threads", type=positive(int), metavar="N", help="BLAS threads per trial (1)")
    g.add_argument("--parallel", type=positive(int), metavar="N",
                   help="trials side by side (default: cores // threads)")
    g.add_argument("--ray", metavar="ADDRESS", help="run each trial as a Ray task on the cluster "
                   "at HOST:PORT (or auto)")
    g.add_argument("--save-every", type=positive(float), default=60.0, metavar="S",
                   help="seconds between each trial's checkpoints (60)")
    g.add_argument("--eval-every", type=positive(float), default=30.0, metavar="S",
                   help="seconds between each trial's validation passes (30)")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--detach", action="store_true", help="start it and return at once")
    how.add_argument("--stop", action="store_true", help="ask every trial to save, and end the sweep")
    how.add_argument("--coordinate", action="store_true", help=argparse.SUPPRESS)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "train")
    return build_parser().parse_args(argv)


def set_blas_threads(threads: int | None, training: bool = False) -> None:
    """Choose NumPy's BLAS thread count before NumPy loads (it reads the environment once).

    --threads if given, else the user's own environment variables. A process that trains
    without them starts with OpenBLAS's own choice (a thread per core) and its tuner picks the
    count by timing steps (launch.thread_tuner). Anything else takes 1 thread on up to 2 cores
    and half the cores above that: on a small shared box a BLAS thread per core is a trap when
    another process holds a core.
    """
    if threads is None:
        if training or any(n in os.environ for n in THREAD_VARS):
            return
        cores = os.cpu_count() or 1
        threads = 1 if cores <= 2 else cores // 2
    for n in THREAD_VARS:
        os.environ[n] = str(threads)


def eprint(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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
                        save_every=args.save_every, eval_every=args.eval_every,
                        threads=args.threads, mouse=not args.no_mouse)


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

"""The command line: its options, and the commands that need no monitor.

`parse()` reads the arguments; `run_command()` carries out `train --headless`, `train --detach`,
the background trainer, `stop`, `sample` and `runs`. The monitor is the other front end
(kafkarnn.tui); `kafkarnn.main` picks between the two, and neither imports the other.
Every KafkarnnError becomes one line on stderr (`kafkarnn: error: …`) with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from kafkarnn import __version__
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.threads import THREAD_VARS     # (imports no NumPy: threads are set first)

COMMANDS = ("train", "attach", "stop", "sample", "runs", "inspect", "score")
EXAMPLES = """examples:
  kafkarnn                                   train the default model on Metamorphosis (resumes)
  kafkarnn --corpus mybook.txt               any UTF-8 text file, or a folder of them
  kafkarnn --preset seed                     min-char-rnn exactly
  kafkarnn --detach                          train in the background; `kafkarnn attach` to watch
  kafkarnn sample --prompt "Gregor woke" --length 300
  kafkarnn runs                              every run, and which are training now
  kafkarnn inspect --feature in_quotes       the unit that tracks quotation marks, on the text
  kafkarnn score letter.txt                  how well the latest run predicts a text

`kafkarnn COMMAND --help` tells more about each command."""

# options that change the model or its training; None means "not given" (preset or stored value)
MODEL_OPTIONS = [
    ("--model", "model", str, "rnn, lstm or gru"),
    ("--hidden", "hidden", int, "units per layer"),
    ("--layers", "layers", int, "stacked recurrent layers"),
    ("--dropout", "dropout", float, "dropout between layers and before the output, in [0, 1)"),
    ("--weight-drop", "weight_drop", float, "DropConnect on the recurrent weights, in [0, 1)"),
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
    ("--decay-iters", "decay_iters", int, "iterations of cosine decay (0: a constant rate)"),
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

    r = _subparser(sub, "runs", "list the runs, and which are training now")
    r.add_argument("--data-dir", metavar="DIR", help="where runs live")
    r.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    return p


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
    from kafkarnn.train.runs import resolve_data_dir
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


def run_command(args) -> int:
    if args.command == "sample":
        return cmd_sample(args)
    if args.command == "runs":
        return cmd_runs(args)
    if args.command in ("inspect", "score"):
        from kafkarnn import cli_inside
        return (cli_inside.cmd_inspect if args.command == "inspect" else cli_inside.cmd_score)(args)
    if args.command == "stop":
        return cmd_stop(args)
    if args.command == "train" and args.detach:
        return cmd_detach(train_options(args))
    from kafkarnn.train.seam import Role
    role = Role.BACKGROUND if getattr(args, "background", False) else Role.HEADLESS
    return train_headless(train_options(args), role, getattr(args, "after", None))


def train_headless(opts, role, after_pid: int | None = None) -> int:
    """Train in this process without a monitor: progress lines on stdout (the background
    trainer's go to its train.log, with the time)."""
    from kafkarnn.train.handover import read_note
    from kafkarnn.train.launch import describe_start, make_session, open_run, thread_tuner
    from kafkarnn.train.outcome import end_of_session
    from kafkarnn.train.seam import Role
    from kafkarnn.train.progress import progress_line
    from kafkarnn.train.signals import Signals

    background = role == Role.BACKGROUND
    stamp = (lambda: time.strftime("%Y-%m-%d %H:%M:%S ")) if background else (lambda: "")
    say = (lambda text: print(stamp() + text, flush=True)) if background else eprint
    with Signals() as signals:                   # a signal during start-up stops at the first step
        launch = open_run(opts, role, after_pid=after_pid, log=lambda s: say(f"kafkarnn: {s}"))
        try:
            for note in (launch.corpus.notice, launch.recovered):
                if note:
                    say(f"kafkarnn: {note}")
            who = f"background trainer, process {os.getpid()}: " if background else ""
            say(f"kafkarnn: {who}{describe_start(launch)}")
            started = time.time()
            session = make_session(opts, launch, report_every=30.0 if background else 5.0,
                                   log=lambda s: print(stamp() + s, flush=True),
                                   tuner=thread_tuner(opts))
            session.run(signals.event.is_set)
            snap = session.snapshot()
            print(stamp() + progress_line(snap), flush=True)
            note = read_note(launch.run) or {}
            asked = note.get("pid") if signals.caught and signals.caught[-1] == "SIGTERM" else None
        finally:
            launch.lock.unlock()
    outcome = end_of_session(snap, started, signal_name=signals.first,
                             taken_by=asked if note.get("action") == "take-over" else None,
                             stopped_by=asked if note.get("action") == "stop" else None,
                             hint=not background)
    say(outcome.line)
    return outcome.code


def cmd_detach(opts) -> int:
    """Check everything here (errors show at once), then hand the run to a background trainer."""
    from kafkarnn.train.handover import background_argv, log_tail, start_background, wait_until_training
    from kafkarnn.train.launch import open_run
    from kafkarnn.train.seam import Role

    launch = open_run(opts, Role.HEADLESS, log=lambda s: eprint(f"kafkarnn: {s}"))
    run = launch.run
    try:
        if launch.corpus.notice:
            eprint(f"kafkarnn: {launch.corpus.notice}")
        argv = background_argv(run, after_pid=os.getpid(), max_iters=opts.max_iters,
                               max_seconds=opts.max_seconds, save_every=opts.save_every,
                               eval_every=opts.eval_every, threads=opts.threads)
        try:
            proc = start_background(run, argv)
        except OSError as e:
            raise KafkarnnError(f"could not start the background trainer ({e.strerror or e})") from None
    finally:
        launch.lock.unlock()
    if not wait_until_training(run, proc):
        raise KafkarnnError(f"the background trainer of {run.name} ended at once: "
                            f"{log_tail(run) or 'see ' + str(run.log_path)}")
    eprint(f"kafkarnn: run {run.name} is training in the background (process {proc.pid}, log "
           f"{run.log_path}) — `kafkarnn attach --run {run.name}` opens the monitor on it, "
           f"`kafkarnn stop --run {run.name}` ends it")
    return 0


def pick_training_run(data_dir, name: str | None, what: str):
    """The run `name`, or else the one run that is training now (an error lists several)."""
    from kafkarnn.train.handover import training_runs
    from kafkarnn.train.listing import list_runs
    from kafkarnn.train.runs import Run
    if name is not None:
        run = Run(data_dir, name)
        if not run.exists():
            raise KafkarnnError(f"no run named {name} in {data_dir} (see `kafkarnn runs`)")
        return run
    busy = training_runs([Run(data_dir, r["name"]) for r in list_runs(data_dir)])
    if not busy:
        raise KafkarnnError(f"no run is training in {data_dir}: nothing to {what}")
    if len(busy) > 1:
        listed = ", ".join(f"{run.name} ({h.role.value if h.role else 'process'} {h.pid})"
                           for run, h in busy[:5])
        raise KafkarnnError(f"{len(busy)} runs are training: {listed}; pass --run NAME")
    return busy[0][0]


def cmd_stop(args) -> int:
    from kafkarnn.train.checkpoint import load_checkpoint
    from kafkarnn.train.handover import stop
    from kafkarnn.train.runs import resolve_data_dir
    data_dir = resolve_data_dir(args.data_dir)
    run = pick_training_run(data_dir, args.run, "stop")
    holder = stop(run)
    try:
        at = f" at iteration {load_checkpoint(run.checkpoint_path)[1]['iteration']:,}"
    except (KafkarnnError, KeyError, TypeError):
        at = ""
    eprint(f"kafkarnn: stopped run {run.name} (process {holder.pid}), saved{at}")
    return 0


def cmd_sample(args) -> int:
    import numpy as np

    from kafkarnn.train.inference import load_for_sampling
    from kafkarnn.train.runs import resolve_data_dir
    data_dir = resolve_data_dir(args.data_dir)
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise KafkarnnError(f"--temperature must be 0 or more, not {args.temperature}")
    prompt = args.prompt
    if args.prompt_file is not None:                 # a prompt with newlines, read as it is
        from kafkarnn.cli_inside import read_text_file
        prompt = read_text_file(args.prompt_file, "prompt file")
    sampler, run = load_for_sampling(data_dir, args.run, best=args.best)
    if args.run is None:                             # say which run "the latest" turned out to be
        eprint(f"kafkarnn: sampling from run {run.name} (iteration "
               f"{sampler.meta.get('iteration', '?')}{', best' if args.best else ''})")
    rng = np.random.default_rng(args.seed)
    text, _ = sampler.generate(prompt, args.length, rng, args.temperature, args.top_k)
    sys.stdout.write(prompt + text + "\n")
    return 0


def cmd_runs(args) -> int:
    from kafkarnn.train.listing import list_runs
    from kafkarnn.train.runs import resolve_data_dir
    data_dir = resolve_data_dir(args.data_dir)
    runs = list_runs(data_dir)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print(f"no runs yet in {data_dir}")
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"runs in {data_dir / 'runs'}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    for col in ("name", "corpus", "model", "iter", "best val", "saved", "now"):
        table.add_column(col, no_wrap=col != "corpus", justify="right" if col == "iter" else "left")
    for r in runs:
        best = r.get("best_val_loss")
        saved = str(r.get("last_saved") or "-")[5:16].replace("T", " ") or "-"   # MM-DD HH:MM
        now = f"{r['where'] or 'pid'} {r['pid']}" if r.get("training") else "-"
        table.add_row(str(r["name"]), str(r["corpus"]), str(r["model"]), f"{r['iter']}",
                      f"{best:.4f}" if isinstance(best, (int, float)) else "-", saved, now)
    Console().print(table)
    return 0

"""The options of the commands that compare runs: `baseline` (what counting gets), `compare` (runs
side by side) and `sweep` (a run for every combination of settings)."""

from __future__ import annotations

import argparse

from kafkarnn.cli.parsing import CONFIG_OPTIONS, MAX_LENGTH, PRESETS_TEXT, _common, _subparser, positive


def add_parsers(sub) -> None:
    _baseline_and_compare(sub)
    _sweep_parser(sub)


def _baseline_and_compare(sub) -> None:
    b = _subparser(sub, "baseline", "what counting gets: the n-gram baseline of a run's text "
                   "(or any text), nats and bits per character of each order", epilog=(
        "examples:\n  kafkarnn baseline --run metamorphosis-gru\n"
        "  kafkarnn baseline --mix             the latest run's network and counting, mixed\n"
        "  kafkarnn baseline --corpus mybook.txt --json"))
    _common(b)
    b.add_argument("--corpus", metavar="PATH", help="a text file or folder instead of a run's corpus")
    b.add_argument("--encoding", metavar="NAME", help="text encoding of --corpus (utf-8)")
    b.add_argument("--val-fraction", type=float, metavar="X", help="share of --corpus held out "
                   "for validation (0.1)")
    b.add_argument("--json", action="store_true", help="each order's nats and bits per "
                   "character, and the best order, as JSON")
    b.add_argument("--mix", action="store_true", help="also mix the run's network (best.npz) "
                   "with the best order's table on the same validation characters: each alone, "
                   "the mix and its weight (docs/ladder.md)")

    m = _subparser(sub, "compare", "runs side by side: validation curves on one chart, speed, "
                   "best loss, the settings that differ, a sample from each", epilog=(
        "examples:\n  kafkarnn compare                    the runs on the latest run's text\n"
        "  kafkarnn compare metamorphosis-gru metamorphosis-lstm --x seconds --train\n"
        "  kafkarnn compare --json | jq '.runs[] | [.name, .best_val_loss]'\n\n"
        "Runs with different batch sizes take steps of different sizes: compare them by\n"
        "characters seen (the default) or seconds of training, not by iterations."))
    m.add_argument("runs", nargs="*", metavar="RUN", help="runs to compare (default: the latest "
                   "run and every run trained on the same text)")
    m.add_argument("--data-dir", metavar="DIR", help="where runs live")
    m.add_argument("--x", choices=("chars", "seconds", "iters"), default="chars",
                   help="x-axis: characters seen (default), seconds of training, or iterations")
    m.add_argument("--train", action="store_true", help="draw the training curves too (dim)")
    m.add_argument("--prompt", default="", help="the text each run's sample continues")
    m.add_argument("--length", type=positive(int, MAX_LENGTH), default=200,
                   help="characters per sample (200)")
    m.add_argument("--seed", type=int, default=0, help="the samples' random seed (0)")
    m.add_argument("--temperature", type=float, default=1.0, help="of the samples (1)")
    m.add_argument("--no-samples", action="store_true", help="skip the samples (no model is loaded)")
    m.add_argument("--json", action="store_true", help="curves, table, settings and samples as JSON")
    m.add_argument("--threads", type=positive(int), help=argparse.SUPPRESS)


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
                                ("--preset", "preset", str, PRESETS_TEXT),
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

"""The command line's option tables and the argparse kit every command's options are built with."""

from __future__ import annotations

import argparse
import math

from kafkarnn.engine.cells import names_text     # (the names only: no NumPy either)
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.config import PRESETS

PRESETS_TEXT = ", ".join(list(PRESETS)[:-1]) + f" or {list(PRESETS)[-1]}"   # for --preset's help

# options that change the model or its training; None means "not given" (preset or stored value)
MODEL_OPTIONS = [
    ("--model", "model", str, names_text()),
    ("--hidden", "hidden", int, "units per layer"),
    ("--layers", "layers", int, "stacked recurrent layers"),
    ("--dropout", "dropout", float,
     "dropout between layers and before the output, in [0, 1) "
     "(default, mingru, minlstm presets: from the text's size; default preset over 800,000 "
     "training characters: 0, DropConnect alone)"),
    ("--weight-drop", "weight_drop", float,
     "DropConnect on the recurrent weights, in [0, 1) (default preset: like --dropout)"),
    ("--dropout-ramp", "dropout_ramp", int,
     "iterations over which dropout and DropConnect rise from 0 to their values, 0: from the "
     "start (default, mingru, minlstm presets: four passes through the text)"),
    ("--teacher", "teacher", float,
     "learn from the text's n-gram table too: each target is the next character mixed with "
     "the table's prediction of it, weight X in [0, 1) (0: the character alone; default, "
     "mingru, minlstm presets: 0.3 up to 500,000 training characters, with 0.1 less dropout)"),
    ("--teacher-order", "teacher_order", int, "the order of that table, 1 to 10 (8)"),
    ("--teacher-folds", "teacher_folds", int,
     "the pieces the table's predictions are cross-fitted over (each from a table counted on "
     "the others), 2 to 100 (5; default, mingru, minlstm presets: 20 up to 200,000 training "
     "characters)"),
    ("--teacher-rise", "teacher_rise", float,
     "the teacher's weight rises by X in a straight line over the second half of the learning "
     "rate's decay, as the network fits its text ever closer (0: it stays; default, mingru, "
     "minlstm presets: 0.2 up to 160,000 training characters)"),
    ("--block", "block", str,
     "what wraps each layer: plain (a stack of cells), residual (a norm and a residual path "
     "around each cell) or mlp (and an MLP after it, as the min-cells' paper stacks them)"),
    ("--mlp-ratio", "mlp_ratio", int, "the mlp block's width, in multiples of --hidden (4)"),
    ("--embed-init", "embed_init", float, "spread (std) of the first layer's input columns at start"),
    ("--dtype", "dtype", str, "float32 or float64"),
]
OPTIM_OPTIONS = [
    ("--batch", "batch", int, "parallel streams through the text (1: the seed's single stream)"),
    ("--seq-len", "seq_len", int, "characters per truncated-BPTT step"),
    ("--restart-every", "restart_every", int,
     "each stream starts again from a zero state every N steps, the streams in turn, so the "
     "model learns to begin anywhere in a text (0: only when the streams start their regions "
     "again, the presets' choice; 16 keeps a long run without dropout sound)"),
    ("--optimizer", "optimizer", str, "adagrad, adam or sfadamw (schedule-free AdamW: no decay needed)"),
    ("--lr", "lr", float, "peak learning rate"),
    ("--lr-min", "lr_min", float, "learning rate at the end of the cosine decay"),
    ("--warmup-iters", "warmup_iters", int, "iterations of linear warmup"),
    ("--decay-iters", "decay_iters", int,
     "iterations of cosine decay, 0: a constant rate "
     "(default, mingru, minlstm presets: four passes, ≥ the preset's)"),
    ("--decay-start", "decay_start", int,
     "iteration the decay starts at, after a stable stretch at --lr (0: right after warmup)"),
    ("--decay-power", "decay_power", float,
     "the decay's shape: its cosine runs over (t/T)^P of its T steps, so P > 1 holds the rate "
     "near --lr longer and drops it later, 0.1 to 10 (1; default preset: 1.5 up to 500,000 "
     "training characters)"),
    ("--rsqrt-from", "rsqrt_from", int,
     "from this iteration the rate falls as --lr·√(N/iteration), a decay with no end "
     "(0: never; --schedule anytime: 1000)"),
    ("--schedule", "schedule", str,
     "fixed: the decay above; budget: a stable rate, then a decay over the last fifth of a new "
     "run's --max-iters or --max-seconds; anytime: no decay to an end (the rate falls as 1/√t "
     "from --rsqrt-from), and a tail average validated "
     "(default, mingru, minlstm presets on a text over ~1 MB: budget given a limit, anytime "
     "without; else fixed)"),
    ("--weight-decay", "weight_decay", float, "decoupled weight decay on the matrices (adam, sfadamw)"),
    ("--average", "average", str,
     "none, ema or tail: validate, save and sample an average of the weights: a moving one (ema), "
     "or one whose window grows with the run (tail) (default preset: ema; --schedule anytime: tail)"),
    ("--ema-beta", "ema_beta", float, "decay of that average per step (it spans ~1/(1-X) steps)"),
    ("--tail-eta", "tail_eta", float, "the tail average's η: step i of k weighs ~(i/k)^X, so it "
     "spans about the last 1/(X+1) of the run (4; --schedule anytime: 9)"),
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


def positive(kind, at_most=math.inf):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        if value > at_most:
            raise argparse.ArgumentTypeError(f"must be at most {at_most:,}, not {text}")
        return value
    return parse


MAX_LENGTH = 10_000_000     # a sample's characters: minutes to generate, and its memory known


def _subparser(sub, name: str, description: str, epilog: str = "") -> Parser:
    return sub.add_parser(name, help=description, description=description, epilog=epilog or None,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _common(p: Parser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="where runs live (default: $KAFKARNN_HOME, else the user data folder)")
    p.add_argument("--run", metavar="NAME", help="the run's name (default: <corpus>-<model>)")

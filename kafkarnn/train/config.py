"""Training configuration: one dataclass, the named presets, and validation of option values.

A run's configuration is stored in its config.json and wins on resume. Limits and intervals
(max iterations, max seconds, save/eval intervals) belong to one invocation and are not stored.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from kafkarnn.engine.cells import NAMES, cell_class, names_text
from kafkarnn.errors import KafkarnnError


@dataclass(frozen=True)
class Config:
    model: str = "lstm"          # a cell's name (engine/cells: rnn, lstm, gru, …)
    hidden: int = 256            # units per layer
    layers: int = 1              # stacked recurrent layers
    dropout: float = 0.0         # between layers and before the output
    weight_drop: float = 0.0     # DropConnect on the recurrent matrices (one mask per step)
    dropout_ramp: int = 0        # both rise from 0 to those values over this many iterations
    restart_every: int = 0       # each stream restarts from a zero state every N steps, in turn
                                 # (0: only where every stream starts its region again)
    block: str = "plain"         # what wraps each layer: plain | residual | mlp (engine/blocks.py)
    mlp_ratio: int = 4           # the mlp block's width, in multiples of hidden
    teacher: float = 0.0         # α: targets are (1−α)·the next character + α·the n-gram
                                 # table's prediction of it (train/teacher.py); 0: the character
    teacher_order: int = 8       # that table's order
    teacher_folds: int = 5       # the pieces its predictions are cross-fitted over
    teacher_rise: float = 0.0    # α rises by this over the second half of the rate's decay
    batch: int = 32              # parallel streams through the corpus
    seq_len: int = 64            # truncated-BPTT length
    optimizer: str = "adam"      # adagrad | adam | sfadamw (schedule-free AdamW)
    lr: float = 2e-3             # peak learning rate
    lr_min: float = 2e-3         # learning rate at the end of the decay
    warmup_iters: int = 0        # linear warmup from 0 to lr
    decay_iters: int = 0         # cosine decay from lr to lr_min over this many iterations (0: none)
    decay_start: int = 0         # the decay waits until this iteration (warmup-stable-decay)
    decay_power: float = 1.0     # the cosine runs over (t/T)^p: p > 1 holds the rate up longer
    rsqrt_from: int = 0          # from this iteration the rate falls as lr·√(N/it) (0: never)
    schedule: str = "fixed"      # fixed: the decay above | budget: fitted to a new run's limit |
                                 # anytime: no decay but the 1/√t above, a tail average validated
    budget_s: float = 0.0        # a budget's seconds (schedule.py): its decay is fixed in-run
    weight_decay: float = 0.0    # decoupled (AdamW), matrices only
    clip: float = 5.0            # elementwise gradient clip (the seed's ±5); 0 turns it off
    clip_norm: float = 0.0       # global-norm gradient clip; 0 turns it off
    average: str = "none"        # none | ema | tail: validate (and save, sample) an average
    ema_beta: float = 0.99       # the average's decay per update: it spans ~1/(1-β) updates
    tail_eta: float = 4.0        # average "tail": update i weighs ~(i/k)^η, the last ~1/(η+1)
    init: str = "default"        # default | seed (randn·0.01, as min-char-rnn)
    embed_init: float = 1.0      # std of the first layer's input columns (default init)
    dtype: str = "float32"       # float32 | float64
    reduction: str = "mean"      # mean (per character) | seq-sum (the seed's: sum over time)
    seed: int = 0                # initial weights, dropout and stream order
    val_fraction: float = 0.1    # the last part of the corpus, held out for validation
    groups: int = 0              # stream groups (engine/streams.py), set when a run is created
                                 # from the cores; 0 (runs made before them): this machine's

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        return f"{self.model} {self.layers}×{self.hidden}" + (
            "" if self.block == "plain" else f" in {self.block} blocks")

    @property
    def teacher_peak(self) -> float:
        """The teacher's α at the end of its rise (the run's α when it does not rise)."""
        return self.teacher + self.teacher_rise

    def weights(self) -> str:
        """Which weights the run validates, saves and samples, in a few words."""
        of_x = " of x" if self.optimizer == "sfadamw" else ""
        if self.average == "ema":
            return f"EMA {self.ema_beta:g}{of_x}"
        if self.average == "tail":
            return f"tail average η {self.tail_eta:g}{of_x}"
        return "x (schedule-free)" if self.optimizer == "sfadamw" else "as trained"


PRESETS: dict[str, Config] = {
    # min-char-rnn exactly: one rnn layer of 100, 25 steps, one stream, Adagrad 0.1, clip ±5.
    "seed": Config(model="rnn", hidden=100, layers=1, batch=1, seq_len=25, optimizer="adagrad",
                   lr=0.1, lr_min=0.1, clip=5.0, init="seed", dtype="float64",
                   reduction="seq-sum"),
    # The best 5-minute model on 2 CPU cores (benchmarks/README.md, "Choosing the default"): two
    # GRU layers of 384, regularised hard because Metamorphosis is small (dropout between layers,
    # DropConnect on the recurrent weights, weight decay), Adam with a cosine decay that ends
    # within such a run. It validates, saves and samples a tail average of the weights (about
    # the last tenth of the run, η 9): as good as the weights themselves once the decay is over,
    # and better before it, wherever a run stops; early on it keeps up where an EMA of the last
    # ~100 steps lags (1.308 against 1.348 at step 300 on Metamorphosis; docs/training.md).
    # Its streams do not restart mid-text (--restart-every): every 16 steps cost code 0.005-0.009
    # from three passes on; at 1 MB the zero state stayed sound to ~30 passes, with both rising
    # and with DropConnect alone (the big texts' default; at 4 MB checked to ~7 passes).
    "default": Config(model="gru", hidden=384, layers=2, dropout=0.3, weight_drop=0.3, batch=32,
                      seq_len=128, optimizer="adam", lr=2e-3, lr_min=1e-4, decay_iters=1000,
                      decay_power=1.5, weight_decay=0.1, clip=0.0, clip_norm=1.0, average="tail",
                      tail_eta=9.0, teacher=0.3),
    # minGRU and minLSTM: the best of a handful of trials of 300 s at one thread on Metamorphosis
    # (docs/ladder.md, "Presets for the min-cells"): 0.19 nats/char better than the default's
    # settings there (1.385, 1.376), 0.08 and 0.07 better on Python's stdlib; 2×512 and 4×384
    # did worse (fewer steps in the time). The decay spans those 300 s (their steps here).
    # They validate the default's tail average (ahead of their EMA 0.99 early, level by the end)
    # and learn from the table as it does (on Metamorphosis 1.342 and 1.346 against 1.384 and
    # 1.382 at their 300 s' steps; dropout 0.1 without the teacher overfits).
    "mingru": Config(model="mingru", hidden=384, layers=3, dropout=0.2, batch=32, seq_len=128,
                     optimizer="adam", lr=3e-3, lr_min=1e-4, decay_iters=1338, weight_decay=0.1,
                     clip=0.0, clip_norm=1.0, average="tail", tail_eta=9.0, teacher=0.3),
    "minlstm": Config(model="minlstm", hidden=384, layers=3, dropout=0.2, batch=32, seq_len=128,
                      optimizer="adam", lr=5e-3, lr_min=1e-4, decay_iters=920, weight_decay=0.1,
                      clip=0.0, clip_norm=1.0, average="tail", tail_eta=9.0, teacher=0.3),
    # Small and quick: something readable within a minute.
    "small": Config(model="lstm", hidden=128, batch=32, seq_len=64, lr=3e-3, lr_min=3e-3),
}


SCHEDULES = ("fixed", "budget", "anytime")    # train/schedule.py
AVERAGES = ("none", "ema", "tail")        # what is validated: the weights, or an average
BLOCKS = ("plain", "residual", "mlp")     # engine/blocks.KINDS, named here without NumPy

# The presets that follow the text (fit_to_text) when a run is created: the tuned ones.
FITTED = ("default", "mingru", "minlstm")

# How the default follows the text (see fit_to_text): the learning rate decays over FIT_PASSES
# passes through the training text, never fewer than the preset's 1,000 steps; dropout and
# DropConnect are 0.3 up to FIT_SMALL training characters and fall by 0.15 for each tenfold more,
# and (RAMP_BY_DEFAULT) they rise to those values over the first FIT_PASSES passes: the first
# passes of a big text gain from none, the later ones from all (benchmarks/README.md, 2026-12-06).
# Above FIT_BIG training characters a cell with a recurrent matrix keeps DropConnect alone:
# dropout between the layers cost the Bible 0.014 at 30 minutes' steps and its first MB (900,000
# training characters) 0.020, and gained code nothing (benchmarks/README.md, 2026-12-06; on
# Metamorphosis, 106,000, DropConnect alone overfits; between the two is not measured).
FIT_PASSES = 4
FIT_SMALL = 200_000
RAMP_BY_DEFAULT = True
FIT_BIG = 800_000
# The tuned presets learn from the text's n-gram table too (`teacher`, train/teacher.py) up to
# TEACHER_UP_TO training characters, and then need TEACHER_EASES less of both regularisers:
# on Metamorphosis 1.254 against 1.284 without it (benchmarks/README.md, 2026-12-06, night;
# the min-cells' 1.342 and 1.346 against 1.384 and 1.382: the "late night" entry).
# Above the line it is off: not measured there, and its distributions cost N·V·2 bytes.
TEACHER_UP_TO = 500_000
TEACHER_EASES = 0.1
# Up to FIT_SMALL training characters its predictions are cross-fitted over SMALL_TEXT_FOLDS
# pieces (each counted on 95% of the text, not 80%): on Metamorphosis the GRU 0.0018 better over
# four seeds, minGRU 0.0016, minLSTM 0.0049; code at 200,000 0.0025, the Bible there level; at
# 450,000 the Bible lost 0.0021 (benchmarks/README.md, 2026-12-06 late night and 2026-12-07).
SMALL_TEXT_FOLDS = 20
# Up to RISE_UP_TO α rises by SMALL_TEXT_RISE over the second half of the rate's decay
# (schedule.teacher_alpha): as the rate falls the network fits its text ever closer, and the table
# pulls harder against it. Metamorphosis (106,000) gained 0.0036 over four seeds, the min-cells
# 0.008 and 0.011; at 160,000 code 0.0005 (minGRU 0.007), the Bible 0.0016; at 200,000 code lost 0.0089
# and the Bible 0.0012 (benchmarks/README.md, 2026-12-07 morning and late morning).
SMALL_TEXT_RISE = 0.2
RISE_UP_TO = 160_000
# Up to POWER_UP_TO the default's cosine runs over (t/T)^1.5 of its steps (`decay_power`): the rate
# stays near its peak longer and falls later, to the same end; on Metamorphosis every one of eight
# seeds 0.0011-0.0019 better, mean 1.2499 against 1.2513 (1.25 and 2 no better); at 160,000 code
# 0.0044 and the Bible 0.0052, at 450,000 the Bible 0.013 (benchmarks/README.md, 2026-12-07,
# afternoon). Not measured above: bigger texts keep the plain cosine.
POWER_UP_TO = 500_000
MAX_FOLDS = 100


def fit_to_text(cfg: Config, train_chars: int, given=()) -> Config:
    """A preset of FITTED (the default, the min-cells') fitted to `train_chars` training characters.

    Set once, when a run is created, and stored with it: the trajectory stays a function of the
    iteration alone, so a run resumes exactly. Fields in `given` (the user's options) are kept.
    """
    passes = FIT_PASSES * train_chars / (cfg.batch * cfg.seq_len)
    teacher = cfg.teacher if "teacher" in given or train_chars <= TEACHER_UP_TO else 0.0
    drop = min(cfg.dropout, max(0.0, 0.3 - 0.15 * math.log10(max(train_chars, 1) / FIT_SMALL)))
    if teacher > 0:                             # the teacher regularises in their place
        drop = max(0.0, drop - TEACHER_EASES)
    fitted = {"dropout": round(drop, 2), "weight_drop": round(min(cfg.weight_drop, drop), 2),
              "teacher": teacher}
    if teacher > 0 and train_chars <= FIT_SMALL:
        fitted["teacher_folds"] = SMALL_TEXT_FOLDS
        if "teacher" not in given and train_chars <= RISE_UP_TO:   # (an α of yours stays)
            fitted["teacher_rise"] = SMALL_TEXT_RISE
    if train_chars > POWER_UP_TO:
        fitted["decay_power"] = 1.0
    dropconnect = cfg.weight_drop if "weight_drop" in given else fitted["weight_drop"]
    if train_chars > FIT_BIG and dropconnect > 0:
        fitted["dropout"] = 0.0
    if RAMP_BY_DEFAULT:
        fitted["dropout_ramp"] = round(passes)
    if cfg.decay_iters:                      # a preset with no decay (schedule-free) gets none
        fitted["decay_iters"] = max(cfg.decay_iters, round(passes))
    return cfg.replace(**{k: v for k, v in fitted.items() if k not in given})


def fit_to_cell(cfg: Config, given=()) -> Config:
    """cfg with DropConnect off for a cell that has no recurrent matrix (minGRU, minLSTM) unless
    the user gave --weight-drop (which `check` then refuses): the preset's 0.3 would otherwise be
    stored and shown for a regulariser that does nothing."""
    if cfg.model in NAMES and "weight_drop" not in given and cfg.weight_drop > 0 \
            and cell_class(cfg.model).recurrent_key is None:
        return cfg.replace(weight_drop=0.0)
    return cfg


def preset_with(preset: str | None, overrides: dict) -> Config:
    """The preset (None: the default) with the user's options, checked; needs no text."""
    return check(fit_to_cell(PRESETS[preset or "default"].replace(**overrides), given=overrides))


def teacher_label(alpha, rise=0.0) -> str:
    """" + teacher α" (" + teacher α→α+rise" when it rises) for a model that learns from its
    table, else ""."""
    if not alpha > 0:
        return ""
    return f" + teacher {alpha:g}" + (f"→{alpha + rise:g}" if rise else "")


def bad(msg: str):
    raise KafkarnnError(msg)


def check(cfg: Config) -> Config:
    """Raise KafkarnnError on option values that cannot work; return cfg."""
    if cfg.model not in NAMES:
        bad(f"--model must be {names_text()}, not {cfg.model!r}")
    if cfg.weight_drop > 0 and cell_class(cfg.model).recurrent_key is None:
        bad(f"--weight-drop: a {cfg.model} has no recurrent matrix for DropConnect to act on; "
            "leave it out (--dropout still acts between layers)")
    if cfg.block not in BLOCKS:
        bad(f"--block must be {', '.join(BLOCKS[:-1])} or {BLOCKS[-1]}, not {cfg.block!r}")
    if type(cfg.mlp_ratio) is not int or not 1 <= cfg.mlp_ratio <= 16:
        bad(f"--mlp-ratio must be a whole number from 1 to 16, not {cfg.mlp_ratio!r}")
    if cfg.optimizer not in ("adagrad", "adam", "sfadamw"):
        bad(f"--optimizer must be adagrad, adam or sfadamw, not {cfg.optimizer!r}")
    if cfg.schedule not in SCHEDULES:
        bad(f"--schedule must be {', '.join(SCHEDULES[:-1])} or {SCHEDULES[-1]}, not {cfg.schedule!r}")
    if type(cfg.budget_s) not in (int, float) or not (0 <= cfg.budget_s < math.inf):
        bad(f"the run's budget must be a number of seconds ≥ 0, not {cfg.budget_s!r}")
    if cfg.average not in AVERAGES:
        bad(f"--average must be one of {', '.join(AVERAGES)}, not {cfg.average!r}")
    if type(cfg.tail_eta) not in (int, float) or not 0.0 <= cfg.tail_eta <= 1000.0:
        bad(f"--tail-eta must be between 0 and 1000, not {cfg.tail_eta}")
    if not 0.0 < cfg.ema_beta < 1.0:
        bad(f"--ema-beta must be between 0 and 1, not {cfg.ema_beta}")
    if cfg.dtype not in ("float32", "float64"):
        bad(f"--dtype must be float32 or float64, not {cfg.dtype!r}")
    if cfg.init not in ("default", "seed") or cfg.reduction not in ("mean", "seq-sum"):
        bad("config has an unknown init or reduction")
    _check_numbers(cfg)
    return cfg


def _check_numbers(cfg: Config) -> None:
    """check's part for the sizes, rates and counts."""
    for name, least in (("hidden", 1), ("layers", 1), ("batch", 1), ("seq_len", 1),
                        ("dropout_ramp", 0), ("restart_every", 0), ("teacher_order", 1),
                        ("teacher_folds", 2)):
        if type(getattr(cfg, name)) is not int or getattr(cfg, name) < least:
            bad(f"--{name.replace('_', '-')} must be a whole number ≥ {least}, not {getattr(cfg, name)!r}")
    if cfg.hidden > 8192 or cfg.layers > 16 or cfg.batch > 4096 or cfg.seq_len > 4096:
        bad("model size out of range: --hidden ≤ 8192, --layers ≤ 16, --batch ≤ 4096, --seq-len ≤ 4096")
    if cfg.teacher_order > 10:
        bad(f"--teacher-order must be at most 10 (the n-gram tables' longest), not {cfg.teacher_order}")
    if cfg.teacher_folds > MAX_FOLDS:
        bad(f"--teacher-folds must be at most {MAX_FOLDS} (each fold counts a table of the whole "
            f"text), not {cfg.teacher_folds}")
    for name in ("dropout", "weight_drop", "teacher"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            bad(f"--{name.replace('_', '-')} must be in [0, 1), not {getattr(cfg, name)}")
    if type(cfg.teacher_rise) not in (int, float) or not 0.0 <= cfg.teacher_rise < 1.0 - cfg.teacher:
        bad(f"--teacher-rise must be ≥ 0 and keep --teacher plus it below 1, not {cfg.teacher_rise}")
    if cfg.teacher_rise and not cfg.teacher:
        bad("--teacher-rise raises the teacher's weight: it needs --teacher above 0")
    if not (cfg.lr > 0 and cfg.lr < 100):
        bad(f"--lr must be a positive number below 100, not {cfg.lr}")
    if type(cfg.groups) is not int or not 0 <= cfg.groups <= cfg.batch:
        bad(f"the run's stream groups must be a whole number from 0 to the batch, not {cfg.groups!r}")
    if not 0.0 < cfg.val_fraction < 0.9:
        bad(f"--val-fraction must be between 0 and 0.9, not {cfg.val_fraction}")
    if type(cfg.decay_power) not in (int, float) or not 0.1 <= cfg.decay_power <= 10:
        bad(f"--decay-power must be between 0.1 and 10, not {cfg.decay_power!r}")
    for name in ("clip", "clip_norm", "weight_decay", "lr_min", "warmup_iters", "decay_iters",
                 "decay_start", "rsqrt_from", "embed_init"):
        if getattr(cfg, name) < 0:
            bad(f"--{name.replace('_', '-')} must not be negative")

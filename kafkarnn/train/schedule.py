"""The learning-rate schedule: a function of the configuration, the iteration and (for a run
with a time budget) the decay fixed when it began, so that a resumed run goes on exactly where
it stopped.

Three kinds (Config.schedule). "fixed": the decay is set in steps (--decay-start, --decay-iters;
the default preset fits them to the text). "budget": the run was given a budget when it was
created, and the rate stays at its peak until the last DECAY_SHARE of it, then decays to the
floor just as the budget ends (warmup-stable-decay). A budget in iterations is turned into steps
at once (`budget_steps`); one in seconds is not known in steps until the decay begins, so the
session fixes it then (`budget_decay`) from its pace, and the checkpoint keeps it. "anytime":
no limit known, so no decay to an end: the rate falls slowly, as 1/√t after `rsqrt_from`, and
the run validates a tail average of its weights (the last ~tenth of the run,
engine/optim.TailAverage), which does the rest of a decay's work wherever it stops.
Whatever the kind, `--cooldown N` ends a run with no decay under way: the decay to the floor over
its next N steps (`cooldown`), kept by the checkpoint like a timed budget's. The rising dropout
(`dropout_rates`), the teacher's rising weight (`teacher_alpha`) and the streams' restarts
(`restarting`) are functions of the step too.
"""

from __future__ import annotations

import math

from kafkarnn.errors import KafkarnnError
from kafkarnn.train.config import Config

DECAY_SHARE = 0.2     # the budget's last fifth decays (benchmarks/README.md, "A schedule for a budget")
BUDGET_BY_DEFAULT = True     # a new run with a limit on a big text gets "budget" unless told
ANYTIME_BY_DEFAULT = True    # and one with no limit gets "anytime"
ANYTIME_ETA = 9.0            # its tail average spans about the last 1/(η+1) of the run
ANYTIME_RSQRT_FROM = 1000    # and its rate falls as 1/√t from the default's 300-s step count


def learning_rate(c: Config, it: int, decay: tuple[int, int] | None = None) -> float:
    """1) linear warmup, 2) the peak rate until the decay starts, 3) cosine decay from there to
    lr_min over its steps, of the share (t/T)^decay_power of them gone, 4) lr_min after that.
    `decay`: (start, steps) fixed in-run (a timed budget's, a cooldown's)."""
    if c.warmup_iters and it < c.warmup_iters:
        return c.lr * (it + 1) / c.warmup_iters
    start, steps = decay or (c.decay_start, c.decay_iters)
    if steps:
        start = max(c.warmup_iters, start)
        if c.rsqrt_from and it < start:
            return peak_rate(c, it)
        frac = min(1.0, max(0, it - start) / steps) ** c.decay_power
        return c.lr_min + 0.5 * (peak_rate(c, start) - c.lr_min) * (1.0 + math.cos(math.pi * frac))
    return peak_rate(c, it)


def dropout_rates(c: Config, it: int) -> tuple[float, float]:
    """Step `it`'s dropout and DropConnect: the config's, reached in a straight line from 0 over
    its first `dropout_ramp` steps (a big text's first passes gain from none, its later ones from
    all; benchmarks/README.md)."""
    share = min(1.0, it / c.dropout_ramp) if c.dropout_ramp else 1.0
    return c.dropout * share, c.weight_drop * share


def teacher_alpha(c: Config, it: int, decay: tuple[int, int] | None = None) -> float:
    """Step `it`'s teacher weight α: `teacher`, rising by `teacher_rise` in a straight line over
    the second half of the rate's decay (the decay `learning_rate` follows; with none, it stays).
    As the rate falls the network fits its text ever closer; the table then pulls harder."""
    start, steps = decay or (c.decay_start, c.decay_iters)
    if not c.teacher_rise or not steps:
        return c.teacher
    half = steps / 2
    start = max(c.warmup_iters, start) + half
    return c.teacher + c.teacher_rise * min(1.0, max(0.0, (it - start) / half))


def restarting(c: Config, it: int) -> list[int]:
    """The streams that start step `it` from a zero state mid-text (--restart-every N): stream b
    every N steps from step 1 + b·N // B, so B/N of them a step. The model then meets a zero state
    anywhere in the text, as validation, `score` and a prompt give it one, not only at the B
    places where the streams start their regions again (benchmarks/README.md, 2026-12-06)."""
    N, B = c.restart_every, c.batch
    if not N or it == 0:
        return []
    return [b for b in range(B) if (it - 1 - b * N // B) % N == 0]


def peak_rate(c: Config, it: int) -> float:
    """The rate before any decay to an end: lr, falling as lr·√(rsqrt_from/it) after rsqrt_from."""
    if c.rsqrt_from and it > c.rsqrt_from:
        return c.lr * math.sqrt(c.rsqrt_from / it)
    return c.lr


def budget_steps(c: Config, max_iters: int) -> Config:
    """c with its decay over the last DECAY_SHARE of `max_iters` iterations (after any warmup)."""
    start = max(c.warmup_iters, max_iters - max(1, round(DECAY_SHARE * max_iters)))
    return c.replace(decay_start=start, decay_iters=max(1, max_iters - start))


def budget_decay(c: Config, iteration: int, trained_s: float, iters_per_s: float) -> tuple[int, int] | None:
    """The decay of a run with a budget of c.budget_s seconds, once `trained_s` seconds of it
    have passed the stable part: (this iteration, the steps left at this pace); else None."""
    left = c.budget_s - trained_s
    if not c.budget_s or left > DECAY_SHARE * c.budget_s or iters_per_s <= 0:
        return None
    return iteration, max(1, round(left * iters_per_s))


def for_limits(c: Config, given, max_iters: int | None, max_seconds: float | None,
               big_text: bool) -> Config:
    """A new run's schedule for its first limits: "budget" or "anytime" when asked (--schedule),
    or by default where a tuned preset's decay was fitted to a big text (`big_text`) and none
    was given: "budget" with a limit, "anytime" without; else c as it is. On a small text any
    budget holds many passes, and overfitting, not the schedule, decides: its fitted decay ends
    sooner, and was measured better there."""
    limit = bool(max_iters or max_seconds)
    placed = {"decay_iters", "decay_start"} & set(given)
    if "schedule" in given:
        if c.schedule == "fixed":
            return c
        if c.schedule == "anytime":
            return anytime(c, given, placed)
        if not limit:
            raise KafkarnnError("--schedule budget fits the decay to a limit: give the new run "
                                "--max-iters or --max-seconds")
        if placed:
            raise KafkarnnError("--schedule budget places the decay itself: leave out --decay-iters "
                                "and --decay-start (or use --schedule fixed)")
    elif not (big_text and c.decay_iters and not placed and c.optimizer != "sfadamw"):
        return c
    elif not limit:
        return anytime(c, given, placed) if ANYTIME_BY_DEFAULT else c
    elif not BUDGET_BY_DEFAULT:
        return c
    c = c.replace(schedule="budget")
    if max_iters:                                # exact in steps (with both limits, these)
        return budget_steps(c, max_iters)
    return c.replace(decay_start=0, decay_iters=0, budget_s=float(max_seconds))


def anytime(c: Config, given, placed) -> Config:
    """c with no decay, validating a tail average unless the user chose the average."""
    if placed:
        raise KafkarnnError("--schedule anytime keeps the rate at --lr: leave out --decay-iters "
                            "and --decay-start (or use --schedule fixed)")
    averaged = {} if "average" in given else {"average": "tail"}
    if "tail_eta" not in given:
        averaged["tail_eta"] = ANYTIME_ETA
    if "rsqrt_from" not in given:
        averaged["rsqrt_from"] = ANYTIME_RSQRT_FROM
    return c.replace(schedule="anytime", decay_iters=0, decay_start=0, **averaged)


def cooldown(c: Config, iteration: int, rate: float, steps: int) -> tuple[int, int]:
    """The decay `--cooldown steps` asks of a run at `iteration`, whose rate there is `rate`:
    (iteration, steps), from the peak rate to lr_min. KafkarnnError where the rate is not at its
    peak (a warmup, or a decay under way or over) or the optimizer keeps its own average."""
    if c.optimizer == "sfadamw":
        raise KafkarnnError("--cooldown decays the rate of Adam or Adagrad; schedule-free "
                            "training keeps its own average instead")
    peak = peak_rate(c, iteration)
    if not math.isclose(rate, peak, rel_tol=1e-9):   # a stable stretch's cosine is c.lr ± an ulp
        what = f"--lr {c.lr:g}" if peak == c.lr else f"{peak:.3g} (--lr {c.lr:g} falling as 1/√t)"
        raise KafkarnnError(f"--cooldown decays from the peak rate, and this run's rate at iteration "
                            f"{iteration:,} is {rate:.3g}, not {what} (a warmup, or a decay "
                            "under way or over)")
    return iteration, steps


def cooldown_end(c: Config, decay: tuple[int, int] | None, cooling: bool = False) -> int | None:
    """The iteration a cooldown ends at (a trainer's `decay` marked `cooling`, or one that no
    timed budget fixed: checkpoints from before the mark); None when there is none."""
    return sum(decay) if decay and (cooling or not c.budget_s) else None


def describe_cooldown(c: Config, decay: tuple[int, int]) -> str:
    """The notice a cooldown (start, steps) begins with."""
    return (f"cooling down: the learning rate falls from {peak_rate(c, decay[0]):.3g} to "
            f"{c.lr_min:g} by iteration {sum(decay):,}, where the run stops")


def describe(c: Config) -> str:
    """The schedule in a few words, for the line a run starts with."""
    if c.rsqrt_from and c.schedule != "anytime":
        return f"{_describe(c)}, the peak falling as 1/√t from iteration {c.rsqrt_from:,}"
    return _describe(c)


def _describe(c: Config) -> str:
    if c.schedule == "budget" and c.budget_s:
        return f"learning rate stable, then decaying over the last fifth of the {c.budget_s:g}-s budget"
    if c.schedule == "budget":
        return (f"learning rate stable until iteration {c.decay_start:,}, then decaying over "
                f"{c.decay_iters:,} steps to the budget's end")
    if c.schedule == "anytime" and c.rsqrt_from:
        return (f"learning rate constant until iteration {c.rsqrt_from:,}, then falling as 1/√t "
                "(no limit to fit a decay to)")
    if c.schedule == "anytime":
        return "learning rate constant (no limit to fit a decay to)"
    if not c.decay_iters:
        return "no decay"
    start = f" from iteration {c.decay_start:,}" if c.decay_start else ""
    late = f", most of it late (power {c.decay_power:g})" if c.decay_power > 1 else ""
    early = f", most of it early (power {c.decay_power:g})" if c.decay_power < 1 else ""
    return f"learning rate decaying over {c.decay_iters:,} steps{start}{late}{early}"

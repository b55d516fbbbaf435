"""Runs side by side: their validation curves on one x-axis, what they cost, the settings that
differ, and a sample from each one's best model. Read-only: nothing here writes to a run, and
runs that are training now read as well as finished ones.

Shared by `kafkarnn compare` (cli/compare.py) and the monitor's comparison screen
(tui/compare_screen.py); the pictures are in pictures/comparison.py. A run is read from its folder
(runs/folder.py): config.json, metrics.jsonl (one JSON record per line, written by the session
every ~2 s, with `val_loss` after a validation pass), best.npz.

Three x-axes, because runs with different batch sizes take steps of different sizes:
    chars    characters seen = iterations × batch × seq_len (the record's own count)
    seconds  seconds of training (the trainer's clock, summed over sessions; not wall time)
    iters    iterations (fair only between runs of the same batch × seq_len)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kafkarnn.errors import KafkarnnError
from kafkarnn.inspect.curves import MetricsTail, Point, count, number, point
from kafkarnn.runs.folder import Run

AXES = {"chars": "characters seen", "seconds": "seconds of training", "iters": "iterations"}
SKIPPED_SETTINGS = ("corpus", "created", "kafkarnn_version")   # what a run is, not how it learns


@dataclass
class RunCurves:
    """One run as the comparison shows it."""
    name: str
    config: dict                       # config.json; {} when it cannot be read
    train: list[Point] = field(default_factory=list)   # the smoothed training loss
    val: list[Point] = field(default_factory=list)     # validation loss
    chars_per_sec: float | None = None                # median of the records' rates
    n_params: int | None = None
    problem: str = ""                  # why some of it cannot be shown ("" when all can)
    config_problem: str = ""           # "config is unreadable", when it is
    live: bool = False                 # the run the monitor trains now
    _rates: list[float] = field(default_factory=list, repr=False)
    _taken: int = 0                    # records of the tail already in the curves

    @property
    def model(self) -> str:
        c = self.config
        if "model" not in c:
            return "?"
        from kafkarnn.train.config import teacher_label
        t, rise = c.get("teacher"), c.get("teacher_rise", 0.0)
        taught = teacher_label(t, rise if number(rise) else 0.0) if number(t) else ""   # (may be damaged)
        return f"{c['model']} {c.get('layers', 1)}×{c.get('hidden', '?')}{taught}"

    @property
    def chars_per_iter(self) -> int | None:
        b, s = self.config.get("batch"), self.config.get("seq_len")
        return b * s if count(b) and count(s) else None

    @property
    def best(self) -> Point | None:
        """The lowest validation loss, the first time it was reached."""
        return min(self.val, key=lambda p: p.loss) if self.val else None

    def take(self, tail: MetricsTail) -> None:
        """Bring the curves up to what `tail` has read: only its new records, unless it
        started again (a replaced file)."""
        if self._taken > len(tail.records):
            self.train, self.val, self._rates, self._taken = [], [], [], 0
        per = self.chars_per_iter
        for r in tail.records[self._taken:]:
            self.train += [p] if (p := point(r, "loss", per)) else []
            self.val += [p] if (p := point(r, "val_loss", per)) else []
            rate = r.get("chars_per_sec")
            if number(rate) and math.isfinite(rate) and rate > 0:
                self._rates.append(rate)
        self._taken = len(tail.records)
        self.chars_per_sec = float(np.median(self._rates)) if self._rates else None
        self.problem = "; ".join(filter(None, [self.config_problem, tail.problem()]))


def corpus_key(config: dict) -> str | None:
    """What identifies a run's text: its fingerprint's sha256 (else its name), or None."""
    corpus = config.get("corpus")
    if not isinstance(corpus, dict):
        return None
    fp = corpus.get("fingerprint")
    if isinstance(fp, dict) and isinstance(fp.get("sha256"), str):
        return fp["sha256"]
    return corpus.get("name") if isinstance(corpus.get("name"), str) else None


def read_config(run: Run) -> tuple[dict, str]:
    """A run's config.json, or {} and why not."""
    try:
        return run.read_config(), ""
    except KafkarnnError as e:
        return {}, str(e)


def count_params(config: dict) -> int | None:
    """The number of parameters the run's model has, from its settings and vocabulary."""
    from kafkarnn.train.config import Config, check
    from kafkarnn.train.trainer import build_model
    corpus = config.get("corpus")
    vocab = corpus.get("vocab") if isinstance(corpus, dict) else None
    try:
        cfg = check(Config.from_dict(config))
        return build_model(cfg, len(vocab)).n_params() if isinstance(vocab, str) else None
    except (KafkarnnError, TypeError, ValueError):
        return None


def load_run(data_dir: Path, name: str) -> tuple[RunCurves, MetricsTail]:
    """One run's curves and the reader that can bring them up to date later."""
    run = Run(data_dir, name)
    if not run.path.is_dir():
        raise KafkarnnError(f"no run named {name} in {data_dir} (see `kafkarnn runs`)")
    config, why = read_config(run)
    curves = RunCurves(name, config, n_params=count_params(config),
                       config_problem="config is unreadable" if why else "")
    tail = MetricsTail(run.metrics_path)
    tail.read()
    curves.take(tail)
    return curves, tail


def same_text_runs(data_dir: Path, name: str) -> list[str]:
    """The runs trained on the same text as run `name` (itself included), by name."""
    from kafkarnn.runs.listing import list_runs
    key = corpus_key(read_config(Run(data_dir, name))[0])
    if key is None:
        return [name]
    return [r["name"] for r in list_runs(data_dir)
            if r["name"] == name or corpus_key(read_config(Run(data_dir, r["name"]))[0]) == key]


def latest_run(data_dir: Path) -> str:
    """The run trained most recently: the newest metrics line or checkpoint (to the nanosecond,
    so that runs started in the same second are told apart)."""
    from kafkarnn.runs.listing import list_runs
    newest: dict[str, int] = {}
    for r in list_runs(data_dir):
        run = Run(data_dir, r["name"])
        for path in (run.metrics_path, run.checkpoint_path):
            try:
                newest[run.name] = max(newest.get(run.name, 0), path.stat().st_mtime_ns)
            except OSError:
                pass
    if not newest:
        raise KafkarnnError(f"no saved runs in {data_dir}: train one first with `kafkarnn`")
    return max(newest, key=newest.get)


def default_runs(data_dir: Path) -> list[str]:
    """The latest run and every run on its text."""
    return same_text_runs(data_dir, latest_run(data_dir))


def differing_settings(runs: list[RunCurves]) -> list[tuple[str, dict[str, object]]]:
    """The settings whose values are not the same in every run, each with every run's value
    (None where a run has no such setting). Runs whose config cannot be read are left out; a
    different text shows as "corpus"."""
    known = [r for r in runs if r.config]
    keys: list[str] = []
    for r in known:
        keys += [k for k in r.config if k not in keys and k not in SKIPPED_SETTINGS]
    rows = [(k, {r.name: r.config.get(k) for r in known}) for k in keys]
    texts = {r.name: corpus_key(r.config) for r in known}
    if len(set(texts.values())) > 1:
        names = {r.name: (r.config.get("corpus") or {}).get("name") for r in known}
        rows.insert(0, ("corpus", names))
    return [(k, values) for k, values in rows if len({repr(v) for v in values.values()}) > 1]


@dataclass(frozen=True)
class Sample:
    text: str = ""
    error: str = ""                    # why there is no sample (no best.npz yet, …)


def best_sample(data_dir: Path, name: str, prompt: str, length: int, seed: int,
                temperature: float) -> Sample:
    """`length` characters from the run's best.npz after `prompt`, drawn with a fresh RNG of
    `seed`: the same prompt and seed for every run, so the models differ and nothing else."""
    from kafkarnn.inspect.inference import load_for_sampling
    try:
        sampler, _ = load_for_sampling(data_dir, name, best=True)
        text, _ = sampler.generate(prompt, length, np.random.default_rng(seed), temperature)
    except KafkarnnError as e:
        return Sample(error=str(e))
    return Sample(text=text)


@dataclass
class Comparison:
    """Everything the comparison shows."""
    runs: list[RunCurves]
    axis: str = "chars"
    samples: dict[str, Sample] = field(default_factory=dict)
    prompt: str = ""
    seed: int = 0
    temperature: float = 1.0
    baseline: float | None = None      # hook: a baseline's validation loss on the same text
    baseline_name: str = "n-gram"      # (nats/char), drawn as a line and a table row

    @property
    def settings(self) -> list[tuple[str, dict[str, object]]]:
        return differing_settings(self.runs)

    def to_json(self, train: bool = False) -> dict:
        def points(ps):
            return [{"iter": p.iters, "chars": p.chars, "seconds": p.seconds, "loss": p.loss} for p in ps]
        out = []
        for r in self.runs:
            best = r.best
            one = {"name": r.name, "model": r.model, "params": r.n_params,
                   "chars_per_sec": r.chars_per_sec, "problem": r.problem or None,
                   "best_val_loss": best.loss if best else None,
                   "best_at": points([best])[0] if best else None, "val": points(r.val)}
            if train:
                one["train"] = points(r.train)
            sample = self.samples.get(r.name)
            if sample is not None:
                one["sample"] = sample.text if not sample.error else None
                one["sample_error"] = sample.error or None
            out.append(one)
        return {"axis": self.axis, "prompt": self.prompt, "seed": self.seed,
                "temperature": self.temperature, "baseline": self.baseline,
                "baseline_name": self.baseline_name if self.baseline is not None else None,
                "runs": out, "settings": {k: v for k, v in self.settings}}


def text_baseline(data_dir: Path, runs: list[RunCurves]) -> tuple[float | None, str]:
    """The n-gram line of the runs' text when they all share one and its baseline is cached
    (train/baseline.py; never counted here): (nats/char, label), else (None, "n-gram")."""
    from kafkarnn.train import baseline
    keys = {corpus_key(r.config) for r in runs}
    if len(keys) != 1 or None in keys or not runs:
        return None, "n-gram"
    try:
        base = baseline.cached(data_dir, keys.pop(), float(runs[0].config.get("val_fraction", 0.1)))
    except (TypeError, ValueError):
        return None, "n-gram"
    return (base.loss, f"{base.order}-gram") if base is not None else (None, "n-gram")


def compare(data_dir: Path, names: list[str] | None, axis: str = "chars", *, prompt: str = "",
            length: int = 200, seed: int = 0, temperature: float = 1.0,
            samples: bool = True) -> Comparison:
    """The comparison of runs `names` (default: the latest run and the runs on its text)."""
    if axis not in AXES:
        raise KafkarnnError(f"--x must be one of {', '.join(AXES)}, not {axis!r}")
    names = list(dict.fromkeys(names)) if names else default_runs(data_dir)
    runs = [load_run(data_dir, n)[0] for n in names]
    out = Comparison(runs, axis, prompt=prompt, seed=seed, temperature=temperature)
    out.baseline, out.baseline_name = text_baseline(data_dir, runs)
    if samples:
        out.samples = {r.name: best_sample(data_dir, r.name, prompt, length, seed, temperature)
                       for r in runs}
    return out

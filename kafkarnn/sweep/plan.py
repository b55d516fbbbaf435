"""A sweep's plan: the grid of settings, its trials (one ordinary run each), and their checks.

The grid maps a setting (a Config field, `corpus`, `preset`, `max_iters`, `max_seconds`) to
its values; the trials are the product, in the order the settings were given. A trial's run is
named after the sweep and what differs (`NAME-model_lstm-hidden_256`). Every trial is checked
before any starts (`check_plan`), so a value one run would refuse stops the whole sweep at once.
The plan lives in DATA/sweeps/NAME/plan.json (folder.py), owner-only, written atomically.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.folder import MAX_NAME, valid_run_name
from kafkarnn.train.config import PRESETS, Config

CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(Config) if f.name not in ("init", "reduction"))
RUN_KEYS = ("corpus", "preset")
LIMIT_KEYS = ("max_iters", "max_seconds")
KEYS = RUN_KEYS + CONFIG_KEYS + LIMIT_KEYS
KINDS = {f.name: f.type for f in dataclasses.fields(Config)} | {
    "corpus": "str", "preset": "str", "max_iters": "int", "max_seconds": "float"}
MAX_TRIALS = 1000
MAX_SWEEP_NAME = 40          # leaves room in a run's name for what differs


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its run's name, every setting, and those that differ between trials."""
    run: str
    settings: dict
    differs: dict

    @property
    def overrides(self) -> dict:
        """The Config fields given for this trial (the rest come from its preset)."""
        return {k: v for k, v in self.settings.items() if k in CONFIG_KEYS}

    @property
    def max_iters(self) -> int | None:
        return self.settings.get("max_iters")

    @property
    def max_seconds(self) -> float | None:
        return self.settings.get("max_seconds")


@dataclass(frozen=True)
class Plan:
    name: str
    grid: dict                   # setting -> list of values, in the order given

    def trials(self) -> list[Trial]:
        keys = list(self.grid)
        varying = [k for k in keys if len(self.grid[k]) > 1]
        points = [dict(zip(keys, values)) for values in itertools.product(*self.grid.values())]
        named = [(_run_name(self.name, {k: p[k] for k in varying}), p) for p in points]
        if len({n for n, _ in named}) < len(named) or any(len(n) > MAX_NAME for n, _ in named):
            width = len(str(len(points)))              # long or clashing names: number them
            named = [(f"{self.name}-{i + 1:0{width}d}", p) for i, (_, p) in enumerate(named)]
        return [Trial(n, p, {k: p[k] for k in varying}) for n, p in named]

    def to_json(self) -> bytes:
        return (json.dumps({"name": self.name, "grid": self.grid, "format": 1}, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Plan":
        try:
            record = json.loads(data)
            return make_plan(record["name"], record["grid"])
        except (ValueError, KeyError, TypeError, KafkarnnError) as e:
            raise KafkarnnError(f"sweep plan {where} is damaged ({e})") from None


def key_of(option: str) -> str:
    """`--seq-len`, `seq-len` or `seq_len` -> `seq_len`; anything that is not a setting is refused."""
    key = option.lstrip("-").replace("-", "_")
    if key not in KEYS:
        raise KafkarnnError(f"a sweep cannot vary {option!r}: choose from "
                            f"{', '.join(k.replace('_', '-') for k in KEYS)}")
    return key


def parse_value(key: str, raw):
    """One value of `key`, from the command line's text or a grid file's JSON/TOML value."""
    kind = KINDS[key]
    flag = "--" + key.replace("_", "-")
    if kind == "str":
        if not isinstance(raw, str) or not raw.strip():
            raise KafkarnnError(f"{flag} needs a name, not {raw!r}")
        return raw.strip()
    try:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError
        value = int(raw) if kind == "int" else float(raw)
        if kind == "int" and isinstance(raw, float) and raw != value:
            raise ValueError
    except ValueError:
        raise KafkarnnError(f"{flag}: not a {'whole ' if kind == 'int' else ''}number: {raw!r}") from None
    if not math.isfinite(value):
        raise KafkarnnError(f"{flag}: not a finite number: {raw!r}")
    if key in LIMIT_KEYS and value <= 0:
        raise KafkarnnError(f"{flag} must be positive, not {raw}")
    return value


def parse_list(key: str, text: str) -> list:
    """`rnn,lstm` -> ["rnn", "lstm"]; an empty item is refused (it would be a silent default)."""
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise KafkarnnError(f"--{key.replace('_', '-')} {text!r} has an empty item")
    return [parse_value(key, item) for item in items]


def read_grid_file(path: str) -> dict:
    """A grid from a JSON (or, on Python ≥ 3.11, TOML) file: {setting: value or [values]}."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as e:
        raise KafkarnnError(f"cannot read grid file {path} ({e.strerror or e})") from None
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:
                raise KafkarnnError("a TOML grid file needs Python 3.11 or later: use JSON") from None
            record = tomllib.loads(data.decode("utf-8"))
        else:
            record = json.loads(data)
    except ValueError as e:                     # JSON, TOML and UTF-8 errors are all ValueErrors
        raise KafkarnnError(f"grid file {path} is not valid {p.suffix.lstrip('.') or 'JSON'} "
                            f"({' '.join(str(e).split())})") from None
    if not isinstance(record, dict):
        raise KafkarnnError(f"grid file {path} must hold a table of settings, not {type(record).__name__}")
    grid = {}
    for option, values in record.items():
        key = key_of(option)
        values = values if isinstance(values, list) else [values]
        if not values:
            raise KafkarnnError(f"grid file {path}: {option} has no values")
        grid[key] = [parse_value(key, v) for v in values]
    return grid


def make_plan(name: str, grid: dict) -> Plan:
    """A plan, with the grid's own checks: a name, some setting, at most MAX_TRIALS points, no
    repeated value, and a limit for every trial (a sweep without one would never end)."""
    valid_run_name(name)
    if len(name) > MAX_SWEEP_NAME:
        raise KafkarnnError(f"sweep name {name!r} is longer than {MAX_SWEEP_NAME} characters")
    grid = {key_of(k): [parse_value(key_of(k), v) for v in vs] for k, vs in grid.items()}
    if not grid or all(len(vs) == 0 for vs in grid.values()):
        raise KafkarnnError("the sweep's grid is empty: give settings with comma lists "
                            "(e.g. --model rnn,lstm) or --grid FILE")
    for key, values in grid.items():
        if not values:
            raise KafkarnnError(f"the sweep's grid gives --{key.replace('_', '-')} no values")
        if len(set(map(repr, values))) < len(values):
            raise KafkarnnError(f"--{key.replace('_', '-')} lists a value twice: {values}")
    if not any(k in grid for k in LIMIT_KEYS):
        raise KafkarnnError("a sweep needs a limit for its trials: --max-iters N or --max-seconds S")
    size = math.prod(len(vs) for vs in grid.values())
    if size > MAX_TRIALS:
        raise KafkarnnError(f"the grid has {size:,} points; a sweep runs at most {MAX_TRIALS:,}")
    if "preset" in grid:
        for preset in grid["preset"]:
            if preset not in PRESETS:
                raise KafkarnnError(f"unknown preset {preset!r}: choose from {', '.join(PRESETS)}")
    if "corpus" in grid:                       # a path is kept absolute: the coordinator resumes anywhere
        grid["corpus"] = [_corpus_spec(c) for c in grid["corpus"]]
    return Plan(name, grid)


def _corpus_spec(spec: str) -> str:
    from kafkarnn.train.corpus import METAMORPHOSIS_SPEC, SAMPLE_SPEC
    if spec in (METAMORPHOSIS_SPEC, SAMPLE_SPEC):
        return spec
    return str(Path(spec).expanduser().resolve())


def _run_name(sweep: str, differs: dict) -> str:
    """NAME-model_lstm-hidden_256: the sweep, then each differing setting and its value."""
    parts = [sweep]
    for key, value in differs.items():
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        if key == "corpus":
            shown = Path(value).stem
        shown = "".join(c if c.isalnum() or c in "._" else "-" for c in shown) or "x"
        parts.append(f"{key.replace('_', '-')}_{shown}")
    return "-".join(parts)


def check_trials(plan: Plan, data_dir: Path, ours: bool, log=None) -> None:
    """Refuse the sweep before any trial starts if one of them would be refused: its preset and
    options (train/config.check, with the default preset fitted to its text), its text's length,
    and a run of its name that this sweep did not make (`ours`: the plan on disk is this one)."""
    from kafkarnn.runs.folder import Run
    from kafkarnn.train.corpus import load_corpus
    from kafkarnn.train.cadence import Limits
    from kafkarnn.train.launch import new_config
    corpora = {}
    for trial in plan.trials():
        spec = trial.settings.get("corpus")
        try:
            if spec not in corpora:
                corpora[spec] = load_corpus(spec, data_dir=data_dir, log=log)
            cfg = new_config(trial.settings.get("preset"), trial.overrides, corpora[spec],
                             limits=Limits(trial.max_iters, trial.max_seconds))
            train, _ = corpora[spec].split(cfg.val_fraction)
            if len(train) // cfg.batch < cfg.seq_len + 2:
                raise KafkarnnError(f"the training text ({len(train):,} characters) is too short "
                                    f"for --batch {cfg.batch} --seq-len {cfg.seq_len}")
        except KafkarnnError as e:
            raise KafkarnnError(f"trial {trial.run}: {e}; nothing was started") from None
        if not ours and Run(data_dir, trial.run).path.exists():
            raise KafkarnnError(f"a run named {trial.run} exists already and is not this sweep's: "
                                "choose another sweep name")

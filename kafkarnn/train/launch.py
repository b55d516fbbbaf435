"""Opening a run for training: corpus, run folder, lock, configuration (resume checks: matching.py).

`TrainOptions` is what a front end asks for (the CLI builds it from its arguments); `open_run()`
turns it into a `Launch`: a ready trainer (fresh, or restored exactly from the run's checkpoint)
that holds the run's lock, taking the run over from a monitor or background trainer when asked
(handover.py). Anything wrong raises KafkarnnError with one line that says what is wrong and
what to do. Nothing is written into an existing run, and no trainer is asked to stop, before
every check has passed. The session (session.py) then trains it, and life.py sees it through.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafkarnn import __version__
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.copy_index import Checker, cache_path
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.train import baseline as ngram_baseline
from kafkarnn.train.baseline import Baseline
from kafkarnn.engine.streams import groups_for
from kafkarnn.train.config import FITTED, PRESETS, Config, check, fit_to_text, preset_with
from kafkarnn.train.corpus import METAMORPHOSIS_SPEC, SAMPLE_SPEC, Corpus, load_corpus
from kafkarnn.train.matching import check_resume, corpus_of, stored_spec
from kafkarnn.runs.handover import lock_run
from kafkarnn.runs.folder import Run, next_free_name, valid_run_name
from kafkarnn.runs.lock import RunLock
from kafkarnn.seam import Role
from kafkarnn.train.cadence import Limits
from kafkarnn.train.schedule import cooldown_end, describe as describe_schedule, for_limits
from kafkarnn.train.thread_policy import fixed_count
from kafkarnn.train.threads import usable_cores
from kafkarnn.train import teacher as teacher_cache
from kafkarnn.train.trainer import Trainer


@dataclass(frozen=True)
class TrainOptions:
    """One `kafkarnn train` invocation. Model options (`overrides`) are stored with the run;
    limits and intervals belong to this invocation (and travel with a hand-off)."""
    data_dir: Path
    corpus: str | None = None            # a path, "metamorphosis" (None) or "sample-texts"
    encoding: str | None = None
    preset: str | None = None
    run: str | None = None
    new: bool = False
    overrides: dict = field(default_factory=dict)   # Config fields given on the command line
    max_iters: int | None = None
    max_seconds: float | None = None
    cooldown: int | None = None          # decay to lr_min over this many steps, then stop
    save_every: float = 60.0
    eval_every: float = 30.0
    threads: int | None = None
    mouse: bool = True
    copy_min: int = 20                   # samples mark stretches this long from the training text

    @property
    def limits(self) -> Limits:
        return Limits(self.max_iters, self.max_seconds)


@dataclass
class Launch:
    run: Run
    lock: RunLock
    trainer: Trainer
    corpus: Corpus
    resumed: bool
    run_meta: dict                       # stored with every checkpoint
    history: list[float] = field(default_factory=list)
    history_iters: list[int] = field(default_factory=list)          # the iteration of each point
    val_history: list[tuple[int, float]] = field(default_factory=list)
    best_val_loss: float | None = None
    elapsed_s: float = 0.0
    baseline: Baseline | None = None     # the text's n-gram baseline, if cached or quick to count

    @property
    def recovered(self) -> str:
        """A note when the previous trainer ended without letting go of the run (killed)."""
        was = self.lock.recovered
        if was is None or was.pid == os.getpid():
            return ""
        role = f" ({was.role.value})" if was.role else ""
        return (f"recovered: the previous trainer of {self.run.name}, process {was.pid}{role}, "
                f"ended without saving its last steps; resuming from the checkpoint at iteration "
                f"{self.trainer.iteration:,}")


def open_run(opts: TrainOptions, role: Role, *, take_over: bool = False,
             after_pid: int | None = None, log=None) -> Launch:
    """`prepare()` for one invocation's options, with the n-gram baseline if it costs no wait."""
    launch = prepare(data_dir=opts.data_dir, corpus_spec=opts.corpus, encoding=opts.encoding,
                     run_name=opts.run, new=opts.new, preset=opts.preset, overrides=dict(opts.overrides),
                     log=log, role=role, take_over=take_over, after_pid=after_pid,
                     cores=fixed_count(opts.threads), limits=opts.limits)
    launch.baseline = ngram_baseline.quick(opts.data_dir, launch.corpus, launch.trainer.cfg.val_fraction)
    return launch


def copy_checker(launch: Launch, min_len: int) -> Checker:
    """The copy check of the run's training text; its index is read or built in the background."""
    train = launch.trainer.train
    path = cache_path(launch.run.data_dir, launch.corpus.fingerprint, len(train))
    return Checker(train, launch.corpus.vocab, path, min_len)


def describe_start(launch: Launch, cooldown: tuple[int, int] | None = None) -> str:
    """One line: which run, resumed or new, on what text, with what model, where (and the
    `cooldown` this invocation is about to begin, Life.cooldown)."""
    t, c = launch.trainer, launch.corpus
    how = f"resuming at iteration {t.iteration:,}" if launch.resumed else "new run"
    fitted = ""
    if launch.run_meta["config"].get("preset") in FITTED or t.cfg.schedule != "fixed":
        schedule = describe_schedule(t.cfg)
        if cooldown:
            schedule = f"cooling down from iteration {cooldown[0]:,} over {cooldown[1]:,} steps"
        elif cooldown_end(t.cfg, t.decay, t.cooling):
            schedule = f"cooling down since iteration {t.decay[0]:,} over {t.decay[1]:,} steps"
        weights = "" if t.cfg.weights() == "as trained" else f", validating the {t.cfg.weights()} weights"
        name, k = t.shown_dropout()
        rate = (t.cfg.dropout, t.cfg.weight_drop)[k]
        dropout = f"{name} {rate:g}"
        if t.rising_dropout():
            dropout = f"{name} rising to {rate:g} by step {t.cfg.dropout_ramp:,}"
        if k:                                   # DropConnect alone (a big text's default)
            dropout += ", no dropout"
        fitted = f", {schedule}, {dropout}{weights}"
    if t.teacher is not None:
        fitted += ", " + teacher_cache.described(t.cfg)
    if t.model.cells[0].recurrent_key is None:            # the preset's DropConnect is off
        fitted += f", no DropConnect (a {t.cfg.model} has no recurrent matrix)"
    return (f"run {launch.run.name} ({how}) · corpus {c.name}: {len(c.data):,} characters, "
            f"{len(c.vocab)} symbols · {t.cfg.describe()}, {t.model.n_params():,} parameters"
            f"{fitted}{_baseline_note(launch)} · {launch.run.path}")


def _baseline_note(launch: Launch) -> str:
    if launch.baseline is not None:
        return f" · n-gram baseline {launch.baseline.order}-gram {launch.baseline.loss:.4f} nats/char"
    return " · n-gram baseline: counting in the background" if len(launch.trainer.val) > 1 else ""


def default_run_name(corpus_name: str, model: str) -> str:
    """`<corpus>-<model>`, e.g. "metamorphosis-lstm" or "porter-rnn" for porter.txt."""
    corpus_name = Path(corpus_name).stem or corpus_name
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in corpus_name).strip(".-") or "corpus"
    return f"{safe[:50]}-{model}"


def prepare(*, data_dir: Path, corpus_spec: str | None, encoding: str | None, run_name: str | None,
            new: bool, preset: str | None, overrides: dict, log=None, role: Role = Role.HEADLESS,
            take_over: bool = False, after_pid: int | None = None, cores: int | None = None,
            limits: Limits = Limits()) -> Launch:
    """Load the corpus, pick the run, check it matches, take its lock (see handover.lock_run
    for `take_over` and `after_pid`), and build (or restore) the trainer. cores: how many a new
    run's stream groups are made for (the thread count the user fixed; None: this machine's);
    limits: this invocation's, which a new run's schedule may be fitted to (schedule.for_limits)."""
    if preset is not None and preset not in PRESETS:
        raise KafkarnnError(f"unknown preset {preset!r}: choose from {', '.join(PRESETS)}")
    if run_name is not None:
        valid_run_name(run_name)
    preset_with(preset, overrides)               # bad values fail before any download
    if run_name is not None and not new:
        corpus_spec, encoding = _named_corpus(Run(data_dir, run_name), corpus_spec, encoding)
    corpus = load_corpus(corpus_spec, encoding=encoding or "utf-8", data_dir=data_dir, log=log)

    base_cfg = PRESETS[preset or "default"]
    model = overrides.get("model", base_cfg.model)
    if run_name is None:
        run_name = default_run_name(corpus.name, model)
    if new:
        run_name = next_free_name(data_dir, run_name)
    run = Run(data_dir, run_name)
    fresh = not run.exists()
    if fresh and (run.checkpoint_path.exists() or run.best_path.exists()):
        raise KafkarnnError(f"run folder {run.path} has checkpoints but no config.json; "
                            "it is left untouched: pass --new or --run OTHER to start elsewhere")
    if fresh:
        cfg = check(new_config(preset, overrides, corpus, cores, limits))
    else:                                        # refuse a mismatch before asking anyone to stop
        check_resume(run, run.read_config(), corpus, preset, overrides)
    try:
        run.create()
        lock = lock_run(run, role, take_over=take_over, after_pid=after_pid)
    except OSError as e:                         # e.g. a read-only or full data folder
        raise KafkarnnError(f"cannot open run folder {run.path} ({e.strerror or e})") from None
    try:
        if not run.exists():                     # (whoever held it may have created it meanwhile)
            return _start(run, lock, cfg, corpus, preset or "default", corpus_spec, encoding, log)
        return _resume(run, lock, corpus, preset, overrides, log)
    except BaseException:
        lock.unlock()
        if fresh and not run.exists():          # leave no empty folder behind a refused start
            run.lock_path.unlink(missing_ok=True)
            try:
                run.path.rmdir()
            except OSError:
                pass
        raise


def _named_corpus(run: Run, spec: str | None, encoding: str | None) -> tuple[str | None, str | None]:
    """The corpus and encoding to load for an existing run: those given, else its own (`--run
    NAME` alone trains on the run's corpus)."""
    if not run.exists():
        return spec, encoding
    stored = corpus_of(run, run.read_config())
    return (stored_spec(stored) if spec is None else spec,
            stored.get("encoding") if encoding is None else encoding)


def new_config(preset: str | None, overrides: dict, corpus: Corpus, cores: int | None = None,
               limits: Limits = Limits()) -> Config:
    """A new run's configuration: the preset, the user's options, for a tuned preset (the
    default, the min-cells') the schedule and regularisation fitted to the text's size
    (config.fit_to_text) and, on a big text, the schedule to the `limits` it starts with
    (schedule.for_limits), and its stream groups for `cores` cores (engine/streams.py; None:
    this machine's)."""
    cfg = preset_with(preset, overrides)
    big_text = False
    if (preset or "default") in FITTED:
        train, _ = corpus.split(cfg.val_fraction)
        cfg = fit_to_text(cfg, len(train), given=overrides)
        big_text = cfg.decay_iters > PRESETS[preset or "default"].decay_iters   # 4 passes > its floor
    cfg = for_limits(cfg, overrides, limits.max_iters, limits.max_seconds, big_text)
    return cfg.replace(groups=groups_for(cfg.batch, cfg.hidden, cores or usable_cores()))


def _corpus_record(corpus: Corpus, spec: str | None, encoding: str | None) -> dict:
    if spec is None:                             # the default: Metamorphosis, or offline the samples
        spec = SAMPLE_SPEC if corpus.name == SAMPLE_SPEC else METAMORPHOSIS_SPEC
    if spec not in (METAMORPHOSIS_SPEC, SAMPLE_SPEC):
        spec = str(Path(spec).expanduser().resolve())
    return {"name": corpus.name, "spec": spec, "source": corpus.source, "encoding": encoding,
            "fingerprint": corpus.fingerprint, "vocab": corpus.vocab.chars}


def _start(run, lock, cfg, corpus, preset, spec, encoding, log) -> Launch:
    trainer = _trainer(run, cfg, corpus, log)                # may refuse a too-short text
    record = dict(cfg.to_dict(), preset=preset, corpus=_corpus_record(corpus, spec, encoding),
                  created=time.strftime("%Y-%m-%dT%H:%M:%S"), kafkarnn_version=__version__)
    try:
        run.write_config(record)
    except OSError as e:
        raise KafkarnnError(f"cannot write {run.config_path} ({e.strerror or e})") from None
    return Launch(run, lock, trainer, corpus, False, _run_meta(record))


def _trainer(run, cfg, corpus, log=None) -> Trainer:
    train, val = corpus.split(cfg.val_fraction)
    cache = teacher_cache.cache_path(run.data_dir, corpus.fingerprint, len(train), cfg.teacher_order,
                                     cfg.teacher_folds)
    if cfg.teacher > 0 and log is not None and (note := teacher_cache.counting_note(
            cache, len(train), len(corpus.vocab), cfg.teacher_order, cfg.teacher_folds)):
        log(note)
    return Trainer(cfg, corpus.vocab, train, val, teacher_cache=cache)


def _run_meta(record: dict) -> dict:
    return {"config": {k: v for k, v in record.items() if k not in ("corpus", "created")},
            "vocab": record["corpus"]["vocab"], "corpus_name": record["corpus"]["name"],
            "fingerprint": record["corpus"]["fingerprint"], "run_format": 1}


def _resume(run, lock, corpus, preset, overrides, log) -> Launch:
    record = run.read_config()
    cfg = check_resume(run, record, corpus, preset, overrides)
    trainer = _trainer(run, cfg, corpus, log)
    launch = Launch(run, lock, trainer, corpus, False, _run_meta(record))
    if run.checkpoint_path.exists():
        arrays, meta = load_checkpoint(run.checkpoint_path)
        trainer.restore(arrays, meta, str(run.checkpoint_path))
        launch.resumed = True
        elapsed, best = meta.get("elapsed_s"), meta.get("best_val_loss")
        if not (_finite(elapsed) and elapsed >= 0 and (best is None or _finite(best))):
            raise KafkarnnError(f"checkpoint {run.checkpoint_path} has damaged metadata "
                                f"(elapsed_s {elapsed!r}, best_val_loss {best!r})")
        launch.elapsed_s = float(elapsed)
        launch.best_val_loss = None if best is None else float(best)
    # the curve and best validation loss as far as the checkpoint got (later lines were lost work)
    for rec in run.read_metrics():
        if not isinstance(rec.get("iter"), int) or rec["iter"] > trainer.iteration:
            continue
        if isinstance(rec.get("loss"), (int, float)) and math.isfinite(rec["loss"]):
            launch.history.append(float(rec["loss"]))
            launch.history_iters.append(rec["iter"])
        v = rec.get("val_loss")
        if isinstance(v, (int, float)) and math.isfinite(v):
            launch.val_history.append((rec["iter"], float(v)))
            if launch.best_val_loss is None or v < launch.best_val_loss:
                launch.best_val_loss = float(v)
    return launch


def _finite(x) -> bool:
    return type(x) in (int, float) and math.isfinite(x)

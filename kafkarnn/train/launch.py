"""Opening a run for training: corpus, run folder, lock, configuration, and the resume checks.

`prepare()` is what both front ends call before training. It either returns a ready trainer
(fresh, or restored exactly from the run's checkpoint) or raises KafkarnnError with one line
that says what is wrong and what to do. It never writes into an existing run before every
check has passed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafkarnn import __version__
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.checkpoint import load_checkpoint
from kafkarnn.train.config import PRESETS, Config, check
from kafkarnn.train.corpus import Corpus, load_corpus
from kafkarnn.train.runs import Run, RunLock, next_free_name, valid_run_name
from kafkarnn.train.trainer import Trainer


@dataclass
class Launch:
    run: Run
    lock: RunLock
    trainer: Trainer
    corpus: Corpus
    resumed: bool
    run_meta: dict                       # stored with every checkpoint
    history: list[float] = field(default_factory=list)
    best_val_loss: float | None = None
    elapsed_s: float = 0.0


def default_run_name(corpus_name: str, model: str) -> str:
    """`<corpus>-<model>`, e.g. "metamorphosis-lstm" or "porter-rnn" for porter.txt."""
    corpus_name = Path(corpus_name).stem or corpus_name
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in corpus_name).strip(".-") or "corpus"
    return f"{safe[:50]}-{model}"


def prepare(*, data_dir: Path, corpus_spec: str | None, encoding: str | None, run_name: str | None,
            new: bool, preset: str | None, overrides: dict, log=None) -> Launch:
    """Load the corpus, pick the run, check it matches, and build (or restore) the trainer."""
    if preset is not None and preset not in PRESETS:
        raise KafkarnnError(f"unknown preset {preset!r}: choose from {', '.join(PRESETS)}")
    if run_name is not None:
        valid_run_name(run_name)
    stored = None
    if run_name is not None and not new and Run(data_dir, run_name).exists():
        named = Run(data_dir, run_name)
        stored = _corpus_of(named, named.read_config())
        if corpus_spec is None:                  # `--run NAME` alone: train on the run's corpus
            corpus_spec = stored.get("spec")
        if encoding is None:
            encoding = stored.get("encoding")
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
    try:
        run.create()
        lock = run.lock()
    except OSError as e:                         # e.g. a read-only or full data folder
        raise KafkarnnError(f"cannot open run folder {run.path} ({e.strerror or e})") from None
    try:
        if fresh:
            cfg = check(base_cfg.replace(**overrides))
            return _start(run, lock, cfg, corpus, preset or "default", corpus_spec, encoding)
        return _resume(run, lock, corpus, preset, overrides)
    except BaseException:
        lock.unlock()
        if fresh and not run.exists():          # leave no empty folder behind a refused start
            run.lock_path.unlink(missing_ok=True)
            try:
                run.path.rmdir()
            except OSError:
                pass
        raise


def _corpus_record(corpus: Corpus, spec: str | None, encoding: str | None) -> dict:
    if spec is not None and spec not in ("metamorphosis", "sample-texts"):
        spec = str(Path(spec).expanduser().resolve())
    return {"name": corpus.name, "spec": spec, "source": corpus.source, "encoding": encoding,
            "fingerprint": corpus.fingerprint, "vocab": corpus.vocab.chars}


def _start(run, lock, cfg, corpus, preset, spec, encoding) -> Launch:
    train, val = corpus.split(cfg.val_fraction)
    trainer = Trainer(cfg, corpus.vocab, train, val)        # may refuse a too-short text
    record = dict(cfg.to_dict(), preset=preset, corpus=_corpus_record(corpus, spec, encoding),
                  created=time.strftime("%Y-%m-%dT%H:%M:%S"), kafkarnn_version=__version__)
    try:
        run.write_config(record)
    except OSError as e:
        raise KafkarnnError(f"cannot write {run.config_path} ({e.strerror or e})") from None
    return Launch(run, lock, trainer, corpus, False, _run_meta(record))


def _run_meta(record: dict) -> dict:
    return {"config": {k: v for k, v in record.items() if k not in ("corpus", "created")},
            "vocab": record["corpus"]["vocab"], "corpus_name": record["corpus"]["name"],
            "fingerprint": record["corpus"]["fingerprint"], "run_format": 1}


def _corpus_of(run: Run, record: dict) -> dict:
    """The run's corpus record, checked: spec and encoding are strings or null."""
    stored = record.get("corpus")
    if not isinstance(stored, dict) or not all(isinstance(stored.get(k), (str, type(None)))
                                               for k in ("spec", "encoding", "name")):
        raise KafkarnnError(f"config {run.config_path} is corrupt (its corpus record is damaged)")
    return stored


def _resume(run, lock, corpus, preset, overrides) -> Launch:
    record = run.read_config()
    try:
        cfg = check(Config.from_dict(record))
    except (TypeError, ValueError) as e:         # e.g. "lr": null, or a key the dataclass lacks
        raise KafkarnnError(f"config {run.config_path} is corrupt ({e})") from None
    stored_preset = record.get("preset")
    if preset is not None and stored_preset is not None and preset != stored_preset:
        raise KafkarnnError(f"run {run.name} was created with --preset {stored_preset}; "
                            f"pass --new to start a fresh run with --preset {preset}")
    for key, value in overrides.items():
        if getattr(cfg, key) != value:
            opt = "--" + key.replace("_", "-")
            raise KafkarnnError(f"run {run.name} was created with {opt} {getattr(cfg, key)}; "
                                f"pass --new to start a fresh run with {opt} {value}, "
                                f"or leave {opt} out to continue it")
    _check_corpus(run, _corpus_of(run, record), corpus)
    train, val = corpus.split(cfg.val_fraction)
    trainer = Trainer(cfg, corpus.vocab, train, val)
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
        v = rec.get("val_loss")
        if isinstance(v, (int, float)) and math.isfinite(v):
            if launch.best_val_loss is None or v < launch.best_val_loss:
                launch.best_val_loss = float(v)
    return launch


def _finite(x) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def _check_corpus(run: Run, stored: dict, corpus: Corpus) -> None:
    fp = stored.get("fingerprint")
    fp = fp if isinstance(fp, dict) else {}
    vocab = stored.get("vocab") if isinstance(stored.get("vocab"), str) else ""
    if fp == corpus.fingerprint and vocab == corpus.vocab.chars:
        return
    was = (f"{stored.get('name', '?')} ({fp.get('length', '?')} characters, "
           f"sha256 {str(fp.get('sha256', '?'))[:12]})")
    now = (f"{corpus.name} ({corpus.fingerprint['length']} characters, "
           f"sha256 {corpus.fingerprint['sha256'][:12]})")
    extra = ""
    new_chars = [c for c in corpus.vocab.chars if c not in vocab]
    if new_chars:
        extra = f"; its vocabulary has {len(new_chars)} characters the run's lacks"
    where = stored.get("spec") or stored.get("source") or "its original corpus"
    raise KafkarnnError(f"run {run.name} was trained on {was}, but this corpus is {now}{extra}: "
                        f"continue it with --corpus {where}, or pass --new to start a new run")

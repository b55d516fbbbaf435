"""A run's stored record read back, and matched against an invocation: may it continue the run?

The stored configuration must parse and agree with every model option given again, the preset
with the one given, and the corpus be the very text (fingerprint and vocabulary) the run was
trained on. Each mismatch is a KafkarnnError that says what differs and what to pass instead.
"""

from __future__ import annotations

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.folder import Run
from kafkarnn.train.config import Config, check
from kafkarnn.train import gutenberg
from kafkarnn.train.corpus import METAMORPHOSIS_SPEC, SAMPLE_SPEC, Corpus, load_corpus


def corpus_of(run: Run, record: dict) -> dict:
    """The run's corpus record, checked: spec and encoding are strings or null."""
    stored = record.get("corpus")
    if not isinstance(stored, dict) or not all(isinstance(stored.get(k), (str, type(None)))
                                               for k in ("spec", "encoding", "name")):
        raise KafkarnnError(f"config {run.config_path} is corrupt (its corpus record is damaged)")
    return stored


def stored_spec(stored: dict) -> str | None:
    """The corpus a run was trained on, as `load_corpus` takes it (runs of older versions stored
    no spec for the default corpus, whose offline fallback is the sample texts)."""
    spec = stored.get("spec")
    if spec is None and stored.get("name") == SAMPLE_SPEC:
        return SAMPLE_SPEC
    return spec


def run_corpus(run: Run, log=None, download: bool = True) -> tuple[Corpus, Config]:
    """The corpus a run's config.json names, checked to be the very text it was trained on, and
    the run's configuration (KafkarnnError if that corpus is gone or changed; without `download`,
    also if it is Metamorphosis and not in the data folder's cache)."""
    record = run.read_config()
    stored = corpus_of(run, record)
    spec = stored_spec(stored)
    if not download and spec in (None, METAMORPHOSIS_SPEC) and \
            not gutenberg.cache_path(run.data_dir).is_file():
        raise KafkarnnError(f"Metamorphosis is not in {run.data_dir}")
    corpus = load_corpus(spec, encoding=stored.get("encoding") or "utf-8",
                         data_dir=run.data_dir, log=log)
    return corpus, check_resume(run, record, corpus, None, {})


def validation_text(run: Run, log=None) -> str:
    """The run's validation text (KafkarnnError if its corpus is gone, or holds none)."""
    corpus, cfg = run_corpus(run, log)
    _, val = corpus.split(cfg.val_fraction)
    if len(val) < 2:
        raise KafkarnnError(f"run {run.name} holds out no validation text: pass --text FILE")
    return corpus.vocab.decode(val)


def check_resume(run, record, corpus, preset, overrides) -> Config:
    """The stored configuration, if this invocation may continue it: else KafkarnnError."""
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
    check_corpus(run, corpus_of(run, record), corpus)
    return cfg


def check_corpus(run: Run, stored: dict, corpus: Corpus) -> None:
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

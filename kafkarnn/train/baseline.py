"""The n-gram baseline of a text: what counting gets on the validation split, computed once and cached.

For a corpus and a validation fraction, `compute()` fits Kneser-Ney n-grams (engine/ngram.py) of
every order on the training split only, scores each on the validation split, and picks the best
order there. Validation scores the very characters the network's periodic validation predicts
(scoring.validation_streams: a big split's fixed subset, each window read from its start), so
the line and the validation losses compare. A big text's training split is sampled so that the
figure costs seconds, not minutes: at most TRAIN_SAMPLE characters, as SAMPLE_BLOCKS evenly
spaced blocks (`Baseline.sampled` says so).

The result is cached in the data folder, `DATA_DIR/baselines/<sha256>-<val fraction>.json`, keyed
by the corpus fingerprint (the hash of its vocabulary and ids, as config.json records it), written
atomically and owner-only. `get()` reads the cache or computes and stores; `in_background()` does
that in a thread and hands the result to a callback, so a big text never delays training.

For shading a text by where the network beats counting, `surprise()` (a saved run's corpus) and
`Tables` (a live session's training split, counted once) give the nats of each character under
the chosen order.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kafkarnn.engine.ngram import MAX_ORDER, NGram
from kafkarnn.engine.vocab import Vocab
from kafkarnn.runs.checkpoint import PRIVATE_DIR, atomic_write
from kafkarnn.train.corpus import Corpus
from kafkarnn.train.scoring import validation_streams

FORMAT = 1
TRAIN_SAMPLE = 2_000_000     # training characters counted at most (≈ 4 s, ≈ 300 MB on one core)
SAMPLE_BLOCKS = 16           # … as this many evenly spaced blocks of the training split
QUICK_CHARS = 300_000        # a training split up to this size is counted before training starts


@dataclass(frozen=True)
class Baseline:
    """Per-order validation loss of the n-gram models of one text, and the order validation picks."""
    nats: tuple[float, ...]      # nats per character of orders 1 … len(nats)
    order: int                   # the best order on validation (argmin of nats)
    train_chars: int             # characters counted
    val_chars: int               # characters scored
    sampled: bool                # True when the text was bigger than the samples above
    seconds: float               # how long counting and scoring took

    @property
    def loss(self) -> float:
        """Nats per character of the chosen order."""
        return self.nats[self.order - 1]

    @property
    def label(self) -> str:
        """E.g. "6-gram 1.71": what the loss chart writes beside its line."""
        return f"{self.order}-gram {self.loss:.2f}"

    def to_json(self) -> dict:
        rows = [{"order": n, "nats_per_char": v, "bits_per_char": v / math.log(2)}
                for n, v in enumerate(self.nats, start=1)]
        out = dict(asdict(self), orders=rows, best_order=self.order, nats_per_char=self.loss,
                   bits_per_char=self.loss / math.log(2))
        del out["nats"], out["order"]                    # (in `orders` and `best_order`)
        return out


def sample_train(train: np.ndarray) -> np.ndarray:
    """The training text as counted: all of it, or TRAIN_SAMPLE characters in evenly spaced blocks."""
    if len(train) <= TRAIN_SAMPLE:
        return train
    block = TRAIN_SAMPLE // SAMPLE_BLOCKS
    starts = np.linspace(0, len(train) - block, SAMPLE_BLOCKS).astype(np.int64)
    return np.concatenate([train[s:s + block] for s in starts])


def fit(corpus: Corpus, val_fraction: float, max_order: int = MAX_ORDER) -> NGram:
    """The n-gram tables of the corpus's (sampled) training split."""
    train, _ = corpus.split(val_fraction)
    return NGram(sample_train(train), len(corpus.vocab), max_order)


def surprise(data_dir: Path, corpus: Corpus, val_fraction: float,
             ids: np.ndarray) -> tuple[Baseline, np.ndarray] | None:
    """The baseline, and the nats of each character of `ids` under its chosen order (for shading
    a text by where the network beats counting); None when the text has no baseline."""
    base = get(data_dir, corpus, val_fraction)
    if base is None:
        return None
    return base, fit(corpus, val_fraction, base.order).nll(ids, base.order)


class Tables:
    """The n-gram tables of a training split, counted once when first asked (from any thread):
    what a live session shades a text with."""

    def __init__(self, train: np.ndarray, vocab: Vocab):
        self.train, self.vocab = train, vocab
        self.model: NGram | None = None
        self.known: tuple[int, float] | None = None     # (order, nats) once the baseline is counted
        self._lock = threading.Lock()

    def surprise(self, text: str) -> np.ndarray | None:
        """Nats of each character of `text` under the baseline's order (ask from a worker); None
        before the baseline is known."""
        return None if self.known is None else self.of_text(text, self.known[0])

    def of_text(self, text: str, order: int) -> np.ndarray | None:
        """Nats of each character of `text` under `order` (slow the first time on a big text);
        None for a text with characters outside the vocabulary."""
        try:
            ids = self.vocab.encode(text)
        except KeyError:
            return None
        with self._lock:                      # two askers count once
            if self.model is None or self.model.max_order < order:
                self.model = NGram(sample_train(self.train), len(self.vocab), order)
        return self.model.nll(ids, order)


def compute(corpus: Corpus, val_fraction: float) -> Baseline | None:
    """Fit on the training split, score every order on validation; None without a validation split."""
    started = time.perf_counter()
    train, val = corpus.split(val_fraction)
    if len(val) < 2 or len(train) < 2:
        return None
    counted = sample_train(train)
    model = NGram(counted, len(corpus.vocab))
    # the very characters periodic validation predicts, each window read from its start
    starts, L = validation_streams(len(val))
    windows = val[starts[:, None] + np.arange(L + 1)]                     # (K, L + 1)
    nats = tuple(float(v) for v in model.nll_by_order(windows)[:, :, 1:].mean(axis=(1, 2)))
    order = int(np.argmin(nats)) + 1                  # the order is chosen on validation
    sampled = len(counted) < len(train)
    return Baseline(nats, order, len(counted), len(starts) * L, sampled, time.perf_counter() - started)


# -- the cache ------------------------------------------------------------------------------------

def cache_path(data_dir: Path, sha256: str, val_fraction: float) -> Path:
    return Path(data_dir) / "baselines" / f"{sha256}-{val_fraction:g}.json"


def cached(data_dir: Path, sha256: str, val_fraction: float) -> Baseline | None:
    """The stored baseline of a text (by its fingerprint's sha256), or None if none is stored or
    the file is damaged (it is then computed again)."""
    try:
        record = json.loads(cache_path(data_dir, sha256, val_fraction).read_bytes())
        if record.get("format") != FORMAT or record.get("sha256") != sha256:
            return None
        b = record["baseline"]
        nats = tuple(float(v) for v in b["nats"])
        base = Baseline(nats, int(b["order"]), int(b["train_chars"]), int(b["val_chars"]),
                        bool(b["sampled"]), float(b["seconds"]))
        if not (1 <= base.order <= len(nats) and all(math.isfinite(v) for v in nats)):
            return None
        return base
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def store(data_dir: Path, sha256: str, val_fraction: float, base: Baseline) -> None:
    path = cache_path(data_dir, sha256, val_fraction)
    for folder in (Path(data_dir), path.parent):
        if not folder.is_dir():
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=PRIVATE_DIR, parents=True)
    record = {"format": FORMAT, "sha256": sha256, "val_fraction": val_fraction,
              "baseline": dict(asdict(base), nats=list(base.nats))}
    data = (json.dumps(record, indent=1) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def get(data_dir: Path, corpus: Corpus, val_fraction: float) -> Baseline | None:
    """The cached baseline, else computed now and stored (a store that fails is only a lost cache)."""
    sha = corpus.fingerprint["sha256"]
    base = cached(data_dir, sha, val_fraction)
    if base is None:
        base = compute(corpus, val_fraction)
        if base is not None:
            with contextlib.suppress(OSError):
                store(data_dir, sha, val_fraction, base)
    return base


def quick(data_dir: Path, corpus: Corpus, val_fraction: float) -> Baseline | None:
    """The baseline if it is cached or cheap to count now (a small text), else None."""
    base = cached(data_dir, corpus.fingerprint["sha256"], val_fraction)
    if base is None and len(corpus.data) * (1 - val_fraction) <= QUICK_CHARS:
        base = get(data_dir, corpus, val_fraction)
    return base


def in_background(data_dir: Path, corpus: Corpus, val_fraction: float,
                  done: Callable[[Baseline], None],
                  failed: Callable[[str], None] = lambda why: None) -> threading.Thread:
    """`get()` in a daemon thread; `done(baseline)` when there is one, `failed(why)` if it cannot be."""
    def work() -> None:
        try:
            base = get(data_dir, corpus, val_fraction)
        except MemoryError:
            failed("not enough memory to count the n-gram baseline")
            return
        if base is not None:
            done(base)

    thread = threading.Thread(target=work, name="ngram-baseline", daemon=True)
    thread.start()
    return thread

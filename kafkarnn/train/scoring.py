"""How well a model predicts a text: validation's cross-entropy, and `score` of any text with it.

Both are one computation, `cross_entropy`: the text is read by K parallel streams, each from a
zero state and without dropout, `chunk` characters at a time; a text up to VAL_STREAM_CHARS
characters is one stream, and of a huge one only VAL_MAX_CHARS characters are read. Every
character but a stream's first is predicted from the ones before it, so a short text of N
characters gives N - 1 predictions.

Periodic validation during training reads a fixed subset of a split longer than SUBSET_CHARS:
SUBSET_CHARS characters in evenly spaced windows of SUBSET_STREAM, always the same ones, so a
run's validation losses compare with each other. A smaller split is read whole, as above.

API
    cross_entropy(model, ids, chunk=256, per_char=False, max_chars=…, stream_chars=…)
        -> CrossEntropy | None (fewer than 2 ids)
    streams(n, max_chars, stream_chars), validation_streams(n) -> (starts, L): the layout read
    validation_cross_entropy(model, ids, subset=True, chunk=256, per_char=False)
        -> CrossEntropy | None: the above over validation's layout
    validation_loss(model, ids, subset=True, chunk=256) -> float | None
    score_text(model, vocab, text, chunk=256) -> Score       (KafkarnnError: unknown characters,
                                                               or fewer than two characters)
    Score.to_json() -> {"chars", "nats_per_char", "bits_per_char", "perplexity"}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kafkarnn.engine.model import CharModel
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.generation import unknown_chars_message

VAL_STREAM_CHARS = 65536      # streams are at most this long (one stream for small texts)
VAL_MAX_CHARS = 1_000_000     # at most this much of a huge text is read
SUBSET_CHARS = 65536          # periodic validation of a bigger split reads this much of it,
SUBSET_STREAM = 2048          # as 32 windows side by side: wide products, a few seconds a pass


@dataclass(frozen=True)
class CrossEntropy:
    nats: float                     # total over the predicted characters
    chars: int                      # how many were predicted
    surprise: np.ndarray | None     # per_char: (len(ids),) nats of each character, NaN if not predicted


def streams(n: int, max_chars: int | None = None,
            stream_chars: int | None = None) -> tuple[np.ndarray, int]:
    """Where the K parallel streams over n ids start, and how many characters L each predicts
    (ids[s + 1 … s + L] from ids[s …]): the layout `cross_entropy` reads."""
    m = min(n - 1, max_chars or VAL_MAX_CHARS)
    K = max(1, math.ceil(m / (stream_chars or VAL_STREAM_CHARS)))   # parallel streams, from zeros
    L = m // K
    return np.linspace(0, n - 1 - L, K).astype(np.int64), L        # at least L apart


def validation_streams(n: int) -> tuple[np.ndarray, int]:
    """The streams periodic validation reads over a split of n ids (as `validation_loss`)."""
    return streams(n, SUBSET_CHARS, SUBSET_STREAM) if n - 1 > SUBSET_CHARS else streams(n)


def cross_entropy(model: CharModel, ids: np.ndarray, chunk: int = 256, per_char: bool = False,
                  max_chars: int | None = None,
                  stream_chars: int | None = None) -> CrossEntropy | None:
    """The module docstring's computation over ids (N,); None when N < 2. max_chars and
    stream_chars: how much is read at most (VAL_MAX_CHARS), as streams of at most this many
    characters (VAL_STREAM_CHARS)."""
    if len(ids) < 2:
        return None
    starts, L = streams(len(ids), max_chars, stream_chars)
    K = len(starts)
    state = model.zero_state(K)
    total = 0.0
    surprise = np.full(len(ids), np.nan) if per_char else None
    for p in range(0, L, chunk):
        T = min(chunk, L - p)
        idx = starts + p + np.arange(T)[:, None]         # (T, K): stream k's characters
        nll, state = model.char_nll(ids[idx].astype(np.intp), ids[idx + 1].astype(np.intp), state)
        total += float(nll.sum(dtype=np.float64))
        if per_char:
            surprise[idx + 1] = nll.reshape(T, K)        # the nats of the character predicted
    return CrossEntropy(total, K * L, surprise)


def validation_cross_entropy(model: CharModel, ids: np.ndarray, subset: bool = True,
                             chunk: int = 256, per_char: bool = False) -> CrossEntropy | None:
    """`cross_entropy` over a validation split: its fixed subset when it is big (what training
    uses, the layout `validation_streams` gives), or the whole of it up to VAL_MAX_CHARS."""
    if subset and len(ids) - 1 > SUBSET_CHARS:
        return cross_entropy(model, ids, chunk, per_char, SUBSET_CHARS, SUBSET_STREAM)
    return cross_entropy(model, ids, chunk, per_char)


def validation_loss(model: CharModel, ids: np.ndarray, subset: bool = True,
                    chunk: int = 256) -> float | None:
    """Mean nats per character over a validation split (`validation_cross_entropy`)."""
    ce = validation_cross_entropy(model, ids, subset, chunk)
    return None if ce is None else ce.nats / ce.chars


@dataclass(frozen=True)
class Score:
    chars: int                      # characters predicted
    nats_per_char: float
    bits_per_char: float
    perplexity: float               # e^nats: as unsure as a fair choice among this many
    surprise: np.ndarray            # (len(text),) nats at each character, NaN where not predicted

    def to_json(self) -> dict:
        return {"chars": self.chars, "nats_per_char": self.nats_per_char,
                "bits_per_char": self.bits_per_char, "perplexity": self.perplexity}


def score_text(model: CharModel, vocab: Vocab, text: str, chunk: int = 256) -> Score:
    """How well the model predicts `text`: validation's computation on it."""
    unknown = vocab.unknown(text)
    if unknown:
        raise KafkarnnError(unknown_chars_message(unknown, "the text"))
    ce = cross_entropy(model, vocab.encode(text), chunk, per_char=True)
    if ce is None:
        raise KafkarnnError("a text to score needs at least two characters")
    nats = ce.nats / ce.chars
    return Score(chars=ce.chars, nats_per_char=nats, bits_per_char=nats / math.log(2),
                 perplexity=math.exp(nats), surprise=ce.surprise)

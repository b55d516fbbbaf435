"""The n-gram table as a teacher: what counting predicts at every training position.

With `--teacher α` the network learns toward (1 − α)·onehot(next character) + α·q_t, where q_t
is the text's n-gram table's distribution of the next character at position t (engine/model.py,
`loss_and_grads(teacher=…)`). On a small text the network overfits long before it has learnt all
that counting knows; the table's distributions carry what a character's neighbours usually are,
and pull the network toward them (docs/ladder.md, "The table as a teacher").

Cross-fitted, so that q never remembers the character it predicts: the training text is cut into
`folds` pieces (Config.teacher_folds), and each piece's q comes from a table counted on the other
pieces — as good as the table is on text it has not seen. Counted on the whole text, the table
would hand the network its targets back. More pieces, more of the text behind each q: on
Metamorphosis 1.304 nats/char with 5, 1.264 with 20, 1.256 with 40; the cost grows with them.

The distributions are a function of the training text, the order and the folds alone: a resumed
run learns from the same q, bit for bit. They are cached in `<data dir>/teacher/<key>.npy` (the
key a hash of the text's fingerprint, its length, the order and the folds; the owner's alone, written
atomically, as the copy index is), so a resume or a hand-over reads them back in milliseconds
instead of counting again while it holds the run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from kafkarnn.engine.ngram import NGram
from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import cached_array, kept_array
from kafkarnn.train.config import Config

CACHE_FOLDER = "teacher"
SAID_FROM = 200_000           # training characters from which counting takes seconds: say so first
MAX_BYTES = 1 << 30           # the distributions are N·V float16 values: 1 GiB at most


def cross_fitted(train: np.ndarray, vocab_size: int, order: int, folds: int) -> np.ndarray:
    """(N, V) float16: row t is P(· | train[:t]) from a table counted without t's fold."""
    n = len(train)
    edges = np.linspace(0, n, folds + 1).astype(np.int64)
    out = np.empty((n, vocab_size), dtype=np.float16)
    for a, b in zip(edges[:-1], edges[1:]):
        table = NGram(np.concatenate([train[:a], train[b:]]), vocab_size, order)
        start = max(0, a - order)              # the fold's first contexts, read whole
        out[a:b] = table.distributions(train[start:b], order)[a - start:]
    return out


def cache_path(data_dir: Path, fingerprint: dict, length: int, order: int, folds: int) -> Path:
    """Where the distributions of the first `length` characters of the text with `fingerprint` live."""
    key = f"{fingerprint.get('sha256')}:{length}:{order}:{folds}"
    return Path(data_dir) / CACHE_FOLDER / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"


def _fits(length: int, vocab_size: int):
    return lambda q: q.shape == (length, vocab_size) and q.dtype == np.float16


def is_cached(path: Path, length: int, vocab_size: int) -> bool:
    """Whether `path` holds a sound copy to read back (else the next run counts again)."""
    return kept_array(path, _fits(length, vocab_size)) is not None


def counting_note(path: Path, length: int, vocab_size: int, order: int, folds: int) -> str | None:
    """What a run says before it counts: None when a sound copy is kept or the text is quick."""
    if length < SAID_FROM or is_cached(path, length, vocab_size):
        return None
    again = "again: the copy kept there was unreadable" if path.exists() else "once"
    return (f"counting the teacher's {order}-gram predictions for this text ({folds} tables, "
            f"{again}; kept in {path.parent})")


def load_or_compute(train: np.ndarray, vocab_size: int, order: int, folds: int,
                    path: Path | None) -> np.ndarray:
    """cross_fitted(train, …): memory-mapped from `path` when a sound copy is there, else computed
    and written there (runs/checkpoint.cached_array)."""
    def compute() -> np.ndarray:
        return cross_fitted(train, vocab_size, order, folds)
    if path is None:
        return compute()
    return cached_array(path, _fits(len(train), vocab_size), compute)[0]


class Teacher:
    """The table's distributions laid out as the trainer's grid: `batch(p)` is what it predicts
    for the targets of the step that reads grid[p : p + T + 1]."""

    def __init__(self, train: np.ndarray, vocab_size: int, order: int, folds: int, batch: int,
                 region: int, cache: Path | None = None):
        need = len(train) * vocab_size * 2
        if need > MAX_BYTES:
            raise KafkarnnError(
                f"--teacher needs {need / 2**20:,.0f} MiB for this text's table predictions (at "
                f"most {MAX_BYTES / 2**20:,.0f}); use --teacher 0 on a text this big")
        q = load_or_compute(train, vocab_size, order, folds, cache)
        self.grid = q[:batch * region].reshape(batch, region, vocab_size).transpose(1, 0, 2)

    def batch(self, p: int, T: int) -> np.ndarray:
        """q (T, B, V) float32 for the targets grid[p + 1 : p + T + 1] (the trainer pairs it with
        this step's α, schedule.teacher_alpha)."""
        return self.grid[p + 1:p + T + 1].astype(np.float32)


def described(cfg: Config) -> str:
    """The teacher as the start line says it: "learning from the 8-gram table too (α 0.3, …)"."""
    rise = f", rising to {cfg.teacher_peak:g} as the rate decays" if cfg.teacher_rise else ""
    return f"learning from the {cfg.teacher_order}-gram table too (α {cfg.teacher:g}{rise})"


def teacher_for(cfg: Config, train: np.ndarray, vocab_size: int, region: int,
                cache: Path | None = None) -> Teacher | None:
    """The run's teacher, or None when it learns from the text alone (teacher 0)."""
    if cfg.teacher <= 0:
        return None
    return Teacher(train, vocab_size, cfg.teacher_order, cfg.teacher_folds, cfg.batch, region,
                   cache)

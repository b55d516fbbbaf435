"""The copy check of one training text: its suffix array, built once and cached, then queried.

The array is cached in `<data dir>/copying/<key>.npy`, the key a hash of the training text's
fingerprint (its characters and vocabulary) and length, so a changed text gets a new array and
an unchanged one is read back, memory-mapped, in milliseconds. The file is the owner's alone
(0600 in a 0700 folder) and written atomically: a crash never leaves half an array there.

`Checker` builds or reads the array in a background thread, so training and sampling never
wait for it; until it is ready `check()` answers "checking…".

Reading a 100 MB corpus again only to hash it takes seconds, so `kafkarnn sample` also keeps the
training ids beside the array (`<key>.ids.npy`) with the size and time of the one file they came
from (`<key>.json`): while that file is unchanged it reads neither the text nor its hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import numpy as np

from kafkarnn.engine.vocab import Vocab
from kafkarnn.train.copying import DEFAULT_MIN, CopyIndex, TooBig, check, suffix_array
from kafkarnn.runs.checkpoint import atomic_write, cached_array
from kafkarnn.seam import Copied

CACHE_FOLDER = "copying"
CHECKING = "checking…"


def cache_path(data_dir: Path, fingerprint: dict, length: int) -> Path:
    """Where the array of the first `length` characters of the text with `fingerprint` lives."""
    key = hashlib.sha256(f"{fingerprint.get('sha256')}:{length}".encode()).hexdigest()[:32]
    return Path(data_dir) / CACHE_FOLDER / f"{key}.npy"


def load_or_build(ids: np.ndarray, path: Path) -> tuple[np.ndarray, bool]:
    """The suffix array of `ids`: memory-mapped from `path` when a sound one is there, else
    built and written there (a write that fails leaves it in memory only). (array, built)."""
    return cached_array(path, lambda sa: sa.ndim == 1 and len(sa) == len(ids)
                        and sa.dtype in (np.int32, np.int64), lambda: suffix_array(ids))


def source_stamp(source: str | None) -> dict | None:
    """Path, size and modification time of a corpus that is one regular file, else None."""
    try:
        st = os.stat(source)
    except (OSError, TypeError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return {"source": source, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cached_ids(path: Path, stamp: dict | None) -> np.ndarray | None:
    """The training ids kept beside the array at `path`, if the file they came from still has
    the stamp it had then; else None."""
    try:
        if stamp is None or json.loads(path.with_suffix(".json").read_text()) != stamp:
            return None
        ids = np.load(path.with_suffix(".ids.npy"), mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return ids if ids.ndim == 1 and ids.dtype.kind == "u" else None


def keep_ids(path: Path, ids: np.ndarray, stamp: dict) -> None:
    """Keep the training ids and their file's stamp beside the array (the stamp last: it
    vouches for the ids)."""
    with contextlib.suppress(OSError):
        atomic_write(path.with_suffix(".ids.npy"), lambda f: np.save(f, ids, allow_pickle=False))
        atomic_write(path.with_suffix(".json"), lambda f: f.write(json.dumps(stamp).encode()))


class Checker:
    """Marks what samples share with one training text (`ids` in `vocab`). The index is built
    or read in a daemon thread (`background`) or at once."""

    def __init__(self, ids: np.ndarray, vocab: Vocab, path: Path, min_len: int = DEFAULT_MIN,
                 background: bool = True, stamp: dict | None = None):
        self.vocab, self.path, self.min_len, self.stamp = vocab, path, min_len, stamp
        self.cached = path.is_file()      # else this checker builds the index (once per text)
        self.index: CopyIndex | None = None
        self.built = False                # True when this checker built the array (not cached)
        self.failed = ""                  # why there is no index, if building failed
        self._done = threading.Event()
        if background:
            threading.Thread(target=self._build, args=(ids,), name="copy-index",
                             daemon=True).start()
        else:
            self._build(ids)

    def _build(self, ids: np.ndarray) -> None:
        try:
            sa, self.built = load_or_build(ids, self.path)
            self.index = CopyIndex(ids, sa)
            if self.stamp is not None:            # taken before the text was read
                keep_ids(self.path, ids, self.stamp)
        except TooBig as e:
            self.failed = str(e)
        except (MemoryError, ValueError) as e:
            self.failed = f"no copy check ({type(e).__name__}: {e})"
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the index is ready (or failed); True when it is ready."""
        self._done.wait(timeout)
        return self.index is not None

    def check(self, text: str, min_len: int | None = None) -> Copied:
        """What `text` shares with the training text; a note instead while the index builds."""
        if self.index is None:
            return Copied(min_len=self.min_len, note=self.failed or CHECKING)
        ids = [self.vocab.index.get(c, -1) for c in text]
        return check(self.index, ids, self.min_len if min_len is None else min_len)


def describe(copied: Copied | None) -> str:
    """One line about a check, e.g. "longest stretch shared with the training text: 34 characters"."""
    if copied is None:
        return ""
    if copied.note:
        return copied.note
    n = len(copied.stretches)
    marked = f"; {n} stretch{'es' if n != 1 else ''} of {copied.min_len}+ marked" if n else ""
    return f"longest stretch shared with the training text: {copied.longest} characters{marked}"

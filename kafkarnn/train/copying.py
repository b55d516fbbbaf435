"""Copied or new: which stretches of a sample also occur in the training text.

A suffix array of the training text (its suffixes' starts, in sorted order) answers "what is
the longest stretch starting at sample position i that occurs somewhere in the text": the
suffix that shares the longest prefix with `sample[i:]` sits right beside the place where
`sample[i:]` would be inserted in sorted order, so one binary search and two comparisons per
position give the matching statistics `ms[i]` and a place in the text.

The array comes from libdivsufsort (the optional `pydivsufsort` package: seconds for 100 MB,
4 bytes a character) when it is installed, else from NumPy prefix doubling (no dependency;
several times slower and ~50 bytes a character while it builds). Both give the same array:
a string has exactly one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from kafkarnn.seam import Copied

DEFAULT_MIN = 20     # a shared stretch this long or longer is marked as copied
NUMPY_MAX = 20_000_000   # prefix doubling beyond this needs gigabytes: libdivsufsort's job


class TooBig(ValueError):
    """A text too long to index without libdivsufsort."""


def suffix_array(ids: np.ndarray, fast: bool = True) -> np.ndarray:
    """The starts of the suffixes of `ids` (1-D, unsigned) in lexicographic order, int32 or int64:
    by libdivsufsort when `fast` and installed, else by NumPy (TooBig past NUMPY_MAX if `fast`)."""
    ids = np.ascontiguousarray(ids)
    if len(ids) == 0:
        return np.zeros(0, np.int32)
    if not fast:
        return prefix_doubling(ids)
    try:
        from pydivsufsort import divsufsort
    except ImportError:
        if len(ids) > NUMPY_MAX:
            raise TooBig(f"no copy check: {len(ids):,} characters need pydivsufsort "
                         f"(pip install 'kafkarnn[copying]')") from None
        return prefix_doubling(ids)
    return divsufsort(ids if ids.flags.writeable else ids.copy())   # it wants a writeable array


def prefix_doubling(ids: np.ndarray) -> np.ndarray:
    """Suffix array by prefix doubling: after round k every suffix is ranked by its first 2^k
    symbols; ranks of (first half, second half) pairs give the next round's."""
    n = len(ids)
    dtype = np.int32 if n < 2**31 - 1 else np.int64
    rank = np.unique(ids, return_inverse=True)[1].astype(np.int64).ravel()
    k = 1
    while True:
        second = np.zeros(n, np.int64)          # 0: past the end sorts first
        second[:n - k] = rank[k:] + 1
        key = rank * (n + 1) + second           # (rank, second) as one sortable integer
        del second
        sa = np.argsort(key, kind="stable")
        ordered = key[sa]
        del key
        rank = np.empty(n, np.int64)
        rank[sa] = np.concatenate(([0], np.cumsum(ordered[1:] != ordered[:-1])))
        del ordered
        if rank[sa[-1]] == n - 1 or k >= n:     # every suffix has a rank of its own
            return sa.astype(dtype)
        k *= 2


@dataclass(frozen=True)
class Matches:
    """Matching statistics of a sample: `length[i]` symbols from sample position i also occur in
    the text, starting at text position `where[i]`."""
    length: np.ndarray
    where: np.ndarray


class CopyIndex:
    """A text (its symbol ids) and its suffix array, for longest-match queries."""

    def __init__(self, ids: np.ndarray, sa: np.ndarray):
        if len(sa) != len(ids):
            raise ValueError(f"suffix array of {len(sa)} for a text of {len(ids)}")
        # big-endian bytes compare in the same order as the ids they hold
        self.width = 1 if ids.dtype.itemsize == 1 else 4
        self.text = ids.astype(np.uint8 if self.width == 1 else ">u4", copy=False).tobytes()
        self.sa = sa

    def __len__(self) -> int:
        return len(self.sa)

    def matches(self, ids) -> Matches:
        """Longest stretch starting at each position of `ids` that occurs in the text. A
        negative id (a symbol the text lacks) matches nothing and ends every stretch."""
        ids = np.asarray(ids, dtype=np.int64)
        length = np.zeros(len(ids), np.int64)
        where = np.zeros(len(ids), np.int64)
        cut = 0
        for end in [*np.flatnonzero(ids < 0), len(ids)]:          # pieces between unknown symbols
            piece = ids[cut:end].astype(np.uint8 if self.width == 1 else ">u4").tobytes()
            for i in range(end - cut):
                length[cut + i], where[cut + i] = self._longest(piece[i * self.width:])
            cut = end + 1
        return Matches(length, where)

    def _longest(self, query: bytes) -> tuple[int, int]:
        """(length, text position) of the longest prefix of `query` found in the text."""
        w, text, sa = self.width, self.text, self.sa
        if not query or not len(sa):
            return 0, 0
        span = len(query)
        at = bisect.bisect_left(sa, query, key=lambda p: text[int(p) * w:int(p) * w + span])
        best, place = 0, 0
        for j in (at - 1, at):                     # the neighbours hold the longest common prefix
            if 0 <= j < len(sa):
                start = int(sa[j])
                shared = _common(query, text[start * w:start * w + span]) // w
                if shared > best:
                    best, place = shared, start
        return best, place


def _common(a: bytes, b: bytes) -> int:
    """How many leading bytes `a` and `b` share."""
    n = min(len(a), len(b))
    differ = np.frombuffer(a, np.uint8, n) != np.frombuffer(b, np.uint8, n)
    return int(differ.argmax()) if differ.any() else n


def stretches(m: Matches, min_len: int) -> tuple[tuple[int, int, int], ...]:
    """The maximal shared stretches of at least `min_len` symbols, as (start in the sample,
    length, start in the text). A stretch from i is maximal unless the one from i-1 covers it,
    i.e. unless length[i-1] > length[i]."""
    out = []
    for i, n in enumerate(m.length):
        if n >= max(1, min_len) and (i == 0 or m.length[i - 1] <= n):
            out.append((i, int(n), int(m.where[i])))
    return tuple(out)


def check(index: CopyIndex, ids, min_len: int = DEFAULT_MIN) -> Copied:
    """What a sample (as ids; -1 for symbols the text lacks) shares with the indexed text."""
    m = index.matches(ids)
    longest = int(m.length.max()) if len(m.length) else 0
    return Copied(longest=longest, stretches=stretches(m, min_len), min_len=min_len)


def marked(n: int, copied: Copied | None) -> np.ndarray:
    """A boolean mask over `n` sample characters: True inside a stretch marked as copied."""
    mask = np.zeros(n, bool)
    for start, length, _ in copied.stretches if copied else ():
        mask[start:start + length] = True
    return mask

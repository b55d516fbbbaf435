"""The character vocabulary: a stable, sorted list of characters and the maps between characters and ids."""

from __future__ import annotations

import numpy as np


class Vocab:
    """Sorted set of characters. `sorted(set(text))`, so the order is the same in every process."""

    def __init__(self, chars: str | list[str]):
        chars = "".join(chars)
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be unique")
        self.chars = "".join(sorted(chars))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.chars == self.chars

    @property
    def dtype(self) -> np.dtype:
        """Smallest unsigned integer type that holds every id."""
        n = len(self.chars)
        return np.dtype(np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.uint32)

    def unknown(self, text: str) -> list[str]:
        """Characters of `text` that are not in the vocabulary, in order of first appearance."""
        seen: dict[str, None] = {}
        for ch in text:
            if ch not in self.index:
                seen.setdefault(ch, None)
        return list(seen)

    def encode(self, text: str, chunk: int = 1 << 20) -> np.ndarray:
        """Ids of `text` as a compact integer array. Raises KeyError on an unknown character.

        Works on code points in chunks (sorted chars have sorted code points, so a binary search
        finds each id), which encodes 100 MB in seconds with little memory beyond the result.
        """
        points = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        out = np.empty(len(text), dtype=self.dtype)
        for start in range(0, len(text), chunk):
            cp = np.frombuffer(text[start:start + chunk].encode("utf-32-le"), dtype=np.uint32)
            ids = np.searchsorted(points, cp)
            ids[ids == len(points)] = 0
            bad = points[ids] != cp
            if bad.any():
                raise KeyError(chr(int(cp[np.argmax(bad)])))
            out[start:start + len(cp)] = ids
        return out

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

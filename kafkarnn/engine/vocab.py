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

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text` as a compact integer array. Raises KeyError on an unknown character."""
        return np.fromiter((self.index[ch] for ch in text), dtype=self.dtype, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

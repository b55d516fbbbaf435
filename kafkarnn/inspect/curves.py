"""A run's loss curves as its metrics.jsonl records them, read while the run may be writing it.

The session (train/session.py) appends one JSON object per line every ~2 s: "iter", "chars",
"loss" (smoothed training loss), "elapsed_s" (seconds of training), "chars_per_sec", and
"val_loss" after a validation pass. A killed writer can leave a torn line; `_append` starts the
next record on a fresh line, and a reader skips what does not parse (runs/folder.py).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.folder import parse_record


@dataclass(frozen=True)
class Point:
    """One loss measurement and where in training it was made, on every axis."""
    iters: int
    chars: int
    seconds: float | None            # None: a record of an older version, with no clock
    loss: float

    def x(self, axis: str) -> float | None:
        return getattr(self, axis)


def point(rec: dict, key: str, chars_per_iter: int | None) -> Point | None:
    """The point a metrics record gives for `key` ("loss" or "val_loss"), or None without one.
    A record without "chars" counts them from its iteration (every step reads batch × seq_len)."""
    it, y, seconds, chars = rec.get("iter"), rec.get(key), rec.get("elapsed_s"), rec.get("chars")
    if not (count(it) and number(y) and math.isfinite(y)):
        return None
    if not count(chars):
        if chars_per_iter is None:
            return None
        chars = it * chars_per_iter
    seconds = float(seconds) if number(seconds) and math.isfinite(seconds) and seconds >= 0 else None
    return Point(it, chars, seconds, float(y))


def count(v) -> bool:
    return type(v) is int and v >= 0


def number(v) -> bool:
    return type(v) in (int, float)


class MetricsTail:
    """A run's metrics.jsonl, read from where the last read stopped: a live run's file grows
    every ~2 s, and rereading an hour of it every second would cost more than the drawing.
    A line still being written (no newline yet) waits for the next read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict] = []
        self.bad = 0                       # lines that are no JSON object (damage, a torn line)
        self.exists = self.empty = False
        self._offset = 0

    def read(self) -> bool:
        """Take in what was appended since the last read; True when something new arrived."""
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self._offset:            # replaced or cut short: start again
                    self.records, self.bad, self._offset = [], 0, 0
                f.seek(self._offset)
                data = f.read(size - self._offset)
        except FileNotFoundError:
            self.exists = False
            return False
        except OSError as e:
            raise KafkarnnError(f"cannot read {self.path} ({e.strerror or e})") from None
        self.exists, self.empty = True, size == 0
        whole = data[:data.rfind(b"\n") + 1]
        self._offset += len(whole)
        for line in whole.split(b"\n"):
            if not line.strip():
                continue
            rec = parse_record(line)
            if rec is None or not count(rec.get("iter")):
                self.bad += 1
            else:
                self.records.append(rec)
        return bool(whole)

    def problem(self) -> str:
        """"" when the file reads cleanly, else what is wrong with it, in a few words."""
        if not self.exists or self.empty:   # a trainer's first append creates the file, then writes
            return "no metrics yet"
        if self.bad and not self.records:
            return "metrics file is damaged: no readable line"
        if self.bad:
            return f"metrics file is damaged: {self.bad} line{'s' * (self.bad > 1)} skipped"
        return ""

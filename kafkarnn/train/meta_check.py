"""The metadata of a checkpoint a trainer resumes from, each value checked for type and range
before any of it is used (a damaged file ends in one line, never in a half-restored trainer)."""

from __future__ import annotations

import math

import numpy as np

from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.config import Config


def checked_meta(c: Config, vocab: Vocab, arrays: dict[str, np.ndarray], meta: dict, where: str,
                 max_bad_steps: int):
    """Counters, loss, RNG and identity from a checkpoint's metadata, each checked for type and range."""
    def damaged(why: str):
        return KafkarnnError(f"checkpoint {where} has damaged metadata ({why})")

    def count(key: str, default=None, limit: int = 2 ** 62) -> int:
        value = meta.get(key, default)
        if type(value) is not int or not 0 <= value < limit:
            raise damaged(f"{key} is {value!r}, not a whole number in range")
        return value

    iteration, chars = count("iteration"), count("chars")
    bad_steps = count("bad_steps", 0, max_bad_steps + 1)
    if chars != iteration * c.batch * c.seq_len:         # every step reads batch·seq_len chars
        raise damaged(f"{chars} characters do not fit {iteration} iterations")
    smooth = meta.get("smooth_loss")
    if type(smooth) not in (int, float) or not (math.isfinite(smooth) and smooth >= 0):
        raise damaged(f"smooth_loss is {smooth!r}")
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
        exact = rng.bit_generator.state == meta["rng"]     # e.g. a float state is rounded
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise damaged(f"rng state: {e}") from None
    if not exact:
        raise damaged("rng state does not round-trip")
    if meta.get("vocab", vocab.chars) != vocab.chars:
        raise KafkarnnError(f"checkpoint {where} was saved with another vocabulary than this run's")
    stored = meta.get("config", {})
    mine = c.to_dict()
    if not isinstance(stored, dict) or any(stored[k] != mine[k] for k in mine if k in stored):
        raise KafkarnnError(f"checkpoint {where} was saved with another configuration than this run's")
    for name in ("opt/k", "avg/k"):                         # Adam and the average count too
        k = arrays.get(name)
        if k is not None and int(k) != iteration:
            raise damaged(f"{name} counted {int(k)} updates, not {iteration}")
    decay = meta.get("decay")                               # a timed budget's, if it began
    if decay is not None and not (isinstance(decay, list) and len(decay) == 2 and
                                  all(type(v) is int and 0 <= v < 2 ** 62 for v in decay)):
        raise damaged(f"decay is {decay!r}, not two whole numbers")
    cooling = meta.get("cooldown", False)                   # that decay is a --cooldown's
    if type(cooling) is not bool or (cooling and decay is None):
        raise damaged(f"cooldown is {cooling!r} with decay {decay!r}")
    return iteration, chars, float(smooth), bad_steps, rng, decay and tuple(decay), cooling


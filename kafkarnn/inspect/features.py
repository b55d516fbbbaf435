"""What hidden units track: simple features of a text, and every unit's correlation with each.

Karpathy, Johnson & Fei-Fei (2015) found cells that track quotes, brackets, line length and
indentation. Here every character of a text gets the features below, each a number describing
the text right after that character is read (the moment the unit's state h_t belongs to), and
every unit — each layer's h, and for an LSTM also its cell c — is ranked by the Pearson
correlation of its activation with each feature over the text.

API
    FEATURES: name -> one line saying what it is
    text_features(text) -> {name: (N,) float64}
    rank_units(trace, text, limit=None) -> [{"layer", "unit", "state", "feature", "correlation"}, …]
        every (unit, feature) pair, best first by |correlation|; state is "h" or "c"; a feature
        that is constant on the text is left out
    best_per_feature(ranking) -> {feature: the first entry of that feature}
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.probe import Trace

FEATURES = {
    "in_quotes": 'inside double quotation marks, straight " or curly “ ”',
    "in_single_quotes": "inside single quotation marks, ‘ ’ or straight ', apostrophes aside",
    "in_brackets": "inside ( ), [ ] or { }, at any depth",
    "line_position": "characters since the last newline",
    "indent": "the current line's leading spaces and tabs",
    "word_start": "the first letter or digit of a word",
    "in_word": "a letter or a digit",
    "word_position": "letters and digits since the word began, 0 outside words",
    "after_full_stop": "from a . ! or ? up to the next word: a sentence is about to start",
    "digit": "a digit",
}

OPEN, CLOSE = "([{", ")]}"
CLOSING = "\"'”’)]}"            # what may stand between a full stop and the next sentence


def _apostrophe(prev: str, nxt: str) -> bool:
    """A quote mark between two letters is an apostrophe: don't, o’clock."""
    return prev.isalpha() and nxt.isalpha()


def text_features(text: str) -> dict[str, np.ndarray]:
    """Every feature of FEATURES at every character of text (N,), as float64. Quotation marks
    reset at a blank line (a quotation that runs on opens again in the next paragraph)."""
    N = len(text)
    out = {name: np.zeros(N) for name in FEATURES}
    quote = single = False
    depth = line = indent = word = 0
    leading, stop = True, False                  # the text starts a line
    for t, ch in enumerate(text):
        prev = text[t - 1] if t else "\n"
        nxt = text[t + 1] if t + 1 < N else "\n"
        # quotation marks: curly ones say which way they face; straight ones toggle
        if ch == "\n" and prev == "\n":
            quote = single = False
        elif ch == "“":
            quote = True
        elif ch == "”":
            quote = False
        elif ch == '"':
            quote = not quote
        elif ch in "’'" and not _apostrophe(prev, nxt):
            if single and not prev.isspace():
                single = False                           # a closing one
            elif ch == "'" and not single and not prev.isalnum() and not nxt.isspace():
                single = True                            # a straight opening one
        elif ch == "‘":
            single = True
        # brackets, lines, words, sentences
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth = max(depth - 1, 0)
        if ch == "\n":
            line, indent, leading = 0, 0, True
        else:
            line += 1
            leading = leading and ch in " \t"
            indent += leading
        word = word + 1 if ch.isalnum() else 0
        if ch in ".!?":
            stop = True
        elif not (ch.isspace() or ch in CLOSING):
            stop = False
        for name, value in (("in_quotes", quote), ("in_single_quotes", single),
                            ("in_brackets", depth > 0), ("line_position", line),
                            ("indent", indent), ("word_start", word == 1),
                            ("in_word", word > 0), ("word_position", word),
                            ("after_full_stop", stop), ("digit", ch.isdigit())):
            out[name][t] = value
    return out


def unit_activations(tr: Trace) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """All units' activations side by side, (T, U), and who each column is: (layer, unit, state)."""
    cols, who = [], []
    for l in range(len(tr.h)):
        for state, arrays in (("h", tr.h), ("c", tr.c)):
            if arrays is not None:
                cols.append(arrays[l])
                who += [(l, u, state) for u in range(arrays[l].shape[1])]
    return np.hstack(cols).astype(np.float64), who


def correlations(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of a (N, U) with every column of f (N, F): (U, F);
    0 where a column of a does not vary."""
    moves = np.outer(np.ptp(a, axis=0) > 0, np.ptp(f, axis=0) > 0)   # a mean's rounding aside
    a = a - a.mean(axis=0)
    f = f - f.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ f) / np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(f, axis=0))
    return np.where(moves, np.clip(r, -1.0, 1.0), 0.0)


def rank_units(tr: Trace, text: str, limit: int | None = None) -> list[dict]:
    """Every (unit, feature) pair ranked by |correlation| on text, which tr is the trace of."""
    if len(text) != len(tr.h[0]):
        raise ValueError(f"the trace is of {len(tr.h[0])} characters, the text has {len(text)}")
    feats = {k: v for k, v in text_features(text).items() if np.ptp(v) > 0} if text else {}
    if not feats:
        return []
    acts, who = unit_activations(tr)
    r = correlations(acts, np.column_stack(list(feats.values())))      # (U, F)
    order = np.argsort(-np.abs(r), axis=None, kind="stable")[:limit]
    names = list(feats)
    out = []
    for i in order:
        u, k = divmod(int(i), len(names))
        layer, unit, state = who[u]
        out.append({"layer": layer, "unit": unit, "state": state, "feature": names[k],
                    "correlation": float(r[u, k])})
    return out


def best_per_feature(ranking: list[dict]) -> dict[str, dict]:
    """The unit that tracks each feature best: the feature's first entry in the ranking."""
    best: dict[str, dict] = {}
    for entry in ranking:
        best.setdefault(entry["feature"], entry)
    return best

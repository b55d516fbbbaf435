"""Everything the Inside screen shows, computed on a copy of the model, apart from training.

Two steps, so that training waits only for copies:

    probe = take(trainer)     between two training steps, in the training thread: a copy of the
                              validated parameters, a passage of the validation text, the streams the next
                              step will read, the clipping counters (milliseconds)
    view = look(probe)        anywhere, on that copy (the heavy part; training may go on), one
                              look at a time per probe (its model's workspaces are its own)

Without a trainer (a saved run, `kafkarnn inspect`), `probe_text(model, vocab, text, seq_len)`
makes a probe whose gradient-through-time streams are windows of the text itself, from zeros.

`look` returns an Inside: the passage's trace (each unit's activation at each character), the
units ranked by how well they track the features of features.py, the model's top-5 guesses at
each character and its surprise, the gradient through time per layer (engine/through_time.py,
over `streams` streams and `sources` loss steps: the cost grows with both), the gate saturation
(engine/probe.py) and the clipping statistics. `Inside.to_json()` is what `inspect --json` prints.
Everything runs in evaluation mode: no dropout, no DropConnect.

API
    take(trainer, passage_chars=PASSAGE_CHARS, streams=GTT_STREAMS) -> Probe
    probe_text(model, vocab, text, seq_len, streams=GTT_STREAMS) -> Probe
    look(probe, sources=GTT_SOURCES, limit=None) -> Inside
    copy_model(model) -> CharModel
    next_guesses(trace, vocab, text, k=5) -> Guesses
    read(probe, text) -> (Trace, Guesses): the probe's model reading another text (a live sample,
        a continuation), from zeros; in the thread that runs `look`, after it
    unit_values(trace, layer, unit, state="h") -> (T,) in [-1, 1]: as the cell shows its state
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kafkarnn.engine.cells import cell_class
from kafkarnn.engine.model import CharModel
from kafkarnn.engine.probe import Trace, gate_saturation, trace
from kafkarnn.engine.through_time import gradient_through_time
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.inspect.features import best_per_feature, rank_units
from kafkarnn.train.generation import unknown_chars_message
from kafkarnn.train.trainer import ClipStats, Trainer

PASSAGE_CHARS = 2048    # validation text the units are ranked on and shown on
GTT_STREAMS = 4         # streams the gradient through time is averaged over
GTT_SOURCES = 16        # loss steps it follows back, spread evenly (None: every step)


def copy_model(model: CharModel) -> CharModel:
    """A model of the same spec with a copy of the parameters and workspaces of its own, so it can
    run in another thread while the original trains."""
    twin = CharModel(model.spec)
    twin.params.flat[...] = model.params.flat
    return twin


@dataclass(frozen=True)
class Probe:
    """What `look` needs, all copies: nothing in it changes when training goes on."""
    model: CharModel
    vocab: Vocab
    text: str                       # the passage: ranked on, shown, guessed along
    batch: tuple                    # (inputs, targets (T, S), state): the gradient through time's
    clip: ClipStats | None
    iteration: int | None


def take(trainer: Trainer, passage_chars: int = PASSAGE_CHARS, streams: int = GTT_STREAMS) -> Probe:
    """A probe of the trainer as it is now; call it between two steps. Its model holds the
    validated weights (the average, or schedule-free's x: what the validation loss describes).
    The passage is the start of the validation text from its first new line (the training
    text's if there is none)."""
    ids = trainer.val if len(trainer.val) >= 2 else trainer.train
    head = trainer.vocab.decode(ids[:passage_chars + 200])
    start = head.find("\n", 0, 200) + 1                  # 0 when there is no newline early on
    with trainer.validated() as model:
        twin = copy_model(model)
    return Probe(model=twin, vocab=trainer.vocab,
                 text=head[start:start + passage_chars], batch=trainer.upcoming_batch(streams),
                 clip=trainer.clip_stats(), iteration=trainer.iteration)


def probe_text(model: CharModel, vocab: Vocab, text: str, seq_len: int,
               streams: int = GTT_STREAMS) -> Probe:
    """A probe of a model on a text of its own; the gradient through time runs on `streams`
    windows of seq_len + 1 characters spread over the text (shorter if the text is), from zeros."""
    unknown = vocab.unknown(text)
    if unknown:
        raise KafkarnnError(unknown_chars_message(unknown, "the text"))
    ids = vocab.encode(text).astype(np.intp)
    T = min(seq_len, len(ids) - 1)
    windows = np.zeros((1, 0), dtype=np.intp)                  # no stream at all: T = 0
    if T >= 1:
        starts = np.unique(np.linspace(0, len(ids) - 1 - T, streams).astype(int))
        windows = ids[starts + np.arange(T + 1)[:, None]]      # (T+1, S)
    return Probe(model=copy_model(model), vocab=vocab, text=text,
                 batch=(windows[:-1], windows[1:], model.zero_state(windows.shape[1])),
                 clip=None, iteration=None)


@dataclass(frozen=True)
class Guesses:
    """What the model expects after reading each character t of a text."""
    chars: str                      # the vocabulary, to read ids as characters
    ids: np.ndarray                 # (T, k) the k likeliest next characters, likeliest first
    probs: np.ndarray               # (T, k) their probabilities (float64, as the sampler's)
    surprise: np.ndarray            # (T,) −ln p(the real character t+1), NaN for the last

    def top(self, t: int) -> list[tuple[str, float]]:
        """The guesses after character t as (character, probability), likeliest first."""
        return [(self.chars[i], float(p)) for i, p in zip(self.ids[t], self.probs[t])]


def next_guesses(tr: Trace, vocab: Vocab, text: str, k: int = 5) -> Guesses:
    """The top-k guesses and the surprise along text, of which tr is the trace."""
    ids = np.argsort(-tr.probs, axis=1, kind="stable")[:, :k]          # ties: the lower id first
    probs = np.take_along_axis(tr.probs, ids, axis=1)
    surprise = np.full(len(text), np.nan)
    if len(text) > 1:
        nxt = vocab.encode(text[1:]).astype(np.intp)
        surprise[:-1] = -np.log(tr.probs[np.arange(len(nxt)), nxt])
    return Guesses(vocab.chars, ids, probs, surprise)


def read(probe: Probe, text: str) -> tuple[Trace, Guesses]:
    """The probe's model reading `text` from zeros: its trace and its guesses along it."""
    unknown = probe.vocab.unknown(text)
    if unknown:
        raise KafkarnnError(unknown_chars_message(unknown, "the text"))
    tr = trace(probe.model, probe.vocab.encode(text))
    return tr, next_guesses(tr, probe.vocab, text)


def unit_values(tr: Trace, layer: int, unit: int, state: str = "h") -> np.ndarray:
    """One unit's activation at every character, on the scale −1 … +1 a shading wants, as the
    cell shows it (`Cell.shown`: h itself for rnn, lstm, gru; an LSTM cell c through tanh)."""
    if state == "c" and tr.c is None:
        raise ValueError(f"a {tr.cell} has no cell state c")
    values = (tr.c if state == "c" else tr.h)[layer][:, unit]
    return cell_class(tr.cell).shown(values, state)


@dataclass(frozen=True)
class Inside:
    """One look inside: what `look` computed, frozen, for a screen to draw or a command to print."""
    iteration: int | None
    cell: str                                # the cell's name (engine/cells)
    text: str                                # the passage
    trace: Trace                             # of the passage
    units: list[dict]                        # features.rank_units: best first
    best: dict[str, dict]                    # feature -> its best unit
    guesses: Guesses                         # along the passage
    gradient_through_time: np.ndarray        # (L, T): [l, k] the mean ‖∂L_s/∂h^l_{s−k}‖
    saturation: list[dict]                   # probe.gate_saturation, per layer
    clip: ClipStats | None

    def to_json(self) -> dict:
        return {
            "iteration": self.iteration, "cell": self.cell, "text_chars": len(self.text),
            "units": self.units, "best_per_feature": self.best,
            "gradient_through_time": [[float(v) for v in g] for g in self.gradient_through_time],
            "saturation": [{g: {"low": s["low"], "high": s["high"]} for g, s in layer.items()}
                           for layer in self.saturation],
            "clip": None if self.clip is None else {
                "norm": None if math.isnan(self.clip.norm) else self.clip.norm,   # none yet: null
                "steps": self.clip.steps, "clipped": self.clip.clipped,
                "clipped_share": self.clip.clipped_share},
        }


def look(probe: Probe, sources: int | None = GTT_SOURCES, limit: int | None = None) -> Inside:
    """Everything the module docstring lists, for the probe's model. limit: keep only the first
    entries of the unit ranking (None: every unit with every feature)."""
    model, vocab, text = probe.model, probe.vocab, probe.text
    tr = trace(model, vocab.encode(text))
    units = rank_units(tr, text)
    inputs, targets, state = probe.batch
    if inputs.size:
        gtt = gradient_through_time(model, inputs, targets, state, sources)
    else:
        gtt = np.zeros((len(model.cells), 0))
    return Inside(iteration=probe.iteration, cell=model.spec.cell, text=text, trace=tr,
                  units=units[:limit], best=best_per_feature(units),
                  guesses=next_guesses(tr, vocab, text), gradient_through_time=gtt,
                  saturation=gate_saturation(tr), clip=probe.clip)

"""Looking inside a model as it reads a text: every layer's states, its gates, and what it expects.

Evaluation mode throughout: no dropout, no DropConnect. A trace runs `CharModel.forward` itself
and keeps what the cells cached on the way (so it is the very computation the model does):

    h^l_t       the hidden state after reading character t             (T, H) per layer
    c^l_t       the cell state, for a cell that has one (LSTM)          (T, H) per layer
    gates       the cell's `activations`, by name: LSTM i f o g, GRU r z n, (T, H) each
                minGRU z ht, minLSTM f i ht (what each cell records)
    logits_t    Why·h^top_t + by, the scores of character t+1           (T, V)
    p_t         softmax(logits_t), as the sampler computes it           (T, V) float64

Gate saturation is the measure of Karpathy, Johnson & Fei-Fei (2015), "Visualizing and
Understanding Recurrent Networks": the share of the time a gate is below 0.1 (closed, "left
saturated") or above 0.9 (open, "right saturated"), per unit and over all units.

API
    trace(model, ids, state=None, chunk=1024) -> Trace
    saturation(a, low=0.1, high=0.9) -> (share below low (H,), share above high (H,))
    gate_saturation(trace) -> per layer {gate: {"low", "high", "units_low", "units_high"}}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kafkarnn.engine.cells import cell_class
from kafkarnn.engine.model import CharModel
from kafkarnn.engine.sampling import next_distribution

def run(model: CharModel, inputs: np.ndarray, state) -> tuple[np.ndarray, list[dict], list]:
    """The model's own forward in evaluation mode over inputs (T, B): logits (V, T·B), each layer's
    `record` (what its cell shows, by name), and the new state."""
    logits, (caches, _, _), new_state = model.forward(inputs, state)
    return logits, [cell.record(c[1]) for cell, c in zip(model.cells, caches)], new_state


@dataclass(frozen=True)
class Trace:
    """One stream through a text; index t is "after reading character t"."""
    cell: str                               # the cell's name (engine/cells)
    h: list[np.ndarray]                     # per layer (T, H)
    c: list[np.ndarray] | None              # per layer (T, H), for a cell with a state c
    gates: list[dict[str, np.ndarray]]      # per layer, name -> (T, H): the cell's activations
    logits: np.ndarray                      # (T, V), the scores of character t+1
    probs: np.ndarray                       # (T, V) float64, softmax of the logits
    state: list[np.ndarray]                 # the state after the last character, to go on from


def trace(model: CharModel, ids, state=None, chunk: int = 1024) -> Trace:
    """Run one stream over ids (T,) from `state` (zeros if None), `chunk` characters at a time
    (bounding the cells' buffers), and keep everything listed in the module docstring."""
    ids = np.asarray(ids, dtype=np.intp)
    state = model.zero_state(1) if state is None else [s.copy() for s in state]
    T, L, H, V, dt = len(ids), len(model.cells), model.spec.hidden, model.spec.vocab_size, model.dtype
    cell = model.cells[0]
    has_c, names = "c" in cell.state_names, cell.activations
    h = [np.empty((T, H), dt) for _ in range(L)]
    c = [np.empty((T, H), dt) for _ in range(L)] if has_c else None
    gates = [{n: np.empty((T, H), dt) for n in names} for _ in range(L)]
    logits = np.empty((T, V), dt)
    for a in range(0, T, chunk):
        b = min(a + chunk, T)
        lg, recs, state = run(model, ids[a:b, None], state)
        logits[a:b] = lg.T
        for l, r in enumerate(recs):                         # copied before the next chunk runs
            h[l][a:b] = r["h"][:, :, 0]
            if has_c:
                c[l][a:b] = r["c"][:, :, 0]
            for n in names:
                gates[l][n][a:b] = r[n][:, :, 0]
    return Trace(cell=model.spec.cell, h=h, c=c, gates=gates, logits=logits,
                 probs=next_distribution(logits, 1.0, None), state=state)


def saturation(a: np.ndarray, low: float = 0.1, high: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Per unit (the last axis of a (T, H) array of gate activations), the share of steps with
    the gate below `low` and the share above `high`."""
    a = a.reshape(-1, a.shape[-1])
    n = max(len(a), 1)
    return (a < low).sum(axis=0) / n, (a > high).sum(axis=0) / n


def gate_saturation(tr: Trace, low: float = 0.1, high: float = 0.9) -> list[dict[str, dict]]:
    """Per layer, per sigmoid gate (the cell's `gates`): the share of all its activations below `low` and above
    `high` ("low", "high"), and the same per unit ("units_low", "units_high", arrays (H,)), as in
    the 2015 paper's scatter plots. An rnn has no gates: empty dicts."""
    out = []
    for gates in tr.gates:
        layer = {}
        for name in cell_class(tr.cell).gates:
            lo, hi = saturation(gates[name], low, high)
            layer[name] = {"low": float(lo.mean()), "high": float(hi.mean()),   # every unit
                           "units_low": lo, "units_high": hi}                 # counts alike
        out.append(layer)
    return out


"""The cell contract: what every recurrent cell answers, and the layout code they share.

Column form, as in min-char-rnn: a state is one column per stream, h (H, B), and a weight maps
columns, `Whh @ h`; B streams are B columns side by side, so a step is one matrix multiply.
Sequences are (T, X, B) — time, features, streams — so each step's (X, B) block is contiguous:
the per-step product and the gate arithmetic both run on contiguous memory, faster than on the
row form's strided gate slices (the timings: benchmarks/README.md, "Notes behind the engine's
choices").

Every cell receives its input already projected, xproj[t] = Wx·x_t + b for all t (the model
does that with a column lookup for characters, or one product for a layer below), so the
Python loop over time holds only the recurrence. What goes in and out in bulk is feature-major,
one matrix (X, T·B) with the columns in (t, b) order, because every weight gradient and the
products between layers are then single matrix multiplies. Contract (docs/cells.md):

    forward(p, xproj, state)    -> hs (H, T·B), cache, new state     xproj is (T, G, B)
    backward(p, dhs, cache, g)  -> dxproj (G, T·B), writing the recurrent grads into g
                                                                      dhs is (H, T·B)
    step(p, x, state)           one step for one stream (vectors), updating state in place:
                                what sampling runs, character by character
    shapes()                    parameter name -> shape (the names checkpoints store)
    init_biases(p)              biases that do not start at zero (the LSTM's forget gate)
    record(cache)               what a forward pass shows, by name, step-major (T, H, B)
    back(p, rec, m)             the gradient through time's backward for m columns
                                (through_time.py): .step(t, dh), .carried
    shown(values, state)        a state's values on the −1 … +1 scale of the Inside shading

and the class attributes below (state_names, activations, gates, recurrent_key, input_keys,
through_time_note, per_step_input). A state is one array (S, H, B), S = len(state_names).

Big per-sequence arrays come from a workspace kept by each cell (layout.py), reused while the
shape stays the same. A buffer is only valid until the same cell runs again with the same shape,
which is after the backward pass that used it.
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.layout import Workspace


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function written through tanh, which never overflows: σ(x) = ½·tanh(x/2) + ½."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def rows(a: np.ndarray) -> np.ndarray:
    """A step-major sequence (T, X, B) as (T, B, X), contiguous: each step's factors as rows."""
    return np.ascontiguousarray(a.transpose(0, 2, 1))


class Cell(Workspace):
    """What every cell shares: sizes, the workspace, and the bulk layout at the boundary."""

    kind: str = ""                          # the name --model takes and checkpoints store
    state_names: tuple[str, ...] = ("h",)   # what a state (S, H, B) holds, h first
    activations: tuple[str, ...] = ()       # what a trace keeps besides the states, (T, H) each
    gates: tuple[str, ...] = ()             # the sigmoid gates among them: saturation means something
    input_keys: tuple[str, str] = ("Wx", "b")    # xproj = Wx·x + b: the model's part
    recurrent_key: str | None = None        # the matrix DropConnect masks; None: there is none
    through_time_note = ""                  # what the gradient-through-time view should know
    per_step_input = True                   # the first layer's input may come step by step (Lookup)

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.n_in, self.H = n_in, hidden

    @property
    def n_state(self) -> int:
        return len(self.state_names)

    def init_biases(self, p: dict[str, np.ndarray]) -> None:
        """Set the biases that do not start at zero (the model has zeroed them all)."""

    @staticmethod
    def shown(values: np.ndarray, state: str = "h") -> np.ndarray:
        """A state's values on the −1 … +1 scale a shading wants: h as it is (tanh keeps it
        there), a cell state c through tanh, as the cell's output sees it."""
        return np.tanh(values) if state == "c" else values

    def outputs(self, hs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All T+1 states hs (T+1, H, B) feature-major: (h_0..h_{T-1}, h_{-1}..h_{T-2}), both views
        of one (H, (T+1)·B) copy. The first is the layer's output, the second what the recurrent
        weight gradient pairs each step with."""
        B = hs.shape[2]
        hs_f = self.feature_major("hs_f", hs)
        return hs_f[:, B:], hs_f[:, :-B]

    def split(self, a: np.ndarray, names: str) -> dict[str, np.ndarray]:
        """The H-row blocks of a step-major (T, k·H, B) array, by name, in order."""
        H = self.H
        return {name: a[:, k * H:(k + 1) * H] for k, name in enumerate(names)}

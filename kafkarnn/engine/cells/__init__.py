"""The cells, one module each, and the registry: the one place that lists them by name.

A new cell is its own module here and one line in REGISTRY (docs/cells.md, "Adding a cell"); the
model, the trace, the gradient through time, config validation and the Inside views ask the cell
(base.Cell's contract) and never match its name.

The registry names modules rather than importing them, so that the command line can list the
cells in its help before NumPy is imported (the BLAS thread count is set first); a cell's module
is imported when its class is first asked for.
"""

from __future__ import annotations

from importlib import import_module

REGISTRY = {                 # name (--model, checkpoints) -> (module here, class)
    "rnn": ("rnn", "RNNCell"),
    "lstm": ("lstm", "LSTMCell"),
    "gru": ("gru", "GRUCell"),
    "mingru": ("mingru", "MinGRUCell"),
    "minlstm": ("minlstm", "MinLSTMCell"),
}
NAMES = tuple(REGISTRY)


def names_text(last: str = "or") -> str:
    """The cell names as a phrase for help and errors: "rnn, lstm or gru"."""
    return ", ".join(NAMES[:-1]) + f" {last} {NAMES[-1]}"


def cell_class(name: str):
    """The class of the cell called name (a base.Cell); ValueError for an unknown name."""
    if name not in REGISTRY:
        raise ValueError(f"no cell called {name!r}: the cells are {names_text()}")
    module, cls = REGISTRY[name]
    return getattr(import_module(f"{__name__}.{module}"), cls)

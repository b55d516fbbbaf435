"""The cell contract and the registry; the minimal cells' two forms, their gates, and how the model
treats a cell without a recurrent matrix. (Gradient checks, one-step forms and learning of every
registered cell: test_engine.py; their traces and gradient through time: tests/inspect.)"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kafkarnn
from kafkarnn.engine.cells import NAMES, cell_class, names_text, scan
from kafkarnn.engine.model import CharModel, ModelSpec

MIN_CELLS = [n for n in NAMES if cell_class(n).recurrent_key is None]


def tiny_model(cell, layers=1, seed=0, V=5, H=4, dtype="float64", **spec):
    m = CharModel(ModelSpec(vocab_size=V, hidden=H, layers=layers, cell=cell, dtype=dtype, **spec))
    rng = np.random.default_rng(seed)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.5, v.shape)
    return m, rng


def test_the_registry_names_every_cell_and_each_answers_the_contract():
    assert NAMES == ("rnn", "lstm", "gru", "mingru", "minlstm") and MIN_CELLS == ["mingru", "minlstm"]
    assert names_text() == "rnn, lstm, gru, mingru or minlstm"
    with pytest.raises(ValueError, match="no cell called 'tanh'"):
        cell_class("tanh")
    for name in NAMES:
        Cell = cell_class(name)
        cell = Cell(7, 4)
        assert Cell.kind == name and Cell.state_names[0] == "h"
        assert set(Cell.gates) <= set(Cell.activations)
        assert set(Cell.input_keys) <= set(cell.shapes()) and cell.shapes()[Cell.input_keys[0]][1] == 7
        assert Cell.recurrent_key is None or Cell.recurrent_key in cell.shapes()
        m, rng = tiny_model(name, seed=1)
        x = rng.integers(0, 5, (3, 2))
        _, (caches, _, _), _ = m.forward(x, m.zero_state(2))
        rec = m.cells[0].record(caches[0][1])
        assert {"h", *Cell.state_names, *Cell.activations} <= set(rec)
        assert all(rec[k].shape == (3, 4, 2) for k in ("h", *Cell.activations))


def test_the_cells_own_their_names_nobody_else_matches_them():
    """Outside engine/cells (and the presets that pick one), no module compares a cell's name."""
    root = Path(kafkarnn.__file__).parent
    names = "|".join(NAMES)
    compare = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    found = [f"{p.relative_to(root)}: {line.strip()}"
             for p in root.rglob("*.py") if "cells" not in p.relative_to(root).parts
             for line in p.read_text().splitlines() if compare.search(line)]
    assert found == []


def test_the_lstm_forget_bias_is_set_by_the_lstm_alone():
    for name in NAMES:
        m = CharModel(ModelSpec(vocab_size=5, hidden=3, layers=2, cell=name))
        m.init(np.random.default_rng(0))
        biases = {k: v for k, v in m.params.items() if v.ndim == 1}
        ones = {k: list(v) for k, v in biases.items() if v.any()}
        assert ones == ({f"l{l}.b": [0, 0, 0, 1, 1, 1] + [0] * 6 for l in (0, 1)}
                        if name == "lstm" else {})


def test_the_command_line_lists_the_cells_without_loading_numpy():
    code = ("import sys; import kafkarnn.cli.options as o; o.build_parser(); "
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- the minimal cells --------------------------------------------------------------------------

@pytest.mark.parametrize("cell", MIN_CELLS)
@pytest.mark.parametrize("batch", [1, 3])
def test_the_log_space_scan_and_the_loop_agree_to_rounding(cell, batch):
    m, rng = tiny_model(cell, layers=2, H=6, seed=batch)
    x = rng.integers(0, 5, (40, batch))
    state = [rng.normal(0, 1.0, s.shape) for s in m.zero_state(batch)]      # both signs
    loop_logits, _, loop_state = m.forward(x, state)
    loop_logits = loop_logits.copy()
    for c in m.cells:
        c.form = "scan"
    scan_logits, _, scan_state = m.forward(x, state)
    assert np.allclose(scan_logits, loop_logits, rtol=1e-10, atol=1e-12)
    assert all(np.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(scan_state, loop_state))
    assert not np.array_equal(scan_logits, loop_logits)       # two computations, not one


def test_the_scan_follows_the_recurrence_with_negative_parts():
    rng = np.random.default_rng(4)
    T, H, B = 30, 5, 2
    a = rng.uniform(0.05, 0.99, (T, H, B))
    b = rng.normal(0, 1, (T, H, B))
    hs, ref = np.empty((T + 1, H, B)), np.empty((T + 1, H, B))
    hs[0] = ref[0] = rng.normal(0, 1, (H, B))
    scan.scan(np.log(a), b, hs)
    for t in range(T):
        ref[t + 1] = a[t] * ref[t] + b[t]
    assert np.allclose(hs, ref, rtol=1e-10, atol=1e-12)


def test_min_lstm_gates_are_normalised_and_survive_an_underflow():
    Cell = cell_class("minlstm")
    c, H = Cell(4, 3), 3
    k = np.array([-100.0, -101.0, -50.0, -120.0, -103.0, 0.0], np.float32)   # f rows, then i rows
    ht = np.array([1.0, 2.0, 3.0], np.float32)
    h = np.ones((1, H), np.float32)
    c.step({}, np.concatenate([k, ht]), h)
    f_norm = 1 / (1 + np.exp(-(k[:H] - k[H:]).astype(np.float64)))  # f' = σ(k_f − k_i)
    assert np.all(np.isfinite(h))
    assert np.allclose(h[0], f_norm * 1.0 + (1 - f_norm) * ht, rtol=1e-6)


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_a_cell_without_a_recurrent_matrix_has_nothing_for_dropconnect(cell):
    m, rng = tiny_model(cell, layers=2, weight_drop=0.5)
    plain, _ = tiny_model(cell, layers=2)
    x, y = rng.integers(0, 5, (4, 3)), rng.integers(0, 5, (4, 3))
    state = m.zero_state(3)
    loss, grads, _ = m.loss_and_grads(x, y, state, rng=np.random.default_rng(1))
    loss0, grads0, _ = plain.loss_and_grads(x, y, state)
    assert loss == loss0 and np.array_equal(grads.flat, grads0.flat)   # and no mask drawn at all
    r = np.random.default_rng(1)
    m.loss_and_grads(x, y, state, rng=r)
    assert r.random() == np.random.default_rng(1).random()


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_min_cells_read_the_whole_input_at_once_even_for_big_texts(cell, monkeypatch):
    from kafkarnn.engine import model as model_module
    m, rng = tiny_model(cell, layers=2)
    x, y = rng.integers(0, 5, (6, 2)), rng.integers(0, 5, (6, 2))
    loss, grads, _ = m.loss_and_grads(x, y, m.zero_state(2))
    grads = grads.flat.copy()
    monkeypatch.setattr(model_module, "GATHER_ALL_BYTES", 0)      # a big text's path
    loss2, grads2, _ = m.loss_and_grads(x, y, m.zero_state(2))
    assert loss2 == loss and np.array_equal(grads2.flat, grads)


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_min_cells_show_their_state_through_tanh(cell):
    values = np.array([-3.0, 0.0, 0.5, 4.0])
    assert np.allclose(cell_class(cell).shown(values), np.tanh(values))
    assert np.array_equal(cell_class("rnn").shown(values), values)
    assert np.allclose(cell_class("lstm").shown(values, "c"), np.tanh(values))

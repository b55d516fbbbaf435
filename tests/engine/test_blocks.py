"""The blocks around each layer (engine/blocks.py): gradients of every entry, the one-step form,
stream groups, the plain stack left as it was, and what the model's views make of a block."""

import numpy as np
import pytest

from kafkarnn.engine import blocks
from kafkarnn.engine.cells import NAMES
from kafkarnn.engine.gradcheck import max_relative_error
from kafkarnn.engine.model import CharModel, ModelSpec
from kafkarnn.engine.probe import trace
from kafkarnn.engine.sampling import Stepper
from kafkarnn.engine.streams import StreamGroups
from kafkarnn.engine.through_time import state_gradients
from kafkarnn.train.config import BLOCKS

KINDS = ["residual", "mlp"]
KINK = 0.02            # no relu input this close to 0, where the differences would cross the kink
FLAT = 0.1             # no column into a norm with σ below this: a column that dropout zeroed has
                       # σ = √EPS, and the norm magnifies it 300-fold, beyond centred differences


def well_placed(m, x, state, rng=None) -> bool:
    """Whether a forward pass keeps every relu input KINK away from 0 and every norm's columns
    FLAT away from constant (the blocks' own caches, recomputed)."""
    m.forward(x, state, rng)
    z, inv = [np.ones(1)], [m.top_norm.inv]
    for block, p in zip(m.blocks, m.layer_params):
        inv += [n.inv for n in (block.norm_in, block.norm_mlp) if n is not None]
        if block.mlp:
            z.append((p["W1"] @ block.norm_mlp.y + p["b1"][:, None]).ravel())
    return np.abs(np.concatenate(z)).min() > KINK and max(i.max() for i in inv) < 1 / FLAT


def block_model(cell, kind, layers=2, V=5, H=4, B=3, T=3, dropout=0.0, mask_seed=None):
    """A tiny float64 model with random parameters (gains near 1) and a batch, drawn again until
    the pass is `well_placed`."""
    for seed in range(50):
        m = CharModel(ModelSpec(vocab_size=V, hidden=H, layers=layers, cell=cell, dtype="float64",
                                block=kind, mlp_ratio=2, dropout=dropout))
        rng = np.random.default_rng(seed)
        for name, v in m.params.items():
            v[...] = rng.normal(1.0 if "gamma" in name else 0.0, 0.5, v.shape)
        x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
        state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(B)]
        r = None if mask_seed is None else np.random.default_rng(mask_seed)
        if well_placed(m, x, state, r):
            return m, x, y, state
    raise AssertionError("no seed gives a well-placed pass")


def test_the_config_names_the_engines_blocks():
    assert BLOCKS == blocks.KINDS
    with pytest.raises(ValueError, match="no block called 'attention'"):
        CharModel(ModelSpec(vocab_size=5, hidden=4, block="attention"))


@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B", [1, 3])
def test_every_entry_of_every_parameter_matches_centred_differences(cell, kind, B):
    m, x, y, state = block_model(cell, kind, B=B)
    errors = max_relative_error(m, x, y, state)
    assert set(errors) == set(m.params) and max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("kind", ["mlp", pytest.param("residual", marks=pytest.mark.slow)])
def test_gradients_with_dropout_masks_match_centred_differences(cell, kind):   # (mlp holds residual's path)
    m, x, y, state = block_model(cell, kind, H=6, dropout=0.3, mask_seed=7)   # (4 units: a dropped
                                                                              # column is often flat)
    errors = max_relative_error(m, x, y, state, mask_seed=7, reduction="seq-sum")
    assert max(errors.values()) < 1e-6, errors


def test_a_block_has_the_parameters_its_equations_name():
    m = CharModel(ModelSpec(vocab_size=7, hidden=4, layers=2, cell="mingru", block="mlp", mlp_ratio=3))
    shapes = m.shapes()
    assert "l0.gamma1" not in shapes                          # the first layer reads characters
    assert shapes["l1.gamma1"] == shapes["l1.beta1"] == shapes["gamma"] == (4,)
    assert shapes["l0.W1"] == (12, 4) and shapes["l0.W2"] == (4, 12) and shapes["l1.b1"] == (12,)
    residual = CharModel(ModelSpec(vocab_size=7, hidden=4, layers=2, cell="mingru", block="residual"))
    assert not any(k.endswith(("W1", "W2", "gamma2")) for k in residual.shapes())
    m.init(np.random.default_rng(0))
    for name, v in m.params.items():                          # gains 1, biases 0
        if v.ndim == 1 and name.split(".")[-1] in ("gamma", "gamma1", "gamma2"):
            assert (v == 1).all(), name
        elif v.ndim == 1:
            assert (v == 0).all(), name
    mask = m.matrix_mask()                                     # weight decay: W1, W2, not the gains
    decayed = {k for k, (_, a, b, _) in zip(m.params, m.layout) if mask[a:b].all()}
    assert {"l0.W1", "l1.W2"} <= decayed and not decayed & {"gamma", "l1.gamma1", "l0.b1"}


def test_a_plain_stack_is_the_model_it_was():
    """block "plain" adds no parameter and computes what a spec without the field computed."""
    spec = ModelSpec(vocab_size=6, hidden=5, layers=2, cell="gru", dtype="float64")
    assert spec.block == "plain"
    plain = CharModel(spec)
    assert plain.blocks is None and all(k.startswith(("l0.", "l1.", "Why", "by")) for k in plain.shapes())
    plain.init(np.random.default_rng(1))
    x = np.random.default_rng(2).integers(0, 6, (4, 2))
    logits, _, _ = plain.forward(x, plain.zero_state(2))
    h = x                                                      # by hand: cells, then Why
    state = plain.zero_state(2)
    for l, cell in enumerate(plain.cells):
        hs, _, _ = cell.forward(plain.layer_params[l], plain._input_proj(l, h, 2), state[l])
        h = hs.copy()
    assert np.allclose(logits, plain.params["Why"] @ h + plain.params["by"][:, None], atol=1e-12)


@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_one_character_steps_match_the_sequence_forward(cell, kind):
    m, _, _, _ = block_model(cell, kind, V=6, H=5, B=1)
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 6, 7)
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(1)]
    logits, _, _ = m.forward(ids[:, None], state)
    step = Stepper(m, state)
    for t, ix in enumerate(ids):
        assert np.allclose(step(int(ix)), logits[:, t], rtol=0, atol=1e-12), t


@pytest.mark.parametrize("kind", KINDS)
def test_groups_give_one_batchs_maths_and_the_same_bits_at_any_thread_count(kind):
    m = CharModel(ModelSpec(vocab_size=30, hidden=24, layers=2, cell="minlstm", dtype="float32",
                            block=kind, mlp_ratio=2, dropout=0.3))
    m.init(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    X, Y = rng.integers(0, 30, (9, 40)), rng.integers(0, 30, (9, 40))
    groups = StreamGroups(m, 3)
    seen = []
    for n in (1, 2, 3, 1):
        groups.workers.set(n)
        loss, grads, new = groups.loss_and_grads(X, Y, m.zero_state(40), np.random.default_rng(5))
        seen.append((loss, grads.flat.copy(), [s.copy() for s in new]))
    for loss, flat, new in seen[1:]:
        assert loss == seen[0][0] and np.array_equal(flat, seen[0][1])
        assert all(np.array_equal(a, b) for a, b in zip(new, seen[0][2]))
    one_loss, one_grads, _ = m.loss_and_grads(X, Y, m.zero_state(40))    # no dropout: one batch
    g_loss, g_grads, _ = groups.loss_and_grads(X, Y, m.zero_state(40))
    assert g_loss == pytest.approx(one_loss, rel=1e-5)
    np.testing.assert_allclose(g_grads.flat, one_grads.flat, rtol=1e-3, atol=1e-6)


def test_a_trace_shows_the_cells_units():
    m = CharModel(ModelSpec(vocab_size=6, hidden=5, layers=2, cell="mingru", block="mlp",
                            dtype="float64"))
    m.init(np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, 6, 12)
    tr = trace(m, ids, chunk=5)
    logits, (caches, _, _), _ = m.forward(ids[:, None], m.zero_state(1))
    assert np.allclose(tr.logits, logits.T, atol=1e-12)       # the model's own predictions
    h1 = m.cells[1].record(caches[1][1])["h"][:, :, 0]
    assert np.allclose(tr.h[1], h1, atol=1e-12)               # the cell's h, not the stream v


def losses_with_a_nudge(m, ids, targets, state, nudge):
    """Each step's loss for one stream, run one character at a time through cells and blocks;
    nudge = (layer, step, delta) adds delta to that layer's h right after that step."""
    state, losses = [s.copy() for s in state], []
    for t, ix in enumerate(ids):
        u = None
        for l, (cell, block) in enumerate(zip(m.cells, m.blocks)):
            p = m.layer_params[l]
            Wx, b = (p[k] for k in cell.input_keys)
            x = Wx[:, ix] if l == 0 else Wx @ block.cell_input(p, u[:, None])[:, 0]
            cell.step(p, x + b, state[l])
            if nudge[:2] == (l, t):
                state[l][0] += nudge[2]
            u = block.output(p, None if l == 0 else u[:, None], state[l][0][:, None])[:, 0].copy()
        v = m.top_norm.forward(u[:, None], m.params["gamma"], m.params["beta"])[:, 0]
        y = m.params["Why"] @ v + m.params["by"]
        y = y - y.max()
        losses.append(np.log(np.exp(y).sum()) - y[targets[t]])
    return np.array(losses)


@pytest.mark.parametrize("cell", ["mingru", "lstm"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_gradient_through_time_follows_the_blocks(cell, kind):
    """∂L_s/∂h^l_t of every layer, step and unit against centred differences of a nudged h."""
    m, x, y, state = block_model(cell, kind, layers=2, B=2, T=4)
    T, B, H, eps = 4, 2, 4, 3e-4        # (at 1e-3 the stencil's h⁴ error reached 1.6e-6: lstm, residual)
    grads, steps = state_gradients(m, x, y, state)
    worst = 0.0
    for b in range(B):
        start = [s[:, :, b] for s in state]
        for l in range(2):
            for t in range(T):
                for i in range(H):
                    f = {}
                    for k in (-2, -1, 1, 2):
                        delta = np.zeros(H)
                        delta[i] = k * eps
                        f[k] = losses_with_a_nudge(m, x[:, b], y[:, b], start, (l, t, delta))
                    num = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * eps)
                    for j, s in enumerate(steps):
                        a = grads[l, j, t, b, i]
                        assert s >= t or a == 0
                        worst = max(worst, abs(a - num[s]) / max(abs(a) + abs(num[s]), 1e-5))
    assert worst < 1e-6


def test_a_layer_computes_the_equations_of_the_module_docstring():
    m = CharModel(ModelSpec(vocab_size=6, hidden=5, layers=2, cell="minlstm", block="mlp",
                            mlp_ratio=2, dtype="float64"))
    rng = np.random.default_rng(4)
    for name, v in m.params.items():
        v[...] = rng.normal(1.0 if "gamma" in name else 0.0, 0.5, v.shape)
    p, u, h = m.layer_params[1], rng.normal(0, 1, (5, 8)), rng.normal(0, 1, (5, 8))

    def LN(x, gamma, beta):
        return gamma[:, None] * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + blocks.EPS) + beta[:, None]

    block = m.blocks[1]
    assert np.allclose(block.cell_input(p, u), LN(u, p["gamma1"], p["beta1"]), atol=1e-12)
    r = u + h
    z = p["W1"] @ LN(r, p["gamma2"], p["beta2"]) + p["b1"][:, None]
    v = r + p["W2"] @ np.maximum(z, 0) + p["b2"][:, None]
    assert (z < 0).any() and np.allclose(block.output(p, u, h), v, atol=1e-12)
    assert m.blocks[0].cell_input(p, u) is u                  # the first layer reads characters


def test_dropout_acts_on_the_branches_and_never_on_the_stream():
    m = CharModel(ModelSpec(vocab_size=6, hidden=8, layers=2, cell="mingru", block="residual",
                            dropout=0.5, dtype="float64"))
    m.init(np.random.default_rng(0))
    x = np.random.default_rng(1).integers(0, 6, (5, 3))
    _, (caches, masks, top), _ = m.forward(x, m.zero_state(3), np.random.default_rng(2))
    h = [cell.record(c[1])["h"].transpose(1, 0, 2).reshape(8, -1) for cell, c in zip(m.cells, caches)]
    v = masks[0] * h[0] + masks[1] * h[1]                     # v¹ = d(h⁰) + d(h¹): nothing else dropped
    expect = (v - v.mean(axis=0)) / np.sqrt(v.var(axis=0) + blocks.EPS)   # the last norm, γ 1, β 0
    assert len(masks) == 2 and (masks[0] == 0).any() and np.allclose(top, expect, atol=1e-12)

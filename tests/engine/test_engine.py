"""The engine's maths: gradients against centred differences, learning, sampling, optimizers, and
what dropout and DropConnect do (and where they are absent)."""


import numpy as np
import pytest

from kafkarnn.engine import model as model_module
from kafkarnn.engine.cells import NAMES, cell_class
from kafkarnn.engine.gradcheck import max_relative_error
from kafkarnn.engine.model import CharModel, ModelSpec
from kafkarnn.engine.optim import Adagrad, Adam, clip_elementwise, clip_global_norm
from kafkarnn.engine.sampling import draw, gumbel_noise, next_distribution, sample


def tiny_model(cell, layers=1, seed=0, V=5, H=4):
    m = CharModel(ModelSpec(vocab_size=V, hidden=H, layers=layers, cell=cell, dtype="float64"))
    rng = np.random.default_rng(seed)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.5, v.shape)   # big enough that no gradient is trivially tiny
    return m, rng


@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("layers,batch", [(1, 1), (2, 1), (1, 3), (2, 3)])
@pytest.mark.parametrize("reduction", ["mean", "seq-sum"])
def test_gradients_match_centred_differences(cell, layers, batch, reduction):
    m, rng = tiny_model(cell, layers, seed=layers * 10 + batch)
    T = 3
    x, y = rng.integers(0, 5, (T, batch)), rng.integers(0, 5, (T, batch))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(batch)]   # nonzero carried state
    errors = max_relative_error(m, x, y, state, reduction=reduction)
    assert set(errors) == set(m.params)                                   # every parameter checked
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cell", NAMES)
def test_gradients_with_dropout_and_weight_drop_match_centred_differences(cell):
    m = CharModel(ModelSpec(vocab_size=5, hidden=4, layers=2, cell=cell, dropout=0.3,
                            weight_drop=0.4, dtype="float64"))
    rng = np.random.default_rng(7)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.5, v.shape)
    x, y = rng.integers(0, 5, (3, 2)), rng.integers(0, 5, (3, 2))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(2)]
    errors = max_relative_error(m, x, y, state, mask_seed=3)      # the same masks every time
    assert max(errors.values()) < 1e-6, errors
    plain = max_relative_error(m, x, y, state, mask_seed=None, names=["Why"])
    masked_loss = m.loss_and_grads(x, y, state, rng=np.random.default_rng(3))[0]
    assert masked_loss != m.loss_and_grads(x, y, state)[0] and plain["Why"] < 1e-6   # masks act


@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
def test_input_rows_gathered_step_by_step_give_the_same_loss_and_gradients(cell, batch, monkeypatch):
    m, rng = tiny_model(cell, layers=2, seed=batch)
    x, y = rng.integers(0, 5, (4, batch)), rng.integers(0, 5, (4, batch))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(batch)]
    loss, grads, new_state = m.loss_and_grads(x, y, state)
    monkeypatch.setattr(model_module, "GATHER_ALL_BYTES", 0)       # big corpora's path: per step
    loss2, grads2, new_state2 = m.loss_and_grads(x, y, state)
    assert loss2 == loss and np.array_equal(grads2.flat, grads.flat)
    assert all(np.array_equal(a, b) for a, b in zip(new_state, new_state2))
    assert max(max_relative_error(m, x, y, state).values()) < 1e-6


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_a_teachers_soft_targets_give_the_gradients_of_their_mixture_of_targets(cell):
    # cross-entropy is linear in its target: the gradients for (1 − α)·onehot(y) + α·q, with q
    # half r1 and half r2, are (1 − α)·g(y) + α/2·g(r1) + α/2·g(r2); the loss stays y's own
    m, rng = tiny_model(cell, layers=2)
    x, y, r1, r2 = (rng.integers(0, 5, (4, 3)) for _ in range(4))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(3)]
    q = 0.5 * np.eye(5)[r1] + 0.5 * np.eye(5)[r2]                  # (T, B, V)
    gy, g1, g2 = (m.loss_and_grads(x, t, state)[1].flat.copy() for t in (y, r1, r2))
    loss, grads, _ = m.loss_and_grads(x, y, state, teacher=(0.3, q))
    np.testing.assert_allclose(grads.flat, 0.7 * gy + 0.15 * g1 + 0.15 * g2, rtol=1e-9, atol=1e-12)
    assert loss == m.loss_and_grads(x, y, state)[0]


def test_gradient_check_catches_a_wrong_gradient(monkeypatch):
    m, rng = tiny_model("lstm")
    x, y = rng.integers(0, 5, (3, 1)), rng.integers(0, 5, (3, 1))
    real = CharModel.loss_and_grads

    def off_by_a_little(self, *a, **k):
        loss, grads, s = real(self, *a, **k)
        grads["l0.Wh"] *= 1.001
        return loss, grads, s

    monkeypatch.setattr(CharModel, "loss_and_grads", off_by_a_little)
    errors = max_relative_error(m, x, y, m.zero_state(1))
    assert errors["l0.Wh"] > 1e-4 and errors["Why"] < 1e-6


@pytest.mark.parametrize("cell", NAMES)
def test_learns_a_periodic_text(cell):
    text = "the clerk waits at the door. " * 8
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    m = CharModel(ModelSpec(vocab_size=len(chars), hidden=32, cell=cell, dtype="float64"))
    rng = np.random.default_rng(1)
    m.init(rng)
    opt = Adam(m.params.flat)
    B, T = 4, 16
    starts = np.arange(B) * (len(ids) // B)
    state = m.zero_state(B)
    for it in range(300):
        pos = (starts + it * T) % (len(ids) - T - 1)
        idx = pos[None, :] + np.arange(T)[:, None]
        loss, grads, state = m.loss_and_grads(ids[idx], ids[idx + 1], state)
        clip_global_norm(grads.flat, 5.0)
        opt.step(m.params.flat, grads.flat, 1e-2)
        state = m.zero_state(B) if it % 8 == 7 else state
    assert loss < 0.05, loss


def test_sampling_is_reproducible_and_greedy_is_deterministic():
    m = CharModel(ModelSpec(vocab_size=7, hidden=8, cell="gru"))
    m.init(np.random.default_rng(0))
    a, pa = sample(m, [1, 2], 30, np.random.default_rng(5), temperature=1.0)
    b, pb = sample(m, [1, 2], 30, np.random.default_rng(5), temperature=1.0)
    c, _ = sample(m, [1, 2], 30, np.random.default_rng(6), temperature=1.0)
    assert np.array_equal(a, b) and np.allclose(pa, pb) and not np.array_equal(a, c)
    g1, _ = sample(m, [1, 2], 20, np.random.default_rng(1), temperature=0)
    g2, _ = sample(m, [1, 2], 20, np.random.default_rng(2), temperature=0)
    assert np.array_equal(g1, g2)
    assert ((pa > 0) & (pa <= 1)).all()


def test_top_k_and_temperature():
    logits = np.array([0.0, 1.0, 2.0, 3.0])
    p = next_distribution(logits, 1.0, top_k=2)
    assert p[0] == 0 and p[1] == 0 and p[2] > 0 and p[3] > p[2]
    assert np.isclose(p.sum(), 1.0)
    cold, hot = next_distribution(logits, 0.1, None), next_distribution(logits, 10.0, None)
    assert cold[3] > 0.99 and hot[3] < 0.35
    assert np.isfinite(next_distribution(np.array([1e4, -1e4]), 1e-3, None)).all()  # max-shifted


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.6, None), (2.0, 2)])
def test_draws_follow_the_softmax_they_stand_for(temperature, top_k):
    # the Gumbel-max draw must pick each index as often as next_distribution says: within five
    # standard deviations of the expected count in 40,000 draws (a wrong scale of the noise, or
    # a crop that lets a cut index through, is off by dozens)
    logits = np.array([0.0, 1.0, 2.0, 3.0, 0.5], dtype=np.float32)
    n = 40_000
    noise, scratch = gumbel_noise(np.random.default_rng(3), n, len(logits), temperature), np.empty(5)
    counts = np.bincount([draw(logits, noise[i], top_k, scratch) for i in range(n)], minlength=5)
    p = next_distribution(logits, temperature, top_k)
    assert np.all(np.abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9), (counts, n * p)
    if top_k:
        assert counts[[0, 1, 4]].sum() == 0


def test_distributions_of_many_rows_match_one_row_at_a_time():
    rows = np.random.default_rng(0).normal(0, 3, (6, 9)).astype(np.float32)
    for temperature, top_k in [(1.0, None), (0.5, 3), (1e-9, None)]:
        together = next_distribution(rows, temperature, top_k)
        one_by_one = np.stack([next_distribution(r, temperature, top_k) for r in rows])
        assert np.allclose(together, one_by_one, rtol=1e-12, atol=0)


def test_sampled_probabilities_are_those_of_the_drawn_characters():
    m, _ = tiny_model("lstm", V=6, H=5)
    ids, probs = sample(m, [1, 2, 3], 12, np.random.default_rng(4), temperature=0.8, top_k=4)
    logits, _, _ = m.forward(np.array([1, 2, 3] + list(ids[:-1]))[:, None], m.zero_state(1))
    expected = next_distribution(logits[:, 2:].T, 0.8, 4)[np.arange(12), ids]
    assert np.allclose(probs, expected, rtol=1e-9, atol=0) and (probs > 0).all()


def test_adagrad_matches_the_seed_update():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    opt = Adagrad(p)
    opt.step(p, g, 0.1)
    m = 0.5 ** 2, 0.25 ** 2
    assert np.allclose(p, [1 - 0.1 * 0.5 / np.sqrt(m[0] + 1e-8), -2 - 0.1 * 0.25 / np.sqrt(m[1] + 1e-8)])


def test_adam_first_step_moves_each_weight_by_lr():
    p = np.array([1.0, -2.0, 3.0])
    opt = Adam(p, weight_decay=0.5, decay_mask=np.array([1.0, 1.0, 0.0]))
    opt.step(p, np.array([0.3, -4.0, 1e-3]), 0.01)
    # bias-corrected first step is lr·sign(g); decay shrinks only the masked entries
    assert np.allclose(p, [1 - 0.005 - 0.01, -2 + 0.01 + 0.01, 3 - 0.01], atol=1e-6)


def test_clipping():
    g = np.array([10.0, -7.0, 1.0])
    clip_elementwise(g, 5)
    assert g.tolist() == [5.0, -5.0, 1.0]
    g = np.array([3.0, 4.0, 0.0])
    assert clip_global_norm(g, 1.0) == pytest.approx(5.0)
    assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("cell", NAMES)
def test_one_character_steps_match_the_sequence_forward(cell):
    from kafkarnn.engine.sampling import Stepper
    m, rng = tiny_model(cell, layers=2, V=6, H=5)
    ids = rng.integers(0, 6, 7)
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(1)]
    logits, _, _ = m.forward(ids[:, None], state)            # (V, T): the whole sequence at once
    step = Stepper(m, state)
    for t, ix in enumerate(ids):
        assert np.allclose(step(int(ix)), logits[:, t], rtol=0, atol=1e-12), t


# ---- dropout and DropConnect: what the masks do, and where they are not ----------------------

def dropout_model(cell="rnn", layers=1, dropout=0.0, weight_drop=0.0, V=10, H=64, seed=0):
    m = CharModel(ModelSpec(vocab_size=V, hidden=H, layers=layers, cell=cell, dropout=dropout,
                            weight_drop=weight_drop, dtype="float64"))
    m.init(np.random.default_rng(seed))
    return m


def twin_without_dropout(m):
    """The same parameters in a model that has no dropout and no DropConnect at all."""
    s = m.spec
    twin = CharModel(ModelSpec(vocab_size=s.vocab_size, hidden=s.hidden, layers=s.layers,
                               cell=s.cell, dtype=s.dtype))
    twin.params.flat[...] = m.params.flat
    return twin


def assert_dropped(dropped, kept_from, p):
    """dropped is kept_from with a share p of its entries zeroed and the rest scaled by 1/(1-p)."""
    assert (kept_from != 0).all()                       # so a zero in dropped is a drop
    zero = dropped == 0
    assert abs(zero.mean() - p) < 0.02, zero.mean()
    assert np.allclose(dropped[~zero], kept_from[~zero] / (1 - p), rtol=1e-12, atol=0)


@pytest.mark.parametrize("p", [0.3, 0.6])
def test_dropout_zeroes_a_share_p_and_scales_what_it_keeps_by_1_over_1_minus_p(p):
    # 20 steps × 16 streams × 64 units: the share of zeros is p within 0.02 (six standard deviations)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 10, (20, 16))
    for layers in (1, 2):
        m = dropout_model(layers=layers, dropout=p)
        state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(16)]
        _, (caches, _, top), _ = m.forward(x, state)          # no rng: nothing dropped
        plain = np.array(caches[1][0] if layers == 2 else top)  # copies: buffers are reused
        logits, (caches, _, top), _ = m.forward(x, state, np.random.default_rng(2))
        if layers == 2:                                       # between the layers
            assert_dropped(np.array(caches[1][0]), plain, p)
        else:                                                 # before the output
            assert_dropped(top, plain, p)
            assert np.allclose(logits, m.params["Why"] @ top + m.params["by"][:, None])


@pytest.mark.parametrize("cell", [n for n in NAMES if cell_class(n).recurrent_key])
def test_dropconnect_runs_the_cell_on_one_masked_matrix_at_every_time_step(cell):
    q, T, B = 0.4, 6, 3
    m = dropout_model(cell, weight_drop=q, V=7, H=32)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 7, (T, B))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(B)]
    _, (caches, _, top), _ = m.forward(x, state, np.random.default_rng(4))
    top = np.array(top)                                       # (H, T·B), columns in (t, b) order
    cell_, key = m.cells[0], m.cells[0].recurrent_key
    used = caches[0][2]                                       # the parameters the cell ran on
    W = m.params[f"l0.{key}"]
    zero = used[key] == 0
    assert abs(zero.mean() - q) < 0.06, zero.mean()           # ≥ 1,024 entries: four deviations
    assert np.allclose(used[key][~zero], W[~zero] / (1 - q), rtol=1e-12, atol=0)
    for k, v in used.items():
        if k != key:
            assert v is m.layer_params[0][k], k               # only the recurrent matrix is dropped
    # replay every step of every stream through the one-step path on that one masked matrix:
    # a new mask at any time step would make the outputs differ from there on
    Wx, b = (used[k] for k in cell_.input_keys)
    for on, same in ((used, True), (m.layer_params[0], False)):
        replay = np.empty_like(top)
        for s in range(B):
            st = state[0][:, :, s].copy()                     # (S, H)
            for t in range(T):
                cell_.step(on, Wx[:, x[t, s]] + b, st)
                replay[:, t * B + s] = st[0]
        assert np.allclose(replay, top, rtol=0, atol=1e-12) == same
    # and each training pass draws its own mask
    _, (again, _, _), _ = m.forward(x, state, np.random.default_rng(5))
    assert not np.array_equal(again[0][2][key], used[key])


@pytest.mark.parametrize("dropout,weight_drop", [(0.3, 0.0), (0.0, 0.3), (0.3, 0.3)])
def test_training_passes_are_dropped_and_validation_passes_are_not(dropout, weight_drop):
    m = dropout_model("gru", layers=2, dropout=dropout, weight_drop=weight_drop, V=8, H=16)
    twin = twin_without_dropout(m)
    rng = np.random.default_rng(6)
    x, y = rng.integers(0, 8, (12, 4)), rng.integers(0, 8, (12, 4))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(4)]

    def train_loss(seed, model=m):
        return model.loss_and_grads(x, y, state, rng=np.random.default_rng(seed))[0]

    assert train_loss(1) == train_loss(1) and train_loss(1) != train_loss(2)   # masks, drawn from rng
    assert train_loss(1, twin) == train_loss(2, twin)          # no dropout configured: rng unused
    plain = twin.loss_and_grads(x, y, state)[0]
    assert m.loss_and_grads(x, y, state)[0] == plain            # no rng: no masks
    nll, _ = m.nll(x, y, state)                                 # what validation runs
    assert nll == pytest.approx(plain * x.size, rel=1e-12) and nll == twin.nll(x, y, state)[0]


def test_sampling_never_drops():
    m = dropout_model("lstm", layers=2, dropout=0.5, weight_drop=0.5, V=9, H=16)
    twin = twin_without_dropout(m)
    prompt = [1, 4, 2]
    greedy = [sample(m, prompt, 15, np.random.default_rng(s), temperature=0)[0] for s in (1, 2)]
    assert np.array_equal(greedy[0], greedy[1])
    ids = list(prompt)
    for _ in range(15):                                       # argmax continuation, no dropout
        logits, _, _ = twin.forward(np.array(ids)[:, None], twin.zero_state(1))
        ids.append(int(logits[:, -1].argmax()))
    assert list(greedy[0]) == ids[3:]
    for seed in (1, 2):            # the probability of each drawn character is the twin's
        drawn, probs = sample(m, prompt, 15, np.random.default_rng(seed), temperature=1.0)
        logits, _, _ = twin.forward(np.array(prompt + list(drawn[:-1]))[:, None], twin.zero_state(1))
        expected = next_distribution(logits[:, 2:].T, 1.0, None)[np.arange(15), drawn]
        assert np.allclose(probs, expected, rtol=1e-9, atol=0)

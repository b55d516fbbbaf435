"""Looking inside: traces, gradient through time, saturation, unit ranking, guesses, score."""

import json

import numpy as np
import pytest

from kafkarnn.engine.cells import NAMES
from kafkarnn.engine.model import CharModel, ModelSpec
from kafkarnn.engine.probe import gate_saturation, saturation, trace
from kafkarnn.engine.through_time import (gradient_through_time, source_steps,
                                          state_gradients)
from kafkarnn.engine.sampling import next_distribution, sample
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.inspect import inside
from kafkarnn.train import scoring
from kafkarnn.train.config import Config
from kafkarnn.inspect.features import (FEATURES, best_per_feature, correlations, rank_units,
                                     text_features)
from kafkarnn.inspect.inside import next_guesses
from kafkarnn.train.scoring import score_text
from kafkarnn.train.trainer import Trainer


def tiny_model(cell, layers=1, seed=0, V=5, H=4, dtype="float64"):
    m = CharModel(ModelSpec(vocab_size=V, hidden=H, layers=layers, cell=cell, dtype=dtype))
    rng = np.random.default_rng(seed)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.5, v.shape)   # big enough that no gradient is trivially tiny
    return m, rng


def step_by_step(m, ids, targets, state, nudge=None):
    """A reference forward for one stream from each cell's step(): per step the loss of that
    step's character alone, and every layer's h. nudge = (layer, step, delta) adds delta to that
    layer's h right after that step, before anything reads it."""
    state = [s.copy() for s in state]
    losses, hs = [], []
    for t, ix in enumerate(ids):
        x, row = None, []
        for l, cell in enumerate(m.cells):
            p = m.layer_params[l]
            Wx, b = (p[k] for k in cell.input_keys)
            cell.step(p, (Wx[:, ix] if l == 0 else Wx @ x) + b, state[l])
            if nudge is not None and nudge[:2] == (l, t):
                state[l][0] += nudge[2]
            x = state[l][0].copy()
            row.append(state[l].copy())
        y = m.params["Why"] @ x + m.params["by"]
        y = y - y.max()
        losses.append(np.log(np.exp(y).sum()) - y[targets[t]])
        hs.append(row)
    return np.array(losses), hs


# -- the engine: gradient through time --------------------------------------------------------

@pytest.mark.parametrize("cell", NAMES)
@pytest.mark.parametrize("layers", [1, 2])
def test_state_gradients_match_centred_differences_of_a_nudged_state(cell, layers):
    m, rng = tiny_model(cell, layers, seed=layers)
    T, B, H, eps = 4, 2, 4, 1e-3
    x, y = rng.integers(0, 5, (T, B)), rng.integers(0, 5, (T, B))
    state = [rng.normal(0, 0.5, s.shape) for s in m.zero_state(B)]     # nonzero carried state
    grads, steps = state_gradients(m, x, y, state)
    assert list(steps) == [3, 2, 1, 0]
    worst = 0.0
    for b in range(B):
        start = [s[:, :, b] for s in state]
        for l in range(layers):
            for t in range(T):
                for i in range(H):
                    f = {}
                    for k in (-2, -1, 1, 2):                    # the stencil of gradcheck.py
                        delta = np.zeros(H)
                        delta[i] = k * eps
                        f[k] = step_by_step(m, x[:, b], y[:, b], start, (l, t, delta))[0]
                    num = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * eps)   # dL_s/dh^l_t[i], all s
                    for j, s in enumerate(steps):
                        a = grads[l, j, t, b, i]
                        assert s >= t or (a == 0 and abs(num[s]) < 1e-12)   # nor on a later state
                        worst = max(worst, abs(a - num[s]) / max(abs(a) + abs(num[s]), 1e-5))
    assert worst < 1e-6


@pytest.mark.parametrize("cell", NAMES)
def test_gradient_through_time_is_the_mean_norm_over_streams_and_steps(cell):
    m, rng = tiny_model(cell, layers=2, seed=5)
    T, B = 6, 3
    x, y = rng.integers(0, 5, (T, B)), rng.integers(0, 5, (T, B))
    grads, steps = state_gradients(m, x, y)
    norms = np.linalg.norm(grads, axis=-1)                   # (L, S, T, B)
    expect = np.zeros((2, T))
    for k in range(T):
        expect[:, k] = np.mean([norms[:, j, s - k] for j, s in enumerate(steps) if s >= k],
                               axis=(0, 2))
    assert np.allclose(gradient_through_time(m, x, y), expect, rtol=1e-12)
    # some source steps only: the same mean over those
    some = gradient_through_time(m, x, y, sources=[5, 2])
    assert np.allclose(some[:, 1], np.mean([norms[:, 0, 4], norms[:, 3, 1]], axis=(0, 2)))
    assert np.allclose(some[:, 5], norms[:, 0, 0].mean(axis=1)) and np.all(some[:, 3:] > 0)


def test_source_steps_are_spread_evenly_and_end_at_the_last_step():
    assert list(source_steps(8)) == [7, 6, 5, 4, 3, 2, 1, 0]
    assert list(source_steps(8, 4)) == [7, 5, 3, 1]
    assert list(source_steps(8, 20)) == list(source_steps(8))
    assert list(source_steps(8, [1, 6, 6])) == [6, 1]
    with pytest.raises(ValueError):
        source_steps(8, [8])


def test_vanishing_gradients_are_followed_far_below_float32s_smallest_number():
    m64, rng = tiny_model("rnn", layers=1, seed=2, H=6)
    m64.params["l0.Whh"][...] *= 0.02                        # h_{t-1} hardly matters: fast decay
    m32 = CharModel(ModelSpec(vocab_size=5, hidden=6, layers=1, cell="rnn", dtype="float32"))
    m32.params.flat[...] = m64.params.flat
    x, y = rng.integers(0, 5, (40, 2)), rng.integers(0, 5, (40, 2))
    g64, g32 = gradient_through_time(m64, x, y), gradient_through_time(m32, x, y)
    assert g64[0, -1] < 1e-60                                # far below float32's 1e-45
    assert np.allclose(g32, g64, rtol=1e-4, atol=0)


# -- the engine: traces and saturation --------------------------------------------------------

@pytest.mark.parametrize("cell", NAMES)
def test_trace_is_the_models_forward_and_its_states(cell):
    m, rng = tiny_model(cell, layers=2, seed=3)
    ids = rng.integers(0, 5, 30)
    tr = trace(m, ids, chunk=7)                               # state carried across chunks
    logits, _, _ = m.forward(ids[:, None], m.zero_state(1))
    assert np.array_equal(tr.logits, logits.T)
    assert np.allclose(tr.probs.sum(axis=1), 1.0) and tr.probs.shape == (30, 5)
    _, ref = step_by_step(m, ids, ids, [s[:, :, 0] for s in m.zero_state(1)])
    for l in range(2):
        assert np.allclose(tr.h[l], [r[l][0] for r in ref], atol=1e-12)
        if cell == "lstm":
            assert np.allclose(tr.c[l], [r[l][1] for r in ref], atol=1e-12)
    g = tr.gates[1]
    if cell == "lstm":                                        # c_t = f⊙c_{t-1} + i⊙g
        c_prev = np.vstack([np.zeros((1, 4)), tr.c[1][:-1]])
        assert np.allclose(tr.c[1], g["f"] * c_prev + g["i"] * g["g"])
    if cell == "gru":                                         # h_t = (1-z)⊙n + z⊙h_{t-1}
        h_prev = np.vstack([np.zeros((1, 4)), tr.h[1][:-1]])
        assert np.allclose(tr.h[1], (1 - g["z"]) * g["n"] + g["z"] * h_prev)
    if cell in ("mingru", "minlstm"):                        # h_t = a_t⊙h_{t-1} + b_t, a from the input
        h_prev = np.vstack([np.zeros((1, 4)), tr.h[1][:-1]])
        a, b = (1 - g["z"], g["z"]) if cell == "mingru" else (g["f"], g["i"])
        assert np.allclose(tr.h[1], a * h_prev + b * g["ht"])
    assert sorted(g) == {"rnn": [], "lstm": ["f", "g", "i", "o"], "gru": ["n", "r", "z"],
                         "mingru": ["ht", "z"], "minlstm": ["f", "ht", "i"]}[cell]
    assert (tr.c is not None) == (cell == "lstm")


def test_saturation_counts_the_share_below_and_above_the_thresholds():
    a = np.array([[0.05, 0.5, 0.95],
                  [0.05, 0.95, 0.5],
                  [0.5, 0.99, 0.01],
                  [0.1, 0.9, 0.95]])                           # 0.1 and 0.9 themselves count as neither
    low, high = saturation(a)
    assert list(low) == [0.5, 0.0, 0.25] and list(high) == [0.0, 0.5, 0.5]
    m, rng = tiny_model("lstm", seed=1)
    sat = gate_saturation(trace(m, rng.integers(0, 5, 20)))
    assert sorted(sat[0]) == ["f", "i", "o"]
    f = sat[0]["f"]
    assert f["low"] == pytest.approx(f["units_low"].mean()) and 0.0 <= f["high"] <= 1.0
    m, rng = tiny_model("rnn", seed=1)
    assert gate_saturation(trace(m, rng.integers(0, 5, 20))) == [{}]


# -- the training layer: features and the unit ranking ----------------------------------------

def marks(values) -> str:
    return "".join("1" if v else "." for v in values)


def test_text_features_on_a_hand_made_line():
    text = 'He said "go (now)." Don\'t\n  ‘x’ 42'
    f = text_features(text)
    assert set(f) == set(FEATURES)
    expect = {                 # He said "go (now)." Don't⏎  ‘x’ 42
        "in_quotes":            "........1111111111................",
        "in_single_quotes":     "............................11....",
        "in_brackets":          "............1111..................",
        "word_start":           "1..1.....1...1......1...1....1..1.",
        "in_word":              "11.1111..11..111....111.1....1..11",
        "after_full_stop":      ".................111..............",
        "digit":                "................................11",
    }
    for name, want in expect.items():
        assert marks(f[name]) == want, name
    counts = {                 # He said "go (now)." Don't⏎  ‘x’ 42
        "line_position":        "1234567890123456789012345012345678",   # mod 10
        "indent":               "0000000000000000000000000012222222",
        "word_position":        "1201234001200123000012301000010012",
    }
    for name, want in counts.items():
        assert "".join(str(int(v) % 10) for v in f[name]) == want, name


def test_apostrophes_are_not_quotation_marks():
    text = "‘The dog’s bone,’ she said; ‘don’t.’ The dogs’ bones. 'It's fine,' he said"
    want = "1111111111111111............1111111...................11111111111........."
    assert marks(text_features(text)["in_single_quotes"]) == want
    # a quotation running on opens again after a blank line: the straight mark there opens
    assert marks(text_features('"a\n\n"b"c')["in_quotes"]) == "111.11.."


def quoted_digits(n, seed):
    """Letters and spaces outside quotation marks, digits and spaces inside: after a space only
    a unit that remembers whether a quotation is open can tell which comes next."""
    rng = np.random.default_rng(seed)
    parts, size = [], 0
    while size < n:
        outside = "".join(rng.choice(list("abcdefgh    "), rng.integers(4, 16)))
        inside = "".join(rng.choice(list("01234567    "), rng.integers(4, 16)))
        parts += [outside, '"', inside, '"']
        size += len(outside) + len(inside) + 2
    return "".join(parts)[:n]


def test_a_unit_that_tracks_quotation_marks_is_ranked_first():
    text = quoted_digits(25000, seed=0)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    t = Trainer(Config(model="lstm", hidden=16, batch=16, seq_len=32, lr=1e-2, lr_min=1e-2),
                vocab, ids[:22000], ids[22000:])
    for _ in range(400):
        t.step()
    val = quoted_digits(2000, seed=1)
    ranking = rank_units(trace(t.model, vocab.encode(val)), val)
    first = ranking[0]
    assert first["feature"] == "in_quotes" and abs(first["correlation"]) > 0.9, ranking[:3]
    assert best_per_feature(ranking)["in_quotes"] is first
    assert [abs(e["correlation"]) for e in ranking] == sorted((abs(e["correlation"]) for e in ranking),
                                                              reverse=True)
    assert {"in_single_quotes", "in_brackets"}.isdisjoint(e["feature"] for e in ranking)  # constant here
    assert len(ranking) == 2 * 16 * len({e["feature"] for e in ranking})   # h and c of every unit


def test_correlations_are_pearsons_and_zero_for_a_unit_that_never_moves():
    rng = np.random.default_rng(0)
    a, f = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    a[:, 2] = 0.7
    r = correlations(a, f)
    assert r[0, 1] == pytest.approx(np.corrcoef(a[:, 0], f[:, 1])[0, 1]) and r[2, 0] == 0.0


# -- the training layer: guesses, score, clipping, the whole view ------------------------------

def test_guesses_and_their_probabilities_are_the_samplers():
    m, rng = tiny_model("gru", layers=2, seed=4, V=9, H=6)
    vocab = Vocab("abcdefghi")
    prompt = vocab.encode("abcab").astype(np.intp)
    ids, probs = sample(m, prompt, 20, np.random.default_rng(1), temperature=1.0)
    text = vocab.decode(np.concatenate([prompt, ids]))
    tr = trace(m, vocab.encode(text))
    g = next_guesses(tr, vocab, text)
    # the probability each drawn character had: the sampler's, and the surprise is its -log
    at = np.arange(len(prompt) - 1, len(text) - 1)
    assert np.allclose(tr.probs[at, ids], probs, rtol=1e-10)
    assert np.allclose(g.surprise[at], -np.log(probs), rtol=1e-10) and np.isnan(g.surprise[-1])
    for t in range(len(text)):
        p = next_distribution(tr.logits[t], 1.0, None)
        assert np.array_equal(tr.probs[t], p)
        top5 = next_distribution(tr.logits[t], 1.0, 5)          # the sampler's top-k crop
        assert set(np.flatnonzero(top5)) == set(g.ids[t])
        assert np.allclose(top5[g.ids[t]], g.probs[t] / g.probs[t].sum())
        assert list(g.probs[t]) == sorted(g.probs[t], reverse=True)
    assert g.top(0)[0] == (vocab.chars[g.ids[0, 0]], g.probs[0, 0]) and len(g.top(0)) == 5


def old_evaluate(model, val, chunk=256, stream_chars=65536):
    """Trainer.evaluate as it was before score shared it: the reference."""
    n = len(val) - 1
    K = max(1, -(-n // stream_chars))
    L = n // K
    starts = np.linspace(0, len(val) - 1 - L, K).astype(np.int64)
    state, total = model.zero_state(K), 0.0
    for p in range(0, L, chunk):
        T = min(chunk, L - p)
        idx = starts + p + np.arange(T)[:, None]
        nll, state = model.nll(val[idx].astype(np.intp), val[idx + 1].astype(np.intp), state)
        total += nll
    return total / (K * L)


@pytest.mark.parametrize("streams", [1, 3])
def test_score_of_a_text_is_the_validation_loss_on_it(streams, monkeypatch):
    text = ("One morning, as Gregor Samsa was waking up from anxious dreams, he discovered "
            "that in bed he had been changed into a monstrous verminous bug.\n") * 12
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    t = Trainer(Config(model="lstm", hidden=12, batch=2, seq_len=10), vocab, ids, ids)
    for _ in range(5):
        t.step()
    stream_chars = (len(ids) - 1) // streams + 1 if streams > 1 else 65536
    monkeypatch.setattr(scoring, "VAL_STREAM_CHARS", stream_chars)
    s = score_text(t.model, vocab, text, chunk=64)
    assert s.nats_per_char == t.evaluate(chunk=64) == old_evaluate(t.model, ids, 64, stream_chars)
    assert s.bits_per_char == pytest.approx(s.nats_per_char / np.log(2))
    assert s.perplexity == pytest.approx(np.exp(s.nats_per_char))
    assert s.chars == np.isfinite(s.surprise).sum() and np.isnan(s.surprise[0])
    assert s.chars == streams * ((len(ids) - 1) // streams)             # streams of equal length
    assert np.nansum(s.surprise) / s.chars == pytest.approx(s.nats_per_char, rel=1e-6)
    if streams == 1:                      # one stream from zeros: the trace's surprise, char by char
        g = next_guesses(trace(t.model, ids), vocab, text)
        assert np.allclose(s.surprise[1:], g.surprise[:-1], rtol=1e-4)
    assert sorted(s.to_json()) == ["bits_per_char", "chars", "nats_per_char", "perplexity"]
    with pytest.raises(KafkarnnError, match="never saw"):
        score_text(t.model, vocab, "Gregor ☃")
    with pytest.raises(KafkarnnError, match="two characters"):
        score_text(t.model, vocab, "G")


def test_clipping_is_counted_and_the_norm_is_the_one_before_it():
    text = "the clerk counted the stamps, and counted them again; " * 40
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    for clip, clip_norm, all_clipped in ((0.0, 1e-6, True), (0.0, 1e6, False),
                                         (1e-6, 0.0, True), (1e6, 0.0, False), (0.0, 0.0, False)):
        t = Trainer(Config(model="rnn", hidden=8, batch=2, seq_len=6, clip=clip, clip_norm=clip_norm,
                           dtype="float64"), vocab, ids, ids[:100])
        assert t.clip_stats().steps == 0 and np.isnan(t.clip_stats().norm)
        for _ in range(3):
            inputs, targets, state = t.upcoming_batch()
            _, grads, _ = t.model.loss_and_grads(inputs, targets, state)
            t.step()
            assert t.clip_stats().norm == pytest.approx(np.linalg.norm(grads.flat), rel=1e-12)
        stats = t.clip_stats()
        assert (stats.steps, stats.clipped, len(stats.recent)) == (3, 3 if all_clipped else 0, 3)
        assert stats.clipped_share == (1.0 if all_clipped else 0.0)


def test_the_upcoming_batch_is_what_the_next_step_reads():
    text = "abcdefghij" * 30
    vocab = Vocab.from_text(text)
    t = Trainer(Config(model="gru", hidden=4, batch=4, seq_len=5), vocab, vocab.encode(text), [])
    rng, wraps = np.random.default_rng(0), 0
    for _ in range(20):                                      # 14 batches fit: one wrap to the start
        t.state = [rng.normal(size=s.shape).astype(s.dtype) for s in t.state]   # a carried state
        inputs, targets, state = t.upcoming_batch(2)
        seen = state[0].copy()
        state[0][...] = 7.0                                  # a copy: the trainer's is untouched
        wraps += t._wraps()
        x, y = t.next_batch()                                # what step() reads, and its state
        assert np.array_equal(inputs, x[:, [0, 3]]) and np.array_equal(targets, y[:, [0, 3]])
        assert np.array_equal(seen, t.state[0][:, :, [0, 3]])
    assert wraps == 1 and t.upcoming_batch()[0].shape == (5, 4)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_a_look_inside_a_live_trainer_has_everything_the_screen_needs(cell):
    text = 'The clerk said "again" (twice).\nHe counted the stamps. ' * 30
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    t = Trainer(Config(model=cell, hidden=6, layers=2, batch=3, seq_len=8, dropout=0.2), vocab,
                ids[:1200], ids[1200:])
    for _ in range(3):
        t.step()
    before = t.model.params.flat.copy()
    probe = inside.take(t, passage_chars=300, streams=2)
    assert probe.model is not t.model and probe.text.startswith("He counted") and len(probe.text) == 300
    t.step()                                                   # training goes on: the probe holds
    view = inside.look(probe, sources=4, limit=10)
    assert np.array_equal(probe.model.params.flat, before)
    assert view.gradient_through_time.shape == (2, 8) and np.all(view.gradient_through_time > 0)
    assert len(view.units) == 10 and view.best["in_quotes"]["feature"] == "in_quotes"
    assert view.trace.h[0].shape == (300, 6) and view.guesses.ids.shape == (300, 5)
    assert list(view.saturation[1]) == ([] if cell == "rnn" else ["i", "f", "o"])
    assert view.clip.steps == 3 and view.iteration == 3
    j = json.loads(json.dumps(view.to_json(), allow_nan=False))
    assert {"units", "gradient_through_time"} <= set(j) and len(j["gradient_through_time"]) == 2
    assert set(j["units"][0]) >= {"layer", "unit", "feature", "correlation"}
    values = inside.unit_values(view.trace, 1, 2, "c" if cell == "lstm" else "h")
    assert values.shape == (300,) and np.all(np.abs(values) <= 1)
    # without a trainer: windows of a text of its own
    p = inside.probe_text(t.model, vocab, text[:100], seq_len=8, streams=3)
    assert p.batch[0].shape == (8, 3) and inside.look(p).clip is None
    assert inside.look(inside.probe_text(t.model, vocab, "T", seq_len=8)).units == []
    fresh = Trainer(t.cfg, vocab, ids[:1200], ids[1200:])                  # no step yet: no norm
    assert json.loads(json.dumps(inside.look(inside.take(fresh, 50, 1)).to_json(),
                                 allow_nan=False))["clip"]["norm"] is None

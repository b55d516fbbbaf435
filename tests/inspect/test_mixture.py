"""The network and counting mixed (`kafkarnn baseline --mix`): the weight EM finds, the figures a
run's mix reports, and that mixing only reads a run."""

import hashlib
import json
import math

import numpy as np
import pytest
from conftest import TINY

from kafkarnn.inspect import mixture
from kafkarnn.main import main
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.runs.folder import Run


def two_models(n=4000, seed=0):
    """Per-character nats of two made-up models that err on different characters."""
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.2, n)
    b = np.where(rng.random(n) < 0.5, a * 0.3, a + rng.exponential(2.0, n))
    return a, b


def test_em_finds_the_weight_a_fine_grid_finds():
    a, b = two_models()
    weight = mixture.fit_weight(a, b)
    grid = np.linspace(0.001, 0.999, 999)
    best = grid[np.argmin([mixture.mixed_nats(a, b, w) for w in grid])]
    assert abs(weight - best) < 2e-3
    assert mixture.mixed_nats(a, b, weight) <= min(mixture.mixed_nats(a, b, w) for w in grid) + 1e-9
    assert mixture.mixed_nats(a, b, weight) < min(a.mean(), b.mean()) - 0.05   # they err apart


def test_a_useless_table_gets_almost_no_weight_and_the_mix_is_the_network():
    a, _ = two_models()
    uniform = np.full_like(a, math.log(80))                        # a guess among 80 characters
    bad = a + 5.0
    assert mixture.fit_weight(a, bad) > 0.99
    assert mixture.mix(a, bad, 3).nats == pytest.approx(a.mean(), abs=0.01)
    assert mixture.fit_weight(uniform + 9.0, a) < 0.01             # and the other way round


def test_cross_fitted_scores_each_half_with_the_weight_of_the_other():
    a, b = two_models()
    b[:2000] += 1.0                         # the table is worse on the first half: two weights
    got = mixture.mix(a, b, 5)
    first, second = mixture.fit_weight(a[:2000], b[:2000]), mixture.fit_weight(a[2000:], b[2000:])
    assert first > got.weight > second
    want = (mixture.mixed_nats(a[:2000], b[:2000], second) + mixture.mixed_nats(a[2000:], b[2000:], first)) / 2
    assert got.cross_fitted == pytest.approx(want, rel=1e-12)
    assert got.cross_fitted > got.nats                             # fitting on the text flatters
    assert (got.network, got.table, got.chars, got.order) == (pytest.approx(a.mean()),
                                                              pytest.approx(b.mean()), 4000, 5)


def folder_digest(run: Run) -> str:
    h = hashlib.sha256()
    for p in sorted(run.path.iterdir()):
        if p.is_file() and p.name != "lock":
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_a_runs_mix_is_of_the_weights_its_validation_describes(home, book, capsys):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "30"]) == 0
    capsys.readouterr()
    run = Run(home, "porter-rnn")
    before = folder_digest(run)
    assert main(["baseline", "--run", "porter-rnn", "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert main(["baseline", "--run", "porter-rnn", "--mix", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    mixed = got.pop("mixed")
    assert got == dict(base, seconds=got["seconds"])               # the table's part is unchanged
    _, meta = load_checkpoint(run.best_path)
    assert mixed["checkpoint"] == "best.npz" and mixed["iteration"] == meta["iteration"]
    assert mixed["network_nats_per_char"] == pytest.approx(meta["best_val_loss"], rel=1e-5)
    assert mixed["table_nats_per_char"] == pytest.approx(base["nats_per_char"], rel=1e-12)
    assert mixed["order"] == base["best_order"] and mixed["chars"] == base["val_chars"]
    assert 0 < mixed["weight"] < 1                                 # (near 0: the book repeats one line)
    assert mixed["nats_per_char"] <= min(mixed["network_nats_per_char"], mixed["table_nats_per_char"]) + 1e-9
    assert folder_digest(run) == before                            # mixing only reads the run

    assert main(["baseline", "--mix"]) == 0                        # the latest run, as a table
    out = capsys.readouterr().out
    assert f"the network of run porter-rnn (best.npz, step {meta['iteration']:,})" in out
    assert f"mixed, λ = {mixed['weight']:.2f}" in out and f"{mixed['nats_per_char']:.4f}" in out


def test_mixing_needs_a_runs_saved_network(home, book, capsys):
    assert main(["baseline", "--corpus", str(book), "--mix"]) == 2
    assert capsys.readouterr().err.strip().startswith("kafkarnn: error: --mix mixes a run's network")
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 0
    capsys.readouterr()
    run = Run(home, "porter-rnn")
    run.best_path.unlink(missing_ok=True)
    assert main(["baseline", "--mix", "--json"]) == 0              # no best yet: the checkpoint
    assert json.loads(capsys.readouterr().out)["mixed"]["checkpoint"] == "checkpoint.npz"
    run.checkpoint_path.unlink()
    assert main(["baseline", "--run", "porter-rnn", "--mix"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "kafkarnn: error: run porter-rnn has no saved network yet to mix with the table"
    assert "Traceback" not in "\n".join(err)

"""`kafkarnn baseline`, the baseline's cache, and where the baseline shows: the start line and `runs`."""

import json
import math
import stat

import numpy as np
import pytest
from conftest import TINY

from kafkarnn.main import main
from kafkarnn.train import baseline, scoring
from kafkarnn.train.corpus import load_corpus


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("kafkarnn: error: ") and "Traceback" not in "\n".join(err), err
    return err[-1]


def test_each_order_and_the_best_on_validation(home, book, capsys):
    assert main(["baseline", "--corpus", str(book), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    nats = [row["nats_per_char"] for row in got["orders"]]
    assert [row["order"] for row in got["orders"]] == list(range(1, len(nats) + 1)) and len(nats) >= 8
    assert got["best_order"] == int(np.argmin(nats)) + 1                # chosen on validation
    assert got["nats_per_char"] == min(nats)
    assert all(math.isclose(r["bits_per_char"], r["nats_per_char"] / math.log(2)) for r in got["orders"])
    corpus = load_corpus(str(book))
    train, val = corpus.split(0.1)
    assert got["train_chars"] == len(train) and got["val_chars"] == len(val) - 1 and not got["sampled"]
    model = baseline.fit(corpus, 0.1)                                   # the figures are the model's,
    assert nats[3] == pytest.approx(model.nll(val, 4)[1:].mean(), rel=1e-12)   # as validation predicts
    assert main(["baseline", "--corpus", str(book)]) == 0
    table = capsys.readouterr().out.splitlines()
    best = [line for line in table if "best" in line]
    assert len(best) == 1 and best[0].split()[0] == str(got["best_order"])
    assert f"{nats[0]:.4f}" in table[2]


def test_the_cache_is_private_keyed_by_the_text_and_read_back(home, book, capsys):
    assert main(["baseline", "--corpus", str(book), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    sha = load_corpus(str(book)).fingerprint["sha256"]
    path = baseline.cache_path(home, sha, 0.1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    record = json.loads(path.read_text())
    record["baseline"]["nats"][0] = 9.5                     # a planted value: is the cache read?
    path.write_text(json.dumps(record))
    main(["baseline", "--corpus", str(book), "--json"])
    assert json.loads(capsys.readouterr().out)["orders"][0]["nats_per_char"] == 9.5
    path.write_text("{not json")                            # a damaged cache is counted again
    main(["baseline", "--corpus", str(book), "--json"])
    assert json.loads(capsys.readouterr().out) == dict(first, seconds=pytest.approx(first["seconds"], abs=5))
    main(["baseline", "--corpus", str(book), "--json", "--val-fraction", "0.2"])
    assert json.loads(capsys.readouterr().out)["val_chars"] != first["val_chars"]
    assert baseline.cache_path(home, sha, 0.2).exists()


def test_a_big_split_is_scored_on_the_windows_validation_reads(book, monkeypatch):
    monkeypatch.setattr(scoring, "SUBSET_CHARS", 100)        # validation's fixed subset: 4 windows
    monkeypatch.setattr(scoring, "SUBSET_STREAM", 25)         # of 25 predicted characters
    corpus = load_corpus(str(book))
    _, val = corpus.split(0.1)
    got = baseline.compute(corpus, 0.1)
    assert got.val_chars == 100
    model = baseline.fit(corpus, 0.1)
    starts = np.linspace(0, len(val) - 1 - 25, 4).astype(int)
    want = np.mean([model.nll(val[s:s + 26], got.order)[1:] for s in starts])
    assert got.loss == pytest.approx(want, rel=1e-12)


def test_a_big_text_is_sampled_in_evenly_spaced_blocks(monkeypatch):
    monkeypatch.setattr(baseline, "TRAIN_SAMPLE", 800)
    monkeypatch.setattr(baseline, "SAMPLE_BLOCKS", 4)
    train = np.arange(10_000) % 251
    sample = baseline.sample_train(train)
    assert len(sample) == 800
    assert list(sample[::200]) == [train[s] for s in np.linspace(0, 10_000 - 200, 4).astype(int)]
    assert baseline.sample_train(train[:800]) is not None and len(baseline.sample_train(train[:800])) == 800


def test_headless_start_line_and_runs_show_the_baseline(home, book, capsys):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 0
    err = capsys.readouterr().err
    assert main(["baseline", "--run", "porter-rnn", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert f"n-gram baseline {got['best_order']}-gram {got['nats_per_char']:.4f} nats/char" in err
    assert main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)[0]
    assert listed["ngram_order"] == got["best_order"] and listed["ngram_loss"] == got["nats_per_char"]
    assert main(["runs"]) == 0
    assert f"{got['nats_per_char']:.3f}" in capsys.readouterr().out
    assert main(["baseline"]) == 0                          # the latest run's text
    assert "run porter-rnn's corpus" in capsys.readouterr().out


def test_a_big_text_is_counted_in_the_background(home, book, capsys, monkeypatch):
    monkeypatch.setattr(baseline, "QUICK_CHARS", 10)
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "400"]) == 0
    out = capsys.readouterr()
    assert "n-gram baseline: counting in the background" in out.err
    assert "n-gram baseline: the " in out.out                # announced once counted
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ngram_order"] is not None


@pytest.mark.parametrize("args, fragment", [
    (["--run", "x", "--corpus", "y"], "not both"),
    (["--corpus", "BOOK", "--val-fraction", "1.5"], "between 0 and 1"),
    (["--val-fraction", "0.2"], "go with --corpus"),
    (["--corpus", "/nonexistent/book.txt"], "corpus not found"),
    ([], "no saved runs"),
    (["--run", "nobody"], "no run named nobody"),
])
def test_bad_input_is_one_line(home, book, capsys, args, fragment):
    args = [str(book) if a == "BOOK" else a for a in args]
    assert main(["baseline", *args]) == 2
    assert fragment in error_line(capsys)


def test_a_text_too_short_to_split_has_no_baseline(home, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("ab")
    assert main(["baseline", "--corpus", str(short)]) == 2
    assert "too short" in error_line(capsys)


def test_score_vs_ngram_compares_the_network_with_counting(home, book, tmp_path, capsys):
    from kafkarnn.inspect.inference import load_for_sampling
    from kafkarnn.train.scoring import score_text
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "30"]) == 0
    capsys.readouterr()
    passage = tmp_path / "passage.txt"
    passage.write_text("the door was open for you alone; now I shall shut it.\nThe porter said")
    assert main(["baseline", "--run", "porter-rnn", "--json"]) == 0
    order = json.loads(capsys.readouterr().out)["best_order"]
    assert main(["score", str(passage), "--vs-ngram", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["ngram"]
    sampler, _ = load_for_sampling(home, "porter-rnn")
    text = passage.read_text()
    network = score_text(sampler.model, sampler.vocab, text).surprise
    counted = baseline.fit(load_corpus(str(book)), 0.1, order).nll(sampler.vocab.encode(text), order)
    predicted = np.isfinite(network)
    assert got["order"] == order
    assert got["nats_per_char"] == pytest.approx(counted[predicted].mean(), rel=1e-12)
    assert got["network_better"] == pytest.approx(np.mean(counted[predicted] > network[predicted]))
    assert main(["score", str(passage), "--vs-ngram"]) == 0
    out = capsys.readouterr().out
    assert f"the {order}-gram table of its text" in out and "network >1" in out


def test_each_order_is_scored_on_validation_not_on_the_training_text(tmp_path):
    # (the shared book repeats one passage, so its training and validation text read alike)
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.txt"
    path.write_text("".join(rng.choice(list("abcdefgh "), 4000)))
    corpus = load_corpus(str(path))
    got = baseline.compute(corpus, 0.1)
    _, val = corpus.split(0.1)
    model = baseline.fit(corpus, 0.1)
    starts, L = scoring.validation_streams(len(val))
    for n in (1, 4, 8):
        want = np.mean([model.nll(val[s:s + L + 1], n)[1:] for s in starts])
        assert got.nats[n - 1] == pytest.approx(want, rel=1e-12)
    assert got.order <= 2                     # on noise, long contexts only fit the training text


def test_a_text_changed_under_the_same_name_is_counted_again(home, book, capsys):
    assert main(["baseline", "--corpus", str(book), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    book.write_text(book.read_text()[::-1])                 # the same file name, another text
    assert main(["baseline", "--corpus", str(book), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["orders"] != before["orders"]
    assert len(list((home / "baselines").iterdir())) == 2  # one cache file per text

"""The copy index's cache (built once, rebuilt for a changed text, private files) and the
background Checker, and the live sample's copy check through the training session."""

import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from kafkarnn.engine.vocab import Vocab
from kafkarnn.train import copy_index
from kafkarnn.train.copy_index import CHECKING, Checker, cache_path, describe, load_or_build

SAMPLES = Path(__file__).resolve().parents[2] / "sample_texts"
TEXT = ("Gregor woke one morning from troubled dreams and found himself changed in his bed. "
        "His many legs, pitifully thin, waved about helplessly as he looked. ") * 3


def ids_of(text):
    vocab = Vocab.from_text(text)
    return vocab, vocab.encode(text)


def test_the_cache_is_built_once_then_read_back(tmp_path, monkeypatch):
    _, ids = ids_of(TEXT)
    path = cache_path(tmp_path, {"sha256": "abc"}, len(ids))
    sa, built = load_or_build(ids, path)
    assert built and path.is_file()
    calls = []
    monkeypatch.setattr(copy_index, "suffix_array", lambda x: calls.append(1))
    again, built = load_or_build(ids, path)
    assert not built and not calls and np.array_equal(again, sa)
    assert isinstance(again, np.memmap)                       # read back, not copied in


def test_a_changed_text_gets_its_own_array(tmp_path):
    vocab, ids = ids_of(TEXT)
    first = cache_path(tmp_path, {"sha256": "abc"}, len(ids))
    assert first != cache_path(tmp_path, {"sha256": "abd"}, len(ids))
    assert first != cache_path(tmp_path, {"sha256": "abc"}, len(ids) - 1)   # another split
    load_or_build(ids, first)
    _, other = ids_of(TEXT.replace("Gregor", "Grete"))
    sa, built = load_or_build(other, first)                   # a stale file of the wrong length
    assert built and len(sa) == len(other)


def test_a_damaged_cache_file_is_rebuilt(tmp_path):
    _, ids = ids_of(TEXT)
    path = cache_path(tmp_path, {"sha256": "abc"}, len(ids))
    path.parent.mkdir()
    path.write_bytes(b"not an array")
    sa, built = load_or_build(ids, path)
    assert built and np.array_equal(np.load(path), sa)


def test_the_cache_is_its_owners_alone(tmp_path):
    _, ids = ids_of(TEXT)
    path = cache_path(tmp_path / "data", {"sha256": "abc"}, len(ids))
    load_or_build(ids, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]   # no temporary file left


def test_checker_says_checking_until_its_index_is_ready(tmp_path, monkeypatch):
    vocab, ids = ids_of(TEXT)
    release = threading.Event()
    real = copy_index.suffix_array

    def slow(x):
        release.wait(10)
        return real(x)
    monkeypatch.setattr(copy_index, "suffix_array", slow)
    checker = Checker(ids, vocab, tmp_path / "sa.npy", min_len=20)
    early = checker.check(TEXT[:50])
    assert early.note == CHECKING and describe(early) == CHECKING and not early.stretches
    release.set()
    assert checker.wait(10)
    copied = checker.check(TEXT[10:60] + "zz")
    assert copied.longest == 50 and copied.stretches[0][:2] == (0, 50) and not copied.note
    assert "50 characters" in describe(copied)


def test_checker_with_characters_the_text_lacks(tmp_path):
    vocab, ids = ids_of(TEXT)
    checker = Checker(ids, vocab, tmp_path / "sa.npy", background=False)
    assert checker.check("Gregor\u00e9woke").longest == len("Gregor")


# -- the live sample, through the session -----------------------------------------------------

@pytest.fixture
def session(tmp_path):
    from kafkarnn.runs.folder import Run
    from kafkarnn.train.config import Config, check
    from kafkarnn.train.session import Session
    from kafkarnn.train.trainer import Trainer
    vocab, ids = ids_of(TEXT)
    cfg = check(Config(model="rnn", hidden=8, batch=2, seq_len=8))
    trainer = Trainer(cfg, vocab, ids[:-40], ids[-40:])
    checker = Checker(ids[:-40], vocab, tmp_path / "sa.npy", min_len=20, background=False)
    from types import SimpleNamespace

    from kafkarnn.train.launch import Launch
    launch = Launch(Run(tmp_path, "r"), None, trainer, SimpleNamespace(name="t"), False, {})
    return Session(launch, copying=checker)


def test_a_model_that_quotes_its_text_is_labelled_copying(session, monkeypatch):
    quote = TEXT[30:130]
    monkeypatch.setattr(session.trainer, "generate", lambda *a: (quote, [0.9] * len(quote)))
    session._live_sample()
    session._publish()
    copied = session.snapshot().sample_copied
    assert copied.longest == 100 and copied.stretches == ((0, 100, copied.stretches[0][2]),)
    start = copied.stretches[0][2]
    assert TEXT[start:start + 100] == quote                  # the place in the training text


def test_an_untrained_model_is_not(session):
    session._live_sample()
    session._publish()
    snap = session.snapshot()
    assert snap.sample and snap.sample_copied.longest < 20 and snap.sample_copied.stretches == ()


def test_a_really_overfit_model_copies_and_the_same_model_untrained_does_not(tmp_path):
    from kafkarnn.train.config import Config, check
    from kafkarnn.train.trainer import Trainer
    text = (SAMPLES / "the_petition.txt").read_text(encoding="utf-8")[:500]
    vocab, ids = ids_of(text)
    train, val = ids[:450], ids[450:]
    cfg = check(Config(model="lstm", hidden=64, batch=4, seq_len=32, lr=3e-2, lr_min=3e-2))
    trainer = Trainer(cfg, vocab, train, val)                 # no dropout: free to memorise
    checker = Checker(train, vocab, tmp_path / "sa.npy", min_len=20, background=False)
    rng = np.random.default_rng(0)

    def longest():
        return max(checker.check(trainer.generate("", 200, rng)[0]).longest for _ in range(3))
    assert longest() < 20
    for _ in range(100):                                      # ~14 passes through the text
        trainer.step()
    assert longest() >= 40


def test_a_text_too_big_for_numpy_says_what_to_install(tmp_path, monkeypatch):
    import sys
    from kafkarnn.train import copying
    monkeypatch.setitem(sys.modules, "pydivsufsort", None)      # as if it were not installed
    monkeypatch.setattr(copying, "NUMPY_MAX", 50)
    vocab, ids = ids_of(TEXT)
    checker = Checker(ids, vocab, tmp_path / "sa.npy", background=False)
    note = checker.check("Gregor").note
    assert "pydivsufsort" in note and not (tmp_path / "sa.npy").exists()
    small = Checker(ids[:50], vocab, tmp_path / "small.npy", background=False)
    assert small.check("Gregor").longest == 6

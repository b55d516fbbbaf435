"""Longest matches against a brute-force reference, the suffix array against sorting, stretches."""

import numpy as np
import pytest

from kafkarnn.train.copying import (CopyIndex, check, marked, prefix_doubling, stretches,
                                      suffix_array)


def brute_sa(ids):
    return sorted(range(len(ids)), key=lambda i: list(ids[i:]))


def brute_longest(text, sample, i):
    n = 0
    while i + n < len(sample) and _occurs(text, sample[i:i + n + 1]):
        n += 1
    return n


def _occurs(text, piece):
    k = len(piece)
    return any(list(text[j:j + k]) == list(piece) for j in range(len(text) - k + 1))


@pytest.mark.parametrize("alphabet,dtype", [(2, np.uint8), (4, np.uint8), (300, np.uint16)])
def test_prefix_doubling_sorts_every_suffix(alphabet, dtype):
    rng = np.random.default_rng(alphabet)
    for n in (1, 2, 7, 60):
        ids = rng.integers(0, alphabet, n).astype(dtype)
        assert list(prefix_doubling(ids)) == brute_sa(ids)


def test_a_long_repeat_is_sorted_too():
    ids = np.array([0, 1] * 40 + [1], np.uint8)            # needs many doubling rounds
    assert list(prefix_doubling(ids)) == brute_sa(ids)


def test_libdivsufsort_gives_the_same_array():
    pytest.importorskip("pydivsufsort")
    rng = np.random.default_rng(3)
    for dtype, alphabet in ((np.uint8, 3), (np.uint16, 400)):
        ids = rng.integers(0, alphabet, 500).astype(dtype)
        assert np.array_equal(suffix_array(ids), prefix_doubling(ids))


@pytest.mark.parametrize("alphabet,dtype", [(2, np.uint8), (3, np.uint8), (300, np.uint16)])
def test_longest_match_at_every_position_agrees_with_brute_force(alphabet, dtype):
    rng = np.random.default_rng(alphabet + 1)
    for _ in range(5):
        text = rng.integers(0, alphabet, 80).astype(dtype)
        sample = rng.integers(0, alphabet, 30)
        if alphabet == 300:                                  # random symbols rarely repeat: copy some
            sample[5:20] = text[40:55]
        index = CopyIndex(text, prefix_doubling(text))
        m = index.matches(sample)
        for i in range(len(sample)):
            n = brute_longest(text, sample, i)
            assert m.length[i] == n, i
            w = m.where[i]
            assert list(text[w:w + n]) == list(sample[i:i + n])  # the place is a real occurrence


def test_an_unknown_symbol_ends_every_stretch():
    text = np.array([1, 2, 3, 1, 2, 3], np.uint8)
    index = CopyIndex(text, prefix_doubling(text))
    m = index.matches([1, 2, -1, 2, 3])
    assert list(m.length) == [2, 1, 0, 2, 1]


def test_stretches_are_maximal_and_at_least_the_threshold():
    text = np.frombuffer(b"the quick brown fox jumps over the lazy dog", np.uint8)
    index = CopyIndex(text, suffix_array(text))
    sample = np.frombuffer(b"a quick brown cat jumps over the lazy hen", np.uint8).astype(int)
    got = check(index, sample, min_len=10)
    assert got.longest == len(" jumps over the lazy ")
    assert [(s, n) for s, n, _ in got.stretches] == [(1, 13), (17, 21)]
    start, n, where = got.stretches[1]
    assert bytes(text[where:where + n]) == bytes(sample[start:start + n].astype(np.uint8))
    mask = marked(len(sample), got)
    assert mask.sum() == 13 + 21 and not mask[0] and mask[1]
    assert check(index, sample, min_len=22).stretches == ()


def test_a_stretch_inside_the_previous_one_is_not_repeated():
    from kafkarnn.train.copying import Matches
    m = Matches(np.array([5, 4, 3, 6, 0]), np.zeros(5, int))
    assert stretches(m, 3) == ((0, 5, 0), (3, 6, 0))        # 1 and 2 lie inside 0's stretch


def test_a_stretch_as_long_as_the_previous_one_reaches_further():
    from kafkarnn.train.copying import Matches
    m = Matches(np.array([3, 3, 0]), np.array([4, 9, 0]))
    assert stretches(m, 3) == ((0, 3, 4), (1, 3, 9))


def test_an_unknown_symbol_matches_nothing_even_in_a_full_byte_alphabet():
    text = np.arange(256, dtype=np.uint8)                   # 255 is a symbol of this text
    index = CopyIndex(text, prefix_doubling(text))
    assert list(index.matches([254, -1, 255]).length) == [1, 0, 1]

"""Subsets follow the paper's protocol: k = int(f d), nested per seed, no repeats."""

import numpy as np
import pytest

from diffred.config import PAPER_FRACTIONS
from diffred.subsets import Basis, first_k, random_subsets, subset_size


@pytest.mark.parametrize("d", [384, 512, 1280, 2048])
def test_sizes_are_int_f_times_d(d):
    sel = random_subsets(d, PAPER_FRACTIONS, [1])
    for m in sel.members:
        assert m.k == max(1, int(m.fraction * d))


def test_nested_deterministic_no_repeats():
    a = random_subsets(1280, PAPER_FRACTIONS, [1, 2, 3])
    b = random_subsets(1280, PAPER_FRACTIONS, [1, 2, 3])
    for i in range(len(a)):
        assert np.array_equal(a.indices(i), b.indices(i))
        assert len(np.unique(a.indices(i))) == len(a.indices(i))
    for seed in (1, 2, 3):
        idx = [a.indices(i) for i, m in enumerate(a.members) if m.seed == seed]
        for small, big in zip(idx, idx[1:]):
            assert set(small) <= set(big)
    s1 = [a.indices(i) for i, m in enumerate(a.members) if m.seed == 1 and m.fraction == 0.2][0]
    s2 = [a.indices(i) for i, m in enumerate(a.members) if m.seed == 2 and m.fraction == 0.2][0]
    assert not np.array_equal(np.sort(s1), np.sort(s2))


def test_full_fraction_is_whole_layer():
    sel = random_subsets(64, [1.0], [7])
    assert sorted(sel.indices(0)) == list(range(64))


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), "x"])
def test_fraction_out_of_range_refused(bad):
    with pytest.raises(ValueError, match=r"fraction"):
        random_subsets(100, [bad], [1])


def test_zero_neurons_refused_or_clipped():
    with pytest.raises(ValueError, match="0 neurons"):
        subset_size(0.0005, 1280)
    assert subset_size(0.0005, 1280, clip=True) == 1


def test_first_k_and_transform():
    sel = first_k(10, [0.3, 1.0])
    X = np.arange(20.0).reshape(2, 10)
    b = sel.bases[0]
    assert np.array_equal(b.transform(X, 3), X[:, :3])
    with pytest.raises(ValueError, match="outside"):
        b.transform(X, 11)


def test_projection_basis():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(6, 4))
    b = Basis("projection", 0, 6, matrix=M)
    X = rng.normal(size=(5, 6))
    assert np.allclose(b.transform(X, 2), X @ M[:, :2])

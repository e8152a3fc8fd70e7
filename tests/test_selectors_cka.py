"""PCA and projection selectors, and linear CKA: known answers and invariances."""

import numpy as np
import pytest

from diffred import metrics
from diffred.probes import LogisticProbe, RidgeProbe
from diffred.subsets import principal_components, random_projections

CKA_TOL = 1e-6


def data(n=200, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d))


def test_pca_top_spans_max_variance():
    X = data()
    sel = principal_components(X, [0.25, 1.0])
    V = sel.bases[0].matrix
    assert np.allclose(V.T @ V, np.eye(12), atol=1e-5)
    Z = (X - X.mean(0)) / X.std(0)
    var = (Z @ V).var(0)
    assert np.all(np.diff(var) <= 1e-6)  # decreasing variance
    bottom = principal_components(X, [0.25], bottom=True).bases[0].matrix
    assert (Z @ bottom).var(0)[0] == pytest.approx(var[-1], rel=1e-4)


def test_pca_more_components_than_samples_refused():
    with pytest.raises(ValueError, match="principal components"):
        principal_components(data(n=5, d=12), [1.0])


def test_random_projection_kinds():
    g = random_projections(50, [0.2, 1.0], [1, 2])
    assert g.bases[0].matrix.shape == (50, 50) and not np.array_equal(g.bases[0].matrix, g.bases[1].matrix)
    a = random_projections(50, [1.0], [1], kind="authors").bases[0].matrix
    assert (a > 0).all() and np.allclose(np.linalg.norm(a, axis=0), 1, atol=1e-5)
    with pytest.raises(ValueError, match="unknown"):
        random_projections(50, [1.0], [1], kind="sparse")


def test_probes_accept_projection_selections():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    X = rng.normal(size=(400, 20)) + 4 * np.eye(3)[y] @ rng.normal(size=(3, 20))
    for sel in (principal_components(X, [0.1, 1.0]), random_projections(20, [0.5, 1.0], [1])):
        assert LogisticProbe(max_epochs=10).fit(X, y, sel).score(X, y)[-1] > 0.95
        assert RidgeProbe().fit(X, y, sel).score(X, y)[-1] > 0.95


def test_cka_axioms():
    rng = np.random.default_rng(1)
    X, Y = data(seed=1), data(seed=2)[:, :7]
    assert metrics.linear_cka(X, X) == pytest.approx(1.0, abs=CKA_TOL)
    assert metrics.linear_cka(X, Y) == pytest.approx(metrics.linear_cka(Y, X), abs=CKA_TOL)
    Q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert metrics.linear_cka(X @ Q, Y) == pytest.approx(metrics.linear_cka(X, Y), abs=CKA_TOL)
    assert metrics.linear_cka(3.7 * X, Y) == pytest.approx(metrics.linear_cka(X, Y), abs=CKA_TOL)
    assert 0 <= metrics.linear_cka(X, Y) <= 1


def test_fast_cka_equals_reference():
    X = data(n=300, d=40, seed=3)
    C = metrics.covariance(X)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.permutation(40)[:10], rng.permutation(40)[:15]
        assert metrics.cka_from_cov(C, a, b) == pytest.approx(metrics.linear_cka(X[:, a], X[:, b]), abs=CKA_TOL)
        assert metrics.cka_from_cov(C, a) == pytest.approx(metrics.linear_cka(X[:, a], X), abs=CKA_TOL)


def test_cka_bad_input():
    X = data()
    with pytest.raises(ValueError, match="same samples"):
        metrics.linear_cka(X, X[:50])
    with pytest.raises(ValueError, match="zero variance"):
        metrics.linear_cka(np.ones((10, 3)), X[:10])
    C = metrics.covariance(np.c_[np.ones(20), np.random.default_rng(0).normal(size=(20, 2))])
    with pytest.raises(ValueError, match="zero variance"):
        metrics.cka_from_cov(C, [0], [1])

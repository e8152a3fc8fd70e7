"""Probes: known answers, batched == one at a time, agreement with scikit-learn."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from diffred.probes import LogisticProbe, RidgeProbe, paper_recipe, validation_split
from diffred.subsets import Selection, random_subsets

#: batched and separate fits reach the same optimum to this accuracy difference
EQUIV_ACC_TOL = 0.01
#: mean accuracy per fraction within this many points of scikit-learn's converged fit
SKLEARN_POINTS_TOL = 0.5


def blobs(n=600, d=40, c=3, sep=4.0, seed=0, center_seed=100):
    centers = np.random.default_rng(center_seed).normal(size=(c, d)) * sep
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    return rng.normal(size=(n, d)) + centers[y], y


def test_separable_data_reaches_one():
    X, y = blobs(sep=6.0)
    sel = random_subsets(X.shape[1], [0.5, 1.0], [1])
    p = LogisticProbe(max_epochs=30, random_state=0).fit(X, y, sel)
    assert p.score(X, y).min() == 1.0
    r = RidgeProbe().fit(X, y, sel)
    assert r.score(X, y).min() == 1.0


def test_fit_returns_self_and_learned_state():
    X, y = blobs()
    sel = random_subsets(X.shape[1], [0.25, 1.0], [1, 2])
    p = LogisticProbe(max_epochs=3)
    assert p.fit(X, y, sel) is p
    assert len(p.coef_) == len(sel) and p.coef_[0].shape == (10, 3)
    assert p.predict(X).shape == (len(sel), len(y))


def test_batched_equals_separate_fits():
    X, y = blobs(n=800, d=30, sep=1.0, seed=1)
    sel = random_subsets(X.shape[1], [0.1, 0.3, 1.0], [1, 2])
    kw = dict(alphas=(1e-3,), max_epochs=40, patience=None, keep_best=False, precision="float32", random_state=0)
    together = LogisticProbe(**kw).fit(X, y, sel)
    for i in range(len(sel)):
        alone = LogisticProbe(**kw).fit(X, y, Selection(sel.bases, (sel.members[i],)))
        assert np.allclose(together.coef_[i], alone.coef_[0], atol=1e-5)
        assert abs(together.score(X, y)[i] - alone.score(X, y)[0]) <= EQUIV_ACC_TOL


def test_at_alpha_is_the_fit_with_that_alpha_alone():
    X, y = blobs(n=800, d=30, sep=1.0, seed=1)
    sel = random_subsets(X.shape[1], [0.1, 0.3, 1.0], [1, 2])
    kw = dict(max_epochs=30, patience=None, precision="float32", random_state=0)
    grid = LogisticProbe(alphas=(1e-3, 1.0), **kw).fit(X, y, sel)
    for a in (1e-3, 1.0):
        one, alone = grid.at_alpha(a), LogisticProbe(alphas=(a,), **kw).fit(X, y, sel)
        assert (one.alpha_ == a).all() and np.allclose(one.val_accuracy_, alone.val_accuracy_)
        for i in range(len(sel)):
            assert np.allclose(one.coef_[i], alone.coef_[i], atol=1e-5)
    # a strong L2 strength shrinks the weights: the two readings are different probes
    assert np.abs(grid.at_alpha(1.0).coef_[-1]).sum() < np.abs(grid.at_alpha(1e-3).coef_[-1]).sum()
    assert (grid.alpha_ == grid.at_alpha(grid.alpha_[0]).alpha_[0]).any()
    with pytest.raises(ValueError, match="was not fitted"):
        grid.at_alpha(0.5)


def test_deduplicated_members_predict_like_separate_fits():
    """The full layer under several seeds is fitted once; every seed must still get it right."""
    X, y = blobs(n=500, d=16, sep=1.5)
    sel = random_subsets(16, [0.5, 1.0], [1, 2, 3])
    for probe in (RidgeProbe(alphas=(0.01,)), LogisticProbe(max_epochs=5, keep_best=False, patience=None, precision="float32")):
        together = probe.fit(X, y, sel)
        full = [i for i, m in enumerate(sel.members) if m.fraction == 1.0]
        scores = together.score(X, y)
        assert np.allclose(scores[full], scores[full[0]])
        for i in full:
            alone = type(probe)(**probe.get_params()).fit(X, y, Selection(sel.bases, (sel.members[i],)))
            assert np.allclose(together.decision_function(X)[i], alone.decision_function(X)[0], atol=1e-4)
            assert np.allclose(together.coef_[i], alone.coef_[0], atol=1e-4)


def test_ridge_matches_closed_form():
    X, y = blobs(n=300, d=12, sep=1.0)
    sel = random_subsets(12, [0.5], [3])
    r = RidgeProbe(alphas=(0.1,)).fit(X, y, sel)
    tr, _ = validation_split(np.unique(y, return_inverse=True)[1], 0.1, 0)
    Z = X[tr][:, sel.indices(0)]
    Z = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    Y = np.eye(3)[y[tr]]
    Y = Y - Y.mean(0)
    W = np.linalg.solve(Z.T @ Z + 0.1 * len(tr) * np.eye(6), Z.T @ Y)
    assert np.allclose(r.coef_[0], W, atol=1e-8)


def test_agrees_with_sklearn_on_real_like_data():
    X, y = blobs(n=3000, d=64, c=5, sep=0.35, seed=3)
    Xte, yte = blobs(n=1500, d=64, c=5, sep=0.35, seed=4)
    fr = [0.05, 0.1, 0.25, 0.5, 1.0]
    sel = random_subsets(64, fr, [1, 2, 3])
    alpha = 1e-3
    p = LogisticProbe(alphas=(alpha,), max_epochs=60, patience=None, keep_best=False).fit(X, y, sel)
    ours = p.score(Xte, yte)
    tr, _ = validation_split(y, 0.1, 0)
    mu, sd = X[tr].mean(0), X[tr].std(0)
    for f in fr:
        idx = [i for i, m in enumerate(sel.members) if m.fraction == f]
        sk = []
        for i in idx:
            ix = sel.indices(i)
            m = LogisticRegression(C=1 / (alpha * len(tr)), max_iter=2000).fit(((X[tr] - mu) / sd)[:, ix], y[tr])
            sk.append(m.score(((Xte - mu) / sd)[:, ix], yte))
        assert abs(100 * (np.mean(ours[idx]) - np.mean(sk))) <= SKLEARN_POINTS_TOL, f


def test_paper_recipe_runs_and_learns():
    X, y = blobs(sep=3.0)
    sel = random_subsets(X.shape[1], [1.0], [1])
    p = paper_recipe(max_epochs=6).fit(X, y, sel)
    assert p.score(X, y)[0] > 0.95


def test_bad_input():
    X, y = blobs()
    sel = random_subsets(X.shape[1], [1.0], [1])
    with pytest.raises(ValueError, match="single class"):
        LogisticProbe().fit(X, np.zeros(len(y)), sel)
    with pytest.raises(ValueError, match="NaN"):
        LogisticProbe().fit(np.full_like(X, np.nan), y, sel)
    with pytest.raises(ValueError, match="wide layer"):
        LogisticProbe().fit(X[:, :5], y, sel)


def test_constant_column_is_harmless():
    X, y = blobs(sep=6.0)
    X[:, 0] = 3.0
    sel = random_subsets(X.shape[1], [1.0], [1])
    p = LogisticProbe(max_epochs=10).fit(X, y, sel)
    assert np.isfinite(p.decision_function(X)).all() and p.score(X, y)[0] == 1.0


def test_public_names_stay_in_diffred_probes():
    import diffred.probes as P
    from diffred import probe_train
    assert set(P.__all__) == {"LogisticProbe", "RidgeProbe", "paper_recipe", "validation_split"}
    assert P.validation_split is probe_train.validation_split
    X, y = blobs(n=300, d=20)
    sel = random_subsets(X.shape[1], [0.5, 1.0], [1])
    kw = dict(max_epochs=5, patience=None, precision="float32")
    a, b = LogisticProbe(**kw).fit(X, y, sel), LogisticProbe(**kw).fit(X, y, sel)
    assert all(np.array_equal(u, v) for u, v in zip(a.coef_, b.coef_))  # deterministic

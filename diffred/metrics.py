"""Stateless metrics (paper Sections 3-5): accuracy, per-class accuracy, diffused
redundancy DR(delta), and the Gini coefficient of per-class accuracy.

DR(delta) (paper Section 3, Table 1): the share of neurons that can be *dropped* while a
random subset keeps a fraction ``delta`` of the full layer's accuracy. Two readings:

* :func:`dr_closest` — the authors' code: ``1 - f*`` with ``f*`` the tested fraction whose
  mean accuracy ratio ``acc(f) / acc(full)`` is closest to ``delta``;
* :func:`dr_threshold` — the definition read literally: ``1 - f`` for the smallest tested
  fraction whose ratio is at least ``delta``.

Both take grid values only. :func:`dr_interpolated` reads DR off the curve between grid
points (linear in log fraction), :func:`dr_bootstrap` gives it an interval over subset
seeds, and :func:`dense_fractions` proposes a denser grid where the curve crosses delta.
"""

from __future__ import annotations

import warnings

import numpy as np


def accuracy(y_true, y_pred) -> float:
    """Share of ``y_pred (n,)`` equal to ``y_true (n,)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal, non-empty 1-D")
    return float((y_true == y_pred).mean())


def per_class_accuracy(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Recall of each class ``(n_classes,)``; NaN for a class absent from ``y_true``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n_classes = int(n_classes if n_classes is not None else max(y_true.max(), y_pred.max()) + 1)
    total = np.bincount(y_true, minlength=n_classes).astype(float)
    hit = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hit / np.where(total > 0, total, 1), np.nan)


def _ratios(fractions, acc, full_acc):
    f = np.asarray(fractions, dtype=float)
    a = np.asarray(acc, dtype=float)
    if f.shape != a.shape or f.ndim != 1 or f.size == 0:
        raise ValueError("fractions and accuracies must be equal-length 1-D, non-empty")
    if not full_acc > 0:
        raise ValueError(f"full-layer accuracy must be positive, got {full_acc}")
    order = np.argsort(f)
    return f[order], a[order] / full_acc


def dr_closest(fractions, acc, full_acc: float, delta: float = 0.9) -> float:
    """DR(delta) as the authors compute it: 1 - the fraction whose ratio is closest to delta
    (ties: the smaller fraction)."""
    f, r = _ratios(fractions, acc, full_acc)
    return float(1.0 - f[np.argmin(np.abs(r - delta))])


def dr_threshold(fractions, acc, full_acc: float, delta: float = 0.9) -> float:
    """DR(delta) read literally: 1 - the smallest fraction whose ratio reaches delta
    (0.0 when none does)."""
    f, r = _ratios(fractions, acc, full_acc)
    ok = np.flatnonzero(r >= delta - 1e-12)
    return float(1.0 - f[ok[0]]) if ok.size else 0.0


def gini(values) -> float:
    """Gini coefficient of non-negative ``values (n,)``: 0 when all equal, towards 1 when
    one value holds everything (mean absolute difference / (2 * mean))."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0 or (x < 0).any():
        raise ValueError("gini needs a non-empty array of non-negative values")
    if x.sum() == 0:
        return 0.0
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size ** 2 * x.mean()))


def _centred(X):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"CKA needs 2-D (n_samples, n_features) inputs, got shape {X.shape}")
    return X - X.mean(0)


def linear_cka(X, Y) -> float:
    """Linear CKA (Kornblith et al. 2019) between ``X (n, p)`` and ``Y (n, q)`` — the same n
    samples: ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` on centred columns. Reference
    implementation. A representation with no variance has no defined CKA: ValueError."""
    X, Y = _centred(X), _centred(Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"CKA compares the same samples: X has {X.shape[0]} rows, Y {Y.shape[0]}")
    nx, ny = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    if nx == 0 or ny == 0:
        raise ValueError("CKA is undefined for a representation with zero variance")
    return float(np.linalg.norm(Y.T @ X) ** 2 / (nx * ny))


def covariance(X) -> np.ndarray:
    """``Xc^T Xc (d, d)`` of centred ``X (n, d)``: all that :func:`cka_from_cov` needs."""
    X = _centred(X)
    return X.T @ X


def cka_from_cov(cov: np.ndarray, a: np.ndarray, b: np.ndarray | None = None) -> float:
    """Linear CKA between neuron subsets ``a`` and ``b`` (index arrays; ``None`` = all
    neurons) of one layer, from the layer's ``covariance`` alone — no pass over the samples:
    ``||C[a, b]||_F^2 / (||C[a, a]||_F ||C[b, b]||_F)``."""
    b = np.arange(cov.shape[0]) if b is None else np.asarray(b)
    a = np.asarray(a)
    na, nb = np.linalg.norm(cov[np.ix_(a, a)]), np.linalg.norm(cov[np.ix_(b, b)])
    if na == 0 or nb == 0:
        raise ValueError("CKA is undefined for a subset whose neurons all have zero variance")
    return float(np.linalg.norm(cov[np.ix_(a, b)]) ** 2 / (na * nb))


def _first_crossing(f, r, delta):
    """Index ``i`` of the first grid point whose ratio reaches ``delta`` (``f``, ``r``
    sorted by fraction, the full layer included); -1 if none does."""
    ok = np.flatnonzero(r >= delta)
    return int(ok[0]) if ok.size else -1


def _with_full_layer(f, r):
    """Append the full layer (fraction 1, ratio 1) when the grid lacks it."""
    if np.isclose(f[-1], 1.0):
        return f, r
    return np.append(f, 1.0), np.append(r, 1.0)


def dr_interpolated(fractions, acc, full_acc: float, delta: float = 0.9) -> float:
    """DR(delta) read off the curve, not the grid: ``1 - f*`` with ``f*`` the smallest
    fraction where the ratio curve ``acc(f) / acc(full)`` reaches ``delta``, the curve drawn
    as straight lines in log(fraction) between tested points (the full layer, ratio 1, is
    added if missing). When the smallest tested fraction already reaches ``delta`` the
    curve cannot be followed further down: ``f*`` is that fraction (DR is then a lower
    bound). Always at least :func:`dr_threshold`, and equal to it when the crossing falls
    on a grid point."""
    f, r = _with_full_layer(*_ratios(fractions, acc, full_acc))
    i = _first_crossing(f, r, delta)
    if i <= 0:
        return float(1.0 - f[0]) if i == 0 else 0.0
    lf0, lf1 = np.log(f[i - 1]), np.log(f[i])
    t = (delta - r[i - 1]) / (r[i] - r[i - 1])
    return float(1.0 - np.exp(lf0 + t * (lf1 - lf0)))


def _seed_matrix(curve_rows):
    """``(fractions (F,), A (n_seeds, F))`` of accuracies from tidy rows with ``fraction``,
    ``seed``, ``accuracy`` (rows flagged ``duplicate_k`` dropped; NaN where a seed lacks a
    fraction)."""
    cols = {c: np.asarray(curve_rows[c]) for c in ("fraction", "seed", "accuracy")}
    keep = (~np.asarray(curve_rows["duplicate_k"], bool) if "duplicate_k" in curve_rows
            else np.ones(len(cols["seed"]), bool))
    frac, seed, acc = (v[keep] for v in cols.values())
    fr, fi = np.unique(np.round(frac.astype(float), 12), return_inverse=True)
    sd, si = np.unique(seed, return_inverse=True)
    A = np.full((len(sd), len(fr)), np.nan)
    A[si, fi] = acc.astype(float)
    return fr, A


def _dr_of_mean(fr, M, delta, rng=None, n_test=None):
    mean = np.nanmean(M, axis=0)
    ok = ~np.isnan(mean)
    if n_test:
        mean = rng.binomial(n_test, np.clip(np.where(ok, mean, 0), 0, 1)) / n_test
    return dr_interpolated(fr[ok], mean[ok], mean[-1], delta)


def dr_replicates(curve_rows, delta: float = 0.9, n_boot: int = 2000, random_state: int = 0,
                  n_test: int | None = None):
    """``(dr, replicates (n_boot,))``: :func:`dr_interpolated` of the mean curve of all
    seeds, and of ``n_boot`` resamples of whole seeds with replacement (a seed's curve
    across fractions stays together; each resample recomputes the mean curve and the
    full-layer mean). ``curve_rows``: the tidy rows of ONE (model, dataset, selector) curve
    — columns ``fraction``, ``seed``, ``accuracy`` (a DataFrame or a mapping of arrays),
    the full layer (fraction 1) included. With ``n_test`` every mean accuracy of a
    replicate is redrawn as ``Binomial(n_test, acc) / n_test``, independently per fraction:
    the test images are in fact shared by all fractions (their errors correlate), so this
    term overstates the image noise — conservative."""
    fr, A = _seed_matrix(curve_rows)
    if not np.isclose(fr[-1], 1.0):
        raise ValueError("DR needs the full layer: add the fraction 1.0 to the fractions")
    rng = np.random.default_rng(random_state)
    S = A.shape[0]
    with warnings.catch_warnings():  # a fraction no resampled seed has: its mean is NaN, dropped
        warnings.simplefilter("ignore", RuntimeWarning)
        reps = np.array([_dr_of_mean(fr, A[rng.integers(0, S, S)], delta, rng, n_test) for _ in range(n_boot)])
    return _dr_of_mean(fr, A, delta), reps


def dr_bootstrap(curve_rows, delta: float = 0.9, n_boot: int = 2000, level: float = 0.95,
                 random_state: int = 0, n_test: int | None = None) -> dict:
    """:func:`dr_interpolated` with a percentile bootstrap interval over subset seeds
    (:func:`dr_replicates`), plus a binomial test-image term when ``n_test`` is given
    (otherwise test images are not resampled: the curve rows hold no per-image results).
    With few seeds the seed part means little (2 seeds: 3 distinct resamples; 1 seed:
    none) — pass ``n_test``, and the seed count to the verdict. Returns ``dr`` (all
    seeds), ``low``, ``high``, ``n_seeds``, ``level``, ``n_boot``."""
    dr, reps = dr_replicates(curve_rows, delta, n_boot, random_state, n_test)
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    n_seeds = int(np.unique(np.asarray(curve_rows["seed"])).size)
    return {"dr": dr, "low": float(lo), "high": float(hi), "n_seeds": n_seeds, "level": level, "n_boot": int(n_boot)}


def dense_fractions(summary, delta: float = 0.9, n: int = 5, digits: int = 4) -> list[float]:
    """A denser grid where the curve crosses ``delta``: ``n`` fractions spaced evenly in
    log(fraction), strictly between the two tested fractions that bracket the first
    crossing of the mean ratio curve (when the smallest tested fraction already reaches
    delta, between a tenth of it and it). ``summary``: :func:`diffred.curves.summarise`
    output (``fraction``, ``ratio``); with several (model, dataset, selector) groups, the
    union of each group's grid. Rounded to ``digits`` significant digits, sorted, without
    the fractions already tested."""
    keys = [c for c in ("model", "dataset", "selector") if c in summary.columns and summary[c].nunique() > 1]
    groups = [g for _, g in summary.groupby(keys)] if keys else [summary]
    tested = {float(f"{x:.{digits}g}") for x in np.asarray(summary["fraction"], float)}
    out = set()
    for g in groups:
        order = np.argsort(np.asarray(g["fraction"], float))
        f = np.asarray(g["fraction"], float)[order]
        r = np.asarray(g["ratio"], float)[order]
        f, r = _with_full_layer(f, r)
        i = _first_crossing(f, r, delta)
        if i < 0:
            continue
        lo, hi = (f[0] / 10, f[0]) if i == 0 else (f[i - 1], f[i])
        inner = np.exp(np.linspace(np.log(lo), np.log(hi), n + 2)[1:-1])
        out.update(float(f"{x:.{digits}g}") for x in inner)
    return sorted(out - tested)


# --- the covariance spectrum: how many directions a layer's variance uses ---------------------

#: A neuron whose standard deviation over the images is at most this is constant (dead).
CONSTANT_STD = 1e-6


def spectrum(X, standardise: bool = True) -> np.ndarray:
    """Eigenvalues (>= 0) of the covariance of ``X (n, d)``, constant neurons dropped; with
    ``standardise`` each neuron is scaled to unit variance first (what the probes see)."""
    X = np.asarray(X, np.float64)
    sd = X.std(0)
    X = X[:, sd > CONSTANT_STD]
    if standardise:
        X = X / X.std(0)
    if X.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.eigvalsh(covariance(X)), 0, None)


def effective_rank(X, standardise: bool = True) -> float:
    """exp(entropy of the normalised covariance eigenvalues) of ``X (n, d)``: 1 when one
    direction holds all the variance, d for an isotropic layer (Roy & Vetterli's effective
    rank of the covariance; RankMe applies it to the embedding's singular values)."""
    ev = spectrum(X, standardise)
    p = ev[ev > 0] / ev.sum() if ev.sum() > 0 else np.zeros(0)
    return float(np.exp(-(p * np.log(p)).sum())) if p.size else 0.0


def participation_ratio(X, standardise: bool = True) -> float:
    """(sum of eigenvalues)^2 / sum of squared eigenvalues of the covariance of ``X (n, d)``:
    d for an isotropic layer, 1 for one direction."""
    ev = spectrum(X, standardise)
    return float(ev.sum() ** 2 / (ev ** 2).sum()) if ev.size and ev.sum() > 0 else 0.0

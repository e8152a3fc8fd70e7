"""Stateless metrics (paper Sections 3-5): accuracy, per-class accuracy, diffused
redundancy DR(delta), and the Gini coefficient of per-class accuracy.

DR(delta) (paper Section 3, Table 1): the share of neurons that can be *dropped* while a
random subset keeps a fraction ``delta`` of the full layer's accuracy. Two readings:

* :func:`dr_closest` — the authors' code: ``1 - f*`` with ``f*`` the tested fraction whose
  mean accuracy ratio ``acc(f) / acc(full)`` is closest to ``delta``;
* :func:`dr_threshold` — the definition read literally: ``1 - f`` for the smallest tested
  fraction whose ratio is at least ``delta``.
"""

from __future__ import annotations

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

"""Claim 5: linear CKA between random subsets and the whole layer, and between subsets."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .. import metrics
from ..config import RunConfig
from ..curves import features_of
from ..subsets import random_subsets


def cka_curves(cfg: RunConfig, n_samples: int = 1000) -> pd.DataFrame:
    """Linear CKA of random subsets with the whole layer and between two subsets of the same
    size (all seed pairs), per fraction, on the first ``n_samples`` test images (as the
    paper). Computed from the layer's covariance alone (:func:`metrics.cka_from_cov`)."""
    _, te = features_of(cfg)
    X = te.X[:n_samples]
    cov = metrics.covariance(X)
    live = np.flatnonzero(np.diag(cov) > 0)
    d = X.shape[1]
    sel = random_subsets(d, cfg.fractions, cfg.seeds)
    by_f = {}
    for i, m in enumerate(sel.members):
        by_f.setdefault((m.fraction, m.k), []).append(sel.indices(i))
    rows = []
    for (f, k), subsets in by_f.items():
        usable = [ix for ix in subsets if np.isin(ix, live).any()]
        for ix in usable:
            rows.append({"model": cfg.model, "dataset": cfg.dataset, "fraction": f, "k": k,
                         "comparison": "subset vs whole layer", "cka": metrics.cka_from_cov(cov, ix)})
        for a, b in combinations(usable, 2):
            rows.append({"model": cfg.model, "dataset": cfg.dataset, "fraction": f, "k": k,
                         "comparison": "subset vs subset", "cka": metrics.cka_from_cov(cov, a, b)})
    df = pd.DataFrame(rows)
    df.attrs["dead_neurons"] = int(d - len(live))
    return df


def effective_rank(cfg: RunConfig, n_samples: int = 1000) -> float:
    """exp(entropy of the normalised covariance spectrum): how many directions the layer's
    variance really uses (1 = one direction, d = isotropic)."""
    _, te = features_of(cfg)
    ev = np.clip(np.linalg.eigvalsh(metrics.covariance(te.X[:n_samples])), 0, None)
    p = ev / ev.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))

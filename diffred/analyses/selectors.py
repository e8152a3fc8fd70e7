"""Claim 4: random neurons against principal components and random projections."""

from __future__ import annotations

import pandas as pd


def crossover_k(summary: pd.DataFrame, a: str = "random", b: str = "pca_top", points: float = 1.0):
    """The smallest k from which selector ``a`` stays within ``points`` of selector ``b``
    (mean accuracy) at every larger tested k; ``None`` if it never does."""
    A = summary[summary.selector == a].set_index("k").acc_mean
    B = summary[summary.selector == b].set_index("k").acc_mean
    common = sorted(set(A.index) & set(B.index))
    ok = [100 * (B[k] - A[k]) <= points for k in common]
    for i, k in enumerate(common):
        if all(ok[i:]):
            return int(k)
    return None

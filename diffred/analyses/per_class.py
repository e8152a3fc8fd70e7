"""Claim 6: some classes lose far more than others when neurons are dropped (Gini, a
permutation test)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics
from ..curves import class_columns


def per_class(curve: pd.DataFrame) -> pd.DataFrame:
    """Long table: per (fraction, class) the mean accuracy over seeds and its ratio to the
    class's full-layer accuracy (duplicate-k rows dropped)."""
    df = curve[~curve.duplicate_k.astype(bool)]
    cols = class_columns(df)
    long = df.melt(id_vars=["fraction", "k", "seed"], value_vars=cols, var_name="class", value_name="acc")
    long["class"] = long["class"].str[4:]
    m = long.groupby(["fraction", "k", "class"], as_index=False, sort=False).acc.mean()
    full = m[m.fraction == 1.0].set_index("class").acc
    m["relative"] = m.acc / m["class"].map(full)
    m["drop_points"] = 100 * (m["class"].map(full) - m.acc)
    return m


def gini_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Gini coefficient of per-class accuracy and overall accuracy, per (fraction, seed)."""
    df = curve[~curve.duplicate_k.astype(bool)]
    cols = class_columns(df)
    out = df[["fraction", "k", "seed", "accuracy"]].copy()
    out["gini"] = [metrics.gini(r) for r in df[cols].to_numpy()]
    return out


def unevenness_test(curve: pd.DataFrame, fraction: float, n_permutations: int = 10000,
                    random_state: int = 0) -> dict:
    """Is the spread of per-class accuracy drops at ``fraction`` larger than subset-to-subset
    noise alone would give? Drops D[seed, class] = class accuracy on the full layer minus on
    the subset; statistic: variance across classes of the seed-mean drop. Null: every class
    has the same expected drop, so the D values are exchangeable; the p-value is the share of
    permutations of all D values with a statistic at least as large (+1 smoothing)."""
    df = curve[~curve.duplicate_k.astype(bool)]
    if df[["model", "dataset", "selector"]].drop_duplicates().shape[0] > 1 if "model" in df else False:
        raise ValueError("unevenness_test takes the curve of one (model, dataset, selector)")
    cols = [c for c in class_columns(df) if df[c].notna().all()]
    if len(cols) < 2:
        raise ValueError("unevenness_test needs per-class accuracies of at least 2 classes with no missing values")
    full = df[df.fraction == 1.0][cols].mean().to_numpy()
    sub = df[np.isclose(df.fraction, fraction)][cols].to_numpy()
    if len(sub) < 2:
        raise ValueError(f"the test needs at least 2 subset seeds at fraction {fraction}, got {len(sub)}")
    D = full[None, :] - sub
    stat = float(D.mean(0).var())
    if not np.isfinite(stat):
        raise ValueError("the unevenness statistic is not finite; check the per-class accuracies")
    rng = np.random.default_rng(random_state)
    flat = D.ravel()
    null = np.array([rng.permutation(flat).reshape(D.shape).mean(0).var() for _ in range(n_permutations)])
    p = (1 + int((null >= stat).sum())) / (1 + n_permutations)
    worst = int(np.argmax(D.mean(0)))
    return {"fraction": fraction, "statistic": stat, "p_value": p, "n_permutations": n_permutations,
            "worst_class": cols[worst][4:], "worst_drop_points": 100 * float(D.mean(0)[worst]),
            "mean_drop_points": 100 * float(D.mean()), "best_drop_points": 100 * float(D.mean(0).min())}

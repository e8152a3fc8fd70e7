"""Claim 6 (paper Section 5): some classes lose far more than others when neurons are
dropped. The Gini coefficient of per-class accuracy, class x fraction heatmaps, and a
permutation test of whether the unevenness exceeds subset-to-subset noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics
from ..config import RunConfig
from ..curves import class_columns, scale_note, subset_curve
from . import Result

#: The verdict's rule: the claim holds when the permutation test's p-value is below this.
SIGNIFICANCE = 0.01
#: The heatmap shows fractions from this one up (smaller ones are all near chance).
HEATMAP_MIN_FRACTION = 0.005
#: How many of the hardest-hit classes the verdict names.
N_HARDEST = 3


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


def run(*, model, arch, dataset, n_train, image_size, fractions, seeds, test_fraction, n_permutations) -> Result:
    """The chapter's computation: the subset curve of one (model, dataset), its per-class
    table, Gini curve and unevenness test at ``test_fraction``."""
    params = dict(model=model, arch=arch, dataset=dataset, n_train=n_train, image_size=image_size,
                  fractions=list(fractions), seeds=list(seeds), test_fraction=test_fraction,
                  n_permutations=n_permutations)
    cfg = RunConfig(model=model, arch=arch, dataset=dataset, n_train=n_train, image_size=image_size,
                    fractions=fractions, seeds=seeds).scaled()
    curve = subset_curve(cfg)
    classes = per_class(curve)
    frames = {"curve": curve, "classes": classes, "gini": gini_curve(curve),
              "heatmap": classes[classes.fraction >= HEATMAP_MIN_FRACTION]}
    return Result(params, frames, {"test": unevenness_test(curve, test_fraction, n_permutations),
                                   "scale_note": scale_note()})


def drop_table(result: Result) -> pd.DataFrame:
    """Per class at the test fraction: accuracy, ratio to the full layer and drop in points,
    hardest hit first (rounded for display)."""
    return _at_test_fraction(result)[["class", "acc", "relative", "drop_points"]].round(3).reset_index(drop=True)


def _at_test_fraction(result: Result) -> pd.DataFrame:
    classes = result.classes
    at = classes[classes.fraction == result.params["test_fraction"]]
    return at.sort_values("drop_points", ascending=False)


def verdict(p_value: float) -> str:
    """The claim's verdict word from the permutation test's p-value."""
    return "holds" if p_value < SIGNIFICANCE else "is not supported"


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes."""
    test, tf = result.test, result.params["test_fraction"]
    g = result.gini.groupby("fraction").gini.mean()
    return {"scale_note": result.scale_note, "tf": tf, "worst": test["worst_class"],
            "worst_drop": test["worst_drop_points"], "best_drop": test["best_drop_points"],
            "mean_drop": test["mean_drop_points"], "p": test["p_value"], "nperm": test["n_permutations"],
            "gini_full": float(g.loc[1.0]), "gini_small": float(g.loc[tf]),
            "top3": ", ".join(_at_test_fraction(result)["class"].head(N_HARDEST)),
            "verdict": verdict(test["p_value"]), "significance": f"{100 * SIGNIFICANCE:g}%"}

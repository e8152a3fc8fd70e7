"""Claim 6 (paper Section 5): some classes lose far more than others when neurons are
dropped. The Gini coefficient of per-class accuracy, class x fraction heatmaps, and a
permutation test of whether the unevenness exceeds subset-to-subset noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import metrics, stats, verdicts
from ..config import RunConfig
from ..curves import class_columns, scale_note, subset_curve
from . import Result

#: The verdict's rule: the claim holds when the permutation test's p-value is at most this.
SIGNIFICANCE = 0.01
#: Claim 6: the classes' accuracy drops are more uneven than subset-to-subset noise gives.
CLAIM6 = verdicts.difference_rule(
    "some classes lose more than others", "the variance across classes of the mean accuracy drop, minus its "
    "mean under the null (classes permuted within each subset seed)", expected_sign=+1, alpha=SIGNIFICANCE,
    unit="points squared")
#: Claim 6 also does not hold when the classes' drops are even: the upper end of the bootstrap
#: interval (over subset seeds) of their spread (standard deviation across classes of the
#: seed-mean drop) is below this many points; it needs at least :data:`EVEN_MIN_SEEDS` seeds.
SPREAD_MARGIN = 2.0
EVEN_MIN_SEEDS = 3
N_BOOT = 2000
CLAIM6_STATEMENT = (f"{CLAIM6.statement[:-1]}. It also does not hold when the drops are even: the upper end of "
                    f"the {100 * verdicts.LEVEL:.0f}% bootstrap interval (subset seeds resampled) of their spread, the "
                    f"standard deviation across classes of the mean drop, is below {SPREAD_MARGIN:g} points (with at "
                    f"least {EVEN_MIN_SEEDS} subset seeds).")
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
    if not np.isfinite(D).all():
        raise ValueError("the unevenness statistic is not finite; check the per-class accuracies")
    out = stats.within_seed_permutation(D, n_permutations, random_state)
    out |= spread_interval(D, random_state=random_state)
    worst = int(np.argmax(D.mean(0)))
    return {**out, "fraction": fraction, "worst_class": cols[worst][4:], "worst_drop_points": 100 * float(D.mean(0)[worst]),
            "mean_drop_points": 100 * float(D.mean()), "best_drop_points": 100 * float(D.mean(0).min())}


def spread_interval(D, n_boot: int = N_BOOT, level: float = verdicts.LEVEL, random_state: int = 0) -> dict:
    """The spread of the classes' drops ``D (n_seeds, n_classes)``: the standard deviation
    across classes of the seed-mean drop, in points, with a percentile bootstrap interval
    (subset seeds resampled with replacement)."""
    D = np.asarray(D, float)
    rng = np.random.default_rng(random_state)
    pick = rng.integers(0, len(D), (n_boot, len(D)))
    boot = 100 * D[pick].mean(1).std(1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {"spread": 100 * float(D.mean(0).std()), "spread_low": float(lo), "spread_high": float(hi)}


def claim_verdict(test: dict) -> verdicts.Verdict:
    """:data:`CLAIM6` on the test's excess over its null mean (points squared), with the
    one-sided p-value in the direction of the observed excess; where that cannot decide,
    "does not hold" when the drops' spread is surely below :data:`SPREAD_MARGIN` points."""
    excess = 1e4 * (test["statistic"] - test["null_mean"])
    p = test["p_value"] if excess >= 0 else test["p_less"]
    v = dataclasses.replace(CLAIM6.judge(excess, p), rule=CLAIM6_STATEMENT)
    hi = test.get("spread_high", float("nan"))
    if v.outcome == verdicts.UNDECIDED and test.get("n_seeds", 0) >= EVEN_MIN_SEEDS and hi < SPREAD_MARGIN:
        v = dataclasses.replace(v, outcome=verdicts.FAILS, reason=(
            f"{v.reason} The classes' drops are even: their spread is {test['spread']:.2f} points "
            f"({100 * verdicts.LEVEL:.0f}% interval {test['spread_low']:.2f} to {hi:.2f}), below {SPREAD_MARGIN:g}."))
    return v


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


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes."""
    test, tf = result.test, result.params["test_fraction"]
    g = result.gini.groupby("fraction").gini.mean()
    return {"scale_note": result.scale_note, "tf": tf, "worst": test["worst_class"],
            "worst_drop": test["worst_drop_points"], "best_drop": test["best_drop_points"],
            "mean_drop": test["mean_drop_points"], "p": test["p_value"], "nperm": test["n_permutations"],
            "gini_full": float(g.loc[1.0]), "gini_small": float(g.loc[tf]),
            "top3": ", ".join(_at_test_fraction(result)["class"].head(N_HARDEST)),
            "significance": f"{100 * SIGNIFICANCE:g}%", **claim_quotes(result)}


def claim_quotes(result: Result) -> dict:
    """The ledger keys of claim 6."""
    v = claim_verdict(result.test)
    g = result.gini.groupby("fraction").gini.mean()
    tf = result.params["test_fraction"]
    return {"verdict": v.outcome, "claim6_badge": v.badge(6), **v.quotes("claim6"),
            "claim6_ours": f"worst class {result.test['worst_drop_points']:.1f} points of drop against "
                           f"{result.test['mean_drop_points']:.1f} on average at {tf:g} of the neurons; "
                           f"Gini {g.loc[1.0]:.3f} (full layer) and {g.loc[tf]:.3f}; {verdicts.fmt_p(v.p_value)}",
            "claim6_paper": "no number in the paper's released data (data/paper/ has no per-class results)"}

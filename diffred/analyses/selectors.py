"""Claim 4: random neurons against principal components and random projections."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import paper, verdicts
from ..config import RunConfig
from ..curves import scale_note, subset_curve, summarise
from ..datasets import load_dataset
from . import Result


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


SMALL_K = 10  # "small k": the first tested k of at least 10 dimensions
MID_FRACTION = 0.2  # "moderate k": the first tested k of at least 20% of the layer
WITHIN_POINTS = 1.0  # random neurons "match" the top components within this many points
CLEAR_GAP_POINTS = 2.0  # a gap at small k above this is "better", below it "only ... better"
MATCH_POINTS = 2.0  # claim 4: "close to the top components" = within this many points at 20% of the layer
N_BOOT = 2000
#: Claim 4, as the paper states it: random neurons come close to the top principal components
#: once k is moderate, and the bottom components are poor. Both parts at 20% of the layer.
MATCH = verdicts.within_rule(
    "random neurons match the top components", "the accuracy of the top-k principal components minus that of "
    "k random neurons at 20% of the layer", MATCH_POINTS, "at most", unit="points")
BOTTOM_POOR = verdicts.within_rule(
    "the bottom components are poor", "the accuracy of k random neurons minus that of the bottom-k principal "
    "components at 20% of the layer", CLEAR_GAP_POINTS, "at least", unit="points")


def run(model: str = "efficientnet_lite0", arch: str | None = None, dataset: str = "fashion_mnist",
        n_train: int | None = 20000, n_test: int | None = None, image_size: int | None = 112,
        selectors=("random", "pca_top", "pca_bottom", "projection_gaussian", "projection_authors"),
        fractions=None, seeds=None) -> Result:
    """The subset curve of every selector on one (model, dataset), and its summary."""
    params = {"model": model, "arch": arch, "dataset": dataset, "n_train": n_train, "n_test": n_test,
              "image_size": image_size, "selectors": list(selectors), "fractions": fractions, "seeds": seeds}
    grid = {k: v for k, v in (("fractions", fractions), ("seeds", seeds)) if v is not None}
    cfg = RunConfig(model=model, arch=arch, dataset=dataset, n_train=n_train, n_test=n_test,
                    image_size=image_size, **grid).scaled()
    curve = subset_curve(cfg, selector=params["selectors"])
    n_te = cfg.n_test or len(load_dataset(dataset, "test").labels)
    return Result(params, {"curve": curve, "summary": summarise(curve)}, {"n_test": int(n_te)})


def selector_gap(curve: pd.DataFrame, k: int, a: str, b: str, n_test: int, n_boot: int = N_BOOT,
                 level: float = verdicts.LEVEL, random_state: int = 0) -> tuple[float, tuple[float, float]]:
    """``100 * (acc_a - acc_b)`` at ``k`` (points) with a percentile bootstrap interval: each
    selector's subset seeds resampled, each accuracy redrawn as ``Binomial(n_test, acc)``
    (errors taken as independent across the two selectors, which widens the interval)."""
    rng = np.random.default_rng(random_state)
    reps, means = [], []
    for sel in (a, b):
        acc = curve[(curve.selector == sel) & (curve.k == k)].accuracy.to_numpy(float)
        if acc.size == 0:
            return float("nan"), (float("nan"), float("nan"))
        means.append(acc.mean())
        boot = acc[rng.integers(0, acc.size, (n_boot, acc.size))].mean(1)
        reps.append(rng.binomial(n_test, np.clip(boot, 0, 1)) / n_test)
    lo, hi = np.quantile(100 * (reps[0] - reps[1]), [(1 - level) / 2, (1 + level) / 2])
    return float(100 * (means[0] - means[1])), (float(lo), float(hi))


def claim_verdict(result: Result, k_mid: int) -> verdicts.Verdict:
    """:data:`MATCH` and :data:`BOTTOM_POOR` at ``k_mid``, combined by :func:`verdicts.across`."""
    n = result.n_test
    parts = {"top components vs random": MATCH.judge(*selector_gap(result.curve, k_mid, "pca_top", "random", n), n=n),
             "random vs bottom components": BOTTOM_POOR.judge(
                 *selector_gap(result.curve, k_mid, "random", "pca_bottom", n), n=n)}
    v = verdicts.across(parts, what="parts of the claim")
    return dataclasses.replace(
        v, rule=f"{MATCH.statement} {BOTTOM_POOR.statement} {verdicts.ACROSS_STATEMENT.format(what='parts of the claim')}")


def accuracy_by_k(result: Result) -> pd.DataFrame:
    """Mean accuracy, k x selector."""
    return result.summary.pivot_table(index="k", columns="selector", values="acc_mean")


def accuracy_table(result: Result) -> pd.DataFrame:
    """:func:`accuracy_by_k` to three decimals, as the chapter shows it."""
    return accuracy_by_k(result).round(3)


def _points(acc: pd.DataFrame, k: int, selector: str) -> float:
    """Mean accuracy in percent of ``selector`` at ``k`` (NaN if that selector did not run)."""
    return 100 * float(acc.loc[k, selector]) if selector in acc.columns else float("nan")


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes: accuracies at a small k and at 20%
    of the layer, the crossover k from which random neurons stay within one point of the
    top principal components, and claim 4's verdict (:func:`claim_verdict`) with its ledger keys."""
    acc = accuracy_by_k(result)
    d = result.curve.d.iloc[0]
    k_small = int(acc.index[acc.index >= SMALL_K][0])
    k_mid = int(acc.index[acc.index >= MID_FRACTION * d][0])
    cross = crossover_k(result.summary, "random", "pca_top", WITHIN_POINTS)
    gap_small = float(acc.loc[k_small, "pca_top"] - acc.loc[k_small, "random"]) * 100
    return {
        "scale_note": scale_note(), "k_small": k_small,
        **{f"{name}_small": _points(acc, k_small, sel) for name, sel in
           (("top", "pca_top"), ("rand", "random"), ("bottom", "pca_bottom"), ("proj", "projection_gaussian"))},
        "cross_k": "never, in the tested range" if cross is None else f"k = {cross}",
        "cross_frac": "" if cross is None else f" ({cross / d:.0%} of the layer)",
        "k_mid": k_mid, "bottom_mid": _points(acc, k_mid, "pca_bottom"), "rand_mid": _points(acc, k_mid, "random"),
        "small_sentence": f"at small k the top components are better by {gap_small:.1f} points, as the paper also finds"
        if gap_small > CLEAR_GAP_POINTS else f"even at small k the top components are only {gap_small:.1f} points better",
        **claim_quotes(claim_verdict(result, k_mid))}


def claim_quotes(v: verdicts.Verdict) -> dict:
    """The claim-4 keys (ledger contract): badge, verdict fields, our numbers, the paper's."""
    top, bottom = v.parts["top components vs random"], v.parts["random vs bottom components"]
    ours = (f"top PCs minus random {top.statistic:+.1f} points ({top.interval[0]:+.1f} to {top.interval[1]:+.1f}); "
            f"random minus bottom PCs {bottom.statistic:+.1f} ({bottom.interval[0]:+.1f} to {bottom.interval[1]:+.1f})")
    return {"verdict": v.outcome, "claim4_badge": v.badge(4), **v.quotes("claim4"), "claim4_ours": ours,
            "claim4_paper": paper_sentence(),
            "match_reason": top.reason, "bottom_reason": bottom.reason}


def paper_sentence() -> str:
    """What the paper's released numbers (``data/paper/``) hold for this comparison."""
    table = paper.load("subset_accuracy")
    if "selector" in table.columns and (table.selector != "random").any():
        return "in data/paper/subset_accuracy.csv (selector column)"
    return "no number: the paper's released numbers (data/paper/) cover random subsets only; it shows PCA in a figure"

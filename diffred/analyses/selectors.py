"""Claim 4: random neurons against principal components and random projections."""

from __future__ import annotations

import pandas as pd

from ..config import RunConfig
from ..curves import scale_note, subset_curve, summarise
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
    return Result(params, {"curve": curve, "summary": summarise(curve)})


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
    top principal components, and the verdict (crossover by 20% of the layer)."""
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
        "verdict": "holds" if cross is not None and cross <= MID_FRACTION * d else "does not hold"}

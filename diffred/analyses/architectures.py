"""Claims 2, 3 and 7 (paper Table 1, Fig. 3): DR(0.9) across models and tasks, beside the
paper's Table 1, and whether easier tasks show more redundancy (a Spearman correlation)."""

from __future__ import annotations

import math

import pandas as pd

from .. import paper
from ..curves import class_columns, dr_table, run_curves, scale_note
from . import Result

#: Models whose name ends so are random-weight controls, not pre-trained encoders.
RANDOM_SUFFIX = "_random"
#: The mark of diffused redundancy: at least half the neurons can go (DR(0.9) >= 0.5).
REDUNDANT_DR = 0.5


def architecture_table(models, datasets, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subset curves for every (model, dataset), and their DR(0.9) table with the
    full-layer accuracy and number of classes."""
    curves = pd.concat([run_curves(m, datasets, **overrides) for m in models], ignore_index=True)
    dr = dr_table(curves)
    n_classes = {ds: len(class_columns(curves[curves.dataset == ds].dropna(axis=1, how="all"))) for ds in datasets}
    dr["classes"] = dr.dataset.map(n_classes)
    return curves, dr


def paper_dr_points(delta: float = 0.9) -> pd.DataFrame:
    """DR(delta) and full-layer accuracy for each curve in the paper's subset-accuracy table
    (authors' notebook output), for plotting beside ours."""
    c = paper.load("subset_accuracy")
    c = c.assign(accuracy=c.acc_mean / 100, model=c.model + " (" + c.pretraining + ", " + c.upstream + ")",
                 selector="random")
    t = dr_table(c, delta)
    return t.rename(columns={"dr_closest": "dr"})


def run(*, models, datasets, n_train, n_test, image_size, fractions, seeds) -> Result:
    """The chapter's computation: every (model, dataset) curve and DR table, the paper's
    Table 1 and its curves' DR points, and both together for the figure."""
    params = dict(models=list(models), datasets=list(datasets), n_train=n_train, n_test=n_test,
                  image_size=image_size, fractions=list(fractions), seeds=list(seeds))
    curves, dr = architecture_table(models, datasets, n_train=n_train, n_test=n_test, image_size=image_size,
                                    fractions=fractions, seeds=seeds)
    paper_points = paper_dr_points()
    points = pd.concat([dr.assign(who="ours", dr=dr.dr_closest), paper_points.assign(who="paper (authors' curves)")],
                       ignore_index=True)
    frames = {"curves": curves, "dr": dr, "paper_table": paper.load("diffused_redundancy_table"),
              "paper_points": paper_points, "points": points}
    return Result(params, frames, {"scale_note": scale_note()})


def dr_display(result: Result) -> pd.DataFrame:
    """Our DR(0.9) and full-layer accuracy, model x dataset (rounded for display)."""
    return result.dr.pivot_table(index="model", columns="dataset", values=["dr_closest", "full_accuracy"]).round(3)


def paper_display(result: Result) -> pd.DataFrame:
    """The paper's Table 1, (model, pre-training, upstream) x dataset."""
    return result.paper_table.pivot_table(index=["model", "pretraining", "upstream"], columns="dataset",
                                          values="dr_0_9")


def is_random(model: pd.Series) -> pd.Series:
    """Which rows' models are random-weight controls."""
    return model.str.endswith(RANDOM_SUFFIX)


def spearman(df: pd.DataFrame, x: str, y: str) -> float:
    """Spearman correlation of two columns (NaN when either does not vary)."""
    return float(df[[x, y]].corr(method="spearman").iloc[0, 1])


def direction(rho: float) -> str:
    """What the sign of the accuracy-DR correlation says about task difficulty."""
    if rho > 0:
        return "easier tasks show more redundancy, as the paper finds"
    if math.isnan(rho) or rho == 0:
        return "no trend can be measured (DR does not vary)"
    return "here easier tasks show less redundancy, the opposite of the paper's direction"


def _by_model(pre: pd.DataFrame, models) -> str:
    """'0.80 for efficientnet_lite0 and 0.70 for efficientnet_lite2': mean DR per model."""
    means = pre.groupby("model").dr_closest.mean()
    parts = [f"{means[m]:.2f} for {m}" for m in models if m in means.index]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes."""
    dr, paper_points = result.dr, result.paper_points
    pre, rnd = dr[~is_random(dr.model)], dr[is_random(dr.model)]
    rho_ours = spearman(pre, "full_accuracy", "dr_closest")
    return {"scale_note": result.scale_note, "rho_ours": rho_ours,
            "rho_paper": spearman(paper_points, "full_accuracy", "dr"),
            "n_ours": len(pre), "n_paper": len(paper_points),
            "dr_by_model": _by_model(pre, result.params["models"]),
            "dr_random": float(rnd.dr_closest.mean()), "acc_random": 100 * float(rnd.full_accuracy.mean()),
            "acc_pre": 100 * float(pre.full_accuracy.mean()),
            "verdict_task": "holds" if rho_ours > 0 else "does not hold", "direction": direction(rho_ours),
            "dr_values": ", ".join(f"{v:.2f}" for v in sorted(pre.dr_closest.unique())),
            "all_redundant": "shows" if (pre.dr_closest >= REDUNDANT_DR).all() else "does not show",
            "min_dr": float(pre.dr_closest.min()), "redundant_dr": REDUNDANT_DR}

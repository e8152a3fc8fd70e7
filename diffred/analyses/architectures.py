"""Claims 2, 3 and 7: the DR table across models and tasks, beside the paper's Table 1."""

from __future__ import annotations

import pandas as pd

from .. import paper
from ..curves import class_columns, dr_table, run_curves


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

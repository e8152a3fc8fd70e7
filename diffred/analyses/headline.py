"""Claims 1 and 3 (paper Fig. 1, Table 1): random subsets suffice; DR(0.9).

``run`` computes one model's subset curve on every dataset, its summary and DR table, the
headline check on the first dataset ("20% of the neurons within 5 points of the full
layer") and the same check on the authors' own ResNet50 / CIFAR-10 curve; ``quotes`` gives
every number and word the chapter's prose shows.
"""

from __future__ import annotations

import pandas as pd

from .. import paper
from ..curves import claim_within, dr_table, duplicate_fractions, run_curves, scale_note, summarise
from . import Result

PAPER_HEADLINE_DATASET = "cifar10"  # the paper's headline task (its Fig. 1)
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "mnist5k": "MNIST-5k", "digits": "digits"}


def run(model: str = "efficientnet_lite0", datasets=("fashion_mnist",), arch: str | None = None,
        n_train: int | None = None, n_test: int | None = None, image_size: int | None = 112,
        fractions=None, seeds=None, probe: str = "logistic") -> Result:
    """The subset curves of ``model`` on ``datasets`` (each config shrunk at smoke scale),
    their summary and DR(0.9) table, the headline check on the first dataset, and the
    authors' curves and Table 1 for comparison."""
    params = {"model": model, "arch": arch, "datasets": list(datasets), "n_train": n_train, "n_test": n_test,
              "image_size": image_size, "fractions": fractions, "seeds": seeds, "probe": probe}
    grid = {k: v for k, v in (("fractions", fractions), ("seeds", seeds)) if v is not None}
    curve = run_curves(model, params["datasets"], arch=arch, n_train=n_train, n_test=n_test,
                       image_size=image_size, probe=probe, **grid)
    paper_curves = paper.subset_curves()
    frames = {"curve": curve, "summary": summarise(curve), "dr": dr_table(curve),
              "paper_curves": paper_curves, "paper_dr": paper.load("diffused_redundancy_table")}
    values = {"headline": claim_within(curve[curve.dataset == params["datasets"][0]]),
              "paper_headline": claim_within(paper_curves[paper_curves.dataset == PAPER_HEADLINE_DATASET]),
              "duplicate_fractions": duplicate_fractions(curve)}
    return Result(params, frames, values)


def accuracy_table(result: Result) -> pd.DataFrame:
    """Mean accuracy per fraction (and k) and dataset, to three decimals."""
    return result.summary.pivot_table(index=["fraction", "k"], columns="dataset", values="acc_mean").round(3)


def dr_display(result: Result) -> pd.DataFrame:
    """The DR(0.9) table as the chapter shows it (three decimals)."""
    return result.dr.round(3)


def dataset_name(name: str) -> str:
    """How the prose names a dataset: ``mnist5k`` -> ``MNIST-5k``; an unknown name as is."""
    return DATASET_NAMES.get(str(name), str(name))


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def verdict(holds: bool) -> str:
    return "holds" if holds else "does not hold"


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes. DR per dataset is one sentence
    fragment each way (``dr_by_dataset``: closest reading with the dataset names;
    ``drt_by_dataset``: the threshold reading), in the order of the ``datasets`` parameter,
    so other datasets still build."""
    h, p = result.headline, result.paper_headline
    order = {name: i for i, name in enumerate(result.params["datasets"])}
    dr = result.dr.sort_values("dataset", key=lambda c: c.map(lambda n: order.get(n, len(order))), kind="stable")
    return {"scale_note": scale_note(), "width": int(result.curve.d.iloc[0]),
            "h_dataset": result.params["datasets"][0], "h_full": 100 * h["full"], "h_at": 100 * h["at"],
            "h_std": 100 * h["std"], "h_k": h["k"], "h_gap": h["gap_points"], "h_verdict": verdict(h["holds"]),
            "p_full": 100 * p["full"], "p_at": 100 * p["at"], "p_gap": p["gap_points"],
            "p_verdict": verdict(p["holds"]),
            "dup_fracs": ", ".join(f"{f:g}" for f in result.duplicate_fractions) or "none",
            "dr_by_dataset": listing([f"{r.dr_closest:.2f} on {dataset_name(r.dataset)}" for r in dr.itertuples()]),
            "drt_by_dataset": ", ".join(f"{r.dr_threshold:.2f}" for r in dr.itertuples()),
            **paper_dr_span(result.paper_dr)}


def paper_dr_span(table: pd.DataFrame) -> dict:
    """The range of the paper's DR(0.9) over the rows it prints (provenance P: ``p_dr_min``,
    ``p_dr_max``, ``p_dr_n``) and over the rows derived from the authors' notebook outputs
    (D: ``d_dr_*``), kept apart: the two ends of the whole table are both derived rows."""
    out = {}
    for prefix, code in (("p", "P"), ("d", "D")):
        rows = table[table.provenance == code].dr_0_9
        out |= {f"{prefix}_dr_min": float(rows.min()) if len(rows) else float("nan"),
                f"{prefix}_dr_max": float(rows.max()) if len(rows) else float("nan"), f"{prefix}_dr_n": len(rows)}
    return out

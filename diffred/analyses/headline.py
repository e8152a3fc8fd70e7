"""Claims 1 and 3 (paper Fig. 1, Table 1): random subsets suffice; DR(0.9).

``run`` computes one model's subset curve on every dataset, its summary and DR table, the
headline check on the first dataset ("20% of the neurons within 5 points of the full
layer") and the same check on the authors' own ResNet50 / CIFAR-10 curve; ``quotes`` gives
every number and word the chapter's prose shows.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .. import metrics, paper, stats, verdicts
from ..config import RunConfig
from ..curves import claim_within, dr_table, duplicate_fractions, run_curves, scale_note, summarise
from ..datasets import load_dataset
from . import Result

PAPER_HEADLINE_DATASET = "cifar10"  # the paper's headline task (its Fig. 1)
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "mnist5k": "MNIST-5k", "digits": "digits"}
HEADLINE_FRACTION = 0.2
HEADLINE_POINTS = 5.0
DELTA = 0.9
#: Claim 1 (the paper's headline): 20% of random neurons within 5 points of the full layer.
CLAIM1 = verdicts.within_rule("random subsets suffice", "the full layer's accuracy minus that of 20% random "
                              "neurons", HEADLINE_POINTS, "at most", unit="points")


def claim3_rule(table: pd.DataFrame) -> verdicts.Rule:
    """Claim 3: DR(0.9) is as high as the paper reports, i.e. at least the smallest DR the
    paper's Table 1 prints (provenance P; 0.5 in data/paper/), per dataset."""
    floor = float(table[table.provenance == "P"].dr_0_9.min())
    return verdicts.within_rule("substantial diffused redundancy", "DR(0.9) read off the curve (interpolated)",
                                floor, "at least")


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
              "duplicate_fractions": duplicate_fractions(curve),
              "n_test": {ds: test_size(ds, n_test) for ds in params["datasets"]}}
    return Result(params, frames, values)


def test_size(dataset: str, n_test: int | None) -> int:
    """How many test images a curve of ``dataset`` was scored on (the scale's cap applied)."""
    capped = RunConfig(dataset=dataset, n_test=n_test).scaled().n_test
    return int(min(capped, len(load_dataset(dataset, "test").labels)) if capped else len(load_dataset(dataset, "test").labels))


def claim_verdicts(result: Result) -> dict:
    """Claim 1 on the first dataset (bootstrap gap over subset seeds with a test-image term)
    and claim 3 on every dataset (DR interval), as :class:`verdicts.Verdict`."""
    first = result.params["datasets"][0]
    rows = result.curve[(result.curve.dataset == first) & ~result.curve.duplicate_k.astype(bool)]
    g = stats.bootstrap_gap(rows, HEADLINE_FRACTION, n_test=result.n_test[first])
    v1 = CLAIM1.judge(g["gap"], (g["low"], g["high"]), n=g["n_seeds"])
    rule3, parts = claim3_rule(result.paper_dr), {}
    for ds in result.params["datasets"]:
        r = result.curve[(result.curve.dataset == ds) & ~result.curve.duplicate_k.astype(bool)]
        b = metrics.dr_bootstrap(r[["fraction", "seed", "accuracy"]], DELTA, n_test=result.n_test[ds])
        parts[dataset_name(ds)] = rule3.judge(b["dr"], (b["low"], b["high"]), n=b["n_seeds"])
    v3 = verdicts.across(parts, what="datasets")
    return {1: v1, 3: dataclasses.replace(v3, rule=f"{rule3.statement} {verdicts.ACROSS_STATEMENT.format(what='datasets')}")}


def claim_quotes(result: Result) -> dict:
    """The ledger keys of claims 1 and 3: badges, verdict fields, our numbers, the paper's."""
    v = claim_verdicts(result)
    p, dr_p = result.paper_headline, result.paper_dr[result.paper_dr.provenance == "P"].dr_0_9
    lo, hi = v[1].interval
    out = {"claim1_ours": f"gap {v[1].statistic:.1f} points (95% interval {lo:.1f} to {hi:.1f})",
           "claim1_paper": f"gap {p['gap_points']:.1f} points (ResNet50, CIFAR-10; authors' notebook)",
           "claim3_ours": "; ".join(f"{k} {x.statistic:.2f} ({x.interval[0]:.2f} to {x.interval[1]:.2f})"
                                    for k, x in v[3].parts.items()),
           "claim3_paper": f"{dr_p.min():.2f} to {dr_p.max():.2f} over the {len(dr_p)} rows Table 1 prints"}
    for n, verdict_n in v.items():
        out |= {f"claim{n}_badge": verdict_n.badge(n), **verdict_n.quotes(f"claim{n}")}
    return out


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
            "h_dataset": dataset_name(result.params["datasets"][0]), "h_full": 100 * h["full"], "h_at": 100 * h["at"],
            "h_std": 100 * h["std"], "h_k": h["k"], "h_gap": h["gap_points"], "h_verdict": verdict(h["holds"]),
            "p_full": 100 * p["full"], "p_at": 100 * p["at"], "p_gap": p["gap_points"],
            "p_verdict": verdict(p["holds"]),
            "dup_fracs": ", ".join(f"{f:g}" for f in result.duplicate_fractions) or "none",
            "dr_by_dataset": listing([f"{r.dr_closest:.2f} on {dataset_name(r.dataset)}" for r in dr.itertuples()]),
            "drt_by_dataset": ", ".join(f"{r.dr_threshold:.2f}" for r in dr.itertuples()),
            **paper_dr_span(result.paper_dr), **claim_quotes(result)}


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

"""Claim 5: linear CKA between random subsets and the whole layer, and between subsets.

``run`` computes, for each model (the first pre-trained, the second its random-weight
control), the CKA grid, the effective rank of the layer and the accuracy curve behind
DR(0.9); ``quotes`` gives every number and verdict the chapter's prose shows.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .. import metrics, paper
from ..config import RunConfig
from ..curves import dr_table, features_of, scale_note, subset_curve
from ..subsets import random_subsets
from . import Result

COMPARE_FRACTION = 0.1  # the subset size the prose quotes ("two random 10% subsets")
PAPER_DATASET = "cifar10"  # the paper's CKA numbers quoted beside ours
PAPER_PRETRAININGS = ("standard", "adversarial_l2_eps3")


def subset_cka(X: np.ndarray, fractions, seeds) -> pd.DataFrame:
    """Linear CKA of random subsets of the columns of ``X`` with all of them and between two
    subsets of the same size (all seed pairs), per fraction, from the covariance alone
    (:func:`metrics.cka_from_cov`). Subsets made only of dead (constant) columns are left
    out; ``attrs["dead_neurons"]`` counts those columns."""
    cov = metrics.covariance(X)
    live = np.flatnonzero(np.diag(cov) > 0)
    d = X.shape[1]
    sel = random_subsets(d, fractions, seeds)
    by_f = {}
    for i, m in enumerate(sel.members):
        by_f.setdefault((m.fraction, m.k), []).append(sel.indices(i))
    rows = []
    for (f, k), subsets in by_f.items():
        usable = [ix for ix in subsets if np.isin(ix, live).any()]
        for ix in usable:
            rows.append({"fraction": f, "k": k, "comparison": "subset vs whole layer",
                         "cka": metrics.cka_from_cov(cov, ix)})
        for a, b in combinations(usable, 2):
            rows.append({"fraction": f, "k": k, "comparison": "subset vs subset",
                         "cka": metrics.cka_from_cov(cov, a, b)})
    df = pd.DataFrame(rows, columns=["fraction", "k", "comparison", "cka"])
    df.attrs["dead_neurons"] = int(d - len(live))
    return df


def cka_curves(cfg: RunConfig, n_samples: int = 1000) -> pd.DataFrame:
    """:func:`subset_cka` of ``cfg``'s layer on the first ``n_samples`` test images (as the
    paper), with ``model`` and ``dataset`` columns first."""
    _, te = features_of(cfg)
    df = subset_cka(te.X[:n_samples], cfg.fractions, cfg.seeds)
    dead = df.attrs["dead_neurons"]
    df.insert(0, "dataset", cfg.dataset)
    df.insert(0, "model", cfg.model)
    df.attrs["dead_neurons"] = dead
    return df


def spectrum_rank(X: np.ndarray) -> float:
    """exp(entropy of the normalised covariance spectrum of ``X``)."""
    ev = np.clip(np.linalg.eigvalsh(metrics.covariance(X)), 0, None)
    p = ev / ev.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def effective_rank(cfg: RunConfig, n_samples: int = 1000) -> float:
    """exp(entropy of the normalised covariance spectrum): how many directions the layer's
    variance really uses (1 = one direction, d = isotropic)."""
    _, te = features_of(cfg)
    return spectrum_rank(te.X[:n_samples])


def run(models=("efficientnet_lite0", "efficientnet_lite0_random"), dataset: str = "fashion_mnist",
        n_train: int | None = 5000, n_samples: int = 1000, image_size: int | None = 112,
        fractions=None, seeds=None) -> Result:
    """CKA grid, effective rank and accuracy curve (with its DR table) of each model."""
    params = {"models": list(models), "dataset": dataset, "n_train": n_train, "n_samples": n_samples,
              "image_size": image_size, "fractions": fractions, "seeds": seeds}
    grid = {k: v for k, v in (("fractions", fractions), ("seeds", seeds)) if v is not None}
    cfgs = [RunConfig(model=m, dataset=dataset, n_train=n_train, image_size=image_size, **grid).scaled()
            for m in params["models"]]
    cka = pd.concat([cka_curves(c, n_samples) for c in cfgs], ignore_index=True)
    ranks = pd.DataFrame({"model": [c.model for c in cfgs],
                          "effective_rank": [effective_rank(c, n_samples) for c in cfgs]})
    accuracy = pd.concat([subset_curve(c) for c in cfgs], ignore_index=True)
    frames = {"cka": cka, "ranks": ranks, "accuracy": accuracy, "dr": dr_table(accuracy),
              "paper_cka": paper.load("cka_pairwise")}
    return Result(params, frames)


def cka_table(result: Result) -> pd.DataFrame:
    """Mean CKA per comparison and fraction (rows) and model (columns), three decimals."""
    return result.cka.groupby(["model", "comparison", "fraction"]).cka.mean().unstack(0).round(3)


def _verdict_dr(dr_pre: float, dr_rnd: float, acc_pre: float, acc_rnd: float) -> str:
    if dr_rnd >= dr_pre and acc_rnd < acc_pre:
        return ("The random network is at least as redundant by DR(0.9), at a lower accuracy: what "
                "training adds is accuracy, and redundancy at that accuracy.")
    if dr_rnd >= dr_pre:
        return "The random network is at least as redundant by DR(0.9), and as accurate."
    return "The random network is less redundant by DR(0.9): training adds redundancy as well as accuracy."


def _verdict_learned(cka_pre: float, cka_rnd: float, rank_pre: float, rank_rnd: float) -> str:
    if cka_rnd > cka_pre:
        return ("Subset similarity is therefore not by itself evidence that diffused redundancy is learned: "
                "the random network's subsets are even more alike"
                + (", and its variance uses fewer directions." if rank_rnd < rank_pre else "."))
    return ("Subset similarity grows with training here: the pre-trained layer's subsets are more alike "
            "than the random network's.")


def quotes(result: Result) -> dict:
    """Every number and verdict the chapter's prose quotes; ``pre`` is the first model, ``rnd``
    the second (its random-weight control)."""
    pre, rnd = result.params["models"][:2]
    m = result.cka[result.cka.comparison == "subset vs subset"].groupby(["model", "fraction"]).cka.mean()
    pc = result.paper_cka[(result.paper_cka.fraction == COMPARE_FRACTION)
                          & (result.paper_cka.dataset == PAPER_DATASET)].set_index("pretraining").cka
    ranks = result.ranks.set_index("model").effective_rank
    d = result.dr.set_index("model")
    q = {"scale_note": scale_note(), "f_cmp": COMPARE_FRACTION,
         "cka_pre": float(m[(pre, COMPARE_FRACTION)]), "cka_rnd": float(m[(rnd, COMPARE_FRACTION)]),
         "cka_paper_std": float(pc[PAPER_PRETRAININGS[0]]), "cka_paper_adv": float(pc[PAPER_PRETRAININGS[1]]),
         "rank_pre": float(ranks[pre]), "rank_rnd": float(ranks[rnd]),
         "dr_pre": float(d.loc[pre, "dr_closest"]), "dr_rnd": float(d.loc[rnd, "dr_closest"]),
         "acc_pre": 100 * float(d.loc[pre, "full_accuracy"]), "acc_rnd": 100 * float(d.loc[rnd, "full_accuracy"])}
    rises = bool((m[pre].sort_index().diff().dropna() >= -1e-9).all())
    q["shape"] = ("holds in shape: CKA rises steadily with the subset size towards 1" if rises else
                  "holds only partly: CKA does not rise monotonically with the subset size")
    q["verdict_control"] = "more" if q["cka_rnd"] > q["cka_pre"] else "less"
    q["verdict_learned"] = _verdict_learned(q["cka_pre"], q["cka_rnd"], q["rank_pre"], q["rank_rnd"])
    q["verdict_dr"] = _verdict_dr(q["dr_pre"], q["dr_rnd"], d.loc[pre, "full_accuracy"], d.loc[rnd, "full_accuracy"])
    return q

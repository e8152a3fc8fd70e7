"""Claims 8-10: what pre-training does to redundancy, on models the project trains itself
(adversarial training, dropout, DeCov, Matryoshka, width, upstream data, CNN against ViT)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..config import RunConfig
from ..curves import redundancy, subset_curve
from ..zoo import read_card
from .similarity import cka_curves


def zoo_cards(names) -> pd.DataFrame:
    """One row per zoo model: variant, training seed, upstream and robust accuracy, time."""
    rows = []
    for n in names:
        c = read_card(n)
        cfg = c["config"]
        rows.append({"model": n, "variant": cfg["variant"], "train_seed": cfg["seed"], "arch": cfg["arch"],
                     "width": cfg["width"], "loss": cfg["loss"], "dropout": cfg["dropout"],
                     "upstream_fraction": cfg["upstream_fraction"], "upstream_accuracy": c["upstream_accuracy"],
                     "robust_accuracy": c["robust_accuracy"], "train_seconds": c["train_seconds"],
                     "parameters": c["parameters"]})
    return pd.DataFrame(rows)


def compare_variants(table: pd.DataFrame, variant: str, reference: str, metric: str = "ratio_small",
                     direction: int = 1) -> pd.DataFrame:
    """``variant`` against ``reference`` per dataset, across training seeds: the mean of
    ``metric`` for each, the difference, and the seed spread (the larger of the two standard
    deviations, or 0 with one seed). Per dataset: 'as the paper' when the difference has
    the expected sign (``direction``) and exceeds the spread, 'opposite' when it is beyond
    the spread the other way, else 'within seed spread'."""
    rows = []
    for ds, g in table.groupby("dataset"):
        a, b = g[g.variant == variant][metric], g[g.variant == reference][metric]
        if a.empty or b.empty:
            continue
        spread = float(np.nanmax([a.std(ddof=1) if len(a) > 1 else 0.0, b.std(ddof=1) if len(b) > 1 else 0.0]))
        diff = float(a.mean() - b.mean())
        call = ("as the paper" if direction * diff > spread else
                "opposite" if direction * diff < -spread else "within seed spread")
        rows.append({"dataset": ds, "variant": variant, "reference": reference, "metric": metric,
                     "variant_mean": float(a.mean()), "reference_mean": float(b.mean()), "difference": diff,
                     "seed_spread": spread, "n_seeds": f"{len(a)} vs {len(b)}", "call": call})
    return pd.DataFrame(rows)


def verdict(calls: pd.Series) -> str:
    """One word for a claim from its per-dataset calls."""
    calls = list(calls)
    if not calls:
        return "not tested"
    agree, against = calls.count("as the paper"), calls.count("opposite")
    if agree > len(calls) / 2 and against == 0:
        return "holds"
    if against > len(calls) / 2:
        return "does not hold (the opposite is seen)"
    return "inconclusive (within the spread across training seeds)"


def width_trend(table: pd.DataFrame, metric: str = "ratio_small") -> pd.DataFrame:
    """Spearman correlation of ``metric`` with the penultimate width, per dataset (means over
    training seeds per width)."""
    rows = []
    for ds, g in table.groupby("dataset"):
        m = g.groupby("width")[metric].mean()
        rho = float(spearmanr(m.index, m.to_numpy()).statistic) if len(m) > 2 else float("nan")
        rows.append({"dataset": ds, "widths": ", ".join(str(int(w)) for w in m.index), "spearman": rho,
                     "call": "as the paper" if rho > 0.5 else "opposite" if rho < -0.5 else "within seed spread"})
    return pd.DataFrame(rows)


def pretraining_study(models, datasets, first_for=(), cka_dataset: str | None = None,
                      n_cka: int = 1000, **overrides) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Subset curves of every zoo model on every dataset, the redundancy table of the random
    subsets joined with the model cards, and CKA of random subsets on ``cka_dataset``.
    Models in ``first_for`` are also probed on their first-k neurons, in the same probe run
    (rows with ``selector == "first"``)."""
    cards = zoo_cards(models)
    frames = []
    for m in models:
        for ds in datasets:
            cfg = RunConfig(model=m, dataset=ds, image_size=None, **overrides).scaled()
            frames.append(subset_curve(cfg, selector=["random", "first"] if m in first_for else "random"))
    curves = pd.concat(frames, ignore_index=True)
    table = redundancy(curves[curves.selector == "random"]).merge(cards, on="model")
    cka = pd.DataFrame()
    if cka_dataset:
        cka = pd.concat([cka_curves(RunConfig(model=m, dataset=cka_dataset, image_size=None, **overrides).scaled(),
                                    n_cka) for m in models], ignore_index=True).merge(
            cards[["model", "variant", "train_seed"]], on="model")
    return curves, table, cka

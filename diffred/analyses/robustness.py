"""How robust the conclusions are to protocol choices the paper fixed: one choice at a
time (L2 strength, probe, resolution, precision, training images, seeds)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..config import SMOKE_LIMITS, RunConfig, scale
from ..curves import (cached_frames, curve_from_features, dr_table, feature_digests, features_of, make_probe,
                      probe_spec, subset_curve, summarise)
from ..device import resolved_precision
from ..probes import LogisticProbe, paper_recipe


def _variant_row(choice: str, value, curve: pd.DataFrame, fraction: float = 0.2, points: float = 5.0) -> dict:
    s = summarise(curve)
    full = float(s[s.fraction == 1.0].acc_mean.iloc[0])
    at = s[np.isclose(s.fraction, fraction)]
    dr = dr_table(curve).iloc[0]
    part = float(at.acc_mean.iloc[0]) if not at.empty else float("nan")
    return {"choice": choice, "value": str(value), "full": full, "at_20": part,
            "std_20": float(at.acc_std.iloc[0]) if not at.empty and at.n_seeds.iloc[0] > 1 else 0.0,
            "gap_points": 100 * (full - part), "claim_holds": bool(100 * (full - part) <= points),
            "dr_closest": float(dr.dr_closest), "dr_threshold": float(dr.dr_threshold)}


def robustness(base: RunConfig, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`robustness_compute`, cached (a warm book build recomputes nothing)."""
    spec = {"config": base.to_dict(), "features": feature_digests(base), "kw": kw, "probes": probe_spec(base.device)}
    (rows, curves), _ = cached_frames("robustness", spec, lambda: robustness_compute(base, **kw), n=2)
    return rows.assign(value=rows.value.astype(str)), curves.assign(value=curves.value.astype(str))


def robustness_compute(base: RunConfig, alphas=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), probes=("logistic", "ridge", "paper"),
               paper_epochs: int = 30, image_sizes=(64, 112, 160), precisions=("auto", "float32"),
               small_n_train: int = 3000, small_n_test: int = 2000, n_trains=(1000, 5000, 10000, None),
               seed_counts=(3, 5, 10)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vary one protocol choice at a time around ``base`` and record, for each value, the
    full-layer accuracy, the accuracy at 20%, the claim-1 gap and verdict, and DR(0.9) in both
    definitions. Returns (summary rows, all curves). Resolution and precision need new
    features, so they run on a smaller sample (``small_n_train``/``small_n_test``)."""

    rows, curves = [], []
    # The base run (its own probe, its seeds) is one of the values of several choices: the
    # default L2 strength, the default probe, the default number of seeds. Probe it once
    # (cached like any curve) and reuse it wherever a choice's probe is that same probe.
    base_curve = subset_curve(base)
    base_probe = make_probe(base.probe, device=base.device)
    tr, te = features_of(base)

    def probe_curve(est):
        if type(est) is type(base_probe) and est.get_params() == base_probe.get_params():
            return base_curve.drop(columns=["model", "dataset"])
        return curve_from_features(tr.X, tr.y, te.X, te.y, base.fractions, base.seeds, probe=est,
                                   classes=tr.classes)

    def add(choice, value, curve):
        curves.append(curve.assign(choice=choice, value=str(value)))
        rows.append(_variant_row(choice, value, curve))

    for a in alphas:
        add("L2 strength (logistic)", a, probe_curve(LogisticProbe(alphas=(a,))))
    add("L2 strength (logistic)", "chosen per subset", probe_curve(LogisticProbe(alphas=tuple(alphas))))
    for p in probes:
        est = paper_recipe(max_epochs=paper_epochs) if p == "paper" else make_probe(p)
        label = f"paper SGD recipe, {paper_epochs} epochs" if p == "paper" else p
        add("probe", label, probe_curve(est))
    small = dataclasses.replace(base, n_train=small_n_train, n_test=small_n_test).scaled()
    for size in image_sizes:
        px = size if scale() == "default" else min(size, SMOKE_LIMITS["image_size"])
        add(f"input resolution (n_train={small.n_train})", f"{px} px",
            subset_curve(dataclasses.replace(small, image_size=px)))
    for prec in precisions:
        add(f"extraction precision (n_train={small.n_train})", resolved_precision(prec, small.device),
            subset_curve(dataclasses.replace(small, precision=prec)))
    for n in n_trains:
        add("training images", "all" if n is None else n, subset_curve(dataclasses.replace(base, n_train=n).scaled()))
    for k in seed_counts:
        add("subset seeds", k, subset_curve(dataclasses.replace(base, seeds=tuple(range(1, k + 1)))))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def robustness_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per choice: the range each quantity moves over the values tried, and whether the
    claim-1 verdict or DR(0.9) changes."""
    out = []
    for choice, g in rows.groupby("choice", sort=False):
        out.append({"choice": choice, "values": ", ".join(g.value),
                    "full-layer accuracy": f"{100 * g.full.min():.1f} to {100 * g.full.max():.1f}",
                    "accuracy at 20%": f"{100 * g.at_20.min():.1f} to {100 * g.at_20.max():.1f}",
                    "DR(0.9), closest": f"{g.dr_closest.min():.2f} to {g.dr_closest.max():.2f}",
                    "DR(0.9), threshold": f"{g.dr_threshold.min():.2f} to {g.dr_threshold.max():.2f}",
                    "claim-1 verdict changes": "yes" if g.claim_holds.nunique() > 1 else "no",
                    "DR changes": "yes" if g.dr_closest.nunique() > 1 or g.dr_threshold.nunique() > 1 else "no"})
    return pd.DataFrame(out)

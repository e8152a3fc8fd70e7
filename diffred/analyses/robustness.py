"""How robust the conclusions are to protocol choices the paper fixed: one choice at a
time (L2 strength, probe, resolution, precision, training images, seeds), each recorded
with the full-layer accuracy, the accuracy at 20%, the claim-1 verdict and DR(0.9)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..config import SMOKE_LIMITS, RunConfig, scale
from ..curves import (cached_frames, curve_frame, curve_from_features, dr_table, feature_digests, features_of,
                      fit_members, make_probe, probe_spec, scale_note, subset_curve, summarise)
from ..device import resolve_runtime, resolved_precision
from ..probes import LogisticProbe, paper_recipe
from . import Result

#: The ``choice`` of each row (also the figure's panel titles); the prose quotes these three.
L2_STRENGTH = "L2 strength (logistic)"
TRAINING_IMAGES = "training images"
SUBSET_SEEDS = "subset seeds"
#: The display headers (with units) of the rows' percentage columns.
DISPLAY_UNITS = {"full": "full-layer accuracy (%)", "at_20": "accuracy at 20% (%)", "std_20": "std at 20% (points)"}
#: The ``value`` of the training-images choice that uses the whole training split.
ALL_IMAGES = "all"


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
               paper_epochs: int = 30, image_sizes=(64, 112, 160), precisions=("bfloat16", "float32"),
               small_n_train: int = 3000, small_n_test: int = 2000, n_trains=(1000, 5000, 10000, None),
               seed_counts=(3, 5, 10)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vary one protocol choice at a time around ``base`` and record, for each value, the
    full-layer accuracy, the accuracy at 20%, the claim-1 gap and verdict, and DR(0.9) in both
    definitions. Returns (summary rows, all curves). Resolution and precision need new
    features, so they run on a smaller sample (``small_n_train``/``small_n_test``)."""

    rows, curves = [], []
    # The base run (its own probe, its seeds) is one of the values of several choices: the
    # default probe, the default number of seeds. Probe it once (cached like any curve) and
    # reuse it wherever a choice's probe is that same probe.
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

    for value, curve in l2_curves(tr, te, base, alphas):
        add(L2_STRENGTH, value, curve)
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
        add(f"extraction precision (n_train={small.n_train})", precision_label(prec, small),
            subset_curve(dataclasses.replace(small, precision=prec)))
    for n in n_trains:
        add(TRAINING_IMAGES, ALL_IMAGES if n is None else n, subset_curve(dataclasses.replace(base, n_train=n).scaled()))
    for k in seed_counts:
        add(SUBSET_SEEDS, k, seed_curve(base, base_curve, k))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def precision_label(precision: str, cfg: RunConfig) -> str:
    """What ``precision`` means for ``cfg``'s extraction runtime on this machine (OpenVINO's
    bf16 hint or float32 on the CPU, torch's autocast on CUDA): the value of the row."""
    return resolved_precision(precision, cfg.device, resolve_runtime(cfg.runtime, cfg.device))


def l2_curves(tr, te, base: RunConfig, alphas) -> list[tuple[str, pd.DataFrame]]:
    """One logistic fit with every L2 strength: each strength's curve (its heads of that fit;
    they share the minibatches and nothing else) and the curve with the strength chosen per
    subset on the validation split."""
    sel, est = fit_members(tr.X, tr.y, te.X, base.fractions, base.seeds, probe=LogisticProbe(alphas=tuple(alphas)))
    out = [(a, curve_frame(sel, est.at_alpha(a), te.X, te.y, tr.y, tr.classes)) for a in alphas]
    return out + [("chosen per subset", curve_frame(sel, est, te.X, te.y, tr.y, tr.classes))]


def seed_curve(base: RunConfig, base_curve: pd.DataFrame, k: int) -> pd.DataFrame:
    """The base run with subset seeds 1..k: the base curve's rows for the seeds it has, and a
    fit of the seeds it lacks (a subset's probe does not depend on which others share its fit)."""
    have = sorted(set(base_curve.seed) & set(range(1, k + 1)))
    missing = tuple(s for s in range(1, k + 1) if s not in have)
    parts = [base_curve[base_curve.seed.isin(have)]]
    if missing:
        parts.append(subset_curve(dataclasses.replace(base, seeds=missing)))
    return pd.concat(parts, ignore_index=True)


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


def run(*, model, arch, dataset, n_train, image_size, fractions, seeds, alphas, paper_epochs, image_sizes,
        small_n_train, small_n_test, n_trains, seed_counts) -> Result:
    """The chapter's computation: one row and one curve per (choice, value) around the base
    run, and the per-choice summary."""
    params = dict(model=model, arch=arch, dataset=dataset, n_train=n_train, image_size=image_size,
                  fractions=fractions, seeds=seeds, alphas=alphas, paper_epochs=paper_epochs,
                  image_sizes=image_sizes, small_n_train=small_n_train, small_n_test=small_n_test,
                  n_trains=n_trains, seed_counts=seed_counts)
    base = RunConfig(model=model, arch=arch, dataset=dataset, n_train=n_train, image_size=image_size,
                     fractions=fractions, seeds=seeds).scaled()
    rows, curves = robustness(base, alphas=alphas, paper_epochs=paper_epochs, image_sizes=image_sizes,
                              small_n_train=small_n_train, small_n_test=small_n_test, n_trains=n_trains,
                              seed_counts=seed_counts)
    frames = {"rows": rows, "curves": curves, "summary": robustness_summary(rows)}
    return Result(params, frames, {"scale_note": scale_note()})


def rows_table(result: Result) -> pd.DataFrame:
    """The rows for display: accuracies in percent and their spread in points (headers with
    those units), rounded."""
    rows = result.rows
    shown = rows.assign(full=100 * rows.full, at_20=100 * rows.at_20, std_20=100 * rows.std_20)
    shown = shown.round({"full": 1, "at_20": 1, "std_20": 2, "gap_points": 1, "dr_closest": 2, "dr_threshold": 2})
    return shown.rename(columns=DISPLAY_UNITS)


def _choice(rows: pd.DataFrame, choice: str) -> pd.DataFrame:
    return rows[rows.choice == choice]


def _changes(summary: pd.DataFrame, column: str) -> str:
    changed = summary[summary[column] == "yes"].choice.tolist()
    return ", ".join(changed) if changed else "none of them"


def training_images_ends(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The training-images rows with the fewest images and with the most (the whole split
    when it was tried), chosen by their values, not by row order."""
    nt = _choice(rows, TRAINING_IMAGES)
    counts = pd.to_numeric(nt.value.where(nt.value != ALL_IMAGES), errors="coerce")
    small = nt.loc[counts.idxmin()]
    big = nt[nt.value == ALL_IMAGES].iloc[0] if (nt.value == ALL_IMAGES).any() else nt.loc[counts.idxmax()]
    return small, big


def seed_ends(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The subset-seeds rows with the fewest and the most seeds, by their values."""
    sd = _choice(rows, SUBSET_SEEDS)
    n = sd.value.astype(int)
    return sd.loc[n.idxmin()], sd.loc[n.idxmax()]


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes."""
    rows, summary = result.rows, result.summary
    reg = _choice(rows, L2_STRENGTH)
    few_seeds, many_seeds = seed_ends(rows)
    few_images, all_images = training_images_ends(rows)
    return {"scale_note": result.scale_note,
            "verdict_changes": _changes(summary, "claim-1 verdict changes"),
            "dr_changes": _changes(summary, "DR changes"),
            "reg_full_lo": 100 * float(reg.full.min()), "reg_full_hi": 100 * float(reg.full.max()),
            "std_seeds_lo": 100 * float(few_seeds.std_20), "std_seeds_hi": 100 * float(many_seeds.std_20),
            "seeds_lo": int(few_seeds.value), "seeds_hi": int(many_seeds.value),
            "gap_small_n": float(few_images.gap_points), "gap_big_n": float(all_images.gap_points),
            "n_small": str(few_images.value),
            "n_big": "all of them" if all_images.value == ALL_IMAGES else str(all_images.value)}

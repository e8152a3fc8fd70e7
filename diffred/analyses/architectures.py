"""Claims 2, 3 and 7 (paper Table 1, Fig. 3): DR(0.9) across models and tasks, beside the
paper's Table 1, and whether easier tasks show more redundancy.

Claim 2's "critical mass depends on the task" is decided by :data:`TASK_RULE`: Spearman's
rho between full-layer accuracy and DR(0.9) read off each curve
(:func:`diffred.metrics.dr_interpolated`, with a bootstrap interval over subset seeds),
over the pre-trained (model, task) pairs, with an exact permutation p-value; inconclusive
when p > alpha or when there are too few pairs for any p-value to reach alpha. The controlled
test of claim 2 (class count and training images per class, one encoder) is chapter 13's
(:func:`diffred.analyses.predictors.axis_verdicts`).

:func:`size_table` sets the EfficientNet-Lite0/1/2 sizes (published parameter counts and
ImageNet top-1, ``data/imagenet/``) beside this build's DR(0.9) and gap at 20%."""

from __future__ import annotations

import dataclasses

import math

import pandas as pd

from .. import metrics, paper, stats, verdicts
from ..config import PROJECT_ROOT
from ..curves import class_columns, dr_table, run_curves, scale_note
from . import Result
from .setting import note_for
from .predictors import GAP_FRACTION, curve_measures

#: Models whose name ends so are random-weight controls, not pre-trained encoders.
RANDOM_SUFFIX = "_random"
#: The mark of diffused redundancy: at least half the neurons can go (DR(0.9) >= 0.5).
REDUNDANT_DR = 0.5
#: Claim 7: every architecture shows diffused redundancy: DR(0.9) read off the curve at least
#: REDUNDANT_DR (half the neurons can go, keeping 90% of the accuracy) on every task.
CLAIM7 = verdicts.within_rule("every architecture shows diffused redundancy",
                              "DR(0.9) read off the curve (interpolated)", REDUNDANT_DR, "at least")
DELTA = 0.9
#: Bootstrap replicates of each pair's DR interval (over subset seeds).
N_BOOT = 500
#: Published ImageNet-1k top-1 and parameter counts of the EfficientNet-Lite checkpoints.
IMAGENET_CSV = PROJECT_ROOT / "data" / "imagenet" / "accuracy.csv"
#: Which source's top-1 the size table shows (T: the TensorFlow EfficientNet-Lite README).
IMAGENET_PROVENANCE = "T"
TASK_RULE = verdicts.correlation_rule(
    "critical mass depends on the task",
    "Spearman's rho between full-layer accuracy and DR(0.9) read off the curve, over the pre-trained "
    "(model, task) pairs", expected_sign=1)


def architecture_table(models, datasets, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subset curves for every (model, dataset), and their DR(0.9) table with the
    full-layer accuracy and number of classes."""
    curves = pd.concat([run_curves(m, datasets, **overrides) for m in models], ignore_index=True)
    dr = dr_table(curves)
    n_classes = {ds: len(class_columns(curves[curves.dataset == ds].dropna(axis=1, how="all"))) for ds in datasets}
    dr["classes"] = dr.dataset.map(n_classes)
    return curves, dr.merge(dr_intervals(curves), on=["model", "dataset"], how="left")


def dr_intervals(curves: pd.DataFrame, n_boot: int = N_BOOT) -> pd.DataFrame:
    """DR(0.9) read off each (model, dataset) random-subset curve by interpolation, with its
    bootstrap interval over subset seeds (:func:`diffred.metrics.dr_bootstrap`)."""
    rows = []
    c = curves[curves.selector == "random"] if "selector" in curves else curves
    for (model, ds), g in c.groupby(["model", "dataset"]):
        b = metrics.dr_bootstrap(g, DELTA, n_boot=n_boot)
        rows.append({"model": model, "dataset": ds, "dr_interp": b["dr"], "dr_low": b["low"], "dr_high": b["high"],
                     "n_seeds": b["n_seeds"]})
    return pd.DataFrame(rows)


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
              "paper_points": paper_points, "points": points, "sizes": size_table(curves, dr, imagenet_accuracy())}
    return Result(params, frames, {"scale_note": scale_note()})


def dr_display(result: Result) -> pd.DataFrame:
    """Our DR(0.9) and full-layer accuracy, model x dataset (rounded for display)."""
    cols = [c for c in ("dr_closest", "dr_interp", "dr_low", "dr_high", "full_accuracy") if c in result.dr]
    return result.dr.pivot_table(index="model", columns="dataset", values=cols).round(3)


def size_display(result: Result) -> pd.DataFrame:
    """The model-size table with readable headers (rounded for display)."""
    names = {"model": "model", "params_m": "parameters (M)", "top1": "ImageNet top-1 (%)", "width": "width",
             "tasks": "tasks", "full_accuracy": "full-layer accuracy (%)", "dr": "DR(0.9)",
             "gap20": f"gap at {GAP_FRACTION:.0%} (points)", "dr_random": "DR(0.9), random weights"}
    return result.sizes[list(names)].rename(columns=names).set_index("model").round(3)


#: How the paper table marks a value read off the authors' curves rather than printed in Table 1.
DERIVED_MARK = " (curve)"


def paper_display(result: Result) -> pd.DataFrame:
    """The paper's Table 1, (model, pre-training, upstream) x dataset, two decimals; a value
    derived from the authors' curves (provenance "D") carries :data:`DERIVED_MARK`."""
    t = result.paper_table.assign(shown=[f"{v:.2f}" + (DERIVED_MARK if p == "D" else "")
                                         for v, p in zip(result.paper_table.dr_0_9, result.paper_table.provenance)])
    return t.pivot_table(index=["model", "pretraining", "upstream"], columns="dataset", values="shown", aggfunc="first")


def is_random(model: pd.Series) -> pd.Series:
    """Which rows' models are random-weight controls."""
    return model.str.endswith(RANDOM_SUFFIX)


def task_test(df: pd.DataFrame, x: str = "full_accuracy", y: str = "dr_interp") -> tuple[float, float, int]:
    """Spearman's rho of two columns, its exact (or Monte Carlo) permutation p-value, and n
    (rho NaN, p 1 when either column does not vary)."""
    rho, p = stats.permutation_p_correlation(df[x].to_numpy(float), df[y].to_numpy(float))
    return rho, p, len(df)


def task_verdict(pre: pd.DataFrame) -> verdicts.Verdict:
    """:data:`TASK_RULE` on the pre-trained pairs."""
    rho, p, n = task_test(pre)
    return TASK_RULE.judge(rho, p, n=n)


def spearman(df: pd.DataFrame, x: str, y: str) -> float:
    """Spearman correlation of two columns (NaN when either does not vary)."""
    return float(df[[x, y]].corr(method="spearman").iloc[0, 1])


def direction(rho: float) -> str:
    """What the sign alone of an accuracy-DR correlation points to (no test: see
    :func:`task_sentence` for what the verdict says)."""
    if rho > 0:
        return "easier tasks show more redundancy, as the paper finds"
    if math.isnan(rho) or rho == 0:
        return "no trend can be measured (DR does not vary)"
    return "here easier tasks show less redundancy, the opposite of the paper's direction"


def task_sentence(v: verdicts.Verdict) -> str:
    """What the task-difficulty verdict says, in words."""
    if v.holds:
        return "easier tasks show more redundancy, as the paper finds, and the test decides it"
    if v.outcome == verdicts.FAILS:
        return "easier tasks show less redundancy, decisively: the opposite of the paper's direction"
    if math.isnan(v.statistic):
        return "no trend can be measured (DR does not vary across the pairs)"
    sign = "more" if v.statistic > 0 else "less"
    return f"easier tasks show {sign} redundancy here, but the test cannot tell this from chance"


def difficulty_note(pre: pd.DataFrame, paper_points: pd.DataFrame) -> str:
    """How wide a range of task difficulty our pairs span, beside the paper's curves."""
    lo, hi = 100 * pre.full_accuracy.min(), 100 * pre.full_accuracy.max()
    plo, phi = 100 * paper_points.full_accuracy.min(), 100 * paper_points.full_accuracy.max()
    word = "a narrower" if hi - lo < phi - plo else "at least as wide a"
    return (f"our pairs' full-layer accuracies span {lo:.1f}% to {hi:.1f}% ({hi - lo:.1f} points), {word} range "
            f"of difficulty than the paper's curves ({plo:.1f}% to {phi:.1f}%)")


def _by_model(pre: pd.DataFrame, models) -> str:
    """'0.80 for efficientnet_lite0 and 0.70 for efficientnet_lite2': mean DR per model."""
    means = pre.groupby("model").dr_closest.mean()
    return words(f"{means[m]:.2f} for {m}" for m in models if m in means.index)


def _claim_strings(v: verdicts.Verdict, n: int, paper_points: pd.DataFrame) -> dict:
    rho_p, p_p, n_p = task_test(paper_points, "full_accuracy", "dr")
    prov = "DR by the authors' closest-point definition, derived from their notebook curves"
    return {"rho_paper": rho_p, "p_paper": p_p, "n_paper": n_p,
            "claim2_ours": f"Spearman rho {verdicts.fmt(v.statistic, 2)} over {n} pairs "
                           f"({verdicts.fmt_p(v.p_value) if v.p_value is not None else 'no p-value'})",
            "claim2_paper": f"no correlation printed; over the authors' {n_p} curves rho "
                            f"{verdicts.fmt(rho_p, 2)} ({verdicts.fmt_p(p_p)}; {prov})"}


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes."""
    dr, paper_points = result.dr, result.paper_points
    pre, rnd = dr[~is_random(dr.model)], dr[is_random(dr.model)]
    v = task_verdict(pre)
    return {"scale_note": result.scale_note, "rho_ours": v.statistic, "n_ours": len(pre),
            "dr_by_model": _by_model(pre, result.params["models"]),
            "dr_random": float(rnd.dr_closest.mean()), "acc_random": 100 * float(rnd.full_accuracy.mean()),
            "acc_pre": 100 * float(pre.full_accuracy.mean()), "direction": task_sentence(v), "verdict_task": v.outcome,
            "dr_values": ", ".join(f"{x:.2f}" for x in sorted(pre.dr_closest.unique())),
            "n_dr_grid": int(pre.dr_closest.nunique()), "dr_interp_values": ", ".join(
                f"{x:.3f}" for x in sorted(pre.dr_interp)), "difficulty_note": difficulty_note(pre, paper_points),
            "smallest_p": verdicts.smallest_p_correlation(len(pre)),
            "all_redundant": "shows" if (pre.dr_closest >= REDUNDANT_DR).all() else "does not show",
            "min_dr": float(pre.dr_closest.min()), "redundant_dr": REDUNDANT_DR,
            "claim2_badge": v.badge(2), **v.quotes("claim2"), **_claim_strings(v, len(pre), paper_points),
            **claim7_quotes(pre, result.paper_table)}


def words(items) -> str:
    """'a, b and c': items listed in a sentence."""
    items = [str(x) for x in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def setting_quotes(result: Result) -> dict:
    """What this build ran on, in words: the models (pre-trained, random-weight), the
    datasets and their class counts, and the model-size sentence (glued beside :func:`quotes`)."""
    models, dr = list(result.params["models"]), result.dr
    pre = [m for m in models if not m.endswith(RANDOM_SUFFIX)]
    rnd = [m for m in models if m.endswith(RANDOM_SUFFIX)]
    lo, hi = int(dr.classes.min()), int(dr.classes.max())
    return {"models_pre": words(pre), "models_random": words(rnd) if rnd else "none",
            "datasets_used": words(result.params["datasets"]),
            "classes_note": f"all {lo}-class" if lo == hi else f"of {lo} to {hi} classes",
            "size_sentence": size_sentence(result.sizes), "gap_fraction": GAP_FRACTION,
            "widths_note": widths_note(result.sizes), "setting_note": _setting_note(result)}


def _setting_note(result: Result) -> str:
    """:func:`.setting.note_for` on the first model and dataset of this build."""
    p, dr = result.params, result.dr
    row = dr[(dr.model == p["models"][0]) & (dr.dataset == p["datasets"][0])]
    if row.empty or "full_accuracy" not in row:
        return ""
    return note_for(p["models"][0], p["datasets"][0], float(row.full_accuracy.iloc[0]), n_train=p.get("n_train"),
                    n_test=p.get("n_test"), image_size=p.get("image_size", 112))


def widths_note(sizes: pd.DataFrame) -> str:
    """The probed layer's width across the sized models, in words."""
    w = sorted(set(int(x) for x in sizes.width))
    if not w:
        return "no sized model is in this build"
    if len(w) == 1:
        return f"the probed penultimate layer has {w[0]} neurons in each"
    return "probed penultimate widths " + words(w)


def claim7_verdict(pre: pd.DataFrame) -> verdicts.Verdict:
    """:data:`CLAIM7` on each pre-trained (model, task) pair, by model and then across models."""
    models = {}
    for model, g in pre.groupby("model", sort=False):
        pairs = {r.dataset: CLAIM7.judge(r.dr_interp, (r.dr_low, r.dr_high)) for r in g.itertuples()}
        models[str(model)] = verdicts.across(pairs, what="tasks")
    v = verdicts.across(models, what="models")
    return dataclasses.replace(v, rule=f"{CLAIM7.statement} {verdicts.ACROSS_STATEMENT.format(what='tasks of a model')} "
                               f"{verdicts.ACROSS_STATEMENT.format(what='models')}")


def claim7_quotes(pre: pd.DataFrame, paper_table: pd.DataFrame) -> dict:
    """The ledger keys of claim 7: our DR range per model, the paper's printed rows per model."""
    v = claim7_verdict(pre)
    printed = paper_table[paper_table.provenance == "P"].groupby("model").dr_0_9.agg(["min", "max"])
    ours = "; ".join(f"{m} {g.dr_interp.min():.2f} to {g.dr_interp.max():.2f}" for m, g in pre.groupby("model", sort=False))
    theirs = "; ".join(f"{m} {r['min']:.2f} to {r['max']:.2f}" for m, r in printed.iterrows())
    return {"claim7_badge": v.badge(7), **v.quotes("claim7"), "claim7_ours": f"DR(0.9) {ours}",
            "claim7_paper": f"DR(0.9) in the rows Table 1 prints: {theirs}"}


def imagenet_accuracy(path=IMAGENET_CSV) -> pd.DataFrame:
    """Published parameter counts (millions) and ImageNet-1k top-1 (%) per built-in model,
    from ``data/imagenet/accuracy.csv`` (rows of provenance :data:`IMAGENET_PROVENANCE`)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; it ships with the repository (data/imagenet/)")
    df = pd.read_csv(path, comment="#")
    return df[df.provenance == IMAGENET_PROVENANCE][["model", "params_m", "top1"]].reset_index(drop=True)


def size_table(curves: pd.DataFrame, dr: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """The model-size axis: one row per pre-trained model of this build that ``published``
    lists, fewest parameters first, with its published size and top-1, the width of the
    probed layer, and over this build's tasks the mean full-layer accuracy (%), DR(0.9) read
    off the curve, the gap (points) at :data:`GAP_FRACTION` of neurons, and the mean DR of
    its random-weight copy (NaN when the build has none)."""
    c = curves[curves.selector == "random"] if "selector" in curves else curves
    gaps = pd.DataFrame([{"model": m, "dataset": ds, "gap": curve_measures(g, GAP_FRACTION)["gap20"]}
                         for (m, ds), g in c.groupby(["model", "dataset"])])
    per = dr.merge(gaps, on=["model", "dataset"], how="left")
    width = c.groupby("model").k.max().rename("width")
    mean = per.groupby("model").agg(tasks=("dataset", "size"), full_accuracy=("full_accuracy", "mean"),
                                    dr=("dr_interp", "mean"), gap20=("gap", "mean"))
    out = published.merge(width, left_on="model", right_index=True).merge(mean, left_on="model", right_index=True)
    rnd = mean.dr[mean.index.str.endswith(RANDOM_SUFFIX)].rename("dr_random")
    rnd.index = rnd.index.str.removesuffix(RANDOM_SUFFIX)
    out = out.merge(rnd, left_on="model", right_index=True, how="left")
    return out.assign(full_accuracy=100 * out.full_accuracy).sort_values("params_m").reset_index(drop=True)


def size_sentence(sizes: pd.DataFrame) -> str:
    """What the model-size table shows, in words (a description: three sizes are no test)."""
    if len(sizes) < 2:
        return "this build has fewer than two of the sized models, so there is no model-size axis to read"
    trend = sizes.dr.diff().dropna()
    word = ("rises" if (trend > 0).all() else "falls" if (trend < 0).all() else "does not move monotonically")
    models = ", ".join(sizes.model)
    return (f"from {models} ({sizes.params_m.iloc[0]:.1f}M to {sizes.params_m.iloc[-1]:.1f}M parameters, ImageNet "
            f"top-1 {sizes.top1.iloc[0]:.1f}% to {sizes.top1.iloc[-1]:.1f}%), the mean DR(0.9) goes "
            + ", ".join(f"{x:.3f}" for x in sizes.dr) + f": it {word} with model size; with "
            f"{len(sizes)} sizes this is a description, not a test")

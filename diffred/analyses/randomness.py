"""How random is random? (chapter 13, issue 18): the spread over many random subsets, the
most and least important neurons against random ones, label-free predictors of DR, and
task difficulty held under control.

* :func:`spread` / :func:`spread_summary` — hundreds of random subsets per fraction
  (one batched probe run): quantiles, the worst subset, how many subsets the mean needs to
  be within :data:`TARGET_POINTS` points, against the paper's 5-subset error bars.
* :func:`importance`, :func:`concentration`, :func:`diffused_verdict` — neurons ranked on
  the TRAINING split (held out from the test set) by the full probe's weight norm and by a
  univariate F statistic; the k most and least important, and the layer without its top
  k, probed against k random. The verdict on "diffused" follows :data:`DIFFUSED_RULES`.
* :func:`run` / :func:`quotes` — the chapter's result contract (items 3-4 in
  :mod:`diffred.analyses.predictors`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
from sklearn.feature_selection import f_classif

from pathlib import Path

from .. import paper, tables, verdicts
from ..config import RunConfig, scale
from ..curves import cached_frames, feature_digests, features_of, probe_spec
from ..probes import LogisticProbe, RidgeProbe
from ..store import sha256_file
from ..subsets import Basis, Member, Selection, random_permutation, subset_size
from . import Result
from . import predictors as pred
from .architectures import paper_dr_points, task_test, words

#: The mean of n subsets is within this many points of the mean of all (at 95%) when
#: n >= (Z * sd / TARGET_POINTS)^2.
TARGET_POINTS = 0.2
Z = 1.96
#: The share of neurons at which the most/least important are compared with random ones.
CONCENTRATION_FRACTION = 0.05
#: Points of accuracy a ranked subset may lose against random ones for "diffused".
DIFFUSED_POINTS = 2.0
RANKINGS = ("weight_norm", "f_stat")
SPREAD_FRACTIONS = (0.01, 0.05, 0.1, 0.2)
#: At smoke scale (the test suite's build) at most this many subsets per fraction.
SMOKE_SUBSETS = 20
BOTTOM = verdicts.within_rule(
    "diffused", "the accuracy lost when the k least important neurons replace k random ones",
    DIFFUSED_POINTS, "at most", unit="points")
WITHOUT_TOP = verdicts.within_rule(
    "diffused", "the extra accuracy lost when the k most important neurons are removed instead of k random ones",
    DIFFUSED_POINTS, "at most", unit="points")
DIFFUSED_RULES = (BOTTOM, WITHOUT_TOP)
WORDS = {verdicts.HOLDS: "diffused", verdicts.FAILS: "concentrated", verdicts.PARTLY: "partly diffused",
         verdicts.UNDECIDED: "undecided"}


def _fit_rows(X_train, y_train, X_test, y_test, sel: Selection, device="auto", probe=LogisticProbe,
              **extra) -> pd.DataFrame:
    est = probe(device=device).fit(X_train, y_train, sel)
    acc = (est.predict(X_test) == np.asarray(y_test)[None]).mean(1)
    return pd.DataFrame([{"selector": m.selector, "fraction": m.fraction, "k": m.k, "seed": m.seed,
                          "accuracy": float(a), **extra} for m, a in zip(sel.members, acc)])


def spread(X_train, y_train, X_test, y_test, fractions, n_subsets: int, device="auto") -> pd.DataFrame:
    """Test accuracy of ``n_subsets`` random subsets (seeds 1..n) at each fraction, plus
    the full layer; one row per (fraction, seed). Probed with the closed-form ridge probe:
    the batched logistic probe costs one weight group per subset, too slow for hundreds on
    the book's CPUs; :func:`probe_agreement` measures how far ridge is from it on the
    subsets both probe."""
    d = X_train.shape[1]
    bases = tuple(Basis("random", s, d, order=random_permutation(d, s)) for s in range(1, n_subsets + 1))
    members = [Member(i, subset_size(f, d, clip=True), f, b.seed, "random")
               for i, b in enumerate(bases) for f in fractions]
    members.append(Member(0, d, 1.0, None, "full"))
    return _fit_rows(X_train, y_train, X_test, y_test, Selection(bases, tuple(members)), device, RidgeProbe)


def probe_agreement(spread_rows: pd.DataFrame, conc: pd.DataFrame) -> dict:
    """Ridge (spread) against logistic (concentration) accuracy on the same random subsets
    (same seed and fraction): mean difference and mean absolute difference in points."""
    a = spread_rows[spread_rows.selector == "random"][["fraction", "seed", "accuracy"]]
    b = conc[conc.selector == "random"][["fraction", "seed", "accuracy"]]
    m = a.merge(b, on=["fraction", "seed"], suffixes=("_ridge", "_logistic"))
    diff = 100 * (m.accuracy_ridge - m.accuracy_logistic)
    return {"n": len(m), "mean_diff": float(diff.mean()), "mean_abs_diff": float(diff.abs().mean())}


def subsets_needed(sd_points: float, target: float = TARGET_POINTS) -> int:
    """Subsets whose mean is within ``target`` points of the population mean (95%)."""
    return max(1, math.ceil((Z * sd_points / target) ** 2))


def spread_summary(rows: pd.DataFrame, paper_std: pd.DataFrame | None = None, n_draw: int = 5,
                   random_state: int = 0) -> pd.DataFrame:
    """Per fraction: mean, sd, quantiles, the worst and best subset, the worst gap to the
    full layer (points), the subsets needed for :data:`TARGET_POINTS`, the 95% half-width
    of a ``n_draw``-subset mean, and the share of ``n_draw``-subset means (resampled)
    within the target of the all-subset mean; the paper's 5-subset std where known."""
    full = float(rows.loc[rows.selector == "full", "accuracy"].iloc[0])
    rng = np.random.default_rng(random_state)
    out = []
    for (f, k), g in rows[rows.selector == "random"].groupby(["fraction", "k"]):
        a = 100 * g.accuracy.to_numpy()
        sd = float(a.std(ddof=1)) if a.size > 1 else 0.0
        draws = a[rng.integers(0, a.size, (4000, n_draw))].mean(1)
        q = np.quantile(a, [0.01, 0.05, 0.5, 0.95])
        out.append({"fraction": f, "k": k, "n_subsets": a.size, "mean": a.mean(), "sd": sd, "q01": q[0],
                    "q05": q[1], "median": q[2], "q95": q[3], "worst": a.min(), "best": a.max(),
                    "full": 100 * full, "worst_gap": 100 * full - a.min(), "needed": subsets_needed(sd),
                    "halfwidth_5": Z * sd / math.sqrt(n_draw),
                    "share_5_within": float((np.abs(draws - a.mean()) <= TARGET_POINTS).mean())})
    s = pd.DataFrame(out)
    if paper_std is not None and len(paper_std):
        s = s.merge(paper_std, on="fraction", how="left")
    return s


def importance(X_train, y_train, device="auto") -> pd.DataFrame:
    """Per neuron, two importance scores from the training images only: the L2 norm of its
    row of the full-layer probe's weights (on standardised features) and its univariate
    ANOVA F statistic (0 for a constant neuron)."""
    d = X_train.shape[1]
    sel = Selection((Basis("all", None, d, order=np.arange(d)),), (Member(0, d, 1.0, None, "all"),))
    est = LogisticProbe(device=device).fit(X_train, y_train, sel)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant neurons: F is undefined, scored 0
        f = np.nan_to_num(f_classif(X_train, y_train)[0], nan=0.0, posinf=0.0)
    return pd.DataFrame({"neuron": np.arange(d), "weight_norm": np.linalg.norm(est.coef_[0], axis=1), "f_stat": f})


def concentration(X_train, y_train, X_test, y_test, scores: pd.DataFrame, fractions=(CONCENTRATION_FRACTION,),
                  n_random: int = 20, device="auto") -> pd.DataFrame:
    """At each fraction (k neurons): per ranking, the k most (``top``) and least
    (``bottom``) important neurons and the layer without its top k (``without_top``);
    and ``n_random`` random k-subsets (``random``) and layers without k random neurons
    (``without_random``). One batched probe run; one row per member, with ``ranking``."""
    d = X_train.shape[1]
    bases, members = [], []
    for name in RANKINGS:
        desc = np.argsort(-scores[name].to_numpy(), kind="stable")
        for sel_name, order in (("top", desc), ("bottom", desc[::-1])):
            bases.append(Basis(f"{sel_name}:{name}", None, d, order=order.copy()))
    for s in range(1, n_random + 1):
        bases.append(Basis("random", s, d, order=random_permutation(d, s)))
    for f in fractions:
        k = subset_size(f, d, clip=True)
        for i, b in enumerate(bases):
            kind, _, name = b.selector.partition(":")
            members.append(Member(i, k, f, b.seed, b.selector))
            if kind in ("bottom", "random"):  # the prefix of d - k of these = without the top / k random
                members.append(Member(i, d - k, f, b.seed, f"without_{'top' if kind == 'bottom' else 'random'}"
                                      + (f":{name}" if name else "")))
    df = _fit_rows(X_train, y_train, X_test, y_test, Selection(tuple(bases), tuple(members)), device)
    df["ranking"] = df.selector.str.partition(":")[2].replace("", "none")
    df["selector"] = df.selector.str.partition(":")[0]
    return df


def _gap(random, ranked, n_test: int) -> tuple[float, tuple[float, float]]:
    """Points lost by a ranked subset against the random mean, with a normal 95% interval
    (random subsets' spread of their mean plus the ranked subset's binomial test noise)."""
    r, b = random.mean(), float(ranked)
    se = math.sqrt((random.var(ddof=1) / len(random) if len(random) > 1 else 0.0) + b * (1 - b) / n_test)
    g = 100 * (r - b)
    return g, (g - 100 * Z * se, g + 100 * Z * se)


#: How the verdict names each comparison and ranking.
COMPARISON_WORDS = {"bottom": "the least important k", "without_top": "the layer without its most important k"}


def diffused_verdict(conc: pd.DataFrame, n_test: int, fraction: float = CONCENTRATION_FRACTION) -> verdicts.Verdict:
    """:data:`DIFFUSED_RULES` on each ranking at ``fraction``, combined by
    :func:`verdicts.across`: holds = diffused, does not hold = concentrated."""
    at = conc[np.isclose(conc.fraction, fraction)]
    parts = {}
    for name in RANKINGS:
        for rule, ranked, ref in ((BOTTOM, "bottom", "random"), (WITHOUT_TOP, "without_top", "without_random")):
            acc = at[(at.selector == ranked) & (at.ranking == name)].accuracy
            g, iv = _gap(at[at.selector == ref].accuracy.to_numpy(), acc.iloc[0], n_test)
            parts[f"{COMPARISON_WORDS[ranked]} by {tables.WORDS.get(name, name)}"] = rule.judge(g, iv, n=n_test)
    v = verdicts.across(parts, what="comparisons")
    return dataclasses.replace(v, rule=" ".join(r.statement for r in DIFFUSED_RULES) + " "
                               + verdicts.ACROSS_STATEMENT.format(what="comparisons"))


def gap_table(conc: pd.DataFrame, n_test: int) -> pd.DataFrame:
    """Per (fraction, ranking): accuracy of top, bottom, random (mean), without top and
    without random (mean), in %, and the two gaps the verdict reads."""
    rows = []
    for (f, name), g in conc[conc.ranking != "none"].groupby(["fraction", "ranking"]):
        rnd = conc[np.isclose(conc.fraction, f) & (conc.ranking == "none")]
        acc = {s: float(g[g.selector == s].accuracy.iloc[0]) for s in ("top", "bottom", "without_top")}
        rows.append({"fraction": f, "k": int(g.k.min()), "ranking": name, **{s: 100 * a for s, a in acc.items()},
                     "random": 100 * rnd[rnd.selector == "random"].accuracy.mean(),
                     "without_random": 100 * rnd[rnd.selector == "without_random"].accuracy.mean(),
                     "bottom_gap": _gap(rnd[rnd.selector == "random"].accuracy.to_numpy(), acc["bottom"], n_test)[0],
                     "without_top_gap": _gap(rnd[rnd.selector == "without_random"].accuracy.to_numpy(),
                                             acc["without_top"], n_test)[0]})
    return pd.DataFrame(rows)


def _code() -> str:
    here = Path(__file__).parent
    return "".join(sha256_file(here / f)[:12] for f in ("randomness.py", "predictors.py"))


def _main(cfg, fractions, n_subsets, n_random):
    """Spread and concentration on one config's features (cached)."""
    spec = {"features": feature_digests(cfg), "probe": probe_spec(cfg.device), "code": _code()}
    tr, te = features_of(cfg)
    (rows,), _ = cached_frames("how_random_spread", {**spec, "fractions": fractions, "n": n_subsets}, lambda: spread(
        tr.X, tr.y, te.X, te.y, fractions, n_subsets, cfg.device))
    (scores, conc), _ = cached_frames("how_random_concentration", {**spec, "fractions": fractions, "n": n_random},
                                      lambda: _concentrate(tr, te, fractions, n_random, cfg.device), n=2)
    return rows, scores, conc, len(te.y)


def _concentrate(tr, te, fractions, n_random, device):
    scores = importance(tr.X, tr.y, device)
    return scores, concentration(tr.X, tr.y, te.X, te.y, scores, fractions, n_random, device)


def run(model="efficientnet_lite0", dataset="fashion_mnist", n_train=5000, n_test=None, image_size=112,
        fractions=SPREAD_FRACTIONS, n_subsets=200, n_random=10, lite=pred.LITE, zoo_models=None, layers=True,
        n_classes=(2, 5, 10), shots=(10, 100, 1000), base_shots=100, n_draws=3, task_seeds=(1, 2, 3),
        device="auto") -> Result:
    """Everything chapter 13 shows; each part cached (a warm build recomputes nothing)."""
    params = dict(locals())
    n_subsets = min(n_subsets, SMOKE_SUBSETS) if scale() == "smoke" else n_subsets
    fractions = tuple(float(f) for f in fractions)
    cfg = RunConfig(model=model, dataset=dataset, n_train=n_train, n_test=n_test, image_size=image_size,
                    device=device).scaled()
    rows, scores, conc, n_te = _main(cfg, fractions, n_subsets, n_random)
    ref = paper.subset_curves("cifar10")
    summary = spread_summary(rows, ref[["fraction"]].assign(paper_sd=ref.acc_std).dropna())
    entries = pred.encoder_entries(lite, zoo_models, layers)
    (table,), _ = cached_frames("how_random_predictors", {"entries": pred.entry_spec(entries), "code": _code()},
                                lambda: pred.predictor_table(entries))
    fm, mn = (RunConfig(model=model, dataset=ds, n_train=None, n_test=None, image_size=image_size,
                        device=device).scaled() for ds in (dataset, "mnist5k"))
    task_spec = {"features": feature_digests(fm) + feature_digests(mn), "code": _code(), "classes": n_classes,
                 "shots": shots, "base": base_shots, "draws": n_draws, "seeds": task_seeds}
    (tasks,), _ = cached_frames("how_random_tasks", task_spec, lambda: pred.difficulty_study(
        fm, mn, n_classes, shots, base_shots, n_draws, task_seeds))
    frames = {"spread": rows, "summary": summary, "scores": scores, "concentration": conc,
              "gaps": gap_table(conc, n_te), "predictors": table, "correlations": pred.correlation_table(table),
              "tasks": tasks}
    values = {"diffused": diffused_verdict(conc, n_te, _nearest(fractions, CONCENTRATION_FRACTION)),
              "n_test": n_te, "n_subsets": n_subsets, "agreement": probe_agreement(rows, conc), "cfg": cfg, **pred.predictor_verdicts(table),
              **pred.axis_verdicts(tasks)}
    return Result(params | {"n_subsets": n_subsets}, frames, values)


def _nearest(fractions, f):
    return min(fractions, key=lambda x: abs(x - f))


def quotes(r: Result) -> dict:
    """Every number and word chapter 13 quotes."""
    s = r.summary.sort_values("fraction")
    head = s.iloc[(s.fraction - 0.2).abs().argmin()]
    low = s.iloc[0]
    q = {"n_subsets": int(r.n_subsets), "n_test": int(r.n_test), "target": TARGET_POINTS, "delta_f": head.fraction,
         "head_sd": head.sd, "head_worst_gap": head.worst_gap, "head_needed": int(head.needed),
         "head_half5": head.halfwidth_5, "head_share5": 100 * head.share_5_within, "low_f": low.fraction,
         "low_worst_gap": low.worst_gap, "low_sd": low.sd, "needed_max": int(s.needed.max()),
         "paper_sd": head.get("paper_sd", float("nan")), "diffused_word": WORDS[r.diffused.outcome],
         "conc_f": r.diffused_fraction if "diffused_fraction" in r.values else CONCENTRATION_FRACTION,
         "n_encoders": len(r.predictors), "agree_n": r.agreement["n"], "agree_diff": r.agreement["mean_diff"],
         "agree_abs": r.agreement["mean_abs_diff"], "practical": pred.practical_sentence(r.dr)}
    for prefix, v in (("diffused", r.diffused), ("pdr", r.dr), ("pgap", r.gap), ("classes", r.classes),
                      ("shots", r.shots)):
        q.update(v.quotes(prefix))
    q.update(paper_comparison(head.get("paper_sd", float("nan"))) | setting_quotes(r) | claim2_quotes(r))
    t = r.tasks[r.tasks.axis == "classes"].groupby("classes")[["full_accuracy", "dr"]].mean()
    q.update({"few_classes": int(t.index.min()), "many_classes": int(t.index.max()),
              "acc_few": 100 * t.full_accuracy.iloc[0], "acc_many": 100 * t.full_accuracy.iloc[-1],
              "dr_few": t.dr.iloc[0], "dr_many": t.dr.iloc[-1]})
    return q


def paper_comparison(paper_sd: float, n_paper: int = 5) -> dict:
    """The paper's ``n_paper``-subset error bar (sd in points) read the same way as ours:
    the 95% half-width of its mean, and the subsets its spread would need for
    :data:`TARGET_POINTS` (NaN, and no count, where the paper prints no sd)."""
    if not math.isfinite(paper_sd):
        return {"paper_half5": float("nan"), "paper_needed": "no count (the paper prints no sd there)"}
    return {"paper_half5": Z * paper_sd / math.sqrt(n_paper), "paper_needed": str(subsets_needed(paper_sd))}


def setting_quotes(r: Result) -> dict:
    """What the chapter ran on, in words: the spread's encoder and data, the sized encoders,
    and the difficulty study's class counts and training-set sizes."""
    cfg, t = r.cfg, r.tasks
    fm = t[~t.joined.astype(bool)] if "joined" in t else t
    return {"main_setting": f"{cfg.model} (ImageNet weights) on {cfg.dataset} at {cfg.image_size} px",
            "task_setting": f"{cfg.model}'s features of the whole {cfg.dataset} and mnist5k splits",
            "lite_models": words(r.params["lite"]), "gap_fraction": pred.GAP_FRACTION,
            "shots_used": words(f"{x:,}" for x in sorted(t[t.axis == "shots"].shots.unique())),
            "base_shots": int(t[t.axis == "classes"].shots.max()), "all_classes": int(fm.classes.max()),
            "dataset": cfg.dataset}


def claim2_verdict(r: Result) -> verdicts.Verdict:
    """Claim 2 (harder tasks need more neurons) over the two controlled axes, combined by
    :func:`diffred.verdicts.across`: the ledger's verdict on claim 2."""
    what = "axes of task difficulty (the class count, the training images per class)"
    v = verdicts.across({"the class count": r.classes, "the training images per class": r.shots}, what=what)
    return dataclasses.replace(v, rule=f"{pred.CLASS_RULE.statement} {pred.SHOTS_RULE.statement} "
                                       f"{verdicts.ACROSS_STATEMENT.format(what=what)}")


def claim2_quotes(r: Result) -> dict:
    """The ledger keys of claim 2: the combined verdict, our two rhos, the paper's curves."""
    v = claim2_verdict(r)
    rho_p, p_p, n_p = task_test(paper_dr_points(), "full_accuracy", "dr")
    ours = "; ".join(f"{name} rho {verdicts.fmt(a.statistic, 2)} ({verdicts.fmt_p(a.p_value)}, {a.n} tasks)"
                     if a.p_value is not None else f"{name}: not measured"
                     for name, a in (("class count", r.classes), ("training images per class", r.shots)))
    return {"claim2_badge": v.badge(2), **v.quotes("claim2"), "claim2_ours": f"DR(0.9) against {ours}",
            "claim2_paper": f"no controlled study; over the authors' {n_p} (model, task) curves, DR(0.9) against "
                            f"full-layer accuracy: rho {verdicts.fmt(rho_p, 2)} ({verdicts.fmt_p(p_p)})"}


#: The spread summary's columns as the chapter's table names them (accuracies in %).
SUMMARY_HEADERS = {"fraction": "fraction", "k": "neurons k", "n_subsets": "subsets", "mean": "mean (%)",
                   "sd": "std (points)", "q01": "1% quantile (%)", "q05": "5% quantile (%)", "median": "median (%)",
                   "q95": "95% quantile (%)", "worst": "worst (%)", "best": "best (%)", "full": "full layer (%)",
                   "worst_gap": "worst gap (points)", "needed": f"subsets for ±{TARGET_POINTS} points",
                   "halfwidth_5": "95% half-width, mean of 5 (points)",
                   "share_5_within": f"5-subset means within {TARGET_POINTS} points", "paper_sd": "paper's std (points)"}
#: The importance comparison's columns as the chapter's table names them.
GAPS_HEADERS = {"fraction": "fraction", "k": "neurons k", "ranking": "ranking", "top": "top k (%)",
                "bottom": "bottom k (%)", "without_top": "all but top k (%)", "random": "random k (%)",
                "without_random": "all but random k (%)", "bottom_gap": "random minus bottom (points)",
                "without_top_gap": "all but random minus all but top (points)"}


def summary_table(r: Result) -> pd.DataFrame:
    """The spread summary with the chapter's headers (accuracies in %, gaps in points)."""
    return r.summary[[c for c in SUMMARY_HEADERS if c in r.summary]].rename(columns=SUMMARY_HEADERS)


def importance_rows(r: Result) -> pd.DataFrame:
    """The rows of the importance comparison at the fraction the verdict on "diffused" reads
    (:data:`CONCENTRATION_FRACTION`, or the nearest fraction of the run): what the figure shows."""
    f = _nearest(sorted(r.gaps.fraction.unique()), CONCENTRATION_FRACTION)
    return r.gaps[np.isclose(r.gaps.fraction, f)]


def gaps_table(r: Result) -> pd.DataFrame:
    """The most and least important neurons against random ones, with the chapter's headers."""
    return r.gaps[[c for c in GAPS_HEADERS if c in r.gaps]].rename(columns=GAPS_HEADERS)

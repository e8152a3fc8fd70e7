"""Claim 5: linear CKA between random subsets and the whole layer, and between subsets.

``run`` computes, for each model (the first pre-trained, the second its random-weight
control), the CKA grid, the effective rank of the layer, the accuracy curve behind
DR(0.9), and what the verdicts rest on: the CKA of :data:`N_PAIRS` random subset pairs per
fraction with an image bootstrap (:func:`pair_replicates`), and the overlap-only baseline
(:func:`baseline_draws`, :func:`diffred.stats.cka_overlap_baseline`: the CKA two random
subsets of a layer of INDEPENDENT neurons with the layer's variances have through their
shared neurons alone). ``quotes`` applies the stated rules:

* :data:`EXCESS_RULE` (claim 5) — at each of :data:`CLAIM_FRACTIONS`, the CKA of two
  random subsets minus the baseline must be at least :data:`EXCESS_MIN` over its whole
  interval; combined over the fractions by :func:`diffred.verdicts.across`;
* :data:`LEARNED_RULE` — the pre-trained layer's subsets more alike than the random
  network's (CKA difference at :data:`COMPARE_FRACTION`, bootstrap interval);
* :data:`TRAINING_RULE` — "training adds redundancy": DR(0.9) interpolated, pre-trained
  minus random, with :func:`diffred.stats.dr_difference`'s interval (inconclusive when it
  includes 0, or with too few subset seeds).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .. import metrics, paper, stats, verdicts
from ..config import RunConfig
from ..curves import cached_frames, dr_table, feature_digests, features_of, scale_note, subset_curve
from ..subsets import random_subsets, subset_size
from . import Result
from .setting import note_for

COMPARE_FRACTION = 0.1  # the subset size the prose quotes ("two random 10% subsets")
PAPER_DATASET = "cifar10"  # the paper's CKA numbers quoted beside ours
PAPER_PRETRAININGS = ("standard", "adversarial_l2_eps3")
#: The fractions at which claim 5 is tested (the whole layer, f = 1, is trivially similar).
CLAIM_FRACTIONS = (0.05, 0.1, 0.2, 0.5)
#: CKA above the overlap-only baseline that counts as "similar beyond the shared neurons".
EXCESS_MIN = 0.05
#: Random subset pairs per fraction, image bootstrap replicates, baseline layers simulated.
N_PAIRS = 20
N_IMAGE_BOOT = 40
BASELINE_DRAWS = 20
#: A CKA (DR) difference within +/- this is "no effect of that size".
CKA_MARGIN = 0.02
DR_MARGIN = 0.02
DELTA = 0.9

EXCESS_RULE = verdicts.within_rule(
    "random subsets are similar beyond their overlap",
    "the CKA of two random subsets minus the CKA their overlap alone gives (a layer of independent "
    "neurons with the same variances)", EXCESS_MIN, "at least")


def interval_rule(claim: str, statistic: str, margin: float, unit: str = "") -> verdicts.Rule:
    """A :func:`diffred.verdicts.difference` rule decided by a bootstrap interval (no
    p-value), with the statement that says so."""
    u = f" {unit}" if unit else ""
    statement = (f"Rule: the claim holds if the whole 95% interval of {statistic} is above 0; it does not hold "
                 f"if the whole interval is below 0, or lies within +/-{verdicts.fmt(margin)}{u} (no effect of "
                 "that size); otherwise the data cannot decide (inconclusive), as when there are too few subset "
                 f"seeds for any test over them to reach {verdicts.fmt(verdicts.ALPHA)}.")
    return verdicts.Rule(claim, statistic, verdicts.difference,
                         {"expected_sign": 1, "alpha": verdicts.ALPHA, "margin": margin, "statistic": statistic,
                          "unit": unit, "two_sided": True}, statement)


LEARNED_RULE = interval_rule(
    "subset similarity is learned", f"the pre-trained minus the random-weight network's CKA of two random "
    f"{COMPARE_FRACTION:.0%} subsets (bootstrap over subset pairs and images)", CKA_MARGIN)
TRAINING_RULE = interval_rule(
    "training adds redundancy", "DR(0.9) of the pre-trained minus the random-weight network (read off the "
    "curves by interpolation; bootstrap over subset seeds and test images)", DR_MARGIN)


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


def effective_rank(cfg: RunConfig) -> float:
    """:func:`diffred.metrics.effective_rank` of ``cfg``'s standardised training features (as
    the probes see them): how many directions the layer's variance really uses, the same
    measure, on the same images, as chapter 13's label-free predictor."""
    tr, _ = features_of(cfg)
    return metrics.effective_rank(tr.X)


def _mean_cka(cov: np.ndarray, pairs) -> float:
    vals = []
    for a, b in pairs:
        try:
            vals.append(metrics.cka_from_cov(cov, a, b))
        except ValueError:  # a subset made only of dead neurons has no CKA
            pass
    return float(np.mean(vals)) if vals else float("nan")


def pair_replicates(X: np.ndarray, fractions, n_pairs: int = N_PAIRS, n_boot: int = N_IMAGE_BOOT,
                    random_state: int = 0) -> pd.DataFrame:
    """Mean linear CKA of ``n_pairs`` pairs of independent random k-subsets of the columns
    of ``X (n_images, d)`` at each fraction: replicate 0 on all images and pairs, replicates
    1..``n_boot`` with the images resampled with replacement (the covariance recomputed) and
    the pairs resampled. Columns ``fraction``, ``k``, ``replicate``, ``cka``."""
    X = np.asarray(X, np.float64)
    n, d = X.shape
    rng = np.random.default_rng(random_state)
    pairs = {}
    for f in fractions:
        k = subset_size(f, d, clip=True)
        pairs[f] = [(rng.permutation(d)[:k], rng.permutation(d)[:k]) for _ in range(n_pairs)]
    rows = []
    for r in range(n_boot + 1):
        cov = metrics.covariance(X if r == 0 else X[rng.integers(0, n, n)])
        for f, ps in pairs.items():
            pick = ps if r == 0 else [ps[i] for i in rng.integers(0, len(ps), len(ps))]
            rows.append({"fraction": f, "k": len(ps[0][0]), "replicate": r, "cka": _mean_cka(cov, pick)})
    return pd.DataFrame(rows)


def baseline_draws(X: np.ndarray, fractions, n_draws: int = BASELINE_DRAWS, random_state: int = 0) -> pd.DataFrame:
    """The overlap-only baseline of :func:`pair_replicates`: per fraction, ``n_draws``
    simulated layers of independent Gaussian neurons with the variances of ``X``'s columns,
    on as many images, each with one pair of independent random k-subsets
    (:func:`diffred.stats.cka_overlap_baseline`). Columns ``fraction``, ``k``, ``draw``,
    ``cka``, ``population`` (overlap / k in expectation: k / d)."""
    X = np.asarray(X, np.float64)
    n, d = X.shape
    var = X.var(0)
    rows = []
    for f in fractions:
        k = subset_size(f, d, clip=True)
        for s in range(n_draws):
            b = stats.cka_overlap_baseline(d, k, n, n_draws=1, variances=var, random_state=random_state + s)
            rows.append({"fraction": f, "k": k, "draw": s, "cka": b["subset_vs_subset"],
                         "population": b["population_subset_vs_subset"]})
    return pd.DataFrame(rows)


def _quantiles(x, level=verdicts.LEVEL) -> tuple[float, float]:
    lo, hi = np.nanquantile(np.asarray(x, float), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def excess_table(pairs: pd.DataFrame, base: pd.DataFrame, random_state: int = 0) -> pd.DataFrame:
    """Per (model, fraction): the measured CKA of two random subsets with its bootstrap
    interval, the overlap-only baseline (mean of its draws, and its std), and the excess
    (measured minus baseline) with a 95% interval: each image/pair replicate minus the mean
    of a resample of the baseline draws."""
    rng = np.random.default_rng(random_state)
    rows = []
    for (model, f), g in pairs.groupby(["model", "fraction"], sort=False):
        obs = float(g.loc[g.replicate == 0, "cka"].iloc[0])
        reps = g.loc[g.replicate > 0, "cka"].to_numpy(float)
        b = base[(base.model == model) & np.isclose(base.fraction, f)].cka.to_numpy(float)
        b_reps = b[rng.integers(0, b.size, (reps.size, b.size))].mean(1)
        lo, hi = _quantiles(reps)
        elo, ehi = _quantiles(reps - b_reps)
        rows.append({"model": model, "fraction": f, "k": int(g.k.iloc[0]), "cka": obs, "cka_low": lo, "cka_high": hi,
                     "baseline": float(b.mean()), "baseline_std": float(b.std()), "excess": obs - float(b.mean()),
                     "excess_low": elo, "excess_high": ehi})
    return pd.DataFrame(rows)


def _test_frames(cfg: RunConfig, X: np.ndarray, n_pairs: int, n_boot: int, n_draws: int):
    """:func:`pair_replicates` and :func:`baseline_draws` of one model (cached)."""
    spec = {"features": feature_digests(cfg), "fractions": CLAIM_FRACTIONS, "n_images": len(X), "pairs": n_pairs,
            "boot": n_boot, "draws": n_draws}
    (pairs, base), _ = cached_frames("similarity_tests", spec, lambda: (
        pair_replicates(X, CLAIM_FRACTIONS, n_pairs, n_boot), baseline_draws(X, CLAIM_FRACTIONS, n_draws)), n=2)
    return pairs.assign(model=cfg.model), base.assign(model=cfg.model)


def run(models=("efficientnet_lite0", "efficientnet_lite0_random"), dataset: str = "fashion_mnist",
        n_train: int | None = 3000, n_test: int | None = 2000, n_samples: int = 1000, image_size: int | None = 112,
        fractions=None, seeds=None, n_pairs: int = N_PAIRS, n_boot: int = N_IMAGE_BOOT,
        n_draws: int = BASELINE_DRAWS) -> Result:
    """CKA grid, effective rank, accuracy curve (with its DR table), and the subset-pair
    CKA against the overlap-only baseline, of each model."""
    params = {"models": list(models), "dataset": dataset, "n_train": n_train, "n_test": n_test, "n_samples": n_samples,
              "image_size": image_size, "fractions": fractions, "seeds": seeds}
    grid = {k: v for k, v in (("fractions", fractions), ("seeds", seeds)) if v is not None}
    cfgs = [RunConfig(model=m, dataset=dataset, n_train=n_train, n_test=n_test, image_size=image_size, **grid).scaled()
            for m in params["models"]]
    cka = pd.concat([cka_curves(c, n_samples) for c in cfgs], ignore_index=True)
    ranks = pd.DataFrame({"model": [c.model for c in cfgs],
                          "effective_rank": [effective_rank(c) for c in cfgs]})
    accuracy = pd.concat([subset_curve(c) for c in cfgs], ignore_index=True)
    tr, te = features_of(cfgs[0])
    tests = [_test_frames(c, features_of(c)[1].X[:n_samples], n_pairs, n_boot, n_draws) for c in cfgs]
    pairs, base = (pd.concat([t[i] for t in tests], ignore_index=True) for i in (0, 1))
    frames = {"cka": cka, "ranks": ranks, "accuracy": accuracy, "dr": dr_table(accuracy),
              "paper_cka": paper.load("cka_pairwise"), "pairs": pairs, "baseline": base,
              "excess": excess_table(pairs, base)}
    values = {"n_train": len(tr.y), "n_test": len(te.y), "n_images": min(n_samples, len(te.y)),
              "image_size": cfgs[0].image_size, "n_seeds": len(cfgs[0].seeds), "n_pairs": n_pairs}
    return Result(params, frames, values)


def cka_table(result: Result) -> pd.DataFrame:
    """Mean CKA per comparison and fraction (rows) and model (columns), three decimals."""
    return result.cka.groupby(["model", "comparison", "fraction"]).cka.mean().unstack(0).round(3)


def excess_display(result: Result) -> pd.DataFrame:
    """The claim's numbers per model and fraction: CKA of two random subsets (95% interval),
    the overlap-only baseline, and the excess with its interval, three decimals."""
    cols = ["model", "fraction", "k", "cka", "cka_low", "cka_high", "baseline", "excess", "excess_low", "excess_high"]
    return result.excess[cols].set_index(["model", "fraction"]).round(3)


def claim_verdict(excess: pd.DataFrame, model: str, n_pairs: int = N_PAIRS) -> verdicts.Verdict:
    """:data:`EXCESS_RULE` at each tested fraction of ``model``, combined over the fractions."""
    g = excess[excess.model == model]
    groups = {f"{r.fraction:.0%} of the neurons": {"value": r.excess, "interval": (r.excess_low, r.excess_high),
                                                   "n": n_pairs} for r in g.itertuples()}
    return EXCESS_RULE.judge_each(groups, what="fractions")


def learned_verdict(pairs: pd.DataFrame, pre: str, rnd: str, fraction: float = COMPARE_FRACTION) -> verdicts.Verdict:
    """:data:`LEARNED_RULE`: CKA of two random subsets, ``pre`` minus ``rnd``, at
    ``fraction``, with the interval of the difference of their bootstrap replicates."""
    at = pairs[np.isclose(pairs.fraction, fraction)]
    a, b = (at[at.model == m].sort_values("replicate").cka.to_numpy(float) for m in (pre, rnd))
    m = min(a.size, b.size)
    return LEARNED_RULE.judge(float(a[0] - b[0]), interval=_quantiles(a[1:m] - b[1:m]))


def _curve_rows(accuracy: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = accuracy[accuracy.model == model]
    return rows[rows.selector == "random"] if "selector" in rows else rows


def dr_intervals(accuracy: pd.DataFrame, models, n_test: int | None) -> dict:
    """:func:`diffred.metrics.dr_bootstrap` of each model's random-subset curve."""
    return {m: metrics.dr_bootstrap(_curve_rows(accuracy, m), DELTA, n_test=n_test) for m in models}


def training_verdict(accuracy: pd.DataFrame, pre: str, rnd: str, n_test: int | None) -> verdicts.Verdict:
    """:data:`TRAINING_RULE` on :func:`diffred.stats.dr_difference` of the two curves."""
    d = stats.dr_difference(_curve_rows(accuracy, pre), _curve_rows(accuracy, rnd), DELTA, n_test=n_test)
    return TRAINING_RULE.judge(d["diff"], interval=(d["low"], d["high"]), n=d["n"])


def _opposite(v: verdicts.Verdict) -> bool:
    """A "does not hold" decided by the opposite sign (not by the no-effect margin)."""
    return v.outcome == verdicts.FAILS and v.interval is not None and v.interval[1] < 0


def learned_sentence(v: verdicts.Verdict) -> str:
    """What :data:`LEARNED_RULE`'s verdict says, in words."""
    if v.holds:
        return "Subset similarity grows with training here: the pre-trained layer's subsets are more alike."
    if _opposite(v):
        return ("The random network's subsets are more alike than the pre-trained layer's, so subset similarity "
                "is not by itself evidence that diffused redundancy is learned.")
    if v.outcome == verdicts.FAILS:
        return (f"The two networks' subsets are equally alike (within +/-{verdicts.fmt(CKA_MARGIN)}), so subset "
                "similarity is not by itself evidence that diffused redundancy is learned.")
    return "The data cannot tell which network's subsets are more alike."


def training_sentence(v: verdicts.Verdict) -> str:
    """What :data:`TRAINING_RULE`'s verdict says, in words."""
    if v.holds:
        return "Training adds redundancy here: the pre-trained layer's DR(0.9) is higher beyond its uncertainty."
    if _opposite(v):
        return ("The random network is more redundant by DR(0.9), beyond its uncertainty: training adds "
                "accuracy, not redundancy.")
    if v.outcome == verdicts.FAILS:
        return (f"The two DR(0.9) are equal within +/-{verdicts.fmt(DR_MARGIN)}: training adds accuracy, "
                "not redundancy.")
    return "Whether training adds redundancy cannot be decided from these curves."


def rank_sentence(rank_pre: float, rank_rnd: float) -> str:
    """Which network's variance uses fewer directions, from the two effective ranks."""
    if rank_rnd < rank_pre:
        return "the random network's variance uses fewer directions"
    return "the random network's variance uses at least as many directions"


def _paper_strings(paper_cka: pd.DataFrame, fraction: float) -> tuple[dict, str]:
    pc = paper_cka[np.isclose(paper_cka.fraction, fraction) & (paper_cka.dataset == PAPER_DATASET)]
    pc = pc.set_index("pretraining")
    std, adv = (float(pc.cka[p]) for p in PAPER_PRETRAININGS)
    prov = paper.PROVENANCE.get(str(pc.provenance[PAPER_PRETRAININGS[0]]), "provenance unknown") \
        if "provenance" in pc else "provenance unknown"
    text = (f"CKA {verdicts.fmt(std)} of two random {fraction:.0%} subsets (ResNet50, CIFAR-10; {prov}); "
            f"adversarially trained: {verdicts.fmt(adv)}")
    return {"cka_paper_std": std, "cka_paper_adv": adv}, text


def quotes(result: Result) -> dict:
    """Every number and verdict the chapter's prose quotes; ``pre`` is the first model, ``rnd``
    the second (its random-weight control)."""
    pre, rnd = result.params["models"][:2]
    f, fmt = COMPARE_FRACTION, verdicts.fmt
    ex = result.excess.set_index(["model", "fraction"])
    e_pre, e_rnd = ex.loc[(pre, f)], ex.loc[(rnd, f)]
    d = result.dr.set_index("model")
    drs = dr_intervals(result.accuracy, (pre, rnd), result.n_test)
    claim, learned = claim_verdict(result.excess, pre, result.n_pairs), learned_verdict(result.pairs, pre, rnd)
    training = training_verdict(result.accuracy, pre, rnd, result.n_test)
    paper_q, paper_text = _paper_strings(result.paper_cka, f)
    ranks = result.ranks.set_index("model").effective_rank
    q = {"scale_note": scale_note(), "f_cmp": f, **paper_q,
         "cka_pre": float(e_pre.cka), "cka_pre_low": float(e_pre.cka_low), "cka_pre_high": float(e_pre.cka_high),
         "cka_rnd": float(e_rnd.cka), "cka_rnd_low": float(e_rnd.cka_low), "cka_rnd_high": float(e_rnd.cka_high),
         "base_pre": float(e_pre.baseline), "base_rnd": float(e_rnd.baseline), "excess_min": EXCESS_MIN,
         "n_pairs": int(result.n_pairs), "rank_pre": float(ranks[pre]), "rank_rnd": float(ranks[rnd]),
         "rank_word": rank_sentence(float(ranks[pre]), float(ranks[rnd])),
         "acc_pre": 100 * float(d.loc[pre, "full_accuracy"]), "acc_rnd": 100 * float(d.loc[rnd, "full_accuracy"]),
         "verdict_learned": learned_sentence(learned), "verdict_dr": training_sentence(training),
         "claim5_badge": claim.badge(5), "claim5_paper": paper_text,
         "claim5_ours": (f"CKA {fmt(e_pre.cka)} of two random {f:.0%} subsets (95% CI {fmt(e_pre.cka_low)}–"
                         f"{fmt(e_pre.cka_high)}) against {fmt(e_pre.baseline)} from their overlap alone")}
    for key, m in (("pre", pre), ("rnd", rnd)):
        q |= {f"dr_{key}": drs[m]["dr"], f"dr_{key}_low": drs[m]["low"], f"dr_{key}_high": drs[m]["high"],
              f"dr_grid_{key}": float(d.loc[m, "dr_closest"])}
    p = result.params
    q["setting_note"] = (note_for(pre, p["dataset"], q["acc_pre"] / 100, n_train=p["n_train"],
                                  image_size=p["image_size"]) + f" CKA reads the first {result.n_images:,} test images.")
    return q | claim.quotes("claim5") | learned.quotes("learned") | training.quotes("training")

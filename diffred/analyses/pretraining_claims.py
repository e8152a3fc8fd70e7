"""Claims 8, 9 and 10 (chapter 11) on the verdict contract: pre-training loss, upstream data
and width, each variant against the reference over *training* seeds.

The unit of evidence is a trained model, not a task: per training seed, ``ratio_small`` (the
mean accuracy ratio to the full layer at 1-20% of the neurons, :mod:`.pretraining`) is
averaged over the downstream tasks, and the variant's seeds are compared with the
reference's by a permutation test (:func:`diffred.stats.permutation_p_difference`). With
the zoo's 2-3 seeds per recipe no permutation p-value can reach 0.05 (2 vs 3: at best 0.2),
and the verdict says so (:func:`diffred.verdicts.difference`). A variant that failed its
own training check (:func:`.pretraining.variant_checks`) is not compared at all. The width
is a rank correlation over widths (:func:`diffred.stats.permutation_p_correlation`), and is
reported as confounded when the full layer's accuracy rises with width too
(:func:`.pretraining.width_confound`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import paper, stats, verdicts
from . import Result
from .pretraining import CLAIMS, variant_checks, width_confound

METRIC = "ratio_small"
#: (ledger claim, label, glue key of :data:`.pretraining.CLAIMS`) — claim 8 combines two.
CLAIM_OF = {"adv": (8, "adversarial training"), "mrl": (8, "Matryoshka"), "up": (9, "more upstream data")}
RULES = {key: verdicts.difference_rule(claim, f"the difference {variant} minus {reference} in {METRIC} (averaged over the tasks, "
                                       "one value per training seed)", expected_sign=sign)
         for key, claim, variant, reference, sign in CLAIMS}
WIDTH_RULE = verdicts.correlation_rule("wider layer: more DR", f"Spearman's rho of {METRIC} (averaged over the "
                                       "tasks and training seeds) with the penultimate width", expected_sign=+1)


def seed_values(table: pd.DataFrame, variant: str) -> pd.Series:
    """One ``ratio_small`` per training seed of ``variant``: the mean over its tasks."""
    return table[table.variant == variant].groupby("train_seed")[METRIC].mean()


def variant_verdict(table: pd.DataFrame, key: str, failed: set) -> verdicts.Verdict:
    """:data:`RULES` ``[key]`` on the variant's and the reference's training seeds."""
    _, claim, variant, reference, _ = next(c for c in CLAIMS if c[0] == key)
    rule = RULES[key]
    if variant in failed:
        return verdicts.Verdict(verdicts.UNDECIDED, float("nan"), f"{variant} failed its own training check, so it "
                                "is not compared with the reference.", rule=rule.statement)
    a, b = seed_values(table, variant), seed_values(table, reference)
    if a.empty or b.empty:
        return verdicts.Verdict(verdicts.UNDECIDED, float("nan"), f"{variant} or {reference} is not in this build.",
                                rule=rule.statement)
    diff, p = stats.permutation_p_difference(a.to_numpy(), b.to_numpy())
    return rule.judge(diff, p, n=(len(a), len(b)))


def width_verdict(width_table: pd.DataFrame) -> verdicts.Verdict:
    """:data:`WIDTH_RULE` over the widths, inconclusive when confounded by accuracy."""
    means = width_table.groupby("width")[METRIC].mean()
    if len(means) < 3:
        return verdicts.Verdict(verdicts.UNDECIDED, float("nan"), "fewer than 3 widths in this build.",
                                rule=WIDTH_RULE.statement)
    rho, p = stats.permutation_p_correlation(means.index.to_numpy(float), means.to_numpy())
    v = WIDTH_RULE.judge(rho, p, n=len(means))
    conf = width_confound(width_table)
    if len(conf) and conf.confounded.mean() > 0.5 and v.outcome != verdicts.UNDECIDED:
        why = ", ".join(f"{r.dataset} {r.rho_full:+.2f}" for r in conf.itertuples())
        v = dataclasses.replace(v, outcome=verdicts.UNDECIDED, reason=f"{v.reason} But the full layer's accuracy "
                                f"rises with width too (Spearman {why}): confounded, so the data cannot decide.")
    return v


def claim_verdicts(result: Result) -> dict:
    """Claims 8 (adversarial and Matryoshka, combined by :func:`verdicts.across`), 9 and 10."""
    vc = variant_checks(result)
    failed = set(vc[~vc.passed.astype(bool)].variant)
    parts = {key: variant_verdict(result.table, key, failed) for key in CLAIM_OF}
    v8 = verdicts.across({CLAIM_OF[k][1]: parts[k] for k in ("adv", "mrl")}, what="pre-training losses")
    v8 = dataclasses.replace(v8, rule=f"{RULES['adv'].statement} The same for Matryoshka, with the opposite sign "
                             f"expected. {verdicts.ACROSS_STATEMENT.format(what='pre-training losses')}")
    return {8: v8, 9: parts["up"], 10: width_verdict(result.width_table), "parts": parts}


def paper_differences() -> dict:
    """The paper's DR(0.9) differences (derived and printed rows of Table 1): robust minus
    standard ResNet50 (claim 8), ImageNet-21k minus ImageNet-1k ViT-S/16 (claim 9), by task."""
    t = paper.load("diffused_redundancy_table")

    def diff(a, b):
        m = a.merge(b, on="dataset", suffixes=("_a", "_b"))
        return ", ".join(f"{r.dataset} {r.dr_0_9_a - r.dr_0_9_b:+.2f}" for r in m.itertuples()) or "no rows"
    r50 = t[t.model == "resnet50"]
    vit = t[t.model == "vit_small_patch16"]
    return {8: "DR(0.9), robust minus standard ResNet50: " + diff(r50[r50.pretraining != "standard"],
                                                                   r50[r50.pretraining == "standard"]),
            9: "DR(0.9), ImageNet-21k minus ImageNet-1k ViT-S/16: " + diff(vit[vit.upstream == "imagenet21k"],
                                                                          vit[vit.upstream == "imagenet1k"])}


def claim_quotes(result: Result) -> dict:
    """The ledger keys of claims 8-10 and a verdict sentence per comparison."""
    v = claim_verdicts(result)
    pd_ = paper_differences()
    out = {}
    for n in (8, 9, 10):
        out |= {f"claim{n}_badge": v[n].badge(n), **v[n].quotes(f"claim{n}")}
    out["claim8_ours"] = "; ".join(f"{CLAIM_OF[k][1]} {_num(v['parts'][k])}" for k in ("adv", "mrl"))
    out["claim9_ours"], out["claim10_ours"] = _num(v[9]), _num(v[10], "rho")
    out["claim8_paper"], out["claim9_paper"] = pd_[8], pd_[9]
    out["claim10_paper"] = "no number in the paper's released data (data/paper/ has no width study)"
    out |= {f"reason_{k}": v["parts"][k].reason for k in CLAIM_OF}
    return out


def _num(v: verdicts.Verdict, name: str = "difference") -> str:
    if v.statistic is None or np.isnan(v.statistic):
        return "not measured"
    p = f", {verdicts.fmt_p(v.p_value)}" if v.p_value is not None else ""
    n = f", n = {v.n[0]} vs {v.n[1]} seeds" if isinstance(v.n, tuple) else (f", {v.n} widths" if v.n else "")
    return f"{name} {v.statistic:+.3f}{p}{n}"

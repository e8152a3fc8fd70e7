"""Chapters 06 (claim 2) and 04 (claim 5): every outcome of each stated rule, on
constructed data (issue 14)."""

import math

import numpy as np
import pandas as pd
import pytest

from diffred import verdicts
from diffred.analyses import architectures, similarity

H, P, F, U = verdicts.HOLDS, verdicts.PARTLY, verdicts.FAILS, verdicts.UNDECIDED


# --- chapter 06: claim 2, critical mass depends on the task --------------------------------

def _pairs(acc, dr):
    return pd.DataFrame({"full_accuracy": acc, "dr_interp": dr})


def test_task_rule_holds_when_easier_tasks_are_decisively_more_redundant():
    v = architectures.task_verdict(_pairs([0.7, 0.75, 0.8, 0.85, 0.9, 0.95], [0.5, 0.6, 0.7, 0.8, 0.85, 0.9]))
    assert v.outcome == H and v.statistic == pytest.approx(1.0) and v.p_value == pytest.approx(2 / 720)
    assert architectures.task_sentence(v).startswith("easier tasks show more")


def test_task_rule_does_not_hold_when_decisively_the_other_way():
    v = architectures.task_verdict(_pairs([0.7, 0.75, 0.8, 0.85, 0.9, 0.95], [0.9, 0.85, 0.8, 0.7, 0.6, 0.5]))
    assert v.outcome == F and "opposite" in architectures.task_sentence(v)


def test_task_rule_is_inconclusive_with_too_few_pairs_or_no_clear_order():
    few = architectures.task_verdict(_pairs([0.7, 0.8, 0.9, 0.95], [0.5, 0.6, 0.7, 0.8]))
    assert few.outcome == U and "too few" in few.reason          # 4 pairs: smallest p is 1/12
    mixed = architectures.task_verdict(_pairs([0.7, 0.75, 0.8, 0.85, 0.9, 0.95], [0.8, 0.5, 0.9, 0.6, 0.85, 0.7]))
    assert mixed.outcome == U and mixed.p_value > verdicts.ALPHA
    assert "cannot tell" in architectures.task_sentence(mixed)
    flat = architectures.task_verdict(_pairs([0.7, 0.75, 0.8, 0.85, 0.9, 0.95], [0.9] * 6))
    assert flat.outcome == U and math.isnan(flat.statistic)
    assert architectures.task_sentence(flat).startswith("no trend")


def test_task_rule_statement_names_its_threshold():
    assert "0.05" in architectures.TASK_RULE.statement and "positive" in architectures.TASK_RULE.statement


def test_difficulty_note_is_conditional_on_the_ranges():
    pre = pd.DataFrame({"full_accuracy": [0.80, 0.85]})
    wide = pd.DataFrame({"full_accuracy": [0.5, 0.9]})
    assert "a narrower range" in architectures.difficulty_note(pre, wide)
    assert "at least as wide" in architectures.difficulty_note(wide, pre)


def _curve(model, ratios, seeds=(1, 2, 3, 4, 5), full=0.9, noise=0.002):
    fr = [0.01, 0.05, 0.1, 0.2, 0.5, 1.0]
    rng = np.random.default_rng(len(model))
    rows = [{"model": model, "dataset": "d", "selector": "random", "fraction": f, "seed": s,
             "accuracy": full * r + (0 if f == 1.0 else rng.normal(0, noise))}
            for s in seeds for f, r in zip(fr, ratios)]
    return pd.DataFrame(rows)


def test_dr_intervals_read_dr_off_the_curve():
    t = architectures.dr_intervals(_curve("m", [0.5, 0.7, 0.8, 1.0, 1.0, 1.0]), n_boot=50)
    # ratio 0.8 at f=0.1 and 1.0 at f=0.2: 0.9 is crossed half way in log f
    assert t.dr_interp.iloc[0] == pytest.approx(1 - np.sqrt(0.1 * 0.2), abs=0.01)
    assert t.dr_low.iloc[0] <= t.dr_interp.iloc[0] <= t.dr_high.iloc[0]


# --- chapter 04: claim 5, subsets similar beyond their overlap ----------------------------

def _excess(rows):
    return pd.DataFrame([{"model": "m", "fraction": f, "excess": e, "excess_low": lo, "excess_high": hi}
                         for f, e, lo, hi in rows])


@pytest.mark.parametrize("rows, outcome", [
    ([(0.1, 0.3, 0.2, 0.4), (0.5, 0.2, 0.1, 0.3)], H),
    ([(0.1, 0.3, 0.2, 0.4), (0.5, 0.01, 0.0, 0.02)], P),
    ([(0.1, 0.01, 0.0, 0.02), (0.5, 0.0, -0.01, 0.01)], F),
    ([(0.1, 0.05, 0.0, 0.1), (0.5, 0.05, 0.01, 0.09)], U),
])
def test_excess_rule_over_fractions_reaches_each_outcome(rows, outcome):
    v = similarity.claim_verdict(_excess(rows), "m")
    assert v.outcome == outcome and "0.05" in v.rule


@pytest.mark.parametrize("value, interval, n, outcome", [
    (0.1, (0.05, 0.15), None, H),
    (-0.1, (-0.15, -0.05), None, F),
    (0.005, (-0.01, 0.015), None, F),      # within +/- the margin: no effect of that size
    (0.02, (-0.03, 0.07), None, U),
    (0.1, (0.05, 0.15), (2, 2), U),        # 2 vs 2 seeds cannot decide
])
def test_interval_rules_reach_each_outcome(value, interval, n, outcome):
    for rule in (similarity.LEARNED_RULE, similarity.TRAINING_RULE):
        assert rule.judge(value, interval=interval, n=n).outcome == outcome


def test_sentences_follow_the_verdicts():
    for rule, say in ((similarity.LEARNED_RULE, similarity.learned_sentence),
                      (similarity.TRAINING_RULE, similarity.training_sentence)):
        words = {say(rule.judge(v, interval=iv)) for v, iv in ((0.1, (0.05, 0.15)), (-0.1, (-0.15, -0.05)),
                                                                 (0.0, (-0.01, 0.01)), (0.02, (-0.03, 0.07)))}
        assert len(words) == 4


def test_training_verdict_on_constructed_curves():
    more = _curve("pre", [0.5, 0.95, 1.0, 1.0, 1.0, 1.0])   # DR near 0.95
    less = _curve("rnd", [0.3, 0.5, 0.7, 0.8, 1.0, 1.0])    # DR near 0.6
    acc = pd.concat([more, less], ignore_index=True)
    assert similarity.training_verdict(acc, "pre", "rnd", None).outcome == H
    assert similarity.training_verdict(acc, "rnd", "pre", None).outcome == F
    same = pd.concat([more, more.assign(model="rnd")], ignore_index=True)
    assert similarity.training_verdict(same, "pre", "rnd", None).outcome == F   # equal within the margin
    two = pd.concat([_curve("pre", [0.5, 0.95, 1, 1, 1, 1], (1, 2)), _curve("rnd", [0.3, 0.5, 0.7, 0.8, 1, 1], (1, 2))])
    assert similarity.training_verdict(two, "pre", "rnd", None).outcome == U


def _excess_of(X):
    f = (0.1, 0.5)
    pairs = similarity.pair_replicates(X, f, n_pairs=5, n_boot=10).assign(model="m")
    base = similarity.baseline_draws(X, f, n_draws=5).assign(model="m")
    return similarity.excess_table(pairs, base)


def test_overlap_baseline_explains_independent_neurons_but_not_a_shared_signal():
    rng = np.random.default_rng(0)
    indep = _excess_of(rng.standard_normal((400, 40)))
    assert (indep.excess.abs() < 0.1).all()
    assert similarity.claim_verdict(indep, "m").outcome in (F, U)
    z = rng.standard_normal((400, 2))
    shared = _excess_of(z @ rng.standard_normal((2, 40)) + 0.1 * rng.standard_normal((400, 40)))
    assert (shared.excess > 0.3).all() and similarity.claim_verdict(shared, "m").outcome == H


def test_claim7_rule_by_model_then_across_models():
    import pandas as pd
    from diffred.analyses import architectures as arch
    pre = pd.DataFrame({"model": ["a", "a", "b", "b"], "dataset": ["x", "y", "x", "y"],
                        "dr_interp": [0.9, 0.8, 0.3, 0.55], "dr_low": [0.85, 0.7, 0.2, 0.45],
                        "dr_high": [0.95, 0.85, 0.4, 0.6]})
    v = arch.claim7_verdict(pre)
    assert v.parts["a"].outcome == "holds" and v.parts["b"].outcome == "does not hold"
    assert v.outcome == "holds partly"
    assert arch.claim7_verdict(pre[pre.model == "a"]).outcome == "holds"
    assert arch.claim7_verdict(pre.iloc[[2]]).outcome == "does not hold"
    assert arch.claim7_verdict(pre.iloc[[3]]).outcome == "inconclusive"  # 0.45-0.6 straddles 0.5
    paper = pd.DataFrame({"model": ["p", "p", "q"], "dr_0_9": [0.5, 0.9, 0.1], "provenance": ["P", "P", "D"]})
    q = arch.claim7_quotes(pre, paper)
    assert q["claim7_paper"] == "DR(0.9) in the rows Table 1 prints: p 0.50 to 0.90"
    assert q["claim7_ours"] == "DR(0.9) a 0.80 to 0.90; b 0.30 to 0.55" and q["claim7_badge"].claim == 7

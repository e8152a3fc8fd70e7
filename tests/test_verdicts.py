"""The verdict contract: every rule reaches every outcome it names, on data built for it."""

import dataclasses

import pytest

from diffred import verdicts as V

THRESHOLD = 5.0


# within: a gap with its interval against a threshold --------------------------------------

@pytest.mark.parametrize("value, interval, outcome", [
    (3.0, (2.0, 4.0), V.HOLDS),            # whole interval at most 5
    (3.0, (2.0, 5.0), V.HOLDS),            # touching the threshold is still within
    (7.0, (6.0, 8.0), V.FAILS),            # whole interval above 5
    (4.5, (3.0, 6.0), V.UNDECIDED),        # straddles 5
    (float("nan"), (float("nan"), float("nan")), V.UNDECIDED),
])
def test_within_at_most_reaches_each_outcome(value, interval, outcome):
    v = V.within(value, interval, THRESHOLD, statistic="the gap", unit="points")
    assert v.outcome == outcome
    assert v.interval == interval or outcome == V.UNDECIDED


@pytest.mark.parametrize("value, interval, outcome", [
    (0.95, (0.92, 0.97), V.HOLDS),
    (0.75, (0.70, 0.80), V.FAILS),         # chapter 12's best stage, 0.748: does not hold
    (0.90, (0.85, 0.94), V.UNDECIDED),
])
def test_within_at_least_reaches_each_outcome(value, interval, outcome):
    assert V.within(value, interval, 0.9, direction="at least").outcome == outcome


def test_within_reason_quotes_the_numbers():
    v = V.within(3.21, (2.05, 4.4), THRESHOLD, statistic="the gap", unit="points")
    assert "3.21 points" in v.reason and "2.05 to 4.4" in v.reason and "at most 5 points" in v.reason
    assert v.reason.endswith(".") and v.reason[0].isupper()


def test_within_rejects_bad_input():
    with pytest.raises(ValueError, match="direction"):
        V.within(1.0, (0.0, 2.0), 1.0, direction="below")
    with pytest.raises(ValueError, match="low end above"):
        V.within(1.0, (2.0, 0.0), 1.0)


# difference: variant vs reference ----------------------------------------------------------

def test_difference_reaches_each_outcome():
    assert V.difference(0.05, 0.01, n=(5, 5)).outcome == V.HOLDS
    assert V.difference(-0.05, 0.01, n=(5, 5)).outcome == V.FAILS
    assert V.difference(0.05, 0.30, n=(5, 5)).outcome == V.UNDECIDED
    no_effect = V.difference(0.001, 0.6, (-0.01, 0.01), n=(5, 5), margin=0.02)
    assert no_effect.outcome == V.FAILS and "no effect" in no_effect.reason
    # the same interval without a margin cannot say "no effect"
    assert V.difference(0.001, 0.6, (-0.01, 0.01), n=(5, 5)).outcome == V.UNDECIDED


def test_difference_names_too_few_seeds():
    # 2 vs 2 seeds: the smallest exact two-sided p is 1/3, so even p = 1/3 cannot decide
    v = V.difference(0.5, 1 / 3, n=(2, 2), alpha=0.05)
    assert v.outcome == V.UNDECIDED
    assert "2 vs 2" in v.reason and "0.33" in v.reason and "too few" in v.reason
    # deciding on a bootstrap interval over the same 2 vs 2 seeds cannot decide either
    assert V.difference(0.08, interval=(0.07, 0.09), n=(2, 2)).outcome == V.UNDECIDED


def test_difference_expected_sign_and_interval_only():
    assert V.difference(-0.05, 0.01, expected_sign=-1).outcome == V.HOLDS
    assert V.difference(0.05, interval=(0.01, 0.09)).outcome == V.HOLDS
    assert V.difference(-0.05, interval=(-0.09, -0.01)).outcome == V.FAILS
    assert V.difference(0.05, interval=(-0.01, 0.09)).outcome == V.UNDECIDED
    with pytest.raises(ValueError, match="p-value or an interval"):
        V.difference(0.05)
    with pytest.raises(ValueError, match="expected_sign"):
        V.difference(0.05, 0.01, expected_sign=0)


def test_smallest_p_values():
    assert V.smallest_p_difference(2, 2) == pytest.approx(1 / 3)
    assert V.smallest_p_difference(2, 2, two_sided=False) == pytest.approx(1 / 6)
    assert V.smallest_p_difference(3, 2) == pytest.approx(1 / 10)
    assert V.smallest_p_difference(1, 1) == 1.0
    assert V.smallest_p_correlation(4) == pytest.approx(1 / 12)
    assert V.smallest_p_correlation(2) == 1.0


# correlation -------------------------------------------------------------------------------

def test_correlation_reaches_each_outcome():
    assert V.correlation(0.9, 0.001, n=10).outcome == V.HOLDS
    assert V.correlation(-0.9, 0.001, n=10).outcome == V.FAILS
    assert V.correlation(0.3, 0.4, n=10).outcome == V.UNDECIDED
    assert V.correlation(float("nan"), 1.0, n=10).outcome == V.UNDECIDED
    assert V.correlation(-0.8, 0.01, expected_sign=-1, n=10).outcome == V.HOLDS
    # 4 pairs: smallest two-sided p is 1/12 > 0.05, even a perfect rho cannot decide
    few = V.correlation(1.0, 1 / 12, n=4)
    assert few.outcome == V.UNDECIDED and "too few" in few.reason


# across: one rule over several groups --------------------------------------------------------

def _v(outcome):
    return V.Verdict(outcome, 0.0, "built for the test.")


@pytest.mark.parametrize("outcomes, expected", [
    ([V.HOLDS, V.HOLDS], V.HOLDS),
    ([V.FAILS, V.FAILS], V.FAILS),
    ([V.HOLDS, V.FAILS], V.PARTLY),
    ([V.HOLDS, V.UNDECIDED], V.PARTLY),
    ([V.PARTLY, V.FAILS], V.PARTLY),
    ([V.FAILS, V.UNDECIDED], V.FAILS),
    ([V.UNDECIDED, V.UNDECIDED], V.UNDECIDED),
])
def test_across_reaches_each_outcome(outcomes, expected):
    out = V.across({f"g{i}": _v(o) for i, o in enumerate(outcomes)}, what="datasets")
    assert out.outcome == expected
    assert out.n == len(outcomes) and f"Of {len(outcomes)} datasets" in out.reason
    assert out.statistic == pytest.approx(outcomes.count(V.HOLDS) / len(outcomes))


def test_across_needs_verdicts():
    with pytest.raises(ValueError, match="at least one"):
        V.across({})


# Rule and Verdict --------------------------------------------------------------------------

def test_rule_states_its_constants_and_judges_with_them():
    rule = V.within_rule("20% of neurons within 5 points", "the accuracy gap at 20%", THRESHOLD, unit="points")
    assert "at most 5 points" in rule.statement and "inconclusive" in rule.statement
    v = rule.judge(3.0, (2.0, 4.0))
    assert v.outcome == V.HOLDS and v.rule == rule.statement
    assert rule.judge(6.0, (5.5, 6.5)).outcome == V.FAILS
    with pytest.raises(TypeError, match="constants of this rule"):
        rule.judge(3.0, (2.0, 4.0), threshold=2.0)  # the rule printed is the rule applied


def test_rule_judge_each_combines_groups():
    rule = V.within_rule("stage keeps 90%", "the accuracy ratio", 0.9, direction="at least")
    out = rule.judge_each({"blocks.6": {"value": 0.748, "interval": (0.73, 0.76)},
                           "stage4": {"value": 0.702, "interval": (0.69, 0.71)}}, what="stages")
    assert out.outcome == V.FAILS          # chapter 12: no stage keeps 90%
    assert set(out.parts) == {"blocks.6", "stage4"} and "each of the stages" in out.rule


def test_difference_and_correlation_rules():
    d = V.difference_rule("training adds redundancy", "DR(trained) minus DR(untrained)", margin=0.02)
    assert "0.02" in d.statement and d.judge(0.05, 0.5, n=(2, 2)).outcome == V.UNDECIDED
    c = V.correlation_rule("critical mass depends on the task", expected_sign=-1)
    assert "negative" in c.statement and c.judge(-0.9, 0.003, n=6).outcome == V.HOLDS


def test_verdict_contract():
    with pytest.raises(ValueError, match="not one of"):
        V.Verdict("holds in shape", 1.0, "x")
    v = V.within(3.0, (2.0, 4.0), THRESHOLD)
    assert str(v) == V.HOLDS and v.holds
    q = v.quotes("headline")
    assert q["headline_verdict"] == V.HOLDS and (q["headline_low"], q["headline_high"]) == (2.0, 4.0)
    assert set(v.row()) >= {"verdict", "statistic", "low", "high", "p_value", "n", "reason"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.outcome = V.FAILS


def test_outcomes_are_exactly_four():
    assert V.OUTCOMES == ("holds", "holds partly", "does not hold", "inconclusive")

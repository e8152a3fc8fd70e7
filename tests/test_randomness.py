"""Chapter 13 (how random is random?) with known answers on constructed layers."""

import numpy as np
import pandas as pd
import pytest

from diffred import stats, verdicts
from diffred.analyses import predictors, randomness

#: Effective rank / participation ratio of an isotropic Gaussian may fall this far below d
#: (sampling spread of the eigenvalues, d / n = 0.01).
ISOTROPIC_TOL = 0.02


def _layer(kind, d=60, n=6000, rng=None):
    """Two classes. ``concentrated``: 3 neurons carry the label, the rest are noise;
    ``diffused``: every neuron is an i.i.d. noisy copy of the label."""
    rng = rng or np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, d)).astype(np.float32)
    if kind == "concentrated":
        X[:, [5, 17, 42]] += 4.0 * y[:, None]
    else:
        X += 0.6 * y[:, None]
    return X, y


def _verdict(kind):
    rng = np.random.default_rng(1)
    Xtr, ytr = _layer(kind, n=3000, rng=rng)
    Xte, yte = _layer(kind, n=8000, rng=rng)
    scores = randomness.importance(Xtr, ytr, device="cpu")
    conc = randomness.concentration(Xtr, ytr, Xte, yte, scores, fractions=(0.1,), n_random=12, device="cpu")
    return scores, conc, randomness.diffused_verdict(conc, len(yte), fraction=0.1)


@pytest.mark.slow
def test_three_informative_neurons_are_concentrated():
    scores, conc, v = _verdict("concentrated")
    for name in randomness.RANKINGS:
        assert set(scores.nlargest(3, name).neuron) == {5, 17, 42}
    assert v.outcome == verdicts.FAILS and randomness.WORDS[v.outcome] == "concentrated"
    top = conc[(conc.selector == "top")].accuracy
    assert (top > 0.95).all()


@pytest.mark.slow
def test_iid_redundant_copies_are_diffused():
    _, _, v = _verdict("diffused")
    assert v.outcome == verdicts.HOLDS and randomness.WORDS[v.outcome] == "diffused"
    assert len(v.parts) == 4 and v.rule.startswith("Rule:")


def test_effective_rank_of_isotropic_gaussian_is_its_dimension():
    X = np.random.default_rng(0).standard_normal((10000, 100))
    assert predictors.effective_rank(X) == pytest.approx(100, rel=ISOTROPIC_TOL)
    assert predictors.participation_ratio(X) == pytest.approx(100, rel=ISOTROPIC_TOL)


def test_participation_ratio_known_spectra():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((50000, 3))
    one = np.c_[Z[:, 0], 2 * Z[:, 0], -Z[:, 0]]  # rank one
    assert predictors.participation_ratio(one, standardise=False) == pytest.approx(1.0, abs=1e-6)
    assert predictors.effective_rank(one, standardise=False) == pytest.approx(1.0, abs=1e-6)
    # variances 1 and 3 on independent axes: PR = (1 + 3)^2 / (1 + 9) = 1.6
    two = np.c_[Z[:, 0], np.sqrt(3) * Z[:, 1]]
    assert predictors.participation_ratio(two, standardise=False) == pytest.approx(1.6, rel=0.02)
    p = np.array([0.25, 0.75])
    assert predictors.effective_rank(two, standardise=False) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=0.02)


def test_constant_and_dead_neurons_are_counted_and_ignored():
    X = np.random.default_rng(0).standard_normal((1000, 10))
    X[:, 0] = 0.0      # dead
    X[:, 1] = 3.0      # constant, not dead
    assert predictors.constant_share(X) == (0.2, 0.1)
    assert predictors.predictor_row(X)["effective_rank"] == pytest.approx(8, rel=0.05)


def test_subsets_needed_and_spread_summary():
    assert randomness.subsets_needed(1.0) == 97       # (1.96 * 1 / 0.2)^2 = 96.04
    assert randomness.subsets_needed(0.0) == 1
    rows = pd.DataFrame({"selector": ["full"] + ["random"] * 100, "fraction": [1.0] + [0.1] * 100,
                         "k": [100] + [10] * 100, "seed": [None] + list(range(100)),
                         "accuracy": [0.9] + list(0.8 + 0.01 * np.random.default_rng(0).standard_normal(100))})
    s = randomness.spread_summary(rows).iloc[0]
    assert s.n_subsets == 100 and s.worst <= s.q01 <= s["median"] <= s.q95 <= s.best
    assert s.sd == pytest.approx(1.0, rel=0.2) and s.worst_gap == pytest.approx(90 - s.worst)


def _tasks(dr_by_classes, dr_by_shots):
    rows = [{"axis": "classes", "classes": c, "shots": 100, "dr": dr} for c, dr in dr_by_classes]
    rows += [{"axis": "shots", "classes": 10, "shots": s, "dr": dr} for s, dr in dr_by_shots]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("drs, outcome", [
    ([0.99, 0.98, 0.985, 0.95, 0.96, 0.94, 0.90, 0.80], verdicts.HOLDS),        # more classes, lower DR
    ([0.80, 0.82, 0.81, 0.90, 0.91, 0.89, 0.95, 0.99], verdicts.FAILS),         # the opposite
    ([0.90, 0.95, 0.92, 0.91, 0.96, 0.90, 0.93, 0.94], verdicts.UNDECIDED),     # no trend
])
def test_class_count_rule_reaches_its_outcomes(drs, outcome):
    classes = [2, 2, 2, 5, 5, 5, 10, 20]
    v = predictors.axis_verdicts(_tasks(zip(classes, drs), [(10, 0.9), (100, 0.9), (1000, 0.9)]))["classes"]
    assert v.outcome == outcome


def test_class_count_rule_with_too_few_tasks_is_inconclusive():
    v = predictors.axis_verdicts(_tasks([(2, 0.99), (5, 0.95), (10, 0.9)], [(10, 0.9)]))["classes"]
    assert v.outcome == verdicts.UNDECIDED and "too few" in v.reason


def test_class_tasks_are_balanced_and_drop_impossible_shots():
    y_train = np.repeat(np.arange(10), 50)
    y_test = np.repeat(np.arange(10), 20)
    tasks = predictors.class_tasks(y_train, y_test, n_classes=(2, 10), shots=(10, 40, 100), base_shots=30,
                                   n_draws=2)
    assert [(t["axis"], t["classes"], t["shots"]) for t in tasks] == [
        ("classes", 2, 30), ("classes", 2, 30), ("classes", 10, 30), ("shots", 10, 10), ("shots", 10, 10),
        ("shots", 10, 40), ("shots", 10, 40)]
    t = tasks[0]
    assert np.bincount(y_train[t["train"]])[np.unique(y_train[t["train"]])].tolist() == [30, 30]
    assert len(t["test"]) == 40


def test_spearman_p_matches_stats():
    rho, p = stats.permutation_p_correlation([2, 2, 5, 5, 10, 20], [0.99, 0.98, 0.95, 0.96, 0.9, 0.8])
    assert rho < -0.9 and p < 0.05


@pytest.mark.parametrize("drs, outcome", [
    ([0.80, 0.82, 0.81, 0.90, 0.91, 0.89, 0.95, 0.97, 0.96], verdicts.HOLDS),     # more images, higher DR
    ([0.96, 0.97, 0.95, 0.90, 0.91, 0.89, 0.80, 0.82, 0.81], verdicts.FAILS),     # the opposite
    ([0.90, 0.95, 0.92, 0.91, 0.96, 0.90, 0.93, 0.94, 0.90], verdicts.UNDECIDED), # no trend
])
def test_shots_rule_reaches_its_outcomes(drs, outcome):
    shots = [10, 10, 10, 100, 100, 100, 1000, 1000, 1000]
    v = predictors.axis_verdicts(_tasks([(2, 0.9), (5, 0.9), (10, 0.9)], zip(shots, drs)))["shots"]
    assert v.outcome == outcome
    assert "training images per class" in v.rule and "positive" in v.rule


def test_paper_error_bar_is_read_like_ours():
    q = randomness.paper_comparison(1.0)
    assert q["paper_needed"] == "97" and q["paper_half5"] == pytest.approx(1.96 / np.sqrt(5))
    missing = randomness.paper_comparison(float("nan"))
    assert np.isnan(missing["paper_half5"]) and "no count" in missing["paper_needed"]


def test_setting_quotes_follow_the_run():
    from diffred.analyses import Result
    from diffred.config import RunConfig
    tasks = pd.concat([_tasks([(2, 0.9), (10, 0.8)], [(10, 0.7), (1000, 0.9)]).assign(joined=False),
                       pd.DataFrame([{"axis": "classes", "classes": 20, "shots": 100, "dr": 0.7, "joined": True}])])
    r = Result({"lite": ("a", "b", "c")}, {"tasks": tasks},
               {"cfg": RunConfig(model="m", dataset="d", n_train=10, n_test=None, image_size=64)})
    q = randomness.setting_quotes(r)
    assert q["main_setting"] == "m (ImageNet weights) on d at 64 px" and q["lite_models"] == "a, b and c"
    assert q["shots_used"] == "10 and 1,000" and q["base_shots"] == 100 and q["all_classes"] == 10


def test_claim2_combines_the_two_controlled_axes():
    from diffred import verdicts as vd
    from diffred.analyses import Result, randomness

    def axis(outcome):
        return vd.Verdict(outcome, -0.9, "constructed.", p_value=0.01, n=6)
    both = Result({}, {}, {"classes": axis(vd.HOLDS), "shots": axis(vd.HOLDS)})
    assert randomness.claim2_verdict(both).outcome == vd.HOLDS
    mixed = Result({}, {}, {"classes": axis(vd.HOLDS), "shots": axis(vd.UNDECIDED)})
    assert randomness.claim2_verdict(mixed).outcome == vd.PARTLY
    none = Result({}, {}, {"classes": axis(vd.FAILS), "shots": axis(vd.UNDECIDED)})
    assert randomness.claim2_verdict(none).outcome == vd.FAILS
    q = randomness.claim2_quotes(mixed)
    assert q["claim2_badge"].claim == 2 and q["claim2_rule"].startswith("Rule:")
    assert q["claim2_ours"].startswith("DR(0.9) against class count rho -0.9 (p = 0.01, 6 tasks)")
    assert "over the authors' 11" in q["claim2_paper"]


def test_chapter_tables_name_every_column():
    from diffred import tables
    from diffred.analyses import Result, randomness
    summary = pd.DataFrame([{c: 1.0 for c in randomness.SUMMARY_HEADERS}])
    gaps = pd.DataFrame([{c: 1.0 for c in randomness.GAPS_HEADERS} | {"ranking": "weight norm"}])
    r = Result({}, {"summary": summary, "gaps": gaps})
    shown = tables.show(randomness.summary_table(r)).frame
    assert list(shown.columns) == list(randomness.SUMMARY_HEADERS.values())
    assert "subsets for ±0.2 points" in shown.columns
    assert list(tables.show(randomness.gaps_table(r)).frame.columns) == list(randomness.GAPS_HEADERS.values())

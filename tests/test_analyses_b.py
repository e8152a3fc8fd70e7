"""Known answers on constructed data for the analyses of chapters 05 (per class), 06
(architectures), 07 (robustness) and 09 (cost): every computation, and each chapter's
``quotes`` on a small Result whose numbers are known by construction."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from diffred import plots, tables  # noqa: E402
from diffred.analyses import Result  # noqa: E402
from diffred.analyses import architectures, cost, per_class, robustness  # noqa: E402
from diffred.config import RunConfig  # noqa: E402
from diffred.subsets import random_subsets  # noqa: E402

TOL = 1e-9


def _curve(class_acc: dict, model="m", dataset="d", selector="random") -> pd.DataFrame:
    """A subset curve from {(fraction, seed): [per-class accuracies]} (classes c0, c1, ...);
    overall accuracy = the mean over classes, k = 100 * fraction, no duplicate k."""
    rows = []
    for (fraction, seed), accs in class_acc.items():
        row = {"model": model, "dataset": dataset, "selector": selector, "fraction": fraction,
               "k": int(round(100 * fraction)), "seed": seed, "accuracy": float(np.mean(accs)),
               "duplicate_k": False}
        row.update({f"acc_c{i}": float(a) for i, a in enumerate(accs)})
        rows.append(row)
    return pd.DataFrame(rows)


# --- chapter 05: per class ---------------------------------------------------------------

def test_per_class_means_over_seeds_and_ratio_to_the_full_layer():
    curve = _curve({(1.0, 1): [1.0, 0.5], (1.0, 2): [1.0, 0.5],
                    (0.5, 1): [0.8, 0.5], (0.5, 2): [0.6, 0.5]})
    dup = _curve({(0.4, 1): [0.0, 0.0]}).assign(duplicate_k=True)  # must be ignored
    m = per_class.per_class(pd.concat([curve, dup], ignore_index=True)).set_index(["fraction", "class"])
    assert 0.4 not in m.index.get_level_values("fraction")
    assert m.loc[(0.5, "c0"), "acc"] == pytest.approx(0.7)
    assert m.loc[(0.5, "c0"), "relative"] == pytest.approx(0.7)
    assert m.loc[(0.5, "c0"), "drop_points"] == pytest.approx(30.0)
    assert m.loc[(0.5, "c1"), "relative"] == pytest.approx(1.0)
    assert m.loc[(0.5, "c1"), "drop_points"] == pytest.approx(0.0)
    assert m.loc[(1.0, "c0"), "relative"] == pytest.approx(1.0)


def test_gini_curve_is_zero_for_equal_classes_and_one_half_for_one_of_two():
    curve = _curve({(1.0, 1): [0.7, 0.7, 0.7], (0.5, 1): [1.0, 0.0, 0.0], (0.2, 1): [1.0, 1.0, 0.0]})
    g = per_class.gini_curve(curve).set_index("fraction")
    assert g.loc[1.0, "gini"] == pytest.approx(0.0)
    # three values, one holds everything: sum|xi - xj| = 4, 2 n^2 mean = 2 * 9 / 3 = 6
    assert g.loc[0.5, "gini"] == pytest.approx(4 / 6)
    assert g.loc[0.2, "gini"] == pytest.approx(4 / (2 * 9 * 2 / 3))
    assert g.loc[0.5, "accuracy"] == pytest.approx(1 / 3)
    assert list(g.columns) == ["k", "seed", "accuracy", "gini"]


def test_unevenness_test_no_unevenness_gives_p_one():
    """Every class drops by the same amount in each seed (the amount varies by seed): the
    seed-mean drops are equal, the statistic is 0 and every permutation reaches it."""
    acc = {(1.0, s): [0.9] * 5 for s in (1, 2, 3)}
    acc.update({(0.1, s): [0.9 - d] * 5 for s, d in ((1, 0.05), (2, 0.10), (3, 0.20))})
    t = per_class.unevenness_test(_curve(acc), 0.1, n_permutations=500)
    assert t["statistic"] == pytest.approx(0.0, abs=TOL)
    assert t["p_value"] == 1.0
    assert t["mean_drop_points"] == pytest.approx(100 * (0.05 + 0.10 + 0.20) / 3)
    assert t["worst_drop_points"] == pytest.approx(t["best_drop_points"])


def test_unevenness_test_one_collapsing_class_gives_a_small_p():
    rng = np.random.default_rng(0)
    acc = {(1.0, s): [0.9] * 10 for s in range(1, 6)}
    for s in range(1, 6):
        drops = 0.01 + 0.005 * rng.standard_normal(10)
        drops[3] = 0.5  # class c3 collapses in every seed
        acc[(0.1, s)] = list(0.9 - drops)
    t = per_class.unevenness_test(_curve(acc), 0.1, n_permutations=2000)
    assert t["p_value"] < per_class.SIGNIFICANCE
    assert t["p_value"] == pytest.approx(1 / 2001)  # no permutation comes close
    assert t["worst_class"] == "c3"
    assert t["worst_drop_points"] == pytest.approx(50.0)
    assert per_class.claim_verdict(t).outcome == "holds"


def test_unevenness_test_refuses_too_few_seeds_and_mixed_curves():
    acc = {(1.0, 1): [0.9, 0.8], (0.1, 1): [0.5, 0.7]}
    with pytest.raises(ValueError, match="at least 2 subset seeds"):
        per_class.unevenness_test(_curve(acc), 0.1)
    two = pd.concat([_curve(acc), _curve(acc, model="other")], ignore_index=True)
    with pytest.raises(ValueError, match="one \\(model, dataset, selector\\)"):
        per_class.unevenness_test(two, 0.1)


def test_per_class_claim_rule_reaches_every_outcome():
    base = {"statistic": 0.002, "null_mean": 0.001, "n_seeds": 5}
    assert per_class.claim_verdict({**base, "p_value": 0.001, "p_less": 0.999}).outcome == "holds"
    assert per_class.claim_verdict({**base, "p_value": 0.3, "p_less": 0.7}).outcome == "inconclusive"
    # more even than chance, decisively: does not hold
    even = {**base, "statistic": 0.0001, "p_value": 0.999, "p_less": 0.001}
    assert per_class.claim_verdict(even).outcome == "does not hold"


def test_even_drops_do_not_hold_and_few_seeds_cannot_say_so():
    """Ten classes that all drop about 10 points (+/-0.3 noise): the permutation test cannot
    separate them from chance, and the spread's interval lies below 2 points, so claim 6 does
    not hold; with 2 seeds the same data stay inconclusive."""
    rng = np.random.default_rng(3)
    acc = {(1.0, s): [0.9] * 10 for s in range(1, 6)}
    acc.update({(0.1, s): list(0.8 + 0.003 * rng.standard_normal(10)) for s in range(1, 6)})
    t = per_class.unevenness_test(_curve(acc), 0.1, n_permutations=1000)
    assert t["spread_high"] < per_class.SPREAD_MARGIN and t["spread_low"] <= t["spread"] <= t["spread_high"]
    v = per_class.claim_verdict(t)
    assert v.outcome == "does not hold" and "drops are even" in v.reason and "2 points" in v.rule
    two = {k: a for k, a in acc.items() if k[1] <= 2}
    assert per_class.claim_verdict(per_class.unevenness_test(_curve(two), 0.1, n_permutations=1000)).outcome \
        == "inconclusive"


def test_spread_interval_known_answer():
    D = np.array([[0.1, 0.3], [0.1, 0.3], [0.1, 0.3]])  # every seed: classes 20 points apart
    out = per_class.spread_interval(D)
    assert out == pytest.approx({"spread": 10.0, "spread_low": 10.0, "spread_high": 10.0})


def test_unevenness_uses_within_seed_permutations():
    """A shift shared by all classes of one subset does not change the p-value."""
    rng = np.random.default_rng(3)
    acc = {(1.0, s): [0.9] * 6 for s in range(1, 5)}
    for s in range(1, 5):
        acc[(0.1, s)] = list(0.85 - 0.01 * rng.standard_normal(6))
    shifted = {k: (v if k[0] == 1.0 else [a - 0.05 * k[1] for a in v]) for k, v in acc.items()}
    a = per_class.unevenness_test(_curve(acc), 0.1, n_permutations=300)
    b = per_class.unevenness_test(_curve(shifted), 0.1, n_permutations=300)
    assert a["p_value"] == pytest.approx(b["p_value"]) and "null_mean" in a


def _per_class_result(test_fraction=0.5):
    curve = _curve({(1.0, 1): [1.0, 1.0, 1.0], (1.0, 2): [1.0, 1.0, 1.0],
                    (0.5, 1): [0.9, 0.4, 0.7], (0.5, 2): [0.9, 0.4, 0.7]})
    classes = per_class.per_class(curve)
    test = {"fraction": test_fraction, "statistic": 0.1, "p_value": 0.004, "n_permutations": 249,
            "null_mean": 0.01, "p_less": 0.996, "n_seeds": 2,
            "worst_class": "c1", "worst_drop_points": 60.0, "mean_drop_points": 1 / 3 * 100,
            "best_drop_points": 10.0}
    return Result({"test_fraction": test_fraction}, {"classes": classes, "gini": per_class.gini_curve(curve)},
                  {"test": test, "scale_note": "note"})


def test_per_class_quotes_and_drop_table():
    r = _per_class_result()
    q = per_class.quotes(r)
    assert q["top3"] == "c1, c2, c0"  # drops 60, 30, 10 points
    assert q["tf"] == 0.5 and q["worst"] == "c1" and q["nperm"] == 249 and q["p"] == 0.004
    assert q["gini_full"] == pytest.approx(0.0)
    assert q["gini_small"] == pytest.approx(metrics_gini([0.9, 0.4, 0.7]))
    assert q["verdict"] == "holds" and q["significance"] == "1%"
    assert q["scale_note"] == "note"
    assert q["claim6_badge"].claim == 6 and q["claim6_rule"].startswith("Rule:")
    assert all(isinstance(v, (str, int, float)) for k, v in q.items() if k != "claim6_badge")
    t = per_class.drop_table(r)
    assert list(t["class"]) == ["c1", "c2", "c0"]
    assert list(t.columns) == ["class", "acc", "relative", "drop_points"]
    assert t.drop_points.tolist() == pytest.approx([60.0, 30.0, 10.0])


def metrics_gini(x):
    x = np.asarray(x, float)
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())


# --- chapter 06: architectures -----------------------------------------------------------

def test_direction_words_follow_the_sign_of_rho():
    assert architectures.direction(0.4).startswith("easier tasks show more")
    assert architectures.direction(-0.4).startswith("here easier tasks show less")
    assert architectures.direction(0.0).startswith("no trend")
    assert architectures.direction(float("nan")).startswith("no trend")


def test_spearman_is_one_for_a_monotone_relation_and_nan_without_variation():
    df = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0.1, 0.5, 0.6, 9.0], "c": [0.5] * 4})
    assert architectures.spearman(df, "a", "b") == pytest.approx(1.0)
    assert architectures.spearman(df.assign(b=-df.b), "a", "b") == pytest.approx(-1.0)
    assert math.isnan(architectures.spearman(df, "a", "c"))


def _arch_result():
    dr = pd.DataFrame({
        "model": ["lite0", "lite0", "lite2", "lite2", "lite0_random", "lite0_random"],
        "dataset": ["easy", "hard", "easy", "hard", "easy", "hard"],
        "selector": "random",
        "full_accuracy": [0.95, 0.80, 0.97, 0.85, 0.40, 0.30],
        "dr_closest": [0.9, 0.7, 0.96, 0.8, 0.2, 0.1],
        "dr_threshold": [0.9, 0.7, 0.96, 0.8, 0.2, 0.1],
        "dr_interp": [0.91, 0.72, 0.96, 0.81, 0.22, 0.12], "dr_low": [0.88, 0.65, 0.93, 0.75, 0.1, 0.05],
        "dr_high": [0.93, 0.78, 0.97, 0.86, 0.3, 0.2]})
    paper_points = pd.DataFrame({"model": ["p", "p", "p"], "dataset": ["x", "y", "z"],
                                 "full_accuracy": [0.9, 0.8, 0.7], "dr": [0.5, 0.9, 0.8]})
    paper_table = pd.DataFrame({"model": ["p"], "pretraining": ["s"], "upstream": ["in1k"],
                                "dataset": ["x"], "dr_0_9": [0.5], "provenance": ["P"]})
    return Result({"models": ["lite0", "lite2", "lite0_random"]},
                  {"dr": dr, "paper_points": paper_points, "paper_table": paper_table}, {"scale_note": "n"})


def test_architectures_one_model_and_display_tables():
    r = _arch_result()
    r.params["models"] = ["lite2"]
    assert architectures.quotes(r)["dr_by_model"] == "0.88 for lite2"
    t = architectures.dr_display(r)
    assert t.loc["lite0", ("dr_closest", "hard")] == pytest.approx(0.7)
    assert architectures.paper_display(r).loc[("p", "s", "in1k"), "x"] == "0.50"
    r.frames["paper_table"] = r.paper_table.assign(provenance="D")
    assert architectures.paper_display(r).loc[("p", "s", "in1k"), "x"] == "0.50" + architectures.DERIVED_MARK


# --- chapter 07: robustness --------------------------------------------------------------

def _rows():
    """Robustness rows, deliberately not in the order the choices were tried."""
    return pd.DataFrame([
        {"choice": robustness.TRAINING_IMAGES, "value": "all", "full": 0.92, "at_20": 0.90, "std_20": 0.001,
         "gap_points": 2.0, "claim_holds": True, "dr_closest": 0.8, "dr_threshold": 0.8},
        {"choice": robustness.SUBSET_SEEDS, "value": "10", "full": 0.90, "at_20": 0.88, "std_20": 0.002,
         "gap_points": 2.0, "claim_holds": True, "dr_closest": 0.8, "dr_threshold": 0.8},
        {"choice": robustness.TRAINING_IMAGES, "value": "1000", "full": 0.85, "at_20": 0.77, "std_20": 0.01,
         "gap_points": 8.0, "claim_holds": False, "dr_closest": 0.7, "dr_threshold": 0.8},
        {"choice": robustness.L2_STRENGTH, "value": "0.1", "full": 0.80, "at_20": 0.78, "std_20": 0.01,
         "gap_points": 2.0, "claim_holds": True, "dr_closest": 0.8, "dr_threshold": 0.8},
        {"choice": robustness.SUBSET_SEEDS, "value": "3", "full": 0.90, "at_20": 0.88, "std_20": 0.005,
         "gap_points": 2.0, "claim_holds": True, "dr_closest": 0.8, "dr_threshold": 0.8},
        {"choice": robustness.L2_STRENGTH, "value": "1e-05", "full": 0.91, "at_20": 0.89, "std_20": 0.01,
         "gap_points": 2.0, "claim_holds": True, "dr_closest": 0.8, "dr_threshold": 0.8},
        {"choice": robustness.TRAINING_IMAGES, "value": "5000", "full": 0.90, "at_20": 0.86, "std_20": 0.003,
         "gap_points": 4.0, "claim_holds": True, "dr_closest": 0.8, "dr_threshold": 0.8},
    ])


def test_variant_row_on_a_constructed_curve():
    acc = {(1.0, s): [0.9, 0.9] for s in (1, 2)}
    acc.update({(0.2, 1): [0.86, 0.86], (0.2, 2): [0.88, 0.88], (0.1, 1): [0.5, 0.5], (0.1, 2): [0.5, 0.5]})
    row = robustness._variant_row("c", 3, _curve(acc))
    assert row["value"] == "3" and row["full"] == pytest.approx(0.9) and row["at_20"] == pytest.approx(0.87)
    assert row["gap_points"] == pytest.approx(3.0) and row["claim_holds"]
    assert row["std_20"] == pytest.approx(np.std([0.86, 0.88], ddof=1))
    assert row["dr_closest"] == pytest.approx(0.8)  # 0.2 has ratio 0.967, 0.1 ratio 0.556, 1.0 ratio 1


def test_seed_curve_reuses_the_base_seeds_and_fits_only_the_missing(monkeypatch):
    base = RunConfig(seeds=(1, 2, 3, 4, 5))
    base_curve = pd.DataFrame({"seed": [1, 2, 3, 4, 5], "fraction": 1.0, "accuracy": 0.9, "model": "m"})
    asked = []

    def fit(cfg):
        asked.append(cfg.seeds)
        return pd.DataFrame({"seed": list(cfg.seeds), "fraction": 1.0, "accuracy": 0.8, "model": "m"})

    monkeypatch.setattr(robustness, "subset_curve", fit)
    three = robustness.seed_curve(base, base_curve, 3)
    assert sorted(three.seed) == [1, 2, 3] and asked == []
    seven = robustness.seed_curve(base, base_curve, 7)
    assert sorted(seven.seed) == [1, 2, 3, 4, 5, 6, 7] and asked == [(6, 7)]
    assert seven.set_index("seed").accuracy[6] == 0.8 and seven.set_index("seed").accuracy[5] == 0.9


def test_robustness_summary_ranges_and_changes():
    s = robustness.robustness_summary(_rows()).set_index("choice")
    ti = s.loc[robustness.TRAINING_IMAGES]
    assert ti["values"] == "all, 1000, 5000"
    assert ti["full-layer accuracy"] == "85.0 to 92.0"
    assert ti["accuracy at 20%"] == "77.0 to 90.0"
    assert ti["DR(0.9), closest"] == "0.70 to 0.80"
    assert ti["claim-1 verdict changes"] == "yes" and ti["DR changes"] == "yes"
    seeds = s.loc[robustness.SUBSET_SEEDS]
    assert seeds["claim-1 verdict changes"] == "no" and seeds["DR changes"] == "no"
    assert list(s.index) == [robustness.TRAINING_IMAGES, robustness.SUBSET_SEEDS, robustness.L2_STRENGTH]


def test_robustness_ends_are_chosen_by_value_not_row_order():
    few, most = robustness.training_images_ends(_rows())
    assert few.value == "1000" and most.value == "all"
    no_all = _rows().query("value != 'all'")
    assert robustness.training_images_ends(no_all)[1].value == "5000"
    lo, hi = robustness.seed_ends(_rows())
    assert (lo.value, hi.value) == ("3", "10")


def test_robustness_quotes_and_rows_table():
    rows = _rows()
    r = Result({}, {"rows": rows, "summary": robustness.robustness_summary(rows)}, {"scale_note": "n"})
    q = robustness.quotes(r)
    assert q["verdict_changes"] == robustness.TRAINING_IMAGES
    assert q["dr_changes"] == robustness.TRAINING_IMAGES
    assert q["reg_full_lo"] == pytest.approx(80.0) and q["reg_full_hi"] == pytest.approx(91.0)
    assert q["seeds_lo"] == 3 and q["seeds_hi"] == 10
    assert q["std_seeds_lo"] == pytest.approx(0.5) and q["std_seeds_hi"] == pytest.approx(0.2)
    assert q["gap_small_n"] == pytest.approx(8.0) and q["gap_big_n"] == pytest.approx(2.0)
    assert q["n_small"] == "1000" and q["n_big"] == "all of them"
    stable = rows[rows.choice != robustness.TRAINING_IMAGES]
    q2 = robustness.quotes(Result({}, {"rows": rows, "summary": robustness.robustness_summary(stable)},
                                  {"scale_note": "n"}))
    assert q2["verdict_changes"] == "none of them"
    t = robustness.rows_table(r)
    assert t["full-layer accuracy (%)"].iloc[0] == pytest.approx(92.0)
    assert t["std at 20% (points)"].iloc[0] == pytest.approx(0.1)
    shown = tables.tidy(t)
    assert shown["full-layer accuracy (%)"].iloc[0] in ("92", "92.0")  # at most one decimal, not 92.000


def test_robustness_curves_draws_on_given_axes():
    curve = _curve({(1.0, 1): [0.9], (0.5, 1): [0.8]})
    curves = pd.concat([curve.assign(choice="a", value="1"), curve.assign(choice="b", value="2")])
    fig, axes = matplotlib.pyplot.subplots(1, 2)
    assert plots.robustness_curves(curves, ax=axes) is fig
    assert [a.get_title() for a in axes] == ["a", "b"]
    with pytest.raises(ValueError, match="needs 2 axes"):
        plots.robustness_curves(curves, ax=axes[:1])
    matplotlib.pyplot.close("all")


# --- chapter 09: cost --------------------------------------------------------------------

def test_recipe_cost_estimate():
    e = cost.recipe_cost_estimate(n_subsets=10, n_images=1000, images_per_second=100.0, epochs=100)
    assert e == {"recipe_seconds": pytest.approx(10 * 100 * 10.0), "extraction_seconds": pytest.approx(10.0)}
    assert cost.recipe_cost_estimate(1, 50, 50.0)["recipe_seconds"] == pytest.approx(100.0)


def _per_member():
    rows = []
    accs = {cost.REFERENCE: {0.1: 0.80, 1.0: 0.90}, cost.BATCHED: {0.1: 0.79, 1.0: 0.905},
            cost.GRID: {0.1: 0.80, 1.0: 0.908}, cost.RIDGE: {0.1: 0.70, 1.0: 0.92},
            cost.RECIPE: {0.1: 0.5, 1.0: 0.6}}
    for method, by_frac in accs.items():
        for fraction, a in by_frac.items():
            for seed, noise in ((1, -0.01), (2, 0.01)):  # seed means are exactly a
                rows.append({"method": method, "fraction": fraction, "seed": seed, "k": 1, "accuracy": a + noise})
    return pd.DataFrame(rows)


def test_accuracy_gaps_to_the_reference():
    g = cost.accuracy_gaps(_per_member()).set_index(["method", "fraction"]).gap_points
    assert cost.REFERENCE not in g.index.get_level_values("method")
    assert g[(cost.BATCHED, 0.1)] == pytest.approx(-1.0)
    assert g[(cost.BATCHED, 1.0)] == pytest.approx(0.5)
    assert g[(cost.RIDGE, 0.1)] == pytest.approx(-10.0)
    assert g[(cost.RIDGE, 1.0)] == pytest.approx(2.0)


def test_sklearn_per_subset_separable_data_and_repeated_subsets():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    X = (2 * y[:, None] - 1) + 0.1 * rng.standard_normal((80, 8))  # every neuron separates the classes
    sel = random_subsets(8, [0.25, 1.0], [1, 2])
    accs = cost._sklearn_per_subset(X, y, X, y, sel, C=1.0, max_iter=200)
    assert accs == [1.0] * len(sel)


def _runtimes():
    labels = [label for _, _, label in cost.CPU_RUNTIMES]
    return pd.DataFrame({"runtime": labels, "images": 256, "repeats": 3, "images_per_second": [100.0, 200.0, 500.0, 1000.0],
                         "max_rel_diff": [0.0, 0.2, 1e-5, 0.15], "mean_rel_diff": [0.0, 0.07, 2e-6, 0.05]})


def test_runtime_quotes_and_table():
    q = cost.runtime_quotes(_runtimes())
    assert q["rt_default_ips"] == 500.0 and q["rt_old_ips"] == 200.0 and q["rt_speedup"] == pytest.approx(2.5)
    assert q["rt_default_diff"] == 1e-5 and q["rt_old_diff"] == 0.2 and q["rt_images"] == 256 and q["rt_repeats"] == 3
    assert q["rt_fastest"] == "OpenVINO bf16 hint" and q["rt_fastest_diff"] == 0.15
    shown = cost.runtimes_table(Result({}, {"runtimes": _runtimes()}))
    assert list(shown.columns)[:2] == ["runtime", "images/s (median)"] and len(shown) == 4


def test_cost_quotes_and_bench_table():
    per = _per_member()
    bench = pd.DataFrame({"method": list(cost.COST_METHODS), "seconds": [2.0, 6.0, 1.0, 300.0, 5000.0],
                          "note": ""})
    r = Result({}, {"bench": bench, "per_member": per, "gaps": cost.accuracy_gaps(per), "runtimes": _runtimes()},
               {"scale_note": "n", "measured": {"computed": "2024-01-01 00:00"}, "n_members": 4,
                "n_train_used": 500, "images_per_second": 250.0,
                "estimate": cost.recipe_cost_estimate(4, 500, 250.0)})
    q = cost.quotes(r)
    assert q["t_batched"] == 2.0 and q["t_grid"] == 6.0 and q["t_ridge"] == 1.0
    assert q["t_sklearn"] == 300.0 and q["t_recipe"] == 5000.0 and q["speedup"] == pytest.approx(150.0)
    assert q["grid_diff"] == pytest.approx(1.0)  # |0.80 - 0.79| at fraction 0.1
    assert q["max_gap"] == pytest.approx(1.0) and q["max_gap_frac"] == "fraction 0.1"
    assert q["ridge_gap_small"] == pytest.approx(10.0) and q["ridge_word"] == "below"
    assert q["ips"] == 250.0 and q["extract_s"] == pytest.approx(2.0)
    assert q["recipe_h"] == pytest.approx(4 * 100 * 2.0 / 3600)
    assert q["measured_when"] == "2024-01-01 00:00" and q["n_members"] == 4 and q["n_train_used"] == 500
    shown = cost.bench_table(Result({}, {"bench": bench.assign(seconds=bench.seconds + 0.123)}))
    assert shown.seconds.tolist() == [2.12, 6.12, 1.12, 300.12, 5000.12]


def test_precision_rows_name_what_the_runtime_extracts(monkeypatch):
    monkeypatch.delenv("DIFFRED_RUNTIME", raising=False)
    cfg = RunConfig(device="cpu", runtime="openvino")
    assert robustness.precision_label("bfloat16", cfg) == "bfloat16"  # OpenVINO's bf16 hint
    assert robustness.precision_label("auto", cfg) == robustness.precision_label("float32", cfg) == "float32"
    torch_cfg = RunConfig(device="cpu", runtime="torch")
    assert robustness.precision_label("bfloat16", torch_cfg) == "bfloat16-autocast"

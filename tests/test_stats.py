"""Uncertainty with known answers: bootstrap intervals, permutation p-values against exact
counts and scipy, the within-seed permutation's invariance, and the CKA overlap baseline
against its population values."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from diffred import stats

P_TOL = 0.01        # Monte Carlo p-values against scipy's
WIDTH_TOL = 0.15    # relative, a bootstrap interval's width against the binomial formula
CKA_TOL = 0.03      # simulated CKA against its population value at large n_samples
FLOAT_TOL = 1e-9    # points; float sums of bootstrap weights


def _curve(acc_at, acc_full, fraction=0.2):
    rows = [{"model": "m", "dataset": "d", "selector": "random", "fraction": fraction, "seed": s,
             "accuracy": a, "duplicate_k": False} for s, a in enumerate(acc_at)]
    rows += [{"model": "m", "dataset": "d", "selector": "random", "fraction": 1.0, "seed": s,
              "accuracy": a, "duplicate_k": False} for s, a in enumerate(acc_full)]
    return pd.DataFrame(rows)


# bootstrap of the gap ----------------------------------------------------------------------

def test_gap_images_identical_predictions_give_a_zero_interval():
    rng = np.random.default_rng(0)
    full = rng.random(500) < 0.8
    out = stats.bootstrap_gap_images(np.tile(full, (3, 1)), full, n_boot=300)
    # paired: errors common to the subset and the full layer cancel in every replicate
    assert [out["gap"], out["low"], out["high"]] == pytest.approx([0.0, 0.0, 0.0], abs=FLOAT_TOL)


def test_gap_images_width_matches_the_binomial_with_one_seed():
    rng = np.random.default_rng(1)
    n, p = 2000, 0.7
    sub = (rng.random(n) < p)[None, :]
    out = stats.bootstrap_gap_images(sub, np.ones(n), n_boot=2000, random_state=2)
    phat = sub.mean()
    assert out["gap"] == pytest.approx(100 * (1 - phat))
    expected = 2 * 1.96 * 100 * math.sqrt(phat * (1 - phat) / n)
    assert out["high"] - out["low"] == pytest.approx(expected, rel=WIDTH_TOL)
    assert out["low"] <= out["gap"] <= out["high"]


def test_gap_images_seed_spread_widens_the_interval():
    rng = np.random.default_rng(3)
    full = np.ones(1000)
    same = np.tile(rng.random(1000) < 0.8, (4, 1))
    spread = np.stack([rng.random(1000) < p for p in (0.6, 0.7, 0.8, 0.9)])
    w_same = np.subtract(*[stats.bootstrap_gap_images(same, full, n_boot=500)[k] for k in ("high", "low")])
    w_spread = np.subtract(*[stats.bootstrap_gap_images(spread, full, n_boot=500)[k] for k in ("high", "low")])
    assert w_spread > 2 * w_same


def test_gap_images_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="n_seeds, n_images"):
        stats.bootstrap_gap_images(np.ones((2, 5)), np.ones(4))


def test_gap_from_curve_seeds_only_is_bounded_by_the_seed_extremes():
    out = stats.bootstrap_gap(_curve([0.80, 0.82, 0.84], [0.90, 0.90, 0.90]), 0.2, n_boot=2000)
    assert out["gap"] == pytest.approx(8.0)
    assert 6.0 - 1e-9 <= out["low"] < out["gap"] < out["high"] <= 10.0 + 1e-9
    assert out["n_seeds"] == 3 and "only" in out["method"]


def _width(out):
    return out["high"] - out["low"]


def test_gap_from_curve_test_image_term_widens_and_vanishes_with_many_images():
    c = _curve([0.80, 0.82, 0.84], [0.90, 0.90, 0.90])
    seeds = stats.bootstrap_gap(c, 0.2)
    small = stats.bootstrap_gap(c, 0.2, n_test=200)
    huge = stats.bootstrap_gap(c, 0.2, n_test=10**8)
    assert _width(small) > 1.5 * _width(seeds)
    assert _width(huge) == pytest.approx(_width(seeds), rel=0.05)
    assert "binomial" in small["method"]


def test_gap_from_curve_needs_the_fractions():
    with pytest.raises(ValueError, match="needs the fractions"):
        stats.bootstrap_gap(_curve([0.8], [0.9]), 0.5)


# permutation p-values ----------------------------------------------------------------------

def test_spearman_exact_known_answers():
    rho, p = stats.permutation_p_correlation([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 120)
    assert stats.permutation_p_correlation([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], alternative="greater")[1] == \
        pytest.approx(1 / 120)
    assert stats.permutation_p_correlation([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], alternative="less")[1] == 1.0


def test_spearman_matches_scipy_with_ties_and_large_n():
    x = [0.90, 0.95, 0.90, 0.95, 0.90, 0.95]   # a DR that takes two values, as in chapter 06
    y = [3, 5, 1, 6, 2, 4]
    assert stats.permutation_p_correlation(x, y)[0] == pytest.approx(sps.spearmanr(x, y).statistic)
    rng = np.random.default_rng(0)
    a = rng.random(40)
    b = a + rng.random(40)
    rho, p = stats.permutation_p_correlation(a, b, n_permutations=20000)
    ref = sps.spearmanr(a, b)
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, abs=P_TOL)


def test_spearman_of_a_constant_is_undefined():
    rho, p = stats.permutation_p_correlation([1, 1, 1], [1, 2, 3])
    assert math.isnan(rho) and p == 1.0


def test_difference_exact_known_answers_and_scipy():
    diff, p = stats.permutation_p_difference([1, 2], [3, 4])
    assert diff == -2.0 and p == pytest.approx(1 / 3)   # 2 vs 2 seeds: the smallest possible p
    assert stats.permutation_p_difference([1, 2], [3, 4], alternative="less")[1] == pytest.approx(1 / 6)
    a, b = [0.91, 0.88, 0.93, 0.90], [0.85, 0.87, 0.86, 0.89]
    ref = sps.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                               n_resamples=np.inf)
    assert stats.permutation_p_difference(a, b)[1] == pytest.approx(ref.pvalue)


def test_difference_monte_carlo_on_separated_groups():
    diff, p = stats.permutation_p_difference(np.arange(10) + 100, np.arange(10), n_permutations=999)
    assert diff == 100 and p == pytest.approx(1 / 1000)
    with pytest.raises(ValueError, match="alternative"):
        stats.permutation_p_difference([1, 2], [3], alternative="bigger")


# chapter 05: within-seed permutation ---------------------------------------------------------

def test_within_seed_permutation_finds_a_class_effect():
    rng = np.random.default_rng(0)
    D = rng.normal(0, 0.01, (5, 10))
    D[:, 3] += 0.1
    out = stats.within_seed_permutation(D, n_permutations=999)
    assert out["p_value"] == pytest.approx(1 / 1000)


def test_within_seed_permutation_ignores_a_shift_shared_by_all_classes():
    rng = np.random.default_rng(1)
    D = rng.normal(0, 0.01, (5, 10))
    shifted = D + np.array([0.0, 0.3, -0.2, 0.5, 0.1])[:, None]   # one subset moves every class
    a = stats.within_seed_permutation(D, n_permutations=500, random_state=7)
    b = stats.within_seed_permutation(shifted, n_permutations=500, random_state=7)
    assert a["statistic"] == pytest.approx(b["statistic"]) and a["p_value"] == pytest.approx(b["p_value"])


def test_within_seed_permutation_one_seed_cannot_decide():
    assert stats.within_seed_permutation(np.array([[0.1, 0.5, 0.2]]), n_permutations=99)["p_value"] == 1.0


def test_within_seed_permutation_is_calibrated_under_the_null():
    rng = np.random.default_rng(2)
    ps = [stats.within_seed_permutation(rng.normal(size=(3, 6)), n_permutations=199, random_state=i)["p_value"]
          for i in range(200)]
    assert np.mean(np.array(ps) <= 0.05) < 0.1


# CKA overlap baseline ----------------------------------------------------------------------

def test_cka_baseline_identical_subsets_give_one():
    out = stats.cka_overlap_baseline(64, 16, 200, n_draws=3, overlap=16)
    assert out["subset_vs_subset"] == pytest.approx(1.0) and out["population_subset_vs_subset"] == 1.0


def test_cka_baseline_approaches_the_population_values():
    out = stats.cka_overlap_baseline(50, 10, 20000, n_draws=5, overlap=5)
    assert out["subset_vs_subset"] == pytest.approx(0.5, abs=CKA_TOL)
    assert out["subset_vs_whole"] == pytest.approx(math.sqrt(10 / 50), abs=CKA_TOL)


def test_cka_baseline_random_pairs_overlap_k2_over_d():
    out = stats.cka_overlap_baseline(100, 20, 300, n_draws=30)
    assert out["population_subset_vs_subset"] == pytest.approx(0.2)
    assert out["mean_overlap"] == pytest.approx(4.0, abs=1.0)
    assert out["subset_vs_subset"] > out["population_subset_vs_subset"]   # sampling noise adds CKA


def test_cka_baseline_rejects_infeasible_overlap():
    with pytest.raises(ValueError, match="overlap"):
        stats.cka_overlap_baseline(10, 8, 100, overlap=2)


# DR comparisons ----------------------------------------------------------------------------

def _dr_rows(slopes, grid=(0.01, 0.05, 0.1, 0.2, 0.5, 1.0)):
    return pd.DataFrame([{"fraction": f, "seed": s, "accuracy": 1 + c * np.log(f), "duplicate_k": False}
                         for s, c in enumerate(slopes) for f in grid])


def test_dr_difference_of_a_curve_with_itself_is_zero():
    rows = _dr_rows([0.08, 0.1, 0.12])
    out = stats.dr_difference(rows, rows, n_boot=300)
    assert out["diff"] == 0.0 and out["low"] < 0 < out["high"]


def test_dr_difference_separates_distinct_curves():
    flat, steep = _dr_rows([0.04, 0.05, 0.06]), _dr_rows([0.14, 0.15, 0.16])
    out = stats.dr_difference(flat, steep, n_boot=300)
    assert out["diff"] == pytest.approx((1 - np.exp(-0.1 / 0.05)) - (1 - np.exp(-0.1 / 0.15)))
    assert 0 < out["low"] < out["diff"] < out["high"]


def test_dr_test_image_term_widens_the_interval_and_counts_seeds():
    rows = _dr_rows([0.08, 0.1, 0.12])
    seeds = stats.dr_difference(rows, rows, n_boot=300)
    images = stats.dr_difference(rows, rows, n_boot=300, n_test=500)
    assert images["high"] - images["low"] > seeds["high"] - seeds["low"]
    assert images["n"] == (3, 3)

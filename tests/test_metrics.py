"""Metrics with known answers, and DR on the paper's own published curves."""

import numpy as np
import pandas as pd
import pytest

from diffred import curves, metrics, paper

DR_TOL = 1e-9


def test_accuracy_and_per_class():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    assert metrics.accuracy(y, p) == pytest.approx(3 / 5)
    assert np.allclose(metrics.per_class_accuracy(y, p, 3), [0.5, 1.0, 0.0])


def test_dr_definitions_known_curve():
    f = [0.1, 0.2, 0.5, 1.0]
    acc = [0.50, 0.88, 0.95, 1.0]
    assert metrics.dr_closest(f, acc, 1.0) == pytest.approx(0.8)   # 0.88 closest to 0.9
    assert metrics.dr_threshold(f, acc, 1.0) == pytest.approx(0.5)  # first >= 0.9 is 0.95


def test_gini():
    assert metrics.gini([1, 1, 1, 1]) == 0
    assert metrics.gini([0, 0, 0, 4]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        metrics.gini([-1, 2])


def test_dr_on_paper_curves_gives_derived_table():
    """The paper's ResNet50 curves (authors' notebook) give the D rows of Table 1."""
    table = paper.load("diffused_redundancy_table")
    derived = table[(table.provenance == "D") & (table.model == "resnet50")]
    curves = paper.load("subset_accuracy")
    assert len(derived) == 8
    for row in derived.itertuples():
        c = curves[(curves.model == row.model) & (curves.pretraining == row.pretraining)
                   & (curves.dataset == row.dataset)]
        assert np.isclose(c.fraction, 1 - row.dr_0_9).any(), (row.dataset, row.pretraining)
        full = float(c[c.fraction == 1.0].acc_mean.iloc[0])
        got = metrics.dr_closest(c.fraction, c.acc_mean, full, 0.9)
        assert got == pytest.approx(row.dr_0_9, abs=DR_TOL), (row.dataset, row.pretraining)


def test_claim_within_on_paper_numbers():
    c = paper.subset_curves("cifar10")
    out = curves.claim_within(c)
    assert out["full"] == pytest.approx(0.8914)
    assert out["gap_points"] == pytest.approx(89.14 - 83.2)
    assert out["holds"] is False


def test_summarise_drops_duplicate_k():
    df = pd.DataFrame({"model": "m", "dataset": "d", "selector": "random", "seed": [1, 1, 1],
                       "fraction": [0.0005, 0.001, 1.0], "k": [1, 1, 1280], "accuracy": [0.2, 0.2, 0.9]})
    df["duplicate_k"] = df.groupby(["seed", "k"]).fraction.transform("max") != df.fraction
    s = curves.summarise(df)
    assert list(s.fraction) == [0.001, 1.0]
    assert curves.duplicate_fractions(df) == [0.0005]


# DR that is not a grid artefact ------------------------------------------------------------

GRID = [0.01, 0.05, 0.1, 0.2, 0.5, 1.0]


def _log_linear(f, slope, full=1.0):
    """A ratio curve linear in log(fraction): ratio(f) = 1 + slope * ln f, crossing delta at
    f* = exp((delta - 1) / slope)."""
    return full * (1 + slope * np.log(np.asarray(f, float)))


def test_dr_interpolated_known_crossing():
    # slope 0.1: ratio 0.9 at f* = exp(-1) = 0.3679, between the grid points 0.2 and 0.5
    got = metrics.dr_interpolated(GRID, _log_linear(GRID, 0.1, 0.8), 0.8, 0.9)
    assert got == pytest.approx(1 - np.exp(-1), abs=DR_TOL)
    assert metrics.dr_closest(GRID, _log_linear(GRID, 0.1, 0.8), 0.8) == pytest.approx(0.5)  # the grid's answer


def test_dr_interpolated_on_a_grid_point_equals_the_threshold_reading():
    f = [0.1, 0.2, 0.5, 1.0]
    acc = [0.50, 0.90, 0.95, 1.0]
    assert metrics.dr_interpolated(f, acc, 1.0) == pytest.approx(metrics.dr_threshold(f, acc, 1.0))


def test_dr_interpolated_edges():
    # the smallest tested fraction already reaches delta: DR is 1 - that fraction (a lower bound)
    assert metrics.dr_interpolated([0.05, 1.0], [0.95, 1.0], 1.0) == pytest.approx(0.95)
    # the full layer is added when the grid lacks it
    assert metrics.dr_interpolated([0.1], [0.8], 1.0) == pytest.approx(1 - np.exp(np.log(0.1) / 2))


def test_dr_interpolated_is_at_least_the_threshold_reading():
    rng = np.random.default_rng(0)
    for _ in range(50):
        acc = np.sort(rng.random(len(GRID)))
        acc[-1] = 1.0
        assert metrics.dr_interpolated(GRID, acc, 1.0) >= metrics.dr_threshold(GRID, acc, 1.0) - DR_TOL


def _seed_rows(slopes, grid=GRID):
    return pd.DataFrame([{"fraction": f, "seed": s, "accuracy": r, "duplicate_k": False}
                         for s, c in enumerate(slopes) for f, r in zip(grid, _log_linear(grid, c))])


def test_dr_bootstrap_identical_seeds_give_a_point():
    out = metrics.dr_bootstrap(_seed_rows([0.1, 0.1, 0.1]), n_boot=200)
    assert out["dr"] == pytest.approx(1 - np.exp(-1)) and out["low"] == pytest.approx(out["high"])
    assert out["n_seeds"] == 3


def test_dr_bootstrap_interval_lies_between_the_extreme_seeds():
    # full accuracy 1 for every seed, so a resample's mean curve has slope mean(c): DR is
    # monotone in it (a steeper curve, less DR) and bounded by the steepest and the flattest seed
    slopes = [0.06, 0.08, 0.1, 0.12, 0.14]
    out = metrics.dr_bootstrap(_seed_rows(slopes), n_boot=1000, random_state=1)
    lo_bound, hi_bound = 1 - np.exp(-0.1 / max(slopes)), 1 - np.exp(-0.1 / min(slopes))
    assert lo_bound - DR_TOL <= out["low"] < out["dr"] < out["high"] <= hi_bound + DR_TOL
    assert out["dr"] == pytest.approx(1 - np.exp(-0.1 / np.mean(slopes)))


def test_dr_bootstrap_drops_duplicate_k_and_needs_the_full_layer():
    rows = _seed_rows([0.1, 0.1])
    dup = rows.iloc[[0]].assign(fraction=0.005, accuracy=0.99, duplicate_k=True)
    assert metrics.dr_bootstrap(pd.concat([rows, dup]), n_boot=50)["dr"] == pytest.approx(1 - np.exp(-1))
    with pytest.raises(ValueError, match="full layer"):
        metrics.dr_bootstrap(rows[rows.fraction < 1], n_boot=10)


def test_dense_fractions_bracket_the_crossing():
    s = pd.DataFrame({"fraction": GRID, "ratio": _log_linear(GRID, 0.1)})
    dense = metrics.dense_fractions(s, 0.9, n=3)
    assert len(dense) == 3 and all(0.2 < f < 0.5 for f in dense)
    assert np.allclose(np.diff(np.log(dense)), np.log(0.5 / 0.2) / 4, rtol=1e-3)   # even in log
    early = pd.DataFrame({"fraction": [0.05, 1.0], "ratio": [0.95, 1.0]})
    assert all(0.005 < f < 0.05 for f in metrics.dense_fractions(early, 0.9, n=2))


def test_dense_fractions_union_over_groups():
    a = pd.DataFrame({"dataset": "a", "fraction": GRID, "ratio": _log_linear(GRID, 0.1)})      # 0.2-0.5
    b = pd.DataFrame({"dataset": "b", "fraction": GRID, "ratio": _log_linear(GRID, 0.03)})     # 0.01-0.05
    dense = metrics.dense_fractions(pd.concat([a, b]), 0.9, n=2)
    assert len(dense) == 4 and sum(f < 0.05 for f in dense) == 2

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

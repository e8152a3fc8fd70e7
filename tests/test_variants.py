"""The zoo variants' own checks (issue 14, item 5): known answers on constructed data, and
one real zoo model end to end."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from diffred.analyses import variants as v


def test_offdiag_share_known_answers():
    rng = np.random.default_rng(0)
    assert v.offdiag_share(rng.standard_normal((20000, 5))) < 0.01  # independent neurons
    x = rng.standard_normal((500, 1))
    assert v.offdiag_share(np.repeat(x, 4, axis=1)) == pytest.approx(1 - 1 / 4)  # 4 identical copies
    assert math.isnan(v.offdiag_share(np.ones((10, 3))))  # nothing varies


def test_mean_abs_correlation_ignores_dead_neurons():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 1))
    H = np.hstack([x, -x, 2 * x, np.zeros((300, 2))])  # 3 perfectly (anti-)correlated live neurons, 2 dead
    assert v.mean_abs_correlation(H) == pytest.approx(1.0)
    assert math.isnan(v.mean_abs_correlation(np.hstack([x, np.zeros((300, 3))])))


def _two_class(n=1000, d=10):
    y = np.arange(n) % 2
    H = np.repeat((2 * y - 1.0)[:, None], d, axis=1)  # every neuron carries the label
    return H, y


def test_drop_losses_one_neuron_reader_against_an_averaging_classifier():
    H, y = _two_class()
    spread = torch.nn.Linear(10, 2, bias=False)  # reads every neuron: dropping half changes nothing
    lone = torch.nn.Linear(10, 2, bias=False)  # reads neuron 0 only: class 1 is lost whenever it is dropped
    with torch.no_grad():
        spread.weight.copy_(torch.tensor([[-1.0] * 10, [1.0] * 10]))
        lone.weight.zero_()
        lone.weight[1, 0] = 1.0
    # only when all 10 neurons drop (1 in 1,024) does class 1 tie and fall: about 0.05 points
    assert v.drop_losses(spread, H, y, rates=[0.5])[0]["loss_points"] == pytest.approx(0.05, abs=0.1)
    row = v.drop_losses(lone, H, y, rates=[0.5], n_masks=20)[0]
    assert row["clean"] == 1.0 and row["loss_points"] == pytest.approx(25.0, abs=2.0)  # 1/2 of class 1, half the images


def _neurons(**offdiag):
    rows = [{"model": f"{var}_s{s}", "variant": var, "dropout": 0.5 if "dropout" in var else 0.0, "offdiag_share": o}
            for var, vals in offdiag.items() for s, o in enumerate(vals, 1)]
    return pd.DataFrame(rows)


def test_decov_check_passes_only_when_every_seed_is_below_the_reference():
    ok = v.decov_check(_neurons(cnn_ce=[0.95, 0.96, 0.97], cnn_decov=[0.90, 0.93]))[0]
    assert ok["passed"] and "0.915" in ok["measured"]
    assert not v.decov_check(_neurons(cnn_ce=[0.95, 0.96, 0.97], cnn_decov=[0.90, 0.955]))[0]["passed"]
    assert v.decov_check(_neurons(cnn_ce=[0.95])) == []  # no DeCov model in the run: not checked


def test_dropout_check_against_the_reference_at_its_own_rate():
    neurons = _neurons(cnn_ce=[0, 0], cnn_dropout50=[0])
    drops = pd.DataFrame([{"model": "cnn_ce_s1", "rate": 0.5, "loss_points": 2.0},
                          {"model": "cnn_ce_s2", "rate": 0.5, "loss_points": 1.0},
                          {"model": "cnn_dropout50_s1", "rate": 0.5, "loss_points": 0.2}])
    (row,) = v.dropout_checks(neurons, drops)
    assert row["variant"] == "cnn_dropout50" and row["passed"]  # 1.5 - 0.2 > 0.5
    drops.loc[2, "loss_points"] = 1.2  # only 0.3 points better than the reference
    assert not v.dropout_checks(neurons, drops)[0]["passed"]


def _nested(mrl_gain, ref_gain, ks=(8, 16, 32)):
    return pd.DataFrame([{"model": m, "selector": sel, "k": k, "accuracy": 0.8 + (g / 100 if sel == "first" else 0)}
                         for m, g in (("cnn_mrl_s1", mrl_gain), ("cnn_ce_s1", ref_gain))
                         for sel in ("first", "random") for k in ks])


def test_matryoshka_check_needs_a_gain_above_the_threshold_and_the_reference():
    neurons = _neurons(cnn_ce=[0], cnn_mrl=[0])
    assert v.matryoshka_check(neurons, _nested(3.0, 0.0))[0]["passed"]
    assert not v.matryoshka_check(neurons, _nested(0.5, 0.0))[0]["passed"]  # below 1 point
    assert not v.matryoshka_check(neurons, _nested(3.0, 4.0))[0]["passed"]  # the reference's order does better
    table = v.checks(pd.DataFrame(columns=["variant", "robust_accuracy"]), neurons, pd.DataFrame(
        columns=["model", "rate", "loss_points"]), _nested(3.0, 0.0))
    assert list(table.variant) == ["cnn_mrl"] and list(table.columns) == v.CHECK_COLUMNS


def test_neuron_quotes_and_the_easy_task_sentence():
    neurons = _neurons(cnn_ce=[0.9], cnn_mrl=[0.9]).assign(dead_share=[0.25, 0.0], constant_share=[0.3, 0.0],
                                                           upstream_clean=[0.91, 0.90])
    q = v.neuron_quotes(neurons, _nested(0.0, 0.0))
    assert (q["dead_lo"], q["dead_hi"], q["dead_models"], q["const_hi"]) == pytest.approx((0.0, 25.0, 1, 30.0))
    assert q["easy_random"] == pytest.approx(80.0) and q["easy_full"] == pytest.approx(90.0)
    assert q["easy_sentence"].endswith("classifier.")  # 89% of the full layer: room left
    q = v.neuron_quotes(neurons.assign(upstream_clean=0.82), _nested(0.0, 0.0))
    assert "cannot show much" in q["easy_sentence"]
    assert v.neuron_quotes(pd.DataFrame(), pd.DataFrame())["easy_sentence"] == ""


def test_a_real_zoo_model_end_to_end():
    stats, drops, nested = v.model_frames("cnn_ce_s1", n_train=1000, n_test=500, nested=True)
    assert stats["width"] == 256 and 0 <= stats["dead_share"] <= stats["constant_share"] < 1
    assert 0 < stats["offdiag_share"] < 1 and 0.8 < stats["upstream_clean"] <= 1
    assert list(drops.rate) == list(v.DROP_RATES) and drops.loss_points.iloc[-1] > drops.loss_points.iloc[0]
    assert sorted(set(nested.k)) == list(v.NESTED_WIDTHS) and set(nested.selector) == {"first", "random"}

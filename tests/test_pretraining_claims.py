"""Claims 8-10 on the verdict contract (chapter 11), on constructed zoos with known answers."""

import numpy as np
import pandas as pd
import pytest

from diffred.analyses import Result, pretraining_claims as pc


def _zoo(adv_shift=0.1, mrl_shift=-0.1, up_shift=0.1, seeds=5, widths=(16, 64, 128, 256, 512, 1024), width_slope=0.05,
         full_slope=0.0, robust_gain=0.3, mrl_first_gain=0.05) -> Result:
    rng = np.random.default_rng(0)
    rows = []
    for variant, shift in (("cnn_ce", 0.0), ("cnn_adv", adv_shift), ("cnn_mrl", mrl_shift), ("cnn_up10", -up_shift)):
        for s in range(1, seeds + 1):
            for ds in ("a", "b"):
                rows.append({"variant": variant, "train_seed": s, "dataset": ds, "width": 256, "full_accuracy": 0.9,
                             "ratio_small": 0.7 + shift + 0.005 * rng.standard_normal()})
    table = pd.DataFrame(rows)
    width_table = pd.DataFrame([{"variant": f"cnn_w{w}", "train_seed": 1, "dataset": ds, "width": w,
                                 "ratio_small": 0.6 + width_slope * i, "full_accuracy": 0.8 + full_slope * i}
                                for i, w in enumerate(widths) for ds in ("a", "b")])
    cards = pd.DataFrame({"variant": ["cnn_ce", "cnn_adv"], "robust_accuracy": [0.1, 0.1 + robust_gain]})
    neurons = pd.DataFrame({"model": ["cnn_ce_s1", "cnn_mrl_s1"], "variant": ["cnn_ce", "cnn_mrl"], "offdiag_share": 0.9})
    nested = pd.DataFrame([{"model": m, "selector": sel, "k": 8,
                            "accuracy": 0.5 + (mrl_first_gain if sel == "first" and m == "cnn_mrl_s1" else 0)}
                           for m in neurons.model for sel in ("first", "random")])
    return Result({}, {"table": table, "width_table": width_table, "cards": cards, "neurons": neurons,
                       "nested": nested, "drops": pd.DataFrame(columns=["model", "rate", "loss_points"])})


def test_every_claim_holds_with_five_seeds_and_clear_effects():
    v = pc.claim_verdicts(_zoo())
    assert (v[8].outcome, v[9].outcome, v[10].outcome) == ("holds", "holds", "holds")
    assert v["parts"]["adv"].n == (5, 5) and v["parts"]["adv"].p_value < 0.05


def test_opposite_effects_do_not_hold():
    v = pc.claim_verdicts(_zoo(adv_shift=-0.1, mrl_shift=0.1, up_shift=-0.1, width_slope=-0.05))
    assert (v[8].outcome, v[9].outcome, v[10].outcome) == ("does not hold",) * 3


def test_one_loss_for_one_against_is_partly():
    assert pc.claim_verdicts(_zoo(mrl_shift=0.1))[8].outcome == "holds partly"


def test_two_seeds_are_too_few_and_a_failed_variant_is_not_compared():
    v = pc.claim_verdicts(_zoo(seeds=2))
    assert v[9].outcome == "inconclusive" and "too few to decide" in v[9].reason
    v = pc.claim_verdicts(_zoo(robust_gain=0.01, mrl_first_gain=-0.02))  # both variants fail their checks
    assert v[8].outcome == "inconclusive"
    assert "failed its own training check" in v["parts"]["adv"].reason
    assert "failed its own training check" in v["parts"]["mrl"].reason


def test_width_confounded_by_accuracy_is_inconclusive():
    v = pc.claim_verdicts(_zoo(full_slope=0.02))[10]
    assert v.outcome == "inconclusive" and "confounded" in v.reason


def test_claim_quotes_ledger_keys():
    q = pc.claim_quotes(_zoo())
    for n in (8, 9, 10):
        assert q[f"claim{n}_badge"].claim == n and q[f"claim{n}_rule"].startswith("Rule:")
        assert q[f"claim{n}_ours"] and q[f"claim{n}_paper"]
    assert q["claim8_paper"].startswith("DR(0.9), robust minus standard ResNet50: cifar10 +0.00")
    assert "flowers102 +0.60" in q["claim8_paper"]
    assert q["claim9_paper"].startswith("DR(0.9), ImageNet-21k minus ImageNet-1k ViT-S/16: cifar10 +0.10")
    assert q["claim10_ours"].startswith("rho +1.000")


def test_four_widths_cannot_decide():
    v = pc.claim_verdicts(_zoo(widths=(16, 64, 256, 1024)))[10]
    assert v.outcome == "inconclusive" and "too few to decide" in v.reason

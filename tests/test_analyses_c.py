"""Known answers on constructed data for the analyses of chapters 10-12 (rerun, pretraining,
layers): their table logic, verdict rules and ``quotes``."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest

from diffred.analyses import Result, layers, pretraining, rerun
from diffred.curves import redundancy, summarise

TOL = 1e-9
SMALL = [0.01, 0.05, 0.1, 0.2]  # the fractions of ratio_small


def _plain(values: dict) -> None:
    """Glued values must be plain Python (a numpy scalar's repr would change the ledger), or a
    verdict badge (rendered as HTML, its repr the outcome word)."""
    from diffred.verdicts import Badge
    bad = {k: type(v).__name__ for k, v in values.items() if type(v) not in (float, int, str, Badge)}
    assert not bad, f"not plain Python values: {bad}"


# ----------------------------------------------------------------------------- layers

def _layer_curve(layer, width, accs, fractions=(0.01, 0.05, 0.1, 0.2, 0.5, 1.0)):
    return pd.DataFrame({"model": "m", "dataset": "d", "selector": "random", "fraction": fractions,
                         "k": [max(1, int(f * width)) for f in fractions], "seed": 1, "accuracy": accs,
                         "duplicate_k": False, "d": width, "layer": layer})


def test_layer_table_known_curve():
    pen = _layer_curve("penultimate", 256, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    stage = _layer_curve("blocks.0", 16, [0.4, 0.4, 0.4, 0.4, 0.45, 0.5])
    t = layers.layer_table(pd.concat([pen, stage], ignore_index=True), ["blocks.0", "penultimate"], "net")
    assert list(t.layer) == ["blocks.0", "penultimate"] and list(t.depth) == [0, 1]
    assert list(t.width) == [16, 256] and set(t.model) == {"net"}
    assert t.ratio_small.tolist() == pytest.approx([0.8, 0.65])
    assert t.full_accuracy.tolist() == pytest.approx([0.5, 1.0])
    assert t.dr_closest.iloc[1] == pytest.approx(0.5)  # ratio 0.9 first at the fraction 0.5
    assert t.dr_threshold.iloc[0] == pytest.approx(0.5)  # 0.45 / 0.5 = 0.9 at 0.5
    assert list(layers.table(Result({}, {"tables": t})).columns) == layers.TABLE_COLUMNS


def _stages(ratios, pen_ratio, accs=None):
    names = [f"s{i}" for i in range(len(ratios))] + ["penultimate"]
    accs = accs or [0.3 + 0.1 * i for i in range(len(names))]
    return pd.DataFrame({"layer": names, "depth": range(len(names)), "ratio_small": [*ratios, pen_ratio],
                         "dr_closest": 0.8, "full_accuracy": accs})


def test_describe_and_stage_verdict():
    d = layers.describe(_stages([0.5, 0.95, 0.7], 0.8))
    assert d["best_layer"] == "s1" and d["n_stages"] == 3
    assert (d["mid_min"], d["mid_max"], d["pen_ratio"]) == pytest.approx((0.5, 0.95, 0.8))
    assert d["first_acc"] == pytest.approx(30.0) and d["pen_acc"] == pytest.approx(60.0)
    assert d["above"] == "1 of its 3 stages"
    assert layers.describe(_stages([0.5, 0.6], 0.8))["above"] == "none of its 2 stages"


def _net_curves(stage_ratios, seeds=(1, 2, 3), noise=0.002):
    """Curves of a network whose stage i keeps ``stage_ratios[i]`` of its accuracy at 1-20%."""
    rng = np.random.default_rng(0)
    frames = []
    for i, r in enumerate([*stage_ratios, 0.95]):
        layer = f"s{i}" if i < len(stage_ratios) else "penultimate"
        for s in seeds:
            accs = [0.8 * r + noise * rng.standard_normal() for _ in range(4)] + [0.8 * r, 0.8]
            frames.append(_layer_curve(layer, 64, accs).assign(seed=s))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("ratios, n_test, outcome", [
    # a stage keeping ratio r at 1-50% has DR(0.9) 0.99 when r >= 0.9; below, its curve crosses
    # 0.9 between 50% and 100%, so DR < 0.5 (r = 0.7: 0.21)
    ([0.96, 0.97], 10000, "holds"),             # every stage's DR is above 0.5
    ([0.96, 0.70], 10000, "holds partly"),      # one stage's is, one's is not
    ([0.75, 0.70], 10000, "does not hold"),     # no stage's is (no max over stages)
    ([0.90, 0.905], 200, "inconclusive"),       # at the edge, 200 test images cannot tell 0.99 from 0.3
])
def test_network_verdict_reaches_every_outcome(ratios, n_test, outcome):
    assert layers.network_verdict(_net_curves(ratios), n_test).outcome == outcome


def test_layers_quotes():
    frames = {"model_layers": _stages([0.5, 0.95, 0.7], 0.8), "zoo_layers": _stages([0.92, 0.6], 0.9),
              "model_curves": _net_curves([0.96, 0.97]), "zoo_curves": _net_curves([0.75, 0.7])}
    frames["tables"] = pd.concat([frames["model_layers"].assign(model="a"), frames["zoo_layers"].assign(model="b")])
    params = {"model": "a", "zoo_model": "b", "dataset": "digits", "zoo_dataset": "digits", "n_test": None}
    q = layers.quotes(Result(params, frames))
    _plain(q)
    assert q["setting_note"].startswith("Here the whole layer of a on digits reaches")
    assert q["model_best_layer"] == "s1" and q["zoo_best_layer"] == "s0"
    assert q["zoo_above"] == "1 of its 2 stages" and q["zoo_n_stages"] == 2
    assert q["model_trend"] == pytest.approx(0.5)  # ranks (1, 3, 2) against (1, 2, 3)
    assert q["verdict_ratio"] == pytest.approx(90.0)
    assert (q["model_net_verdict"], q["zoo_net_verdict"], q["claim11_verdict"]) == ("holds", "does not hold", "holds partly")
    assert q["claim11_badge"].claim == 11 and q["claim11_ours"].startswith("a: 2 of 2 stages with DR(0.9) at least 0.50; b: 0 of 2")
    assert q["weaker_sentence"].startswith("every stage's whole-layer accuracy is below")
    assert not any(k.startswith("lite") for k in q)  # keys name the parameter, not its default


# ----------------------------------------------------------------------------- rerun

def _demo_curve(accs, n_classes=3):
    df = pd.DataFrame({"fraction": [0.1, 0.5, 1.0, 1.0], "k": [1, 5, 10, 10], "seed": [1, 1, 1, 2],
                       "accuracy": accs})
    for c in range(n_classes):
        df[f"acc_{c}"] = 0.5
    return df


def test_rerun_quotes_and_table():
    ck, same = _demo_curve([0.2, 0.5, 0.8, 0.9]), _demo_curve([0.2, 0.5, 0.8, 0.9])
    curves = pd.concat([ck.assign(model="a"), same.assign(model="b")], ignore_index=True)
    summary = summarise(curves.assign(dataset="folder"))
    result = Result({"per_class": 30}, {"from_checkpoint": ck, "from_builtin": same, "summary": summary})
    q = rerun.quotes(result)
    _plain(q)
    assert q == {"same_word": "identical", "n_folder_train": 90, "demo_full": pytest.approx(85.0)}
    result.frames["from_builtin"] = _demo_curve([0.2, 0.5, 0.8, 0.91])
    assert rerun.quotes(result)["same_word"] == "not identical"
    t = rerun.accuracy_table(result)
    assert list(t.columns) == ["a", "b"] and t.loc[(1.0, 10), "a"] == pytest.approx(0.85)


def test_cli_command_and_transcript(tmp_path):
    cmd = rerun.cli_command(tmp_path / "m.pth", "resnet18", tmp_path / "birds", tmp_path / "out", [0.5, 1.0], [1], 64)
    assert cmd[:3] == [sys.executable, "-m", "diffred.cli"]
    assert f"model={tmp_path / 'm.pth'}" in cmd and "arch=resnet18" in cmd and "fractions=[0.5, 1.0]" in cmd
    text = rerun.transcript(Result({}, {}, {"command": cmd, "stdout": "wrote it"}))
    first, second = text.splitlines()
    assert first.startswith("$ diffred run 02_random_subsets --quiet --out ") and second == "wrote it"


def test_file_listing(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"x" * 1234)
    (tmp_path / "parameters.json").write_text("{}")
    files = rerun.file_listing(tmp_path)
    assert files.to_dict("list") == {"file": ["figures/a.png", "parameters.json"], "bytes": [1234, 2]}
    lines = rerun.listing(Result({}, {"files": files})).splitlines()
    assert lines[0] == f"{'figures/a.png':40s} {'1,234':>10s} bytes"


def test_write_inputs_reuses_what_exists(tmp_path):
    folder, ckpt = tmp_path / "fashion_mnist_30_15", tmp_path / "efficientnet_lite0_dataparallel.pth"
    folder.mkdir()
    ckpt.write_bytes(b"weights")  # present: neither is written again
    assert rerun.write_inputs("efficientnet_lite0", "fashion_mnist", 30, 15, root=tmp_path) == (folder, ckpt)
    assert ckpt.read_bytes() == b"weights"


# ----------------------------------------------------------------------------- pretraining

def _seed_table(cells: dict) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "dataset": ds, "train_seed": i + 1, "ratio_small": r}
                         for (v, ds), rs in cells.items() for i, r in enumerate(rs)])


def test_compare_variants_spread_and_calls():
    t = _seed_table({("a", "x"): [0.9], ("ref", "x"): [0.7, 0.8],  # spread: the reference's std
                     ("a", "y"): [0.6, 0.6], ("ref", "y"): [0.8, 0.8],  # no spread: any difference counts
                     ("a", "z"): [0.5]})  # no reference on z: skipped
    c = pretraining.compare_variants(t, "a", "ref", direction=+1).set_index("dataset")
    assert list(c.index) == ["x", "y"]
    assert c.loc["x", "difference"] == pytest.approx(0.15)
    assert c.loc["x", "seed_spread"] == pytest.approx(np.std([0.7, 0.8], ddof=1))
    assert list(c.call) == ["as the paper", "opposite"] and c.loc["x", "n_seeds"] == "1 vs 2"
    assert pretraining.compare_variants(t, "missing", "ref").empty


@pytest.mark.parametrize("calls, word", [
    ([], "not tested"),
    (["as the paper"] * 2 + ["within seed spread"], "holds"),
    (["as the paper", "within seed spread"], "inconclusive (within the spread across training seeds)"),
    (["as the paper"] * 3 + ["opposite"], "inconclusive (within the spread across training seeds)"),
    (["opposite"] * 2 + ["as the paper"], "does not hold (the opposite is seen)"),
])
def test_verdict_rule(calls, word):
    assert pretraining.verdict(pd.Series(calls, dtype=object)) == word


def test_width_trend_means_over_seeds():
    t = pd.DataFrame({"dataset": ["x"] * 6 + ["y"] * 2, "width": [16, 16, 64, 64, 256, 256, 16, 64],
                      "ratio_small": [0.9, 0.1, 0.6, 0.6, 0.7, 0.7, 0.5, 0.4]})  # x means: 0.5, 0.6, 0.7
    r = pretraining.width_trend(t).set_index("dataset")
    assert r.loc["x", "widths"] == "16, 64, 256" and r.loc["x", "spearman"] == pytest.approx(1.0)
    assert r.loc["x", "call"] == "as the paper"
    assert math.isnan(r.loc["y", "spearman"]) and r.loc["y", "call"] == "within seed spread"  # two widths


def test_zoo_cards_from_a_folder(tmp_path, monkeypatch):
    for name, variant, seed, rob in [("cnn_ce_s1", "cnn_ce", 1, 0.1), ("cnn_adv_s2", "cnn_adv", 2, 0.4)]:
        card = {"config": {"variant": variant, "seed": seed, "arch": "cnn", "width": 256, "loss": "ce",
                           "dropout": 0.0, "upstream_fraction": 1.0, "epsilon": 1.5},
                "upstream_accuracy": 0.9, "robust_accuracy": rob, "train_seconds": 12.0, "parameters": 1000}
        (tmp_path / f"{name}.json").write_text(json.dumps(card))
    monkeypatch.setenv("DIFFRED_ZOO_DIR", str(tmp_path))
    cards = pretraining.zoo_cards(["cnn_adv_s2", "cnn_ce_s1"])
    assert list(cards.model) == ["cnn_adv_s2", "cnn_ce_s1"] and list(cards.variant) == ["cnn_adv", "cnn_ce"]
    assert list(cards.train_seed) == [2, 1] and cards.robust_accuracy.tolist() == [0.4, 0.1]
    shown = pretraining.cards_table(Result({}, {"cards": cards}))
    assert shown.loc["cnn_adv_s2", "robust_accuracy"] == pytest.approx(40.0)


# models of a constructed zoo: (name, variant, width, ratio at 1-20%, robust, clean accuracy)
ZOO = [("cnn_ce_s1", "cnn_ce", 256, 0.70, 0.10, 0.95), ("cnn_ce_s2", "cnn_ce", 256, 0.72, 0.12, 0.93),
       ("cnn_adv_s1", "cnn_adv", 256, 0.80, 0.40, 0.90), ("cnn_adv_s2", "cnn_adv", 256, 0.82, 0.42, 0.88),
       ("cnn_w64_s1", "cnn_w64", 64, 0.60, 0.0, 0.9), ("cnn_w1024_s1", "cnn_w1024", 1024, 0.90, 0.0, 0.9),
       ("cnn_decov_s1", "cnn_decov", 256, 0.75, 0.0, 0.9)]
FRACTIONS = [0.005, 0.01, 0.05, 0.1, 0.2, 1.0]
FULL = 0.9


def _zoo_result() -> Result:
    rows = []
    for name, _, width, ratio, *_ in ZOO:
        for f in FRACTIONS:
            acc = FULL if f == 1.0 else FULL * ratio
            rows.append({"model": name, "dataset": "x", "selector": "random", "fraction": f,
                         "k": max(1, int(f * width)), "seed": 1, "accuracy": acc, "duplicate_k": False})
            if name.startswith("cnn_ce"):  # first-k neurons: 5 points above random below the full layer
                rows.append({**rows[-1], "selector": "first", "accuracy": acc + (0.05 if f < 1 else 0)})
    curves = pd.DataFrame(rows)
    cards = pd.DataFrame([{"model": n, "variant": v, "train_seed": int(n[-1]), "width": w, "robust_accuracy": r,
                           "upstream_accuracy": c} for n, v, w, _, r, c in ZOO])
    table = redundancy(curves[curves.selector == "random"]).merge(cards, on="model")
    cka = pd.DataFrame({"variant": ["cnn_adv", "cnn_ce", "cnn_ce", "cnn_adv"], "fraction": [0.1, 0.1, 0.1, 0.2],
                        "comparison": ["subset vs subset", "subset vs subset", "subset vs full", "subset vs subset"],
                        "cka": [0.8, 0.6, 0.5, 0.1]})
    return pretraining.assemble({"datasets": ["x"]}, curves, table, cka, cards, epsilon=1.5)


def test_pretraining_quotes_on_a_constructed_zoo():
    q = pretraining.quotes(_zoo_result())
    _plain(q)
    assert q["n_models"] == 7 and q["n_variants"] == 5 and q["eps"] == 1.5
    assert (q["rob_adv"], q["rob_ref"], q["clean_adv"], q["clean_ref"]) == pytest.approx((41, 11, 89, 94))
    assert q["adv_worked"] == "so the adversarial training worked"
    assert q["v_adv"] == "holds" and q["d_adv"] == f"x +0.100 (spread {np.std([0.8, 0.82], ddof=1):.3f})"
    assert q["v_mrl"] == "not tested" and q["d_mrl"] == "" and q["v_up"] == "not tested"
    assert q["v_width"] == "holds" and q["rho_width"] == "x +1.00"
    assert q["ce_first_gain"] == pytest.approx(5.0) and math.isnan(q["mrl_first_gain"])
    assert q["decov_diff"] == pytest.approx(0.75 - 0.71) and math.isnan(q["drop_rho"])
    assert q["vit_diff"] == "" and q["cnn_at20"] == "x 71%" and q["vit_at20"] == "x not measured"
    assert (q["cka_adv"], q["cka_ref"]) == pytest.approx((0.8, 0.6))
    assert q["cka_word"] == "higher, as the paper reports for its robust models"


def test_pretraining_tables_on_a_constructed_zoo():
    r = _zoo_result()
    red = pretraining.redundancy_table(r)
    assert red.loc["cnn_ce", ("ratio_small", "x")] == pytest.approx(0.71)
    checks = pretraining.checks_table(r)
    assert list(checks.claim) == ["adversarial training: more DR", "wider layer: more DR (Spearman rho in 'difference')"]
    assert pretraining.regulariser_table(r).index.tolist() == ["cnn_ce", "cnn_decov"]
    first = pretraining.first_k_table(r)
    assert first.loc[("x", 0.1, 25), ("cnn_ce", "first")] == pytest.approx(FULL * 0.71 + 0.05)
    assert pretraining.cka_table(r).loc["cnn_ce", "subset vs full"] == pytest.approx(0.5)
    assert set(r.width_table.variant) == {"cnn_ce", "cnn_w64", "cnn_w1024"}


# ----------------------------------------------------------------------------- plots

def test_plots_of_these_chapters_draw_on_given_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from diffred import plots
    r = _zoo_result()
    tables = pd.concat([_stages([0.5, 0.9], 0.8).assign(model="a"), _stages([0.6], 0.7).assign(model="b")])
    for draw, data, n in [(plots.variant_curves, r.summary, 1), (plots.variant_redundancy, r.table, 1),
                          (plots.width_effect, r.width_table, 2), (plots.layer_redundancy, tables, 2)]:
        own = draw(data)
        assert len(own.axes) == n
        fig, axes = plt.subplots(1, n, squeeze=False)
        assert draw(data, ax=axes[0] if n > 1 else axes[0, 0]) is fig
        assert all(a.has_data() for a in axes[0])
        plt.close("all")


def test_pretraining_without_cka_or_most_variants_still_quotes():
    r = _zoo_result()
    r.frames["cka"] = pd.DataFrame()  # a re-run with cka_dataset=None
    q = pretraining.quotes(r)
    assert math.isnan(q["cka_adv"]) and q["cka_word"] == "not higher, unlike the paper's robust models"
    assert pretraining.cka_table(r).empty


def test_variant_checks_pass_and_fail():
    r = _zoo_result()
    vc = pretraining.variant_checks(r).set_index("variant")
    assert bool(vc.loc["cnn_adv", "passed"])  # robust 0.41 vs 0.11: +30 points > +10
    assert "cnn_mrl" not in vc.index  # not in this zoo: not checked
    q = pretraining.quotes(r)
    assert q["checks_sentence"] == "every checked variant did what its training was meant to do"
    # a weak adversarial model: +5 points of robust accuracy only -> failed, its claim inconclusive
    cards = r.cards.copy()
    cards.loc[cards.variant == "cnn_adv", "robust_accuracy"] = 0.16
    r.frames["cards"] = cards
    assert not bool(pretraining.variant_checks(r).set_index("variant").loc["cnn_adv", "passed"])
    q = pretraining.quotes(r)
    assert q["v_adv"].startswith("inconclusive") and "cnn_adv did not do" in q["checks_sentence"]
    assert q["checks_sentence"].endswith("the claims that rest on cnn_adv are reported as inconclusive, not compared")
    assert pretraining._failed_sentence(["cnn_mrl", "cnn_dropout10"]) == (
        "cnn_mrl and cnn_dropout10 did not do what their training was meant to do; the claims that rest on cnn_mrl "
        "are reported as inconclusive, not compared; no claim rests on cnn_dropout10, whose rows are shown for "
        "reading only")
    assert pretraining.checks_display(r).loc["cnn_adv", "passed"] == "no"


def test_matryoshka_whose_first_neurons_lose_is_shown_as_failed():
    r = _zoo_result()
    r.frames["neurons"] = pd.DataFrame({"model": ["cnn_ce_s1", "cnn_mrl_s1"], "variant": ["cnn_ce", "cnn_mrl"],
                                        "offdiag_share": [0.9, 0.9]})
    r.frames["drops"] = pd.DataFrame(columns=["model", "rate", "loss_points"])
    # upstream probes: Matryoshka's first k neurons 5 points BELOW k random ones, the reference's equal
    r.frames["nested"] = pd.DataFrame([{"model": m, "selector": sel, "k": k,
                                        "accuracy": 0.8 - (0.05 if (m, sel) == ("cnn_mrl_s1", "first") else 0)}
                                       for m in ("cnn_ce_s1", "cnn_mrl_s1") for sel in ("first", "random") for k in (8, 16)])
    vc = pretraining.variant_checks(r).set_index("variant")
    assert not bool(vc.loc["cnn_mrl", "passed"]) and "-5.0 points" in vc.loc["cnn_mrl", "measured"]
    assert pretraining.verdicts(r)["Matryoshka: less DR"].startswith("inconclusive (the variant failed")


def test_width_trend_confounded_by_full_layer_accuracy():
    r = _zoo_result()
    assert pretraining.quotes(r)["v_width"] == "holds"  # full accuracy constant: not confounded
    wt = r.width_table
    r.frames["width_table"] = wt.assign(full_accuracy=wt.width / 2000)  # the wider, the better
    conf = pretraining.width_confound(r.width_table)
    assert bool(conf.confounded.iloc[0]) and conf.rho_full.iloc[0] == pytest.approx(1.0)
    q = pretraining.quotes(r)
    assert q["v_width"].startswith("inconclusive (confounded") and q["rho_full_width"] == "x +1.00"
    assert q["dr_levels"] >= 1 and q["dr_rows"] == len(r.per_variant)

"""Known answers on constructed data for the analyses of chapters 01-04 (setup, headline,
selectors, similarity): crossover_k, the CKA grid, the effective rank, and every ``quotes``."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from diffred import metrics
from diffred.analyses import Result, headline, selectors, setup, similarity
from diffred.config import RunConfig
from diffred.curves import claim_within, dr_table, summarise
from diffred.subsets import random_subsets


# --- selectors.crossover_k -------------------------------------------------------------

def _summary(accs: dict, ks=(1, 2, 5, 10, 20)) -> pd.DataFrame:
    return pd.DataFrame([{"selector": sel, "k": k, "acc_mean": a} for sel, acc in accs.items()
                         for k, a in zip(ks, acc)])


# gaps of pca_top over random, in points: 20, 5, 0.5, 1.5, 0.5
CROSS = _summary({"pca_top": [0.5, 0.6, 0.7, 0.8, 0.9], "random": [0.3, 0.55, 0.695, 0.785, 0.895]})


@pytest.mark.parametrize("points, expected", [(1.0, 20), (2.0, 5), (6.0, 2), (25.0, 1), (0.1, None)])
def test_crossover_k_is_where_the_gap_stays_within(points, expected):
    # within 1 point at k=5 but not at k=10: the crossover is k=20, not 5
    assert selectors.crossover_k(CROSS, "random", "pca_top", points) == expected


def test_crossover_k_counts_a_better_selector_as_within_and_only_common_k():
    s = _summary({"pca_top": [0.5, 0.6, 0.7], "random": [0.2, 0.9, 0.95]}, ks=(1, 2, 5))
    extra = pd.DataFrame([{"selector": "pca_top", "k": 50, "acc_mean": 1.0}])  # no random at k=50
    assert selectors.crossover_k(pd.concat([s, extra]), "random", "pca_top", 1.0) == 2


# --- similarity: CKA grid and effective rank --------------------------------------------

def _orthogonal(n=120, d=20, seed=0) -> np.ndarray:
    """Centred columns, orthonormal: the covariance is exactly the identity."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    q, _ = np.linalg.qr(A - A.mean(0))
    return q


def _with_features(monkeypatch, X):
    monkeypatch.setattr(similarity, "features_of", lambda cfg: (None, SimpleNamespace(X=X)))


CFG = RunConfig(model="m", dataset="ds", fractions=(0.25, 0.5, 1.0), seeds=(1, 2, 3))


def test_cka_curves_on_an_identity_covariance(monkeypatch):
    X = _orthogonal()
    _with_features(monkeypatch, X)
    df = similarity.cka_curves(CFG, n_samples=1000)
    assert list(df.columns[:2]) == ["model", "dataset"] and set(df.model) == {"m"} and set(df.dataset) == {"ds"}
    assert df.attrs["dead_neurons"] == 0
    whole = df[df.comparison == "subset vs whole layer"]
    # CKA(X_S, X) = ||I_S||_F^2 / (||I_S||_F ||I||_F) = sqrt(k / d)
    assert np.allclose(whole.cka, np.sqrt(whole.k / 20), atol=1e-9)
    assert np.allclose(whole[whole.fraction == 1.0].cka, 1.0)  # the whole layer with itself
    sel = random_subsets(20, CFG.fractions, CFG.seeds)
    for f in CFG.fractions:
        idx = [set(sel.indices(i)) for i, m in enumerate(sel.members) if m.fraction == f]
        k = len(idx[0])
        # CKA between subsets A, B of an isotropic layer: |A & B| / k
        expected = sorted(len(a & b) / k for i, a in enumerate(idx) for b in idx[i + 1:])
        got = sorted(df[(df.comparison == "subset vs subset") & (df.fraction == f)].cka)
        assert np.allclose(got, expected, atol=1e-9)


def test_cka_curves_of_one_direction_is_one_and_counts_dead_neurons(monkeypatch):
    z = np.random.default_rng(1).normal(size=(200, 1))
    X = np.hstack([z * np.arange(1, 20), np.zeros((200, 1))])  # 19 copies of one signal, 1 dead
    _with_features(monkeypatch, X)
    df = similarity.cka_curves(CFG)
    assert df.attrs["dead_neurons"] == 1
    assert np.allclose(df.cka, 1.0, atol=1e-9)


def test_cka_curves_reads_only_the_first_n_samples(monkeypatch):
    X = np.vstack([_orthogonal(), np.random.default_rng(2).normal(size=(500, 20)) * np.arange(1, 21)])
    _with_features(monkeypatch, X)
    whole = similarity.cka_curves(CFG, n_samples=120)
    whole = whole[whole.comparison == "subset vs whole layer"]
    assert np.allclose(whole.cka, np.sqrt(whole.k / 20), atol=1e-9)


def test_rank_sentence_both_ways():
    assert similarity.rank_sentence(275.0, 161.0) == "the random network's variance uses fewer directions"
    assert similarity.rank_sentence(161.0, 275.0) == "the random network's variance uses at least as many directions"
    assert similarity.rank_sentence(200.0, 200.0).endswith("at least as many directions")


def test_effective_rank_isotropic_and_one_direction(monkeypatch):
    """Chapter 04's effective rank is metrics.effective_rank of the standardised TRAINING
    features (chapter 13's measure on the same images), not of the test images."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(20000, 10)) * np.arange(1, 11)  # unequal variances, independent
    monkeypatch.setattr(similarity, "features_of",
                        lambda cfg: (SimpleNamespace(X=train), SimpleNamespace(X=np.ones((5, 10)))))
    assert 9.9 < similarity.effective_rank(CFG) <= 10.0  # standardised: isotropic again
    assert similarity.effective_rank(CFG) == metrics.effective_rank(train)
    assert metrics.effective_rank(train, standardise=False) < 9.0  # raw: the big variances dominate
    one = np.outer(rng.normal(size=500), rng.normal(size=12))
    assert metrics.effective_rank(one) == pytest.approx(1.0, abs=1e-6)
    # two directions with equal variance (and three dead neurons, dropped): exp(log 2) = 2
    assert metrics.effective_rank(np.hstack([_orthogonal(d=2), np.zeros((120, 3))])) == pytest.approx(2.0)


def _similarity_result(cka_pre=0.6, cka_rnd=0.8, rank_pre=30.0, rank_rnd=10.0, dr_pre=0.7, dr_rnd=0.9,
                       acc_pre=0.9, acc_rnd=0.8, rising=True) -> Result:
    pre, rnd = "pre", "rnd"
    rows = []
    for model, top in ((pre, cka_pre), (rnd, cka_rnd)):
        for f, c in ((0.05, top - 0.1), (0.1, top), (0.5, top + 0.1 if rising else top - 0.2)):
            rows += [{"model": model, "fraction": f, "comparison": "subset vs subset", "cka": c + e}
                     for e in (-0.01, 0.01)]
            rows.append({"model": model, "fraction": f, "comparison": "subset vs whole layer", "cka": 0.0})
    paper_cka = pd.DataFrame({"fraction": [0.1, 0.1, 0.1, 0.2], "dataset": ["cifar10", "cifar10", "flowers", "cifar10"],
                              "pretraining": ["standard", "adversarial_l2_eps3", "standard", "standard"],
                              "cka": [0.55, 0.65, 0.1, 0.2]})
    frames = {"cka": pd.DataFrame(rows), "paper_cka": paper_cka,
              "ranks": pd.DataFrame({"model": [pre, rnd], "effective_rank": [rank_pre, rank_rnd]}),
              "dr": pd.DataFrame({"model": [pre, rnd], "dr_closest": [dr_pre, dr_rnd],
                                  "full_accuracy": [acc_pre, acc_rnd]})}
    return Result({"models": [pre, rnd]}, frames)


def test_similarity_cka_table():
    t = similarity.cka_table(_similarity_result())
    assert list(t.columns) == ["pre", "rnd"]
    assert t.loc[("subset vs subset", 0.1), "pre"] == pytest.approx(0.6)


# --- selectors.quotes --------------------------------------------------------------------

def _selector_curve(accs: dict, ks, noise: float = 0.001, seeds=(1, 2, 3, 4, 5), d=100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"selector": sel, "k": k, "fraction": k / d, "seed": s, "d": d,
             "accuracy": a + (noise * rng.standard_normal() if sel == "random" else 0.0)}
            for sel, vals in accs.items() for k, a in zip(ks, vals) for s in seeds]
    return pd.DataFrame(rows)


def _selector_result(random=(0.40, 0.75, 0.795, 0.85, 0.90), d=100, bottom=(0.1, 0.2, 0.3, 0.5, 0.9),
                     n_test=10000, noise=0.001) -> Result:
    ks = (5, 10, 20, 50, 100)
    accs = {"pca_top": (0.6, 0.8, 0.8, 0.85, 0.9), "random": random,
            "pca_bottom": bottom, "projection_gaussian": (0.3, 0.7, 0.79, 0.84, 0.9)}
    return Result({}, {"summary": _summary(accs, ks), "curve": _selector_curve(accs, ks, noise, d=d)},
                  {"n_test": n_test})


def test_selector_quotes_numbers_and_verdict():
    q = selectors.quotes(_selector_result())
    assert (q["k_small"], q["k_mid"]) == (10, 20)
    assert q["top_small"] == pytest.approx(80.0) and q["rand_small"] == pytest.approx(75.0)
    assert q["bottom_small"] == pytest.approx(20.0) and q["proj_small"] == pytest.approx(70.0)
    assert q["bottom_mid"] == pytest.approx(30.0) and q["rand_mid"] == pytest.approx(79.5)
    assert (q["cross_k"], q["cross_frac"]) == ("k = 20", " (20% of the layer)")
    assert q["small_sentence"] == "at small k the top components are better by 5.0 points, as the paper also finds"
    # top - random = 0.5 points with 10,000 test images: within 2 points; random - bottom = 49.5 points
    assert q["verdict"] == "holds" and q["claim4_verdict"] == "holds"
    assert q["claim4_badge"].claim == 4 and q["claim4_badge"].outcome == "holds"
    assert q["claim4_ours"].startswith("top PCs minus random +0.") and "random minus bottom PCs +49." in q["claim4_ours"] and q["claim4_paper"].startswith("no number")
    assert q["claim4_rule"].startswith("Rule:")


@pytest.mark.parametrize("random, bottom, n_test, outcome", [
    ((0.4, 0.75, 0.795, 0.85, 0.9), (0.1, 0.2, 0.3, 0.5, 0.9), 10000, "holds"),
    ((0.4, 0.75, 0.70, 0.85, 0.9), (0.1, 0.2, 0.3, 0.5, 0.9), 10000, "holds partly"),  # top ahead by 10 points
    ((0.4, 0.75, 0.70, 0.85, 0.9), (0.1, 0.2, 0.75, 0.5, 0.9), 10000, "does not hold"),  # and bottom beats random
    ((0.4, 0.75, 0.795, 0.85, 0.9), (0.1, 0.2, 0.78, 0.5, 0.9), 200, "inconclusive"),  # 200 images decide neither
])
def test_claim4_rule_reaches_every_outcome(random, bottom, n_test, outcome):
    q = selectors.quotes(_selector_result(random=random, bottom=bottom, n_test=n_test))
    assert q["claim4_verdict"] == outcome


def test_selector_quotes_late_or_no_crossover_and_small_gap():
    late = selectors.quotes(_selector_result(random=(0.4, 0.79, 0.7, 0.85, 0.9)))
    assert late["cross_k"] == "k = 50"
    assert late["small_sentence"] == "even at small k the top components are only 1.0 points better"
    never = selectors.quotes(_selector_result(random=(0.4, 0.75, 0.7, 0.8, 0.5)))
    assert (never["cross_k"], never["cross_frac"]) == ("never, in the tested range", "")


def test_selector_gap_interval_and_missing_selector():
    r = _selector_result()
    gap, (lo, hi) = selectors.selector_gap(r.curve, 20, "pca_top", "random", 10000)
    assert gap == pytest.approx(0.5, abs=0.2) and lo < gap < hi and hi - lo < 3.0
    gap, iv = selectors.selector_gap(r.curve, 20, "pca_top", "nonexistent", 10000)
    assert np.isnan(gap) and np.isnan(iv[0])


def test_selector_quotes_without_a_selector_gives_nan():
    r = _selector_result()
    r.frames["summary"] = r.summary[r.summary.selector != "pca_bottom"]
    r.frames["curve"] = r.curve[r.curve.selector != "pca_bottom"]
    q = selectors.quotes(r)
    assert np.isnan(q["bottom_small"]) and np.isnan(q["bottom_mid"])
    assert q["claim4_verdict"] == "holds partly"  # the bottom part cannot be decided without its curve


def test_selector_accuracy_table():
    t = selectors.accuracy_table(_selector_result())
    assert t.loc[20, "random"] == 0.795 and list(t.index) == [5, 10, 20, 50, 100]


# --- headline.quotes ---------------------------------------------------------------------

def _curve(dataset, accs, d=100, fractions=(0.1, 0.2, 1.0)) -> pd.DataFrame:
    """accs: per fraction, the accuracies of seeds 1, 2."""
    return pd.DataFrame([{"model": "m", "dataset": dataset, "selector": "random", "fraction": f,
                          "k": int(f * d), "seed": s, "accuracy": a, "duplicate_k": False, "d": d}
                         for f, acc in zip(fractions, accs) for s, a in zip((1, 2), acc)])


def _headline_result(datasets=("zeta", "mnist5k"), dups=()) -> Result:
    curve = pd.concat([_curve("zeta", [(0.5, 0.5), (0.87, 0.85), (0.9, 0.9)]),
                       _curve("mnist5k", [(0.95, 0.95), (0.99, 0.99), (1.0, 1.0)])], ignore_index=True)
    paper_curve = _curve("cifar10", [(0.5, 0.5), (0.8, 0.8), (0.9, 0.9)])
    frames = {"curve": curve, "summary": summarise(curve), "dr": dr_table(curve),
              "paper_dr": pd.DataFrame({"dr_0_9": [0.5, 0.95, 0.7], "provenance": ["P", "D", "P"]})}
    values = {"headline": claim_within(curve[curve.dataset == datasets[0]]),
              "paper_headline": claim_within(paper_curve), "duplicate_fractions": list(dups),
              "n_test": {ds: 10000 for ds in datasets}}
    return Result({"datasets": list(datasets)}, frames, values)


def test_headline_quotes_numbers_and_verdicts():
    q = headline.quotes(_headline_result())
    assert (q["width"], q["h_dataset"], q["h_k"]) == (100, "zeta", 20)
    assert q["h_full"] == pytest.approx(90.0) and q["h_at"] == pytest.approx(86.0)
    assert q["h_gap"] == pytest.approx(4.0) and q["h_std"] == pytest.approx(100 * np.std([0.87, 0.85], ddof=1))
    assert q["h_verdict"] == "holds"  # 4 points <= 5
    assert q["p_full"] == pytest.approx(90.0) and q["p_at"] == pytest.approx(80.0) and q["p_gap"] == pytest.approx(10.0)
    assert q["p_verdict"] == "does not hold"
    assert q["dup_fracs"] == "none"
    assert (q["p_dr_min"], q["p_dr_max"]) == (0.5, 0.7)  # printed rows only
    assert (q["d_dr_min"], q["d_dr_max"]) == (0.95, 0.95)


def test_headline_dr_sentences_follow_the_datasets_parameter():
    # zeta: ratios 0.556, 0.956, 1 -> 0.2 is closest to 0.9 and the first to reach it: DR 0.8;
    # mnist5k: ratios 0.95, 0.99, 1 -> 0.1 is both: DR 0.9
    dr = dr_table(_headline_result().curve).set_index("dataset")
    q = headline.quotes(_headline_result())
    assert q["dr_by_dataset"] == (f"{dr.loc['zeta', 'dr_closest']:.2f} on zeta and "
                                  f"{dr.loc['mnist5k', 'dr_closest']:.2f} on MNIST-5k")
    assert q["drt_by_dataset"] == f"{dr.loc['zeta', 'dr_threshold']:.2f}, {dr.loc['mnist5k', 'dr_threshold']:.2f}"
    assert q["dr_by_dataset"] == "0.80 on zeta and 0.90 on MNIST-5k"
    other = headline.quotes(_headline_result(datasets=("mnist5k", "zeta")))
    assert other["dr_by_dataset"] == "0.90 on MNIST-5k and 0.80 on zeta" and other["h_verdict"] == "holds"


def test_headline_duplicate_fractions_and_listing():
    assert headline.quotes(_headline_result(dups=[0.0005, 0.001]))["dup_fracs"] == "0.0005, 0.001"
    assert headline.listing(["a"]) == "a" and headline.listing(["a", "b", "c"]) == "a, b and c"
    assert headline.dataset_name("fashion_mnist") == "Fashion-MNIST" and headline.dataset_name("/x/y") == "/x/y"


def test_headline_tables():
    r = _headline_result()
    t = headline.accuracy_table(r)
    assert t.loc[(0.2, 20), "zeta"] == 0.86 and set(t.columns) == {"zeta", "mnist5k"}
    assert headline.dr_display(r).equals(r.dr.round(3))


# --- setup.quotes ------------------------------------------------------------------------

def _setup_result(acc_pre=0.8, acc_rand=0.6) -> Result:
    frames = {"predictions": pd.DataFrame({"photo": ["a", "b"], "prediction": ["tabby, tabby cat", "cup"],
                                           "probability": [0.61234, 0.9]}),
              "versus": pd.DataFrame({"model": ["pre", "rand"], "dataset": ["ds", "ds"], "n_train": [300, 300],
                                      "accuracy": [acc_pre, acc_rand]}),
              "datasets": pd.DataFrame({"dataset": ["ds"], "classes": [10]})}
    return Result({"compare_dataset": "ds"}, frames)


def test_setup_quotes():
    q = setup.quotes(_setup_result())
    assert (q["cat_label"], q["cat_p"], q["cmp_n"]) == ("tabby, tabby cat", 0.61234, 300)
    assert q["acc_pre"] == pytest.approx(80.0) and q["acc_rand"] == pytest.approx(60.0)
    assert type(q["cmp_n"]) is int and type(q["acc_pre"]) is float
    assert q["versus_sentence"] == "the pre-trained features carry knowledge a random network's do not"
    assert q["setting_note"].startswith("Here the whole layer of pre on ds reaches 80.0%")
    worse = setup.quotes(_setup_result(acc_pre=0.6, acc_rand=0.6))
    assert worse["versus_sentence"] == "the random network is as good here, which would cast doubt on the weights"
    assert "6.0 times the chance accuracy of 10%" in q["random_sentence"]
    assert setup.predictions_table(_setup_result()).probability.iloc[0] == 0.612


def _claim_result(accs_at_20, full=0.9, n_test=10000, seeds=5) -> Result:
    """One dataset, fractions 0.1, 0.2, 1: accuracy at 0.2 per seed given, 0.1 slightly below."""
    rows = [{"model": "m", "dataset": "zeta", "selector": "random", "fraction": f, "k": int(100 * f), "seed": s,
             "accuracy": a, "duplicate_k": False, "d": 100}
            for s in range(1, seeds + 1)
            for f, a in ((0.1, accs_at_20[s - 1] - 0.02), (0.2, accs_at_20[s - 1]), (1.0, full))]
    curve = pd.DataFrame(rows)
    paper_dr = pd.DataFrame({"dr_0_9": [0.5, 0.9, 0.1], "provenance": ["P", "P", "D"]})
    paper_curve = _curve("cifar10", [(0.5, 0.5), (0.8, 0.8), (0.9, 0.9)])
    return Result({"datasets": ["zeta"]}, {"curve": curve, "paper_dr": paper_dr},
                  {"paper_headline": claim_within(paper_curve), "n_test": {"zeta": n_test}})


@pytest.mark.parametrize("at20, n_test, outcome", [
    ((0.88, 0.879, 0.881, 0.88, 0.88), 10000, "holds"),          # gap 2 points, narrow
    ((0.80, 0.801, 0.799, 0.80, 0.80), 10000, "does not hold"),  # gap 10 points
    ((0.85, 0.851, 0.849, 0.85, 0.85), 300, "inconclusive"),     # gap 5 points on 300 images
])
def test_claim1_rule_reaches_every_outcome(at20, n_test, outcome):
    v = headline.claim_verdicts(_claim_result(at20, n_test=n_test))[1]
    assert v.outcome == outcome and v.rule.startswith("Rule:")
    assert v.interval[0] <= v.statistic <= v.interval[1]


def test_claim3_rule_and_ledger_keys():
    # ratios at 0.1 and 0.2 of 0.96-0.98: DR about 0.9, whole interval above the 0.5 the paper prints at least
    q = headline.claim_quotes(_claim_result((0.88, 0.879, 0.881, 0.88, 0.88)))
    assert q["claim3_verdict"] == "holds" and q["claim3_badge"].claim == 3
    assert q["claim3_paper"] == "0.50 to 0.90 over the 2 rows Table 1 prints"
    assert q["claim1_paper"].startswith("gap 10.0 points") and q["claim1_ours"].startswith("gap 2.0 points")
    # a curve that needs all neurons for 90%: DR 0, below 0.5 -> does not hold
    low = headline.claim_verdicts(_claim_result((0.5, 0.5, 0.5, 0.5, 0.5)))[3]
    assert low.outcome == "does not hold"
    # across datasets: one holds, one does not -> partly
    from diffred import verdicts
    parts = {"a": verdicts.Verdict("holds", 0.9, ""), "b": verdicts.Verdict("does not hold", 0.1, "")}
    assert verdicts.across(parts).outcome == "holds partly"

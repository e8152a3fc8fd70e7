"""Claims 8-10: what pre-training does to redundancy, on models the project trains itself
(adversarial training, dropout, DeCov, Matryoshka, width, upstream data, CNN against ViT).

:func:`run` computes chapter 11's frames; one function per table; :func:`quotes` gives every
number and word the chapter quotes. The rules behind the verdicts are :func:`compare_variants`,
:func:`verdict` and :func:`width_trend`, with the constants below."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..config import RunConfig
from ..curves import redundancy, scale_note, subset_curve, summarise
from ..zoo import read_card, zoo_names
from . import Result
from .similarity import cka_curves
from .variants import ROBUST_GAIN, checks as upstream_checks, neuron_quotes, neuron_table, rules_sentence, upstream_study

# (glue key, claim, variant, reference, the paper's sign of variant minus reference)
CLAIMS = [("adv", "adversarial training: more DR", "cnn_adv", "cnn_ce", +1),
          ("mrl", "Matryoshka: less DR", "cnn_mrl", "cnn_ce", -1),
          ("up", "more upstream data: more DR", "cnn_ce", "cnn_up10", +1)]
WIDTH_CLAIM = "wider layer: more DR"
WIDTH_VARIANTS = r"cnn_(w\d+|ce)$"  # the width study: the width variants and the reference
REGULARISER_VARIANTS = r"cnn_(dropout\d+|decov|ce)$"
DROPOUT_ORDER = ["cnn_ce", "cnn_dropout10", "cnn_dropout30", "cnn_dropout50", "cnn_dropout80"]
FIRST_K_PREFIXES = ("cnn_mrl", "cnn_ce")  # the models also probed on their first-k neurons
FIRST_K_FRACTIONS = [0.005, 0.01, 0.05, 0.1]
AT_FRACTION = 0.2  # the fraction at which the CNN and the ViT are compared
CKA_FRACTION = 0.1
CONFOUND_RHO = 0.5  # width is confounded when full-layer accuracy rises with width at least this strongly


def zoo_cards(names) -> pd.DataFrame:
    """One row per zoo model: variant, training seed, upstream and robust accuracy, time."""
    rows = []
    for n in names:
        c = read_card(n)
        cfg = c["config"]
        rows.append({"model": n, "variant": cfg["variant"], "train_seed": cfg["seed"], "arch": cfg["arch"],
                     "width": cfg["width"], "loss": cfg["loss"], "dropout": cfg["dropout"],
                     "upstream_fraction": cfg["upstream_fraction"], "upstream_accuracy": c["upstream_accuracy"],
                     "robust_accuracy": c["robust_accuracy"], "train_seconds": c["train_seconds"],
                     "parameters": c["parameters"]})
    return pd.DataFrame(rows)


def compare_variants(table: pd.DataFrame, variant: str, reference: str, metric: str = "ratio_small",
                     direction: int = 1) -> pd.DataFrame:
    """``variant`` against ``reference`` per dataset, across training seeds: the mean of
    ``metric`` for each, the difference, and the seed spread (the larger of the two standard
    deviations, or 0 with one seed). Per dataset: 'as the paper' when the difference has
    the expected sign (``direction``) and exceeds the spread, 'opposite' when it is beyond
    the spread the other way, else 'within seed spread'."""
    rows = []
    for ds, g in table.groupby("dataset"):
        a, b = g[g.variant == variant][metric], g[g.variant == reference][metric]
        if a.empty or b.empty:
            continue
        spread = float(np.nanmax([a.std(ddof=1) if len(a) > 1 else 0.0, b.std(ddof=1) if len(b) > 1 else 0.0]))
        diff = float(a.mean() - b.mean())
        call = ("as the paper" if direction * diff > spread else
                "opposite" if direction * diff < -spread else "within seed spread")
        rows.append({"dataset": ds, "variant": variant, "reference": reference, "metric": metric,
                     "variant_mean": float(a.mean()), "reference_mean": float(b.mean()), "difference": diff,
                     "seed_spread": spread, "n_seeds": f"{len(a)} vs {len(b)}", "call": call})
    return pd.DataFrame(rows)


def verdict(calls: pd.Series) -> str:
    """One word for a claim from its per-dataset calls."""
    calls = list(calls)
    if not calls:
        return "not tested"
    agree, against = calls.count("as the paper"), calls.count("opposite")
    if agree > len(calls) / 2 and against == 0:
        return "holds"
    if against > len(calls) / 2:
        return "does not hold (the opposite is seen)"
    return "inconclusive (within the spread across training seeds)"


def width_trend(table: pd.DataFrame, metric: str = "ratio_small") -> pd.DataFrame:
    """Spearman correlation of ``metric`` with the penultimate width, per dataset (means over
    training seeds per width)."""
    rows = []
    for ds, g in table.groupby("dataset"):
        m = g.groupby("width")[metric].mean()
        rho = float(spearmanr(m.index, m.to_numpy()).statistic) if len(m) > 2 else float("nan")
        rows.append({"dataset": ds, "widths": ", ".join(str(int(w)) for w in m.index), "spearman": rho,
                     "call": "as the paper" if rho > 0.5 else "opposite" if rho < -0.5 else "within seed spread"})
    return pd.DataFrame(rows)


def pretraining_study(models, datasets, first_for=(), cka_dataset: str | None = None,
                      n_cka: int = 1000, **overrides) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Subset curves of every zoo model on every dataset, the redundancy table of the random
    subsets joined with the model cards, and CKA of random subsets on ``cka_dataset``.
    Models in ``first_for`` are also probed on their first-k neurons, in the same probe run
    (rows with ``selector == "first"``)."""
    cards = zoo_cards(models)
    frames = []
    for m in models:
        for ds in datasets:
            cfg = RunConfig(model=m, dataset=ds, image_size=None, **overrides).scaled()
            frames.append(subset_curve(cfg, selector=["random", "first"] if m in first_for else "random"))
    curves = pd.concat(frames, ignore_index=True)
    table = redundancy(curves[curves.selector == "random"]).merge(cards, on="model")
    cka = pd.DataFrame()
    if cka_dataset:
        cka = pd.concat([cka_curves(RunConfig(model=m, dataset=cka_dataset, image_size=None, **overrides).scaled(),
                                    n_cka) for m in models], ignore_index=True).merge(
            cards[["model", "variant", "train_seed"]], on="model")
    return curves, table, cka


def run(models, datasets, n_train, n_test, fractions, seeds, cka_dataset) -> Result:
    """Chapter 11: every zoo model (``models=None``: all of ``data/models/``) on every
    downstream task, the seed-aware checks of the paper's directions and the tables behind
    them."""
    params = dict(models=models, datasets=datasets, n_train=n_train, n_test=n_test, fractions=fractions,
                  seeds=seeds, cka_dataset=cka_dataset)
    models = list(models or zoo_names())
    curves, table, cka = pretraining_study(
        models, datasets, first_for=[m for m in models if m.startswith(FIRST_K_PREFIXES)],
        cka_dataset=cka_dataset, n_train=n_train, n_test=n_test, fractions=fractions, seeds=seeds)
    cards = zoo_cards(models)
    adv = cards[cards.variant == "cnn_adv"]
    epsilon = float(read_card(adv.model.iloc[0])["config"]["epsilon"]) if len(adv) else float("nan")
    result = assemble(params, curves, table, cka, cards, epsilon)
    result.frames.update(zip(("neurons", "drops", "nested"), upstream_study(models)))
    return result


def assemble(params: dict, curves: pd.DataFrame, table: pd.DataFrame, cka: pd.DataFrame, cards: pd.DataFrame,
             epsilon: float) -> Result:
    """The chapter's frames from the study's curves (random and first-k selectors), its
    redundancy table (joined with the ``cards``) and its CKA frame."""
    variants = cards[["model", "variant"]]
    random = curves[curves.selector == "random"]
    probed_first = curves[curves.model.isin(curves[curves.selector == "first"].model.unique())]
    first_k = summarise(probed_first.merge(variants, on="model"), by=("variant", "dataset", "selector"))
    width_table = table[table.variant.str.match(WIDTH_VARIANTS)]
    checks = pd.concat([compare_variants(table, v, ref, direction=sign).assign(claim=claim)
                        for _, claim, v, ref, sign in CLAIMS], ignore_index=True)
    frames = {"curves": curves, "table": table, "cka": cka, "cards": cards, "width_table": width_table,
              "summary": summarise(random.merge(variants, on="model"), by=("variant", "dataset")),
              "per_variant": per_variant(table), "checks": checks, "widths": width_trend(width_table),
              "small_k": first_k[first_k.fraction.isin(FIRST_K_FRACTIONS)],
              "vit": compare_variants(table, "vit", "cnn_ce", direction=+1)}
    return Result(params, frames, {"models": list(cards.model), "epsilon": epsilon})


def per_variant(table: pd.DataFrame) -> pd.DataFrame:
    """Means over training seeds per variant and task (``ratio_small`` also its std)."""
    return (table.groupby(["variant", "dataset"])
            .agg(ratio_small=("ratio_small", "mean"), ratio_small_std=("ratio_small", "std"),
                 dr_0_9=("dr_closest", "mean"), full_accuracy=("full_accuracy", "mean"),
                 train_seeds=("train_seed", "nunique")).reset_index())


def variant_checks(result: Result) -> pd.DataFrame:
    """Did each trained variant do what its training was meant to do, on its upstream task,
    before a claim compares it? The rules are :mod:`.variants`'s; a variant missing from the
    run, or a run without the upstream study, is left out."""
    f = result.frames
    return upstream_checks(result.cards, f.get("neurons"), f.get("drops"), f.get("nested"))


def width_confound(width_table: pd.DataFrame) -> pd.DataFrame:
    """Per task, the Spearman correlation of the full layer's accuracy with the width: when it
    is at least :data:`CONFOUND_RHO`, a wider layer is also a better one, and a DR trend with
    width cannot be told apart from an accuracy trend."""
    rows = []
    for ds, g in width_table.groupby("dataset"):
        m = g.groupby("width").full_accuracy.mean()
        rho = float(spearmanr(m.index, m.to_numpy()).statistic) if len(m) > 2 and m.nunique() > 1 else float("nan")
        rows.append({"dataset": ds, "rho_full": rho, "confounded": bool(rho >= CONFOUND_RHO)})
    return pd.DataFrame(rows, columns=["dataset", "rho_full", "confounded"])


def verdicts(result: Result) -> dict:
    """A verdict word per claim (:data:`CLAIMS` and :data:`WIDTH_CLAIM`). A claim whose
    variant failed its own training check (:func:`variant_checks`) is inconclusive, and so is
    the width claim when full-layer accuracy rises with width on most tasks (:func:`width_confound`)."""
    checks, vc = result.checks, variant_checks(result)
    failed = set(vc[~vc.passed.astype(bool)].variant)
    out = {}
    for _, claim, variant, *_ in CLAIMS:
        out[claim] = ("inconclusive (the variant failed its own training check)" if variant in failed else
                      verdict(checks[checks.claim == claim].call if len(checks) else []))
    conf = width_confound(result.width_table) if len(result.width_table) else pd.DataFrame(columns=["confounded"])
    out[WIDTH_CLAIM] = ("inconclusive (confounded: the full layer's accuracy rises with width too)"
                        if len(conf) and conf.confounded.mean() > 0.5 else
                        verdict(result.widths.call if len(result.widths) else []))
    return out


def checks_display(result: Result) -> pd.DataFrame:
    """:func:`variant_checks` as the chapter shows it (yes/no)."""
    vc = variant_checks(result)
    return vc.assign(passed=vc.passed.map({True: "yes", False: "no"})).set_index("variant")


def neurons_display(result: Result) -> pd.DataFrame:
    """Dead and constant neurons and the penultimate covariance per zoo model (:mod:`.variants`)."""
    return neuron_table(result.neurons)


def cards_table(result: Result) -> pd.DataFrame:
    """The model cards, accuracies in percent."""
    c = result.cards
    return c.assign(upstream_accuracy=(100 * c.upstream_accuracy).round(2),
                    robust_accuracy=(100 * c.robust_accuracy).round(2)).set_index("model")


def redundancy_table(result: Result) -> pd.DataFrame:
    """``ratio_small`` and DR(0.9) per variant and task, means over training seeds."""
    return result.per_variant.pivot_table(index="variant", columns="dataset",
                                          values=["ratio_small", "dr_0_9"]).round(3)


def checks_table(result: Result) -> pd.DataFrame:
    """Every per-task call behind the verdicts (for the width, the Spearman rho in 'difference')."""
    cols = ["claim", "dataset", "variant", "reference", "variant_mean", "reference_mean", "difference", "seed_spread",
            "n_seeds", "call"]
    widths = result.widths.assign(claim=f"{WIDTH_CLAIM} (Spearman rho in 'difference')")
    return pd.concat([result.checks[cols], widths.rename(columns={"spearman": "difference"})[
        ["claim", "dataset", "difference", "call"]]], ignore_index=True).round(4).rename(
        columns={"variant": "tested", "reference": "compared with"})


def first_k_table(result: Result) -> pd.DataFrame:
    """Mean accuracy of the first k neurons and of k random ones at small k."""
    return result.small_k.pivot_table(index=["dataset", "fraction", "k"], columns=["variant", "selector"],
                                      values="acc_mean").round(3)


def regulariser_ratios(result: Result) -> pd.DataFrame:
    """``ratio_small`` per regulariser variant (dropout rates, DeCov, the reference) and task."""
    reg = result.per_variant[result.per_variant.variant.str.match(REGULARISER_VARIANTS)]
    return reg.pivot_table(index="variant", columns="dataset", values="ratio_small")


def regulariser_table(result: Result) -> pd.DataFrame:
    return regulariser_ratios(result).round(3)


def cka_table(result: Result) -> pd.DataFrame:
    """Mean CKA per variant and comparison at :data:`CKA_FRACTION`."""
    c = result.cka
    if c.empty:  # no cka_dataset
        return pd.DataFrame()
    return c[np.isclose(c.fraction, CKA_FRACTION)].groupby(["variant", "comparison"]).cka.mean().unstack().round(3)


def _differences(checks: pd.DataFrame) -> str:
    return ", ".join(f"{r.dataset} {r.difference:+.3f} (spread {r.seed_spread:.3f})" for r in checks.itertuples())


def _first_gain(small_k: pd.DataFrame, variant: str) -> float:
    g = small_k[small_k.variant == variant].pivot_table(index=["dataset", "fraction"], columns="selector",
                                                        values="acc_mean")
    return 100 * float((g["first"] - g["random"]).mean()) if {"first", "random"} <= set(g.columns) else float("nan")


def _at_fraction(result: Result, variant: str) -> str:
    s = result.summary
    at = s[np.isclose(s.fraction, AT_FRACTION)].set_index(["variant", "dataset"]).ratio
    return ", ".join(f"{ds} {100 * at[(variant, ds)]:.0f}%" if (variant, ds) in at.index else f"{ds} not measured"
                     for ds in result.params["datasets"])


def _adversarial_quotes(result: Result) -> dict:
    cards = result.cards
    adv, ref = cards[cards.variant == "cnn_adv"], cards[cards.variant == "cnn_ce"]
    worked = adv.robust_accuracy.mean() > ref.robust_accuracy.mean() + ROBUST_GAIN
    return {"eps": result.epsilon, "rob_adv": 100 * float(adv.robust_accuracy.mean()),
            "rob_ref": 100 * float(ref.robust_accuracy.mean()),
            "clean_adv": 100 * float(adv.upstream_accuracy.mean()),
            "clean_ref": 100 * float(ref.upstream_accuracy.mean()),
            "adv_worked": "so the adversarial training worked" if worked else
            "which is not the gain adversarial training should give; read its row below with care"}


def _regulariser_quotes(result: Result) -> dict:
    rs = regulariser_ratios(result)
    order = [v for v in DROPOUT_ORDER if v in rs.index]
    rho = (rs.loc[order].mean(axis=1).rank().corr(pd.Series(range(len(order)), index=order).rank())
           if len(order) > 2 else float("nan"))
    decov = (float((rs.loc["cnn_decov"] - rs.loc["cnn_ce"]).mean())
             if {"cnn_decov", "cnn_ce"} <= set(rs.index) else float("nan"))
    return {"drop_rho": float(rho), "decov_diff": decov}


def _cka_quotes(result: Result) -> dict:
    c = result.cka
    c10 = (c[np.isclose(c.fraction, CKA_FRACTION) & (c.comparison == "subset vs subset")].groupby("variant").cka.mean()
           if len(c) else pd.Series(dtype=float))
    higher = c10.get("cnn_adv", 0) > c10.get("cnn_ce", 0)
    return {"cka_adv": float(c10.get("cnn_adv", np.nan)), "cka_ref": float(c10.get("cnn_ce", np.nan)),
            "cka_word": "higher, as the paper reports for its robust models" if higher
            else "not higher, unlike the paper's robust models"}


def quotes(result: Result) -> dict:
    """Every number and word chapter 11 quotes; a variant missing from a re-run gives NaN,
    'not tested' or 'not measured' instead of an error."""
    out = {"scale_note": scale_note(), "n_models": len(result.models),
           "n_variants": int(result.cards.variant.nunique())}
    out.update(_adversarial_quotes(result))
    words = verdicts(result)
    checks = result.checks
    for key, claim, *_ in CLAIMS:
        out[f"v_{key}"] = words[claim]
        out[f"d_{key}"] = _differences(checks[checks.claim == claim] if len(checks) else checks)
    out["v_width"] = words[WIDTH_CLAIM]
    out["rho_width"] = ", ".join(f"{r.dataset} {r.spearman:+.2f}" for r in result.widths.itertuples())
    out.update(_check_quotes(result))
    out.update(neuron_quotes(result.frames.get("neurons", pd.DataFrame()),
                             result.frames.get("nested", pd.DataFrame())))
    out["checks_rules"] = rules_sentence()
    out["mrl_first_gain"] = _first_gain(result.small_k, "cnn_mrl")
    out["ce_first_gain"] = _first_gain(result.small_k, "cnn_ce")
    out.update(_regulariser_quotes(result))
    out["vit_diff"] = _differences(result.vit)
    out["cnn_at20"], out["vit_at20"] = _at_fraction(result, "cnn_ce"), _at_fraction(result, "vit")
    out.update(_cka_quotes(result))
    return out


def _check_quotes(result: Result) -> dict:
    """The variant checks, the width confound and how coarse DR(0.9) is, as sentences."""
    vc = variant_checks(result)
    failed = list(vc[~vc.passed.astype(bool)].variant)
    conf = width_confound(result.width_table) if len(result.width_table) else pd.DataFrame(columns=["rho_full"])
    dr = result.per_variant.dr_0_9.round(3)
    return {"checks_sentence": _failed_sentence(failed),
            "rho_full_width": ", ".join(f"{r.dataset} {r.rho_full:+.2f}" for r in conf.itertuples()) or "not measured",
            "dr_levels": int(dr.nunique()), "dr_rows": int(len(dr)),
            "dr_levels_list": ", ".join(f"{v:.2f}" for v in sorted(dr.unique()))}


def _failed_sentence(failed: list) -> str:
    """Which variants failed their check, and what that does to the claims resting on them."""
    if not failed:
        return "every checked variant did what its training was meant to do"
    used = {v for _, _, v, ref, _ in CLAIMS} | {ref for *_, ref, _ in CLAIMS}
    names = ", ".join(failed[:-1]) + (" and " if len(failed) > 1 else "") + failed[-1]
    out = f"{names} did not do what {'their' if len(failed) > 1 else 'its'} training was meant to do"
    claimed = [v for v in failed if v in used]
    if claimed:
        out += f"; the claims that rest on {', '.join(claimed)} are reported as inconclusive, not compared"
    rest = [v for v in failed if v not in used]
    if rest:
        out += f"; no claim rests on {', '.join(rest)}, whose rows are shown for reading only"
    return out

"""Claim 11: random subsets of the network's inner layers, not only the penultimate one.

:func:`run` probes every stage of two networks (the chapter's ``model`` and ``zoo_model``);
:func:`quotes` gives every number and word chapter 12 quotes, with the verdict rule
(:func:`stage_rule`: each stage held to the standard claim 3 applies to the penultimate
layer, DR(0.9) read off its curve at least the smallest DR the paper's Table 1 prints).
``ratio_small`` (:data:`STAGE_RATIO`) stays as a description of how much a stage keeps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import paper, verdicts
from ..config import RunConfig
from ..curves import SMALL_FRACTIONS, redundancy, scale_note, subset_curve
from ..features import prefetch_layers
from ..metrics import dr_bootstrap
from ..models import layer_names
from . import Result
from .setting import note_for
from .headline import claim3_rule, test_size

STAGE_RATIO = 0.9  # described, not judged: how many stages keep 90% of their accuracy at 1-20%
N_BOOT = 2000


def stage_rule(paper_table: pd.DataFrame | None = None) -> verdicts.Rule:
    """Claim 11, per intermediate stage (then across the stages of a network, then across
    networks): claim 3's rule, the stage's DR(0.9) read off its random-subset curve at least
    the smallest DR the paper's Table 1 prints, so a stage is held to the standard the
    penultimate layer is held to."""
    table = paper.load("diffused_redundancy_table") if paper_table is None else paper_table
    r = claim3_rule(table)
    return verdicts.within_rule("diffused redundancy beyond the penultimate layer",
                                "a stage's DR(0.9) (read off its random-subset curve by interpolation, as claim 3 "
                                "reads the penultimate layer's)", r.constants["threshold"], "at least")
TABLE_COLUMNS = ["model", "layer", "width", "full_accuracy", "ratio_small", "dr_closest", "dr_threshold"]


def layer_table(curves: pd.DataFrame, layers, model: str) -> pd.DataFrame:
    """The per-layer table of ``curves`` (subset curves with a ``layer`` and a ``d`` column,
    one curve per layer): width, full-layer accuracy and DR per layer, in the order of
    ``layers`` (``depth`` is the position in it), for ``model``."""
    table = redundancy(curves.assign(model=curves.layer))  # one group per layer
    table = table.rename(columns={"model": "layer"}).assign(model=model)
    table["depth"] = table.layer.map({layer: i for i, layer in enumerate(layers)})
    table["width"] = table.layer.map(curves.groupby("layer").d.first())
    return table.sort_values("depth").reset_index(drop=True)


def layer_study(model: str, dataset: str, layers=None, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random-subset curves on each layer of ``model`` (default: every stage, then the
    penultimate layer); returns the curves and a per-layer table (width, full accuracy, DR)."""
    layers = list(layers or layer_names(model))
    prefetch_layers(RunConfig(model=model, dataset=dataset, **overrides).scaled(), layers)  # one pass, all layers
    frames = []
    for depth, layer in enumerate(layers):
        cfg = RunConfig(model=model, dataset=dataset, layer=layer, **overrides).scaled()
        frames.append(subset_curve(cfg).assign(layer=layer, depth=depth))
    curves = pd.concat(frames, ignore_index=True)
    return curves, layer_table(curves, layers, model)


def run(model: str, dataset: str, image_size, zoo_model: str, zoo_dataset: str, n_train, n_test,
        fractions, seeds) -> Result:
    """Chapter 12: the layer study of ``model`` on ``dataset`` (at ``image_size``) and of the
    zoo model ``zoo_model`` on ``zoo_dataset`` (at its native size)."""
    params = dict(model=model, dataset=dataset, image_size=image_size, zoo_model=zoo_model,
                  zoo_dataset=zoo_dataset, n_train=n_train, n_test=n_test, fractions=fractions, seeds=seeds)
    settings = dict(n_train=n_train, n_test=n_test, fractions=fractions, seeds=seeds)
    model_curves, model_table = layer_study(model, dataset, image_size=image_size, **settings)
    zoo_curves, zoo_table = layer_study(zoo_model, zoo_dataset, image_size=None, **settings)
    frames = {"model_curves": model_curves, "model_layers": model_table, "zoo_curves": zoo_curves,
              "zoo_layers": zoo_table, "tables": pd.concat([model_table, zoo_table], ignore_index=True)}
    return Result(params, frames)


def table(result: Result) -> pd.DataFrame:
    """The chapter's per-layer table, both networks."""
    return result.tables[TABLE_COLUMNS].round(3)


def describe(t: pd.DataFrame) -> dict:
    """What the prose says of one network's per-layer table ``t`` (its stages and a row
    ``layer == "penultimate"``): the penultimate layer's ratio, DR and accuracy, the stages'
    range of ``ratio_small``, the best stage, the first stage's accuracy, and how many stages
    match or exceed the penultimate layer."""
    pen = t[t.layer == "penultimate"].iloc[0]
    mid = t[t.layer != "penultimate"]
    best = mid.loc[mid.ratio_small.idxmax()]
    above = int((mid.ratio_small >= pen.ratio_small).sum())
    return {"pen_ratio": float(pen.ratio_small), "pen_dr": float(pen.dr_closest),
            "mid_min": float(mid.ratio_small.min()), "mid_max": float(mid.ratio_small.max()),
            "best_layer": str(best.layer), "first_acc": 100 * float(mid.full_accuracy.iloc[0]),
            "pen_acc": 100 * float(pen.full_accuracy),
            "above": f"{above} of its {len(mid)} stages" if above else f"none of its {len(mid)} stages",
            "n_stages": int(len(mid))}


def network_verdict(curves: pd.DataFrame, n_test: int, rule: verdicts.Rule | None = None) -> verdicts.Verdict:
    """:func:`stage_rule` on every intermediate stage of one network (DR with its bootstrap
    interval over subset seeds and test images), combined by :func:`verdicts.across` (no
    maximum over stages: every stage counts)."""
    rule, parts = rule or stage_rule(), {}
    for layer, rows in curves[curves.layer != "penultimate"].groupby("layer", sort=False):
        b = dr_bootstrap(rows, n_boot=N_BOOT, n_test=n_test)
        parts[str(layer)] = rule.judge(b["dr"], (b["low"], b["high"]), n=b["n_seeds"])
    return verdicts.across(parts, what="stages")


def claim_verdict(result: Result) -> verdicts.Verdict:
    """Claim 11: :func:`network_verdict` of each network, combined across the two."""
    p = result.params
    nets = {p["model"]: network_verdict(result.model_curves, test_size(p["dataset"], p["n_test"])),
            p["zoo_model"]: network_verdict(result.zoo_curves, test_size(p["zoo_dataset"], p["n_test"]))}
    v = verdicts.across(nets, what="networks")
    rule = (f"{stage_rule().statement} {verdicts.ACROSS_STATEMENT.format(what='stages of a network')} "
            f"{verdicts.ACROSS_STATEMENT.format(what='two networks')}")
    return dataclasses.replace(v, rule=rule)


def fmt_threshold() -> str:
    return f"{stage_rule().constants['threshold']:.2f}"


def claim_quotes(result: Result) -> dict:
    """The ledger keys of claim 11 and the per-network verdicts."""
    v = claim_verdict(result)
    out = {"claim11_badge": v.badge(11), **v.quotes("claim11"),
           "claim11_paper": "no number in the paper's released data (data/paper/ has the penultimate layer only)"}
    ours = []
    for (name, net), key in zip(v.parts.items(), ("model", "zoo")):
        kept = sum(p.outcome == verdicts.HOLDS for p in net.parts.values())
        ours.append(f"{name}: {kept} of {len(net.parts)} stages with DR(0.9) at least {fmt_threshold()}")
        out[f"{key}_net_verdict"], out[f"{key}_net_reason"] = net.outcome, net.reason
    out["claim11_ours"] = "; ".join(ours)
    return out


def quotes(result: Result) -> dict:
    """Every number and word chapter 12 quotes: ``model_*`` for the chapter's ``model``,
    ``zoo_*`` for its ``zoo_model``, the depth trend of the first and the verdict."""
    out = {"scale_note": scale_note()}
    for key, t in (("model", result.model_layers), ("zoo", result.zoo_layers)):
        out.update({f"{key}_{name}": value for name, value in describe(t).items()})
    mid = result.model_layers[result.model_layers.layer != "penultimate"]
    out["model_trend"] = float(mid.ratio_small.corr(mid.depth, method="spearman"))
    out["verdict_ratio"] = 100 * STAGE_RATIO
    out["weaker_sentence"] = weaker_sentence(result.tables)
    p = result.params
    out["setting_note"] = note_for(p["model"], p["dataset"], out["model_pen_acc"] / 100, n_train=p.get("n_train"),
                                   n_test=p.get("n_test"), image_size=p.get("image_size", 112))
    out.update(claim_quotes(result))
    return out


def weaker_sentence(tables: pd.DataFrame) -> str:
    """Whether the stages' whole-layer accuracy is below the penultimate layer's, counted."""
    rows = []
    for _, t in tables.groupby("model"):
        pen = float(t[t.layer == "penultimate"].full_accuracy.iloc[0])
        mid = t[t.layer != "penultimate"]
        rows.append((int((mid.full_accuracy < pen).sum()), len(mid)))
    lower, total = sum(r[0] for r in rows), sum(r[1] for r in rows)
    if lower == total:
        return "every stage's whole-layer accuracy is below the penultimate layer's, so a high ratio there is a ratio to a weaker baseline"
    return (f"{lower} of the {total} stages have a lower whole-layer accuracy than the penultimate layer; "
            "for those, a high ratio is a ratio to a weaker baseline")

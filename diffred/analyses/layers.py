"""Claim 11: random subsets of the network's inner layers, not only the penultimate one.

:func:`run` probes every stage of two networks (the chapter's ``model`` and ``zoo_model``);
:func:`quotes` gives every number and word chapter 12 quotes, with the verdict rule
(:data:`STAGE_RATIO`)."""

from __future__ import annotations

import pandas as pd

from ..config import RunConfig
from ..curves import redundancy, scale_note, subset_curve
from ..models import load_encoder, probe_layers
from . import Result

STAGE_RATIO = 0.9  # "holds": in both networks some intermediate stage keeps this share at 1-20%
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
    layers = list(layers or probe_layers(load_encoder(model).model))
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


def stage_verdict(*tables: pd.DataFrame) -> str:
    """'holds' when in every table some intermediate stage reaches :data:`STAGE_RATIO`."""
    best = min(t[t.layer != "penultimate"].ratio_small.max() for t in tables)
    return "holds" if best >= STAGE_RATIO else "holds only partly"


def quotes(result: Result) -> dict:
    """Every number and word chapter 12 quotes: ``model_*`` for the chapter's ``model``,
    ``zoo_*`` for its ``zoo_model``, the depth trend of the first and the verdict."""
    out = {"scale_note": scale_note()}
    for key, t in (("model", result.model_layers), ("zoo", result.zoo_layers)):
        out.update({f"{key}_{name}": value for name, value in describe(t).items()})
    mid = result.model_layers[result.model_layers.layer != "penultimate"]
    out["model_trend"] = float(mid.ratio_small.corr(mid.depth, method="spearman"))
    out["verdict"] = stage_verdict(result.model_layers, result.zoo_layers)
    out["verdict_ratio"] = 100 * STAGE_RATIO
    return out

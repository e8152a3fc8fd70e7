"""Claim 11: random subsets of the network's inner layers, not only the penultimate one."""

from __future__ import annotations

import pandas as pd

from ..config import RunConfig
from ..curves import redundancy, subset_curve
from ..models import load_encoder, probe_layers


def layer_study(model: str, dataset: str, layers=None, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random-subset curves on each layer of ``model`` (default: every stage, then the
    penultimate layer); returns the curves and a per-layer table (width, full accuracy, DR)."""
    layers = list(layers or probe_layers(load_encoder(model).model))
    frames = []
    for depth, layer in enumerate(layers):
        cfg = RunConfig(model=model, dataset=dataset, layer=layer, **overrides).scaled()
        frames.append(subset_curve(cfg).assign(layer=layer, depth=depth))
    curves = pd.concat(frames, ignore_index=True)
    table = redundancy(curves.assign(model=curves.layer))  # one group per layer
    table = table.rename(columns={"model": "layer"}).assign(model=model)
    table["depth"] = table.layer.map({layer: i for i, layer in enumerate(layers)})
    table["width"] = table.layer.map(curves.groupby("layer").d.first())
    return curves, table.sort_values("depth").reset_index(drop=True)

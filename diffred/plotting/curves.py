"""Figures of curves: accuracy (or its ratio to the full layer, or CKA) against the fraction
of neurons kept, and the per-width and per-layer summaries. Legends go below the panels
(:func:`.layout.legend_below`) or under each panel when its entries are its own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from .layout import MAX_COLUMNS, PALETTE, legend_below, legends_under, panels, short, take_legend

FRACTION_LABEL = "fraction of penultimate neurons (log scale)"


def subset_curves(summary: pd.DataFrame, paper: pd.DataFrame | None = None, delta: float = 0.9, ax=None):
    """Paper Fig. 1: (a) probe accuracy vs fraction of random neurons, mean ± std over
    subset seeds, the full layer dashed; (b) the same as a ratio to the full layer, with
    the paper's ResNet50 curves (dotted, grey shades) for comparison. The panels are stacked
    (each the column's width) over one legend for both."""
    fig, (a, b) = panels(2, ax, columns=1, row_in=3.2)
    labels = [f"{short(m)} / {short(d)}" for m, d in zip(summary.model, summary.dataset)]
    s = summary.assign(series=labels)
    colors = dict(zip(s.series.unique(), sns.color_palette(PALETTE, s.series.nunique())))
    for name, g in s.groupby("series", sort=False):
        g = g.sort_values("fraction")
        c = colors[name]
        a.plot(g.fraction, g.acc_mean, marker="o", ms=3, color=c, label=name)
        sd = g.acc_std.fillna(0)
        a.fill_between(g.fraction, g.acc_mean - sd, g.acc_mean + sd, color=c, alpha=0.2, lw=0)
        a.axhline(g.full.iloc[0], color=c, ls="--", lw=0.8)
        b.plot(g.fraction, g.ratio, marker="o", ms=3, color=c, label=f"ours: {name}")
    if paper is not None and not paper.empty:
        greys = sns.color_palette("Greys", paper.dataset.nunique() + 2)[2:]
        for (ds, g), c in zip(paper.groupby("dataset"), greys):
            g = g.sort_values("fraction")
            full = float(g[g.fraction == 1.0].accuracy.iloc[0])
            b.plot(g.fraction, g.accuracy / full, ls=":", marker="s", ms=2.5, color=c,
                   label=f"paper: resnet50 / {ds}")
    for axis in (a, b):
        axis.set_xscale("log")
        axis.set_xlabel(FRACTION_LABEL)
    a.set_ylabel("test accuracy of the linear probe")
    a.set_title("(a) accuracy, mean ± std over subset seeds; dashed: full layer")
    b.axhline(delta, color="k", lw=0.8, ls="-.")
    b.axvline(0.2, color="k", lw=0.6, ls=":")
    b.set_ylabel("accuracy / full-layer accuracy")
    b.set_title(f"(b) ratio to the full layer; dash-dot: δ = {delta}")
    legend_below(fig, *b.get_legend_handles_labels(), axes=(a, b))
    return fig


def accuracy_gap(gaps: pd.DataFrame, ax=None):
    """Per fraction: each method's mean accuracy minus scikit-learn's, in points."""
    fig, (axis,) = panels(1, ax, row_in=3.4)
    sns.lineplot(gaps, x="fraction", y="gap_points", hue="method", marker="o", ax=axis)
    axis.axhspan(-0.5, 0.5, color="0.9", zorder=0)
    axis.axhline(0, color="k", lw=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("fraction of penultimate neurons (log scale)")
    axis.set_ylabel("accuracy − scikit-learn's (points)")
    legend_below(fig, *take_legend(axis), axes=[axis])
    return fig


SELECTOR_LABELS = {"random": "random neurons", "pca_top": "top principal components",
                   "pca_bottom": "bottom principal components",
                   "projection_gaussian": "Gaussian random projection",
                   "projection_authors": "authors' positive random projection", "first": "first-k neurons"}


def selector_curves(summary: pd.DataFrame, ax=None):
    """Paper claim 4: accuracy vs k for random neurons, principal components and random
    projections (mean ± std over seeds where the selector is random)."""
    fig, (axis,) = panels(1, ax, row_in=3.6)
    for sel, g in summary.groupby("selector", sort=False):
        g = g.sort_values("k")
        line, = axis.plot(g.k, g.acc_mean, marker="o", ms=3, label=SELECTOR_LABELS.get(sel, sel))
        sd = g.acc_std.fillna(0)
        axis.fill_between(g.k, g.acc_mean - sd, g.acc_mean + sd, color=line.get_color(), alpha=0.2, lw=0)
    axis.set_xscale("log")
    axis.set_xlabel("k, dimensions the probe sees (log scale)")
    axis.set_ylabel("test accuracy of the linear probe")
    legend_below(fig, *axis.get_legend_handles_labels(), axes=[axis])
    return fig


def cka_curves(ours: pd.DataFrame, paper: pd.DataFrame | None = None, ax=None):
    """Paper claim 5: linear CKA between random subsets (and with the whole layer) against
    the fraction kept; ours per model, the paper's ResNet50 numbers dotted."""
    fig, (axis,) = panels(1, ax, row_in=5.4)
    sns.lineplot(ours, x="fraction", y="cka", hue="model", style="comparison", marker="o",
                 errorbar="sd", ax=axis)
    if paper is not None and not paper.empty:
        for (pre, ds), g in paper.groupby(["pretraining", "dataset"]):
            axis.plot(g.fraction, g.cka, ls=":", marker="s", ms=3, color="0.5" if pre == "standard" else "0.2",
                      label=f"paper: resnet50 {pre}, {ds} (subset vs subset)")
    axis.set_xscale("log")
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("fraction of penultimate neurons (log scale)")
    axis.set_ylabel("linear CKA")
    legend_below(fig, *take_legend(axis), axes=[axis])
    return fig


def robustness_curves(curves: pd.DataFrame, ax=None):
    """One panel per protocol choice, two a row: mean accuracy vs fraction, one line per
    value, the values' legend under each panel (``ax``: an array of at least as many axes as
    choices)."""
    choices = list(dict.fromkeys(curves.choice))
    if ax is not None and np.atleast_1d(ax).size < len(choices):
        raise ValueError(f"robustness_curves needs {len(choices)} axes, one per choice; got {np.atleast_1d(ax).size}")
    fig, axes = panels(len(choices), ax, row_in=3.3, sharey=True)
    for axis, choice in zip(axes, choices):
        g = curves[(curves.choice == choice) & ~curves.duplicate_k.astype(bool)]
        m = g.groupby(["value", "fraction"], sort=False, as_index=False).accuracy.mean()
        for value, h in m.groupby("value", sort=False):
            axis.plot(h.fraction, h.accuracy, marker="o", ms=2, lw=1, label=value)
        axis.set_xscale("log")
        axis.set_title(choice)
        axis.set_xlabel("fraction (log scale)")
    for axis in axes[len(choices):]:
        axis.set_visible(False)
    for axis in axes[:len(choices)][::MAX_COLUMNS] if ax is None else axes[:1]:
        axis.set_ylabel("test accuracy")
    legends_under(list(axes[:len(choices)]))
    return fig


def _variant_palette(variants) -> dict:
    return dict(zip(variants, sns.color_palette("tab20", len(variants))))


def variant_curves(summary: pd.DataFrame, ax=None):
    """Accuracy ratio vs fraction, one line per pre-training variant, one panel per task (two
    a row; ``ax``: one axis per task); one legend of the variants below."""
    datasets = list(dict.fromkeys(summary.dataset))
    variants = sorted(summary.variant.unique())
    colors = _variant_palette(variants)
    fig, axes = panels(len(datasets), ax, row_in=2.8, sharey=True)
    for axis, ds in zip(axes, datasets):
        for v in variants:
            g = summary[(summary.dataset == ds) & (summary.variant == v)].sort_values("fraction")
            style = "-" if v in ("cnn_ce", "cnn_adv", "cnn_mrl", "cnn_up10", "vit") else ":"
            axis.plot(g.fraction, g.ratio, style, marker="o", ms=2, lw=1.4 if style == "-" else 1,
                      color=colors[v], label=v)
        axis.set_xscale("log")
        axis.axhline(0.9, color="k", lw=0.6, ls="-.")
        axis.set_title(short(ds))
        axis.set_xlabel("fraction of penultimate neurons\n(log scale)")
    axes[0].set_ylabel("accuracy / full-layer accuracy")
    legend_below(fig, *axes[0].get_legend_handles_labels(), axes=axes)
    return fig


def width_effect(table: pd.DataFrame, metric: str = "ratio_small", ax=None):
    """(a) ``metric`` and (b) full-layer accuracy against the penultimate width (``ax``: two
    axes), one legend of the tasks below."""
    fig, (a, b) = panels(2, ax, row_in=3.2)
    m = table.groupby(["dataset", "width"], as_index=False).agg(
        r=(metric, "mean"), r_sd=(metric, "std"), full=("full_accuracy", "mean"))
    for ds, g in m.groupby("dataset"):
        a.errorbar(g.width, g.r, yerr=g.r_sd.fillna(0), marker="o", ms=3, capsize=2, label=short(ds))
        b.plot(g.width, g.full, marker="o", ms=3, label=short(ds))
    for axis in (a, b):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("penultimate width K\n(log scale)")
    a.set_ylabel(metric)
    b.set_ylabel("full-layer probe accuracy")
    a.set_title("(a) diffused redundancy")
    b.set_title("(b) accuracy of the whole layer")
    legend_below(fig, *b.get_legend_handles_labels(), axes=(a, b))
    return fig


def layer_redundancy(tables: pd.DataFrame, ax=None):
    """(a) full-layer accuracy and (b) ``ratio_small`` and DR(0.9) per layer, per model
    (``ax``: two axes); each panel's legend under it."""
    fig, (a, b) = panels(2, ax, row_in=3.6)
    for model, g in tables.groupby("model", sort=False):
        g = g.sort_values("depth")
        x = np.arange(len(g))
        label = short(model)
        a.plot(x, g.full_accuracy, marker="o", ms=3, label=label)
        line, = b.plot(x, g.ratio_small, marker="o", ms=3, label=f"{label}: ratio_small")
        b.plot(x, g.dr_closest, marker="s", ms=3, ls=":", color=line.get_color(), label=f"{label}: DR(0.9)")
    for axis in (a, b):
        axis.set_xlabel("layer (input to output;\nlast = penultimate)")
    a.set_ylabel("probe accuracy on the whole layer")
    b.set_ylabel("ratio_small / DR(0.9)")
    b.set_ylim(-0.05, 1.05)
    legends_under([a, b])
    return fig

"""One seaborn function per figure of the book.

Each takes tidy DataFrames (from :mod:`diffred.experiments`), an optional ``ax``, and
returns the Figure; none reads files or computes results. :func:`set_style` is the one
style setting for the whole book.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = "colorblind"


def set_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titlesize": "medium"})


def _axes(ax, ncols=1, size=(6.0, 4.0)):
    if ax is not None:
        axes = np.atleast_1d(ax)
        return axes[0].figure, axes
    fig, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    return fig, axes[0]


def subset_curves(summary: pd.DataFrame, paper: pd.DataFrame | None = None, delta: float = 0.9, ax=None):
    """Paper Fig. 1: (a) probe accuracy vs fraction of random neurons, mean ± std over
    subset seeds, the full layer dashed; (b) the same as a ratio to the full layer, with
    the paper's ResNet50 curves (dotted, grey shades) for comparison."""
    fig, (a, b) = _axes(ax, 2, (5.6, 4.2))
    labels = [f"{m} / {d}" for m, d in zip(summary.model, summary.dataset)]
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
        axis.set_xlabel("fraction of penultimate neurons (log scale)")
    a.set_ylabel("test accuracy of the linear probe")
    a.set_title("(a) accuracy, mean ± std over subset seeds; dashed: full layer")
    b.axhline(delta, color="k", lw=0.8, ls="-.")
    b.axvline(0.2, color="k", lw=0.6, ls=":")
    b.set_ylabel("accuracy / full-layer accuracy")
    b.set_title(f"(b) ratio to the full layer; dash-dot: δ = {delta}")
    a.legend(fontsize="small", loc="lower right")
    b.legend(fontsize="x-small", loc="lower right", ncol=1)
    return fig


def dr_comparison(ours: pd.DataFrame, paper: pd.DataFrame, ax=None):
    """DR(0.9) of our (model, dataset) pairs beside the paper's Table 1 rows."""
    fig, (axis,) = _axes(ax, 1, (7.5, 4.0))
    rows = [{"who": "ours", "label": f"{r.model}\n{r.dataset}", "DR(0.9)": r.dr_closest} for r in ours.itertuples()]
    rows += [{"who": f"paper ({r.provenance})", "label": f"{r.model}\n{r.dataset}", "DR(0.9)": r.dr_0_9}
             for r in paper.itertuples()]
    df = pd.DataFrame(rows)
    sns.barplot(df, y="label", x="DR(0.9)", hue="who", dodge=False, ax=axis, orient="h")
    axis.set_xlim(0, 1)
    axis.set_ylabel("")
    axis.set_xlabel("DR(0.9): share of neurons that can be dropped (authors' definition)")
    axis.tick_params(axis="y", labelsize=7)
    return fig


def pretrained_vs_random(df: pd.DataFrame, ax=None):
    """Full-layer probe accuracy of the pre-trained encoder and a random-weight copy."""
    fig, (axis,) = _axes(ax, 1, (5.0, 3.0))
    sns.barplot(df, x="accuracy", y="model", hue="dataset", ax=axis, orient="h")
    for c in axis.containers:
        axis.bar_label(c, fmt="%.3f", fontsize="small")
    axis.set_xlim(0, 1)
    axis.set_xlabel("test accuracy, linear probe on all penultimate neurons")
    axis.set_ylabel("")
    return fig


def cost_bars(bench: pd.DataFrame, ax=None):
    """Wall time of each probe method for the whole fraction x seed grid (log scale)."""
    has_mem = "peak_mb" in bench and bench["peak_mb"].notna().any()
    fig, axes = _axes(ax, 2 if has_mem else 1, (5.5, 3.6))
    a = axes[0]
    sns.barplot(bench, x="seconds", y="method", ax=a, orient="h", color=sns.color_palette(PALETTE)[0])
    a.set_xscale("log")
    a.set_xlabel("seconds for the whole grid (log scale)")
    a.set_ylabel("")
    for c in a.containers:
        a.bar_label(c, fmt="%.3g s", fontsize="small")
    if has_mem:
        b = axes[1]
        sns.barplot(bench, x="peak_mb", y="method", ax=b, orient="h", color=sns.color_palette(PALETTE)[1])
        b.set_xlabel("peak memory (MB)")
        b.set_ylabel("")
        b.set_yticklabels([])
    return fig


def accuracy_gap(gaps: pd.DataFrame, ax=None):
    """Per fraction: each method's mean accuracy minus scikit-learn's, in points."""
    fig, (axis,) = _axes(ax, 1, (6.0, 3.6))
    sns.lineplot(gaps, x="fraction", y="gap_points", hue="method", marker="o", ax=axis)
    axis.axhspan(-0.5, 0.5, color="0.9", zorder=0)
    axis.axhline(0, color="k", lw=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("fraction of penultimate neurons (log scale)")
    axis.set_ylabel("accuracy − scikit-learn's (points)")
    return fig

"""One seaborn function per figure of the book.

Each takes tidy DataFrames (from :mod:`diffred.curves` and the analyses), an optional ``ax``, and
returns the Figure; none reads files or computes results. :func:`set_style` is the one
style setting for the whole book.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = "colorblind"


def short(name) -> str:
    """A legend label for a model or dataset: the file or folder name of a path."""
    text = str(name)
    return Path(text).stem if ("/" in text or "\\" in text) else text


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
    rows = [{"who": "ours", "label": f"{short(r.model)} / {short(r.dataset)}", "DR(0.9)": r.dr_closest} for r in ours.itertuples()]
    rows += [{"who": f"paper ({r.provenance})", "label": f"{r.model} ({r.pretraining}, {r.upstream}) / {r.dataset}",
              "DR(0.9)": r.dr_0_9} for r in paper.itertuples()]
    df = pd.DataFrame(rows)
    fig, (axis,) = _axes(ax, 1, (7.5, 0.6 + 0.22 * len(df)))
    sns.barplot(df, y="label", x="DR(0.9)", hue="who", dodge=False, ax=axis, orient="h", errorbar=None)
    axis.set_xlim(0, 1)
    axis.set_ylabel("")
    axis.set_xlabel("DR(0.9): share of neurons that can be dropped (authors' definition)")
    axis.tick_params(axis="y", labelsize=7)
    axis.legend(fontsize="small", loc="lower right")
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


SELECTOR_LABELS = {"random": "random neurons", "pca_top": "top principal components",
                   "pca_bottom": "bottom principal components",
                   "projection_gaussian": "Gaussian random projection",
                   "projection_authors": "authors' positive random projection", "first": "first-k neurons"}


def selector_curves(summary: pd.DataFrame, ax=None):
    """Paper claim 4: accuracy vs k for random neurons, principal components and random
    projections (mean ± std over seeds where the selector is random)."""
    fig, (axis,) = _axes(ax, 1, (7.0, 4.2))
    for sel, g in summary.groupby("selector", sort=False):
        g = g.sort_values("k")
        line, = axis.plot(g.k, g.acc_mean, marker="o", ms=3, label=SELECTOR_LABELS.get(sel, sel))
        sd = g.acc_std.fillna(0)
        axis.fill_between(g.k, g.acc_mean - sd, g.acc_mean + sd, color=line.get_color(), alpha=0.2, lw=0)
    axis.set_xscale("log")
    axis.set_xlabel("k, dimensions the probe sees (log scale)")
    axis.set_ylabel("test accuracy of the linear probe")
    axis.legend(fontsize="small")
    return fig


def cka_curves(ours: pd.DataFrame, paper: pd.DataFrame | None = None, ax=None):
    """Paper claim 5: linear CKA between random subsets (and with the whole layer) against
    the fraction kept; ours per model, the paper's ResNet50 numbers dotted."""
    fig, (axis,) = _axes(ax, 1, (6.0, 4.2))
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
    axis.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def class_heatmap(per_class: pd.DataFrame, ax=None):
    """Paper claim 6: per-class accuracy relative to the full layer, class x fraction."""
    fig, (axis,) = _axes(ax, 1, (8.0, 4.0))
    table = per_class.pivot_table(index="class", columns="fraction", values="relative", sort=False)
    sns.heatmap(table, vmin=0, vmax=1, cmap="rocket", annot=True, fmt=".2f", annot_kws={"fontsize": 6},
                cbar_kws={"label": "accuracy / the class's full-layer accuracy"}, ax=axis)
    axis.set_xticklabels([f"{float(t.get_text()):g}" for t in axis.get_xticklabels()], rotation=45)
    axis.set_xlabel("fraction of penultimate neurons")
    axis.set_ylabel("")
    return fig


def gini_vs_accuracy(gini: pd.DataFrame, ax=None):
    """Gini coefficient of per-class accuracy against overall accuracy, one point per
    (fraction, seed); annotated with the fraction."""
    fig, (axis,) = _axes(ax, 1, (6.0, 4.0))
    sns.scatterplot(gini, x="accuracy", y="gini", hue="fraction", palette="viridis", hue_norm=plt.matplotlib.colors.LogNorm(),
                    ax=axis, legend=False)
    m = gini.groupby("fraction", as_index=False)[["accuracy", "gini"]].mean()
    axis.plot(m.accuracy, m.gini, color="0.4", lw=0.8)
    for r in m.itertuples():
        axis.annotate(f"{r.fraction:g}", (r.accuracy, r.gini), fontsize=6, xytext=(3, 3), textcoords="offset points")
    axis.set_xlabel("overall test accuracy")
    axis.set_ylabel("Gini coefficient of per-class accuracy")
    return fig


def dr_vs_difficulty(points: pd.DataFrame, ax=None):
    """Claim 2: DR(0.9) against the full-layer accuracy of the task (harder = lower)."""
    fig, (axis,) = _axes(ax, 1, (6.5, 4.2))
    sns.scatterplot(points, x="full_accuracy", y="dr", hue="model", style="who", s=70, ax=axis)
    for r in points.itertuples():
        axis.annotate(r.dataset, (r.full_accuracy, r.dr), fontsize=6, xytext=(4, -3), textcoords="offset points")
    axis.set_xlabel("full-layer probe accuracy (task difficulty: lower is harder)")
    axis.set_ylabel("DR(0.9)")
    axis.set_ylim(-0.05, 1.05)
    axis.legend(fontsize="x-small")
    return fig


def robustness_curves(curves: pd.DataFrame, ax=None):
    """One panel per protocol choice: mean accuracy vs fraction, one line per value
    (``ax``: an array of at least as many axes as choices, else a new 3-column grid)."""
    choices = list(dict.fromkeys(curves.choice))
    ncols = 3
    nrows = int(np.ceil(len(choices) / ncols))
    if ax is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False, sharey=True)
    else:
        axes = np.atleast_2d(ax)
        fig = axes.flat[0].figure
        if axes.size < len(choices):
            raise ValueError(f"robustness_curves needs {len(choices)} axes, one per choice; got {axes.size}")
    for axis, choice in zip(axes.ravel(), choices):
        g = curves[(curves.choice == choice) & ~curves.duplicate_k.astype(bool)]
        m = g.groupby(["value", "fraction"], sort=False, as_index=False).accuracy.mean()
        for value, h in m.groupby("value", sort=False):
            axis.plot(h.fraction, h.accuracy, marker="o", ms=2, lw=1, label=value)
        axis.set_xscale("log")
        axis.set_title(choice, fontsize="small")
        axis.legend(fontsize="xx-small")
        axis.set_xlabel("fraction (log scale)", fontsize="small")
    for axis in axes.ravel()[len(choices):]:
        axis.set_visible(False)
    axes[0, 0].set_ylabel("test accuracy")
    fig.tight_layout()
    return fig


def _variant_palette(variants) -> dict:
    return dict(zip(variants, sns.color_palette("tab20", len(variants))))


def variant_curves(summary: pd.DataFrame, ax=None):
    """Accuracy ratio vs fraction, one line per pre-training variant, one panel per task
    (``ax``: one axis per task)."""
    datasets = list(dict.fromkeys(summary.dataset))
    variants = sorted(summary.variant.unique())
    colors = _variant_palette(variants)
    if ax is None:
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 4.0), squeeze=False, sharey=True)
    else:
        axes = np.atleast_1d(ax).reshape(1, -1)
        fig = axes[0, 0].figure
    for axis, ds in zip(axes[0], datasets):
        for v in variants:
            g = summary[(summary.dataset == ds) & (summary.variant == v)].sort_values("fraction")
            style = "-" if v in ("cnn_ce", "cnn_adv", "cnn_mrl", "cnn_up10", "vit") else ":"
            axis.plot(g.fraction, g.ratio, style, marker="o", ms=2, lw=1.4 if style == "-" else 1,
                      color=colors[v], label=v)
        axis.set_xscale("log")
        axis.axhline(0.9, color="k", lw=0.6, ls="-.")
        axis.set_title(short(ds), fontsize="small")
        axis.set_xlabel("fraction of penultimate neurons (log scale)", fontsize="small")
    axes[0, 0].set_ylabel("accuracy / full-layer accuracy")
    axes[0, -1].legend(fontsize="xx-small", ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


def variant_redundancy(table: pd.DataFrame, metric: str = "ratio_small", ax=None):
    """``metric`` per variant and task: a dot per training seed, a bar for their mean."""
    fig, (axis,) = _axes(ax, size=(9.5, 4.2))
    order = sorted(table.variant.unique())
    sns.barplot(table, x="variant", y=metric, hue="dataset", order=order, errorbar=None, alpha=0.45, ax=axis)
    sns.stripplot(table, x="variant", y=metric, hue="dataset", order=order, dodge=True, size=4,
                  legend=False, ax=axis, edgecolor="k", linewidth=0.3)
    axis.set_xticks(axis.get_xticks())
    axis.set_xticklabels(axis.get_xticklabels(), rotation=40, ha="right", fontsize="small")
    axis.set_ylabel(f"{metric} (mean accuracy ratio, 1-20% of neurons)")
    axis.set_xlabel("")
    lo = float(table[metric].min())
    axis.set_ylim(max(0.0, lo - 0.05), 1.02)
    axis.legend(fontsize="x-small", title=None)
    fig.tight_layout()
    return fig


def width_effect(table: pd.DataFrame, metric: str = "ratio_small", ax=None):
    """(a) ``metric`` and (b) full-layer accuracy against the penultimate width (``ax``: two axes)."""
    fig, (a, b) = _axes(ax, ncols=2, size=(5.25, 3.9))
    m = table.groupby(["dataset", "width"], as_index=False).agg(
        r=(metric, "mean"), r_sd=(metric, "std"), full=("full_accuracy", "mean"))
    for ds, g in m.groupby("dataset"):
        a.errorbar(g.width, g.r, yerr=g.r_sd.fillna(0), marker="o", ms=3, capsize=2, label=short(ds))
        b.plot(g.width, g.full, marker="o", ms=3, label=short(ds))
    for axis in (a, b):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("penultimate width K (log scale)")
        axis.legend(fontsize="x-small")
    a.set_ylabel(metric)
    b.set_ylabel("full-layer probe accuracy")
    a.set_title("(a) diffused redundancy", fontsize="small")
    b.set_title("(b) accuracy of the whole layer", fontsize="small")
    fig.tight_layout()
    return fig


def layer_redundancy(tables: pd.DataFrame, ax=None):
    """(a) full-layer accuracy and (b) ``ratio_small`` and DR(0.9) per layer, per model
    (``ax``: two axes)."""
    fig, (a, b) = _axes(ax, ncols=2, size=(5.5, 3.9))
    for model, g in tables.groupby("model", sort=False):
        g = g.sort_values("depth")
        x = np.arange(len(g))
        label = short(model)
        a.plot(x, g.full_accuracy, marker="o", ms=3, label=label)
        line, = b.plot(x, g.ratio_small, marker="o", ms=3, label=f"{label}: ratio_small")
        b.plot(x, g.dr_closest, marker="s", ms=3, ls=":", color=line.get_color(), label=f"{label}: DR(0.9)")
    for axis in (a, b):
        axis.set_xlabel("layer (input to output; last = penultimate)")
        axis.legend(fontsize="x-small")
    a.set_ylabel("probe accuracy on the whole layer")
    b.set_ylabel("ratio_small / DR(0.9)")
    b.set_ylim(-0.05, 1.05)
    fig.tight_layout()
    return fig


def subset_spread(rows: pd.DataFrame, summary: pd.DataFrame, ax=None):
    """Chapter 13: test accuracy of every random subset per fraction (one dot each), the
    full layer (dashed), and the paper's 5-subset std (ResNet50, CIFAR-10) as a bar beside
    our mean where it has one."""
    fig, (ax,) = _axes(ax, size=(7.5, 4.2))
    r = rows[rows.selector == "random"].assign(acc=lambda d: 100 * d.accuracy)
    order = sorted(r.fraction.unique())
    sns.stripplot(data=r, x="fraction", y="acc", order=order, size=2.5, alpha=0.5, jitter=0.3, ax=ax,
                  color=sns.color_palette(PALETTE)[0], label="one random subset")
    s = summary.set_index("fraction").loc[order]
    x = np.arange(len(order))
    ax.errorbar(x + 0.42, s["mean"], yerr=s.get("paper_sd"), fmt="none", ecolor="black", capsize=3,
                label="paper's 5-subset std (ResNet50, CIFAR-10)")
    ax.scatter(x, s["worst"], marker="v", color=sns.color_palette(PALETTE)[3], zorder=3, label="worst subset")
    ax.axhline(float(s["full"].iloc[0]), ls="--", color="grey", label="full layer")
    ax.set(xlabel="fraction of neurons kept", ylabel="test accuracy (%)")
    handles, labels = ax.get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    ax.legend(keep.values(), keep.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def importance_bars(gaps: pd.DataFrame, ax=None):
    """Chapter 13: accuracy of the k most and least important neurons, k random, and the
    layer without its top k or without k random, per ranking."""
    fig, (ax,) = _axes(ax, size=(7.5, 3.8))
    cols = {"top": "k most important", "random": "k random", "bottom": "k least important",
            "without_random": "all but k random", "without_top": "all but the k most important"}
    long = gaps.melt(id_vars=["ranking", "k"], value_vars=list(cols), var_name="subset", value_name="acc")
    long["subset"] = long.subset.map(cols)
    long["ranking"] = long.ranking.map({"weight_norm": "probe weight norm", "f_stat": "univariate F"})
    sns.barplot(data=long, y="subset", x="acc", hue="ranking", order=list(cols.values()), ax=ax,
                palette=PALETTE)
    ax.set(xlabel=f"test accuracy (%), k = {int(gaps.k.iloc[0])}", ylabel="")
    ax.set_xlim(max(0, long.acc.min() - 10), 100)
    ax.legend(title="importance", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def predictor_scatter(table: pd.DataFrame, ax=None):
    """Chapter 13: effective rank per neuron against DR(0.9) and against the gap at 20%,
    one point per encoder or layer, coloured by where the book uses it."""
    fig, axes = _axes(ax, ncols=2, size=(4.2, 3.8))
    for a, (y, label) in zip(axes, (("dr", "DR(0.9), interpolated"), ("gap20", "gap at 20% (points)"))):
        sns.scatterplot(data=table, x="erank_share", y=y, hue="group", style="group", ax=a, palette=PALETTE,
                        s=45, legend=a is axes[-1])
        a.set(xscale="log", xlabel="effective rank / width", ylabel=label)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def difficulty_axes(tasks: pd.DataFrame, ax=None):
    """Chapter 13: DR(0.9) of each task against its number of classes (left) and its
    training images per class (right), same encoder; one dot per draw, line through means."""
    fig, axes = _axes(ax, ncols=2, size=(4.2, 3.6))
    for a, (axis, x, label) in zip(axes, (("classes", "classes", "classes in the task"),
                                         ("shots", "shots", "training images per class"))):
        t = tasks[tasks.axis == axis]
        a.scatter(t[x], t.dr, color=sns.color_palette(PALETTE)[0], s=25, alpha=0.7)
        m = t.groupby(x).dr.mean()
        a.plot(m.index, m.values, color="black", lw=1)
        a.set(xscale="log", xlabel=label, ylabel="DR(0.9)")
        a.set_xticks(sorted(t[x].unique()), [str(v) for v in sorted(t[x].unique())])
    fig.tight_layout()
    return fig

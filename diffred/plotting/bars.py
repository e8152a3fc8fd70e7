"""Figures of bars and strips: DR(0.9) beside the paper's, pre-trained against random
weights, probe costs, the zoo's redundancy per variant, the accuracy of important and
random neurons, and the spread of random subsets. Legends go below the axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from .layout import PALETTE, SMALL, legend_below, panels, short, take_legend
from ..tables import WORDS


def fit_bar_labels(axis, container, labels) -> None:
    """Widen the x range (in the axis's own scale, log or linear) until the label at the end
    of each horizontal bar ends inside the axes: labels keep their size in points, the bars
    stretch less. Reads the finished layout, so call it once the figure is otherwise done."""
    axis.figure.draw_without_rendering()
    frame = axis.get_window_extent()
    scale = axis.xaxis.get_transform()
    lo, hi = scale.transform(np.asarray(axis.get_xlim(), float))
    need = hi
    for bar, label in zip(container, labels):
        end = float(scale.transform(np.asarray([bar.get_x() + bar.get_width()], float))[0])
        used = label.get_window_extent().x1 - (frame.x0 + (end - lo) / (hi - lo) * frame.width) + 4
        if 0 < used < frame.width:
            need = max(need, lo + (end - lo) * frame.width / (frame.width - used))
    axis.set_xlim(right=float(scale.inverted().transform(np.asarray([need], float))[0]))


def dr_comparison(ours: pd.DataFrame, paper: pd.DataFrame, ax=None):
    """DR(0.9) of our (model, dataset) pairs beside the paper's Table 1 rows."""
    rows = [{"who": "ours", "label": f"{short(r.model)} / {short(r.dataset)}", "DR(0.9)": r.dr_closest} for r in ours.itertuples()]
    rows += [{"who": f"paper ({r.provenance})", "label": f"{r.model} ({r.pretraining}, {r.upstream}) / {r.dataset}",
              "DR(0.9)": r.dr_0_9} for r in paper.itertuples()]
    df = pd.DataFrame(rows)
    fig, (axis,) = panels(1, ax, row_in=0.8 + 0.2 * len(df))
    sns.barplot(df, y="label", x="DR(0.9)", hue="who", dodge=False, ax=axis, orient="h", errorbar=None)
    axis.set_xlim(0, 1)
    axis.set_ylabel("")
    axis.set_xlabel("DR(0.9): share of neurons\nthat can be dropped\n(authors' definition)")
    axis.tick_params(axis="y", labelsize=SMALL)
    legend_below(fig, *take_legend(axis), axes=[axis])
    return fig


def pretrained_vs_random(df: pd.DataFrame, ax=None):
    """Full-layer probe accuracy of the pre-trained encoder and a random-weight copy."""
    fig, (axis,) = panels(1, ax, row_in=2.4)
    sns.barplot(df, x="accuracy", y="model", hue="dataset", ax=axis, orient="h")
    for c in axis.containers:
        axis.bar_label(c, fmt="%.3f", fontsize=SMALL, padding=3)
    axis.set_xlim(0, 1)
    axis.set_xlabel("test accuracy, linear probe on all penultimate neurons")
    axis.set_ylabel("")
    legend_below(fig, *take_legend(axis), axes=[axis])
    return fig


def cost_bars(bench: pd.DataFrame, ax=None):
    """Wall time of each probe method for the whole fraction x seed grid (log scale), and
    its peak memory where measured; the time axis leaves room for the bars' labels."""
    has_mem = "peak_mb" in bench and bench["peak_mb"].notna().any()
    fig, axes = panels(2 if has_mem else 1, ax, row_in=3.0)
    a = axes[0]
    sns.barplot(bench, x="seconds", y="method", ax=a, orient="h", color=sns.color_palette(PALETTE)[0])
    a.set_xscale("log")
    a.set_xlabel("seconds for the whole grid\n(log scale)")
    a.set_ylabel("")
    labelled = [(c, a.bar_label(c, fmt="%.3g s", fontsize=SMALL, padding=2)) for c in a.containers]
    if has_mem:
        b = axes[1]
        sns.barplot(bench, x="peak_mb", y="method", ax=b, orient="h", color=sns.color_palette(PALETTE)[1])
        b.set_xlabel("peak memory (MB)")
        b.set_ylabel("")
        b.set_yticklabels([])
    for c, labels in labelled:
        fit_bar_labels(a, c, labels)
    return fig


def variant_redundancy(table: pd.DataFrame, metric: str = "ratio_small", ax=None):
    """``metric`` per variant and task: a dot per training seed, a bar for their mean."""
    fig, (axis,) = panels(1, ax, row_in=4.0)
    order = sorted(table.variant.unique())
    sns.barplot(table, x="variant", y=metric, hue="dataset", order=order, errorbar=None, alpha=0.45, ax=axis)
    sns.stripplot(table, x="variant", y=metric, hue="dataset", order=order, dodge=True, size=3,
                  legend=False, ax=axis, edgecolor="k", linewidth=0.3)
    axis.set_xticks(axis.get_xticks())
    axis.set_xticklabels(axis.get_xticklabels(), rotation=50, ha="right", rotation_mode="anchor", fontsize=SMALL)
    axis.set_ylabel(f"{metric}\n(mean accuracy ratio, 1-20% of neurons)")
    axis.set_xlabel("")
    lo = float(table[metric].min())
    axis.set_ylim(max(0.0, lo - 0.05), 1.02)
    legend_below(fig, *take_legend(axis), axes=[axis])
    return fig


def importance_bars(gaps: pd.DataFrame, ax=None):
    """Chapter 13: accuracy of the k most and least important neurons, k random, and the
    layer without its top k or without k random, per ranking, at one k (``gaps`` holds the
    rows of one fraction; several would be averaged over different k)."""
    if gaps.k.nunique() != 1:
        raise ValueError(f"importance_bars draws one k; got k = {sorted(gaps.k.unique())} "
                         "(pass the rows of one fraction, e.g. randomness.importance_rows)")
    fig, (ax,) = panels(1, ax, row_in=3.2)
    cols = {"top": "k most important", "random": "k random", "bottom": "k least important",
            "without_random": "all but k random", "without_top": "all but the k most important"}
    long = gaps.melt(id_vars=["ranking", "k"], value_vars=list(cols), var_name="subset", value_name="acc")
    long["subset"] = long.subset.map(cols)
    long["ranking"] = long.ranking.map(lambda r: WORDS.get(r, r))
    sns.barplot(data=long, y="subset", x="acc", hue="ranking", order=list(cols.values()), ax=ax,
                palette=PALETTE)
    ax.set(xlabel=f"test accuracy (%), k = {int(gaps.k.iloc[0])}", ylabel="")
    ax.set_xlim(max(0, long.acc.min() - 10), 100)
    legend_below(fig, *take_legend(ax), axes=[ax], title="importance")
    return fig


def subset_spread(rows: pd.DataFrame, summary: pd.DataFrame, ax=None):
    """Chapter 13: test accuracy of every random subset per fraction (one dot each), the
    full layer (dashed), and the paper's 5-subset std (ResNet50, CIFAR-10) as a bar beside
    our mean where it has one."""
    fig, (ax,) = panels(1, ax, row_in=3.6)
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
    handles, labels = take_legend(ax)  # seaborn's own (one entry per strip) goes
    keep = dict(zip(labels, handles))
    legend_below(fig, list(keep.values()), list(keep.keys()), axes=[ax])
    return fig

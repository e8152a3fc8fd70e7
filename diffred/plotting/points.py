"""Figures of points: the per-class heatmap, Gini against accuracy, DR(0.9) against task
difficulty, and chapter 13's predictors and task axes. Point labels are placed where they
cover no marker and no other label (:func:`.layout.label_points`); legends go below."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import NullFormatter

from .layout import PALETTE, SMALL, label_points, legend_below, panels, take_legend


def class_heatmap(per_class: pd.DataFrame, ax=None):
    """Paper claim 6: per-class accuracy relative to the full layer, class x fraction."""
    fig, (axis,) = panels(1, ax, row_in=4.4)
    table = per_class.pivot_table(index="class", columns="fraction", values="relative", sort=False)
    sns.heatmap(table, vmin=0, vmax=1, cmap="rocket", annot=True, fmt=".2f", annot_kws={"fontsize": SMALL},
                cbar_kws={"label": "accuracy / the class's full-layer accuracy"}, ax=axis)
    axis.set_xticklabels([f"{float(t.get_text()):g}" for t in axis.get_xticklabels()], rotation=45)
    axis.set_xlabel("fraction of penultimate neurons")
    axis.set_ylabel("")
    return fig


def gini_vs_accuracy(gini: pd.DataFrame, ax=None):
    """Gini coefficient of per-class accuracy against overall accuracy, one point per
    (fraction, seed); the mean of each fraction annotated with the fraction, where its label
    finds room (the largest fractions first)."""
    fig, (axis,) = panels(1, ax, row_in=3.8)
    sns.scatterplot(gini, x="accuracy", y="gini", hue="fraction", palette="viridis", hue_norm=plt.matplotlib.colors.LogNorm(),
                    ax=axis, legend=False)
    m = gini.groupby("fraction", as_index=False)[["accuracy", "gini"]].mean()
    axis.plot(m.accuracy, m.gini, color="0.4", lw=0.8)
    axis.set_xlabel("overall test accuracy")
    axis.set_ylabel("Gini coefficient of per-class accuracy")
    m = m.sort_values("fraction", ascending=False)
    label_points(axis, m.accuracy, m.gini, [f"{f:g}" for f in m.fraction])
    return fig


def dr_vs_difficulty(points: pd.DataFrame, ax=None):
    """Claim 2: DR(0.9) against the full-layer accuracy of the task (harder = lower). Each
    point is labelled with its task where the label finds room (the paper's first)."""
    fig, (axis,) = panels(1, ax, row_in=5.6)
    sns.scatterplot(points, x="full_accuracy", y="dr", hue="model", style="who", s=45, ax=axis)
    axis.set_xlabel("full-layer probe accuracy (task difficulty: lower is harder)")
    axis.set_ylabel("DR(0.9)")
    axis.set_ylim(-0.05, 1.05)
    legend_below(fig, *take_legend(axis), axes=[axis], ncol=2)
    order = points.assign(paper=points.who != "ours").sort_values("paper", ascending=False, kind="stable")
    label_points(axis, order.full_accuracy, order.dr, order.dataset)
    return fig


def predictor_scatter(table: pd.DataFrame, ax=None):
    """Chapter 13: effective rank per neuron against DR(0.9) and against the gap at 20%,
    one point per encoder or layer, coloured by where the book uses it."""
    fig, axes = panels(2, ax, row_in=3.2)
    for a, (y, label) in zip(axes, (("dr", "DR(0.9), interpolated"), ("gap20", "gap at 20% (points)"))):
        sns.scatterplot(data=table, x="erank_share", y=y, hue="group", style="group", ax=a, palette=PALETTE,
                        s=35, legend=a is axes[-1])
        a.set(xscale="log", xlabel="effective rank / width", ylabel=label)
    legend_below(fig, *take_legend(axes[-1]), axes=axes)
    return fig


def difficulty_axes(tasks: pd.DataFrame, ax=None):
    """Chapter 13: DR(0.9) of each task against its number of classes (left) and its
    training images per class (right), same encoder; one dot per draw, line through means.
    Only the values tried are ticked (no minor log-scale labels between them)."""
    fig, axes = panels(2, ax, row_in=3.0)
    for a, (axis, x, label) in zip(axes, (("classes", "classes", "classes in the task"),
                                         ("shots", "shots", "training images per class"))):
        t = tasks[tasks.axis == axis]
        a.scatter(t[x], t.dr, color=sns.color_palette(PALETTE)[0], s=25, alpha=0.7)
        m = t.groupby(x).dr.mean()
        a.plot(m.index, m.values, color="black", lw=1)
        a.set(xscale="log", xlabel=label, ylabel="DR(0.9)")
        a.set_xticks(sorted(t[x].unique()), [str(v) for v in sorted(t[x].unique())])
        a.xaxis.set_minor_formatter(NullFormatter())
    return fig

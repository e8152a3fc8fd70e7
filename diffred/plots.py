"""One seaborn function per figure of the book.

Each takes tidy DataFrames (from :mod:`diffred.curves` and the analyses), an optional ``ax``, and
returns the Figure; none reads files or computes results. :func:`set_style` is the one
style setting for the whole book.

Every figure is drawn for the page that shows it (:mod:`diffred.plotting.layout`): one
content column wide (688 px at 110 dpi, so never scaled down), at most two panels a row,
legends outside the axes, point labels only where they cover nothing, and no text under
about 13 px. ``tests/test_plot_legibility.py`` checks each function against these rules.
The functions live in :mod:`diffred.plotting` by kind; this module is the one the chapters
call.
"""

from __future__ import annotations

from .plotting.bars import cost_bars, dr_comparison, importance_bars, pretrained_vs_random, subset_spread, \
    variant_redundancy
from .plotting.curves import SELECTOR_LABELS, accuracy_gap, cka_curves, layer_redundancy, robustness_curves, \
    selector_curves, subset_curves, variant_curves, width_effect
from .plotting.layout import PALETTE, set_style, short
from .plotting.points import class_heatmap, difficulty_axes, dr_vs_difficulty, gini_vs_accuracy, predictor_scatter

__all__ = [
    "PALETTE", "SELECTOR_LABELS", "set_style", "short",
    # one function per figure, in the order of the chapters
    "pretrained_vs_random", "subset_curves", "dr_comparison", "selector_curves", "cka_curves", "class_heatmap",
    "gini_vs_accuracy", "dr_vs_difficulty", "robustness_curves", "cost_bars", "accuracy_gap", "variant_curves",
    "variant_redundancy", "width_effect", "layer_redundancy", "subset_spread", "importance_bars",
    "predictor_scatter", "difficulty_axes",
]

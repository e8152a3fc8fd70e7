"""Style and layout shared by every figure: one column of the page wide, at most two panels
a row, legends outside the axes, point labels placed where they cover nothing.

The book shows a figure's PNG (``figure.dpi`` 110, cropped to its tight box) in a content
column 688 px wide, scaled down when wider and never up. A figure :data:`WIDTH_IN` wide is
therefore shown at its own size, and its smallest text (:data:`SMALL`, about 8.5 pt under
:func:`set_style`) is about 13 px on the page.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.collections import PathCollection
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.transforms import Bbox

PALETTE = "colorblind"
DPI = 110
#: Figure width (inches): 688 px at 110 dpi, less the 0.1 in padding ``bbox_inches="tight"``
#: adds on each side and a little slack, so the page never scales a figure down.
WIDTH_IN = 688 / DPI - 0.25
#: Height of one row of panels (inches).
ROW_IN = 3.0
#: Panels per row at most: a phone still shows two readably, not three.
MAX_COLUMNS = 2
#: The size of legends, point labels, bar labels and heatmap cells (relative to the theme).
SMALL = "small"


def short(name) -> str:
    """A legend label for a model or dataset: the file or folder name of a path."""
    text = str(name)
    return Path(text).stem if ("/" in text or "\\" in text) else text


def set_style() -> None:
    """The one style of the book's figures: seaborn's notebook theme at 85% (body-text sized
    at the column width), 110 dpi, saved cropped to the drawing."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.85)
    plt.rcParams.update({"figure.dpi": DPI, "savefig.bbox": "tight", "axes.titlesize": "medium",
                         "legend.fontsize": SMALL, "legend.title_fontsize": SMALL})


def size_pt(size) -> float:
    """A font size (points, or a name such as ``"small"``) in points, under the current style."""
    return FontProperties(size=size).get_size_in_points()


def text_width_pt(fig, text: str, size=SMALL) -> float:
    """How wide ``text`` is drawn in ``fig`` at ``size`` (points), measured by the renderer."""
    probe = fig.text(0, 0, text, fontsize=size)
    try:
        return probe.get_window_extent().width * 72 / fig.dpi
    finally:
        probe.remove()


def panels(n: int, ax=None, row_in: float = ROW_IN, columns: int = MAX_COLUMNS, **kw):
    """The figure and a flat array of ``n`` axes: the caller's ``ax`` when given, else a new
    figure one column wide with at most ``columns`` panels a row, in constrained layout (so
    labels and legends outside the axes get room of their own). ``kw`` goes to ``subplots``."""
    if ax is not None:
        axes = np.atleast_1d(ax).ravel()
        return axes[0].figure, axes
    ncols = max(1, min(n, columns))
    nrows = math.ceil(n / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, row_in * nrows), squeeze=False,
                             layout="constrained", **kw)
    for spare in grid.ravel()[n:]:
        spare.remove()
    return fig, grid.ravel()[:n]


def own_layout(fig) -> bool:
    """Whether ``fig`` was made by :func:`panels` (constrained layout), not by a caller."""
    return isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)


def columns_for(fig, labels, width_in: float, size=SMALL) -> int:
    """How many legend columns of ``labels`` fit across ``width_in``: each entry is its
    widest text plus the handle and the spacing (matplotlib's defaults, in font sizes)."""
    pt = size_pt(size)
    rc = plt.rcParams
    extra = (rc["legend.handlelength"] + rc["legend.handletextpad"] + rc["legend.columnspacing"]) * pt
    entry = max((text_width_pt(fig, str(s), size) for s in labels), default=0) + extra
    return max(1, min(len(labels), int((width_in * 72 + rc["legend.columnspacing"] * pt) // entry)))


def legend_below(fig, handles, labels, axes, title=None, ncol=None):
    """One legend for the whole figure, under its panels (never over data). On a caller's
    figure, which has no room reserved, it goes beside the last of ``axes`` instead."""
    kw = {"title": title, "frameon": False, "fontsize": SMALL}
    if own_layout(fig):
        ncol = ncol or columns_for(fig, labels, fig.get_figwidth())
        return fig.legend(handles, labels, loc="outside lower center", ncol=ncol, **kw)
    return axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **kw)


def legends_under(axes, handles=None, labels=None, ncol=None) -> list:
    """Each panel's own legend under its x-axis label, centred (never over the data), in as
    many columns as fit the panel's share of the figure's width. The gap is measured: the
    depth of the tick labels and the axis label below the axes, for every panel in one
    drawing (call it once the panels are finished). ``handles``/``labels``: one list per
    panel, or ``None`` for each panel's own."""
    fig = axes[0].figure
    fig.draw_without_rendering()
    depths = [(a.get_window_extent().y0 - a.xaxis.get_tightbbox().y0) * 72 / fig.dpi for a in axes]
    out = []
    for i, (axis, depth_pt) in enumerate(zip(axes, depths)):
        h, lab = (handles[i], labels[i]) if handles is not None else axis.get_legend_handles_labels()
        pad = (max(depth_pt, 0) + 4) / size_pt(SMALL)
        spec = axis.get_subplotspec()
        share = 1 / spec.get_gridspec().ncols if spec is not None else axis.get_position().width
        n = ncol or columns_for(fig, lab, share * fig.get_figwidth())
        out.append(axis.legend(h, lab, loc="upper center", bbox_to_anchor=(0.5, 0), borderaxespad=pad, ncol=n,
                               frameon=False, fontsize=SMALL))
    return out


def take_legend(axis):
    """The handles and labels of the legend seaborn drew on ``axis`` (removed from it)."""
    handles, labels = axis.get_legend_handles_labels()
    if axis.get_legend() is not None:
        axis.get_legend().remove()
    return handles, labels


# ----------------------------------------------------------------------------- point labels

#: Where a label may sit around its point, tried in this order: unit directions (x, y).
DIRECTIONS = ((1, 0.4), (1, -0.4), (-1, 0.4), (-1, -0.4), (0, 1), (0, -1), (1, 1.2), (-1, -1.2))


def _occupied(axis) -> list[Bbox]:
    """Display boxes of the markers of ``axis`` (scatter points and line vertices)."""
    found = []  # (display xy, radius in points)
    for coll in axis.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()) and len(coll.get_sizes()):
            xy = coll.get_offset_transform().transform(np.asarray(coll.get_offsets()))
            found.append((xy, np.sqrt(np.max(coll.get_sizes())) / 2))
    for line in axis.lines:
        if line.get_transform() is axis.transData and len(line.get_xydata()):
            marked = line.get_marker() not in (None, "None", "", " ")
            found.append((axis.transData.transform(line.get_xydata()), line.get_markersize() / 2 if marked else 1.0))
    px = axis.figure.dpi / 72
    return [Bbox.from_extents(x - r * px, y - r * px, x + r * px, y + r * px)
            for xy, r in found for x, y in xy if np.isfinite([x, y]).all()]


def label_points(axis, xs, ys, texts, size=SMALL, gap_pt: float = 2.0) -> list:
    """Label each point (x, y) with its text at the first place around it (see
    :data:`DIRECTIONS`) that stays inside the axes and covers no marker and no earlier
    label; a point with no free place stays unlabelled. Deterministic, so the same data give
    the same figure; points come first in the order given. Call it last: it reads the
    finished layout. Returns the labels placed."""
    fig = axis.figure
    fig.draw_without_rendering()
    frame = axis.get_window_extent()
    taken = _occupied(axis)
    reach = max((b.width for b in taken), default=0) / 2 * 72 / fig.dpi + gap_pt
    placed = []
    for x, y, s in zip(xs, ys, texts):
        for dx, dy in DIRECTIONS:
            ann = axis.annotate(s, (x, y), xytext=(dx * reach, dy * reach), textcoords="offset points", fontsize=size,
                                ha={1: "left", -1: "right", 0: "center"}[dx], va="bottom" if dy > 0 else "top")
            box = ann.get_window_extent().padded(1)
            if frame.containsx(box.x0) and frame.containsx(box.x1) and frame.containsy(box.y0) \
                    and frame.containsy(box.y1) and not any(box.overlaps(t) for t in taken):
                taken.append(box)
                placed.append(ann)
                break
            ann.remove()
    return placed

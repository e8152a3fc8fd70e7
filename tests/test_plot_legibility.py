"""Figures a reader can use: every public function of :mod:`diffred.plots`, drawn on
constructed data shaped as the analyses make it, at the size the book shows it.

The book shows a figure's PNG (110 dpi, cropped to its tight bounding box) in a content
column 688 px wide, scaled down to fit and never up; so a text of ``s`` points is
``s * 110/72 * min(1, 688 / width_px)`` px on the page. The checks:

* every drawn text (ticks, labels, titles, legends, annotations, heatmap cells) is at least
  :data:`MIN_PX` at that size;
* no legend covers data: curves (line segments), scatter points, bars, filled bands;
* no two drawn texts overlap, no legend covers a text, and no annotation covers a marker.

The checkers are tested first on constructed figures whose answer is known.
"""

from __future__ import annotations

import inspect
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from diffred import metrics, paper, plots  # noqa: E402

BOOK_DPI = 110
COLUMN_PX = 688
MIN_PX = 9.0
TOLERANCE_PX = 1.0  # boxes may touch by this much (anti-aliasing, rounding)
HELPERS = {"short", "set_style"}  # exported by plots but draw no figure


# ----------------------------------------------------------------------------- checkers

def drawn_texts(fig) -> list:
    """The Text artists the renderer really draws (visible, non-empty, in a shown axes), in
    drawing order: recorded from the renderer's ``draw_text`` calls."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    seen = []
    real = renderer.draw_text

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and str(s).strip():
            seen.append(mtext)
        return real(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = record
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    return list(dict.fromkeys(seen))


def display_scale(fig) -> float:
    """How much the page scales the figure's PNG down: 688 px over its width at 110 dpi, at
    most 1. The width is the tight bounding box plus the padding ``bbox_inches="tight"``
    saves around it (``savefig.pad_inches`` each side), as in the PNG the page shows."""
    renderer = fig.canvas.get_renderer()
    width_in = fig.get_tightbbox(renderer).width + 2 * plt.rcParams["savefig.pad_inches"]
    return min(1.0, COLUMN_PX / (width_in * BOOK_DPI))


def small_texts(fig, min_px: float = MIN_PX) -> list[str]:
    """Drawn texts smaller than ``min_px`` on the page, as 'text (size px)'."""
    texts = drawn_texts(fig)
    scale = display_scale(fig)
    out = []
    for t in texts:
        px = t.get_fontsize() * BOOK_DPI / 72 * scale
        if px < min_px:
            out.append(f"{t.get_text()!r} ({px:.1f} px)")
    return out


def _shrunk(bbox, by: float = TOLERANCE_PX) -> Bbox:
    return Bbox.from_extents(bbox.x0 + by, bbox.y0 + by, bbox.x1 - by, bbox.y1 - by)


def _intersection(a, b) -> Bbox | None:
    x0, y0, x1, y1 = max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1)
    return None if x0 >= x1 or y0 >= y1 else Bbox.from_extents(x0, y0, x1, y1)


def _inside(box, points: np.ndarray) -> np.ndarray:
    return (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)


def _is_data(artist, ax) -> bool:
    """Drawn in data coordinates (a curve, a bar), not a reference line across the axes."""
    return artist.get_visible() and artist.get_transform() is ax.transData


def _data_paths(ax):
    """(path in display coordinates, filled) for each curve, band and bar of ``ax``."""
    for line in ax.lines:
        xy = line.get_xydata()
        xy = xy[np.isfinite(xy).all(1)] if len(xy) else xy
        if _is_data(line, ax) and len(xy) > 1:
            yield MplPath(ax.transData.transform(xy)), False
    for coll in ax.collections:
        if coll.get_visible() and not isinstance(coll, PathCollection) and coll.get_transform() is ax.transData:
            filled = coll.get_facecolor().size > 0
            yield from ((p.transformed(ax.transData), filled) for p in coll.get_paths())
    for patch in ax.patches:
        box = patch.get_window_extent()
        if patch.get_visible() and patch.get_data_transform() is ax.transData and box.width * box.height > 0:
            yield patch.get_path().transformed(patch.get_transform()), True


def legends_over_data(fig) -> list[str]:
    """Legends (of axes or of the figure) that cover a data point, curve, bar or band of any
    axes, as 'legend -> axes title'."""
    fig.canvas.draw()
    legends = [a.get_legend() for a in fig.axes if a.get_legend()] + list(fig.legends)
    out = []
    for leg, ax in itertools.product(legends, fig.axes):
        if not ax.get_visible():
            continue
        over = _intersection(_shrunk(leg.get_window_extent()), ax.get_window_extent())
        if over is None:
            continue
        hit = _inside(over, _markers(ax)).any() or any(
            path.intersects_bbox(over, filled=filled) for path, filled in _data_paths(ax))
        if hit:
            out.append(f"legend {[t.get_text() for t in leg.get_texts()][:2]} -> axes {ax.get_title()!r}")
    return out


def _upright(t) -> bool:
    return t.get_rotation() % 90 == 0  # its window extent is its box (no rotated corners)


def overlapping_texts(fig) -> list[str]:
    """Pairs of drawn texts whose boxes overlap, and texts under a legend they do not belong
    to (rotated texts other than by 90 degrees are left out: their box is not their shape)."""
    texts = [t for t in drawn_texts(fig) if _upright(t)]
    boxes = {id(t): _shrunk(t.get_window_extent()) for t in texts}
    out = [f"{a.get_text()!r} / {b.get_text()!r}" for a, b in itertools.combinations(texts, 2)
           if boxes[id(a)].overlaps(boxes[id(b)])]
    legends = [a.get_legend() for a in fig.axes if a.get_legend()] + list(fig.legends)
    for leg in legends:
        own = {id(t) for t in leg.get_texts()} | {id(leg.get_title())}
        box = _shrunk(leg.get_window_extent())
        out += [f"legend over {t.get_text()!r}" for t in texts if id(t) not in own and box.overlaps(boxes[id(t)])]
    return out


def annotations_over_points(fig) -> list[str]:
    """Annotations and labels (``ax.texts``) that hide a marker of their axes, or overlap each
    other."""
    drawn = {id(t) for t in drawn_texts(fig)}
    out = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if id(t) in drawn]
        boxes = [_shrunk(t.get_window_extent()) for t in texts]
        out += [f"{a.get_text()!r} / {b.get_text()!r}" for (a, ba), (b, bb) in
                itertools.combinations(zip(texts, boxes), 2) if ba.overlaps(bb)]
        points = _markers(ax)
        out += [f"{t.get_text()!r} over a marker" for t, box in zip(texts, boxes) if _inside(box, points).any()]
    return out


def _markers(ax) -> np.ndarray:
    """Display coordinates of the scatter points and line vertices of ``ax``."""
    pts = [c.get_offset_transform().transform(np.asarray(c.get_offsets()))
           for c in ax.collections if isinstance(c, PathCollection) and c.get_visible() and len(c.get_offsets())]
    pts += [ax.transData.transform(ln.get_xydata()) for ln in ax.lines if _is_data(ln, ax) and len(ln.get_xydata())]
    pts = np.concatenate(pts) if pts else np.zeros((0, 2))
    return pts[np.isfinite(pts).all(1)]


def repeated_legend_entries(fig) -> list[str]:
    """Legend entries shown twice (in one legend, or in two legends of one axes): a stray
    legend that seaborn drew and the figure did not replace."""
    out = []
    for ax in fig.axes:
        legends = [leg for leg in ax.get_children() if isinstance(leg, Legend)]
        texts = [t.get_text() for leg in legends for t in leg.get_texts() if t.get_text()]
        out += sorted({t for t in texts if texts.count(t) > 1})
    for leg in fig.legends:
        texts = [t.get_text() for t in leg.get_texts() if t.get_text()]
        out += sorted({t for t in texts if texts.count(t) > 1})
    return out


def problems(fig) -> dict:
    """Every check's findings on ``fig`` (empty lists: a figure a reader can use)."""
    return {"small text": small_texts(fig), "legend over data": legends_over_data(fig),
            "overlapping text": overlapping_texts(fig), "annotation over marker": annotations_over_points(fig),
            "repeated legend entry": repeated_legend_entries(fig)}


@pytest.fixture(autouse=True)
def book_style():
    """The book's style (each chapter calls ``plots.set_style()``), undone afterwards; every
    figure closed."""
    with plt.rc_context():
        plots.set_style()
        yield
    plt.close("all")


# ----------------------------------------------------------------------------- checkers, known answers

def _clean_figure():
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    x = np.linspace(0, 1, 20)
    ax.plot(x, x, label="rising")
    ax.scatter([0.2, 0.8], [0.8, 0.2], label="two points")
    ax.set(xlabel="x", ylabel="y", title="a clean figure")
    fig.legend(loc="outside lower center", ncol=2)
    return fig


def test_a_clean_figure_passes_every_check():
    found = problems(_clean_figure())
    assert set(found) == {"small text", "legend over data", "overlapping text", "annotation over marker",
                          "repeated legend entry"}
    assert not any(found.values()), found


def test_a_legend_over_a_line_is_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.legend(loc="center")
    assert legends_over_data(fig)
    fig2, ax2 = plt.subplots(figsize=(6, 4))
    ax2.plot([0, 1], [0, 1], label="diagonal")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.02, 1))  # outside the axes: fine
    assert not legends_over_data(fig2)


def test_a_legend_over_a_segment_between_vertices_is_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0.5, 0.5], marker="o", label="flat")  # two vertices, both at the edges
    ax.legend(loc="center")
    assert legends_over_data(fig)


def test_a_legend_over_bars_or_a_band_is_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([0, 1, 2], [1, 1, 1], label="bars")
    ax.legend(loc="center")
    assert legends_over_data(fig)
    fig2, ax2 = plt.subplots(figsize=(6, 4))
    ax2.fill_between([0, 1], [0, 0], [1, 1], label="band")
    ax2.legend(loc="center")
    assert legends_over_data(fig2)


def test_a_reference_line_under_a_legend_is_not_data():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 0.1], [0, 0.1], label="short")
    ax.axhline(0.5, label="reference")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="center left")
    assert not legends_over_data(fig)


def test_small_text_depends_on_the_shown_width():
    narrow, ax = plt.subplots(figsize=(6, 3))  # shown at its own size: 6 pt is 9.2 px
    ax.set_title("six points", fontsize=6)
    assert not [s for s in small_texts(narrow) if "six points" in s]
    wide, ax = plt.subplots(figsize=(14, 3))  # scaled to 688 px: 5 pt is about 3.5 px
    ax.set_title("five points", fontsize=5)
    found = [s for s in small_texts(wide) if "five points" in s]
    assert len(found) == 1 and float(found[0].split("(")[-1].split()[0]) < 5
    assert display_scale(narrow) == 1.0 and display_scale(wide) < 0.55


def test_tick_and_legend_texts_are_measured_too():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([1, 2], [1, 2], label="tiny legend")
    ax.tick_params(labelsize=4)
    ax.legend(fontsize=4, loc="upper left", bbox_to_anchor=(1.02, 1))
    found = " ".join(small_texts(fig))
    assert "tiny legend" in found and "'1.0'" in found


def test_overlapping_annotations_are_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([0.5], [0.5])
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.annotate("first label", (0.3, 0.3))
    ax.annotate("second label", (0.31, 0.305))
    assert annotations_over_points(fig) and overlapping_texts(fig)
    fig2, ax2 = plt.subplots(figsize=(6, 4))
    ax2.scatter([0.5], [0.5])
    ax2.set(xlim=(0, 1), ylim=(0, 1))
    ax2.annotate("first label", (0.1, 0.1))
    ax2.annotate("second label", (0.6, 0.8))
    assert not annotations_over_points(fig2) and not overlapping_texts(fig2)


def test_an_annotation_over_a_marker_is_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([0.5, 0.52], [0.5, 0.5])
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.annotate("covers the second point", (0.5, 0.5), xytext=(2, -3), textcoords="offset points")
    assert any("over a marker" in p for p in annotations_over_points(fig))


def test_a_repeated_legend_is_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    for i in range(2):
        ax.scatter([i], [i], color="C0", label="one point")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    assert repeated_legend_entries(fig) == ["one point"]


def test_a_legend_over_an_axis_label_is_flagged():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], label="line")
    ax.set_xlabel("an axis label")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05))
    assert any("legend over 'an axis label'" in p for p in overlapping_texts(fig))


# ----------------------------------------------------------------------------- constructed data

FRACTIONS = [0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 1.0]
DATASETS = ["fashion_mnist", "mnist5k", "digits"]
LITE = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
ZOO = {"cnn_adv": 2, "cnn_ce": 3, "cnn_decov": 2, "cnn_dropout10": 1, "cnn_dropout30": 1, "cnn_dropout50": 2,
       "cnn_dropout80": 1, "cnn_mrl": 2, "cnn_up10": 2, "cnn_w1024": 1, "cnn_w128": 1, "cnn_w16": 1,
       "cnn_w512": 1, "cnn_w64": 1, "vit": 2}  # variant: training seeds, as data/models/
WIDTHS = {"cnn_w16": 16, "cnn_w64": 64, "cnn_w128": 128, "cnn_ce": 256, "cnn_w512": 512, "cnn_w1024": 1024}


def _acc(fraction, full, chance=0.1, mid=0.01, slope=2.5):
    """A subset curve: chance with few neurons, ``full`` with all of them (logistic in log f)."""
    s = 1 / (1 + np.exp(-slope * (np.log10(np.asarray(fraction, float)) - np.log10(mid))))
    return chance + (full - chance) * s / (1 / (1 + np.exp(slope * np.log10(mid))))


def subset_summary(models=("efficientnet_lite0",), datasets=DATASETS, fractions=FRACTIONS, d=1280):
    """:func:`diffred.curves.summarise` of a sweep: per (model, dataset, fraction) over 5 seeds."""
    rows = []
    for i, m in enumerate(models):
        for j, ds in enumerate(datasets):
            full = 0.80 + 0.06 * j - 0.02 * i
            for f in fractions:
                rows.append({"model": m, "dataset": ds, "selector": "random", "fraction": f,
                             "k": max(1, round(f * d)), "acc_mean": float(_acc(f, full, mid=0.01 * (1 + j))),
                             "acc_std": 0.03 * (1 - f) if f < 1 else np.nan, "n_seeds": 5, "full": full})
    df = pd.DataFrame(rows)
    return df.assign(ratio=df.acc_mean / df.full)


def our_dr(models=("efficientnet_lite0",), datasets=DATASETS):
    """:func:`diffred.curves.dr_table` rows (DR takes grid values)."""
    grid = [0.9, 0.8, 0.95, 0.7, 0.5]
    return pd.DataFrame([{"model": m, "dataset": ds, "selector": "random", "full_accuracy": 0.8 + 0.05 * j - 0.1 * i,
                          "dr_closest": grid[(i + j) % 5], "dr_threshold": grid[(i + j + 1) % 5]}
                         for i, m in enumerate(models) for j, ds in enumerate(datasets)])


def paper_points(delta=0.9):
    """DR(0.9) and full-layer accuracy of each of the paper's curves (as chapter 06)."""
    rows = []
    for (m, pre, up, ds), g in paper.load("subset_accuracy").groupby(["model", "pretraining", "upstream", "dataset"]):
        full = float(g[g.fraction == 1.0].acc_mean.iloc[0]) / 100
        rows.append({"model": f"{m} ({pre}, {up})", "dataset": ds, "selector": "random", "full_accuracy": full,
                     "dr": metrics.dr_closest(g.fraction, g.acc_mean / 100, full, delta),
                     "who": "paper (authors' curves)"})
    return pd.DataFrame(rows)


def difficulty_points():
    """Chapter 06's figure frame: our 6 models x 3 tasks (full-layer accuracy and DR as a
    smoke build gives them: DR on the grid, many ties) and the paper's curves."""
    acc = {"efficientnet_lite0": (0.80, 0.87, 0.93), "efficientnet_lite1": (0.79, 0.89, 0.92),
           "efficientnet_lite2": (0.80, 0.90, 0.94), "efficientnet_lite0_random": (0.61, 0.78, 0.89),
           "efficientnet_lite1_random": (0.57, 0.58, 0.82), "efficientnet_lite2_random": (0.65, 0.73, 0.83)}
    dr = {"efficientnet_lite0": (0.9, 0.9, 0.9), "efficientnet_lite1": (0.7, 0.9, 0.9),
          "efficientnet_lite2": (0.9, 0.9, 0.9), "efficientnet_lite0_random": (0.8, 0.8, 0.95),
          "efficientnet_lite1_random": (0.7, 0.9, 0.9), "efficientnet_lite2_random": (0.9, 0.8, 0.9)}
    ours = pd.DataFrame([{"model": m, "dataset": ds, "selector": "random", "full_accuracy": acc[m][j],
                          "dr_closest": dr[m][j], "dr": dr[m][j], "who": "ours"}
                         for m in acc for j, ds in enumerate(DATASETS)])
    return pd.concat([ours, paper_points()], ignore_index=True)


def versus():
    """Chapter 01: the full layer of Lite0 and of its random-weight copy."""
    return pd.DataFrame({"model": ["efficientnet_lite0", "efficientnet_lite0_random"], "dataset": "fashion_mnist",
                         "n_train": 5000, "accuracy": [0.874, 0.612]})


COST_METHODS = ["batched logistic", "batched logistic, alpha grid", "ridge", "scikit-learn per subset",
                "paper recipe per subset"]


def bench(memory=False):
    """Chapter 09's timings, one row per method (``peak_mb`` where memory was measured)."""
    df = pd.DataFrame({"method": COST_METHODS, "seconds": [0.68, 1.07, 0.12, 95.3, 4310.0],
                       "note": ["18 epochs", "alpha grid", "closed form", "lbfgs", "20 epochs timed"]})
    return df.assign(peak_mb=[412.0, 530.0, 220.0, 180.0, 960.0]) if memory else df


def cost_gaps():
    """Chapter 09: each method's accuracy minus scikit-learn's, per fraction (ridge lower at few neurons)."""
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"method": m, "fraction": f, "accuracy": 0.8,
                          "gap_points": (-3 / (1 + 200 * f) if m == "ridge" else 0.0) + rng.normal(0, 0.3)}
                         for m in COST_METHODS if m != "scikit-learn per subset" for f in FRACTIONS])


def selector_summary(d=1280):
    """Chapter 03: five selectors x 10 fractions; the PCA selectors have one seed (no std)."""
    fractions = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    shape = {"random": 0.01, "pca_top": 0.002, "pca_bottom": 0.3, "projection_gaussian": 0.011,
             "projection_authors": 0.012}
    rows = [{"model": "efficientnet_lite0", "dataset": "fashion_mnist", "selector": s, "fraction": f,
             "k": max(1, round(f * d)), "acc_mean": float(_acc(f, 0.86, mid=mid)),
             "acc_std": np.nan if s.startswith("pca") else 0.02, "n_seeds": 1 if s.startswith("pca") else 3}
            for s, mid in shape.items() for f in fractions]
    return pd.DataFrame(rows)


def cka_frame(seeds=5):
    """Chapter 04: CKA per seed (with the whole layer) and per seed pair (subset vs subset), two models."""
    rng = np.random.default_rng(2)
    rows = []
    for m, base in (("efficientnet_lite0", 0.0), ("efficientnet_lite0_random", 0.15)):
        for f in FRACTIONS[6:]:
            level = min(1.0, base + 0.2 + 0.8 * np.log10(f / 0.005) / np.log10(200))
            for comparison, n, lower in (("subset vs whole layer", seeds, 0.0),
                                         ("subset vs subset", seeds * (seeds - 1) // 2, 0.1)):
                rows += [{"model": m, "dataset": "fashion_mnist", "fraction": f, "k": round(f * 1280),
                          "comparison": comparison, "cka": float(np.clip(level - lower + rng.normal(0, 0.02), 0, 1))}
                         for _ in range(n)]
    return pd.DataFrame(rows)


def class_frame():
    """Chapter 05's heatmap frame: 10 classes x the fractions from 0.005 up."""
    fractions = [f for f in FRACTIONS if f >= 0.005]
    rows = [{"fraction": f, "k": round(f * 1280), "class": c, "acc": 0.9,
             "relative": float(_acc(f, 1.0, mid=0.003 * (1 + i)))}
            for i, c in enumerate(CLASSES) for f in fractions]
    df = pd.DataFrame(rows)
    return df.assign(drop_points=100 * (1 - df.relative))


def gini_frame():
    """Chapter 05: overall accuracy and Gini per (fraction, seed); small fractions crowd near chance."""
    rng = np.random.default_rng(3)
    rows = []
    for f in FRACTIONS:
        for seed in range(1, 6):
            acc = float(_acc(f, 0.86)) + rng.normal(0, 0.01)
            rows.append({"fraction": f, "k": max(1, round(f * 1280)), "seed": seed, "accuracy": acc,
                         "gini": max(0.02, 0.9 - acc + rng.normal(0, 0.01))})
    return pd.DataFrame(rows)


ROBUSTNESS = {"L2 strength (logistic)": ["1e-05", "0.0001", "0.001", "0.01", "0.1", "chosen per subset"],
              "probe": ["logistic", "ridge", "paper SGD recipe, 20 epochs"],
              "input resolution (n_train=1500)": ["64 px"],
              "extraction precision (n_train=1500)": ["float32", "bfloat16-autocast"],
              "training images": ["1000", "5000", "10000", "all"], "subset seeds": ["3", "5", "10"]}


def robustness_curves(choices=ROBUSTNESS):
    """Chapter 07: one curve per (choice, value), 3 seeds; the duplicate-k fraction flagged."""
    rows = []
    for c, values in choices.items():
        for v, value in enumerate(values):
            for f in FRACTIONS:
                k = max(1, round(f * 1280))
                for seed in (1, 2, 3):
                    rows.append({"selector": "random", "fraction": f, "k": k, "d": 1280, "seed": seed,
                                 "accuracy": float(_acc(f, 0.86 - 0.02 * v)), "duplicate_k": f == 0.001,
                                 "choice": c, "value": value})
    return pd.DataFrame(rows)


def _zoo_models():
    """(model, variant, training seed) of every zoo model."""
    return [(f"{v}_s{s}", v, s) for v, n in ZOO.items() for s in range(1, n + 1)]


def variant_summary(datasets=("fashion_mnist_heldout", "mnist5k", "digits")):
    """Chapter 11: the ratio curve of each of the 15 variants on each task."""
    fractions = [0.002, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0]
    rows = [{"variant": v, "dataset": ds, "fraction": f, "k": max(1, round(f * 256)), "full": 0.9,
             "ratio": float(_acc(f, 1.0, mid=0.01 + 0.003 * i))}
            for i, v in enumerate(ZOO) for ds in datasets for f in fractions]
    df = pd.DataFrame(rows)
    return df.assign(acc_mean=df.ratio * df.full)


def variant_table(datasets=("fashion_mnist_heldout", "mnist5k", "digits")):
    """Chapter 11: ``ratio_small`` and full-layer accuracy per zoo model and task (23 models)."""
    rng = np.random.default_rng(4)
    rows = [{"model": name, "dataset": ds, "selector": "random", "variant": v, "train_seed": s,
             "width": WIDTHS.get(v, 256), "full_accuracy": 0.85 + 0.04 * j + rng.normal(0, 0.01),
             "dr_closest": 0.8, "ratio_small": 0.55 + 0.1 * j + rng.normal(0, 0.03)}
            for name, v, s in _zoo_models() for j, ds in enumerate(datasets)]
    return pd.DataFrame(rows)


def layer_tables():
    """Chapter 12: per-layer tables of Lite0 (8 layers) and a zoo CNN (5 layers)."""

    def one(model, layers, widths, acc, ratio, dr):
        return pd.DataFrame({"layer": layers, "dataset": "fashion_mnist", "selector": "random", "full_accuracy": acc,
                             "dr_closest": dr, "ratio_small": ratio, "model": model,
                             "depth": range(len(layers)), "width": widths})
    lite = one("efficientnet_lite0", [f"blocks.{i}" for i in range(7)] + ["penultimate"],
               [16, 24, 40, 80, 112, 192, 320, 1280], [0.48, 0.67, 0.73, 0.77, 0.82, 0.82, 0.82, 0.80],
               [0.52, 0.48, 0.55, 0.59, 0.60, 0.68, 0.74, 0.84], [0.5, 0.5, 0.5, 0.8, 0.8, 0.8, 0.9, 0.9])
    zoo = one("cnn_ce_s1", ["stage1", "stage2", "stage3", "stage4", "penultimate"], [16, 32, 64, 128, 256],
              [0.74, 0.83, 0.87, 0.91, 0.86], [0.63, 0.64, 0.66, 0.69, 0.69], [0.5, 0.5, 0.5, 0.8, 0.8])
    return pd.concat([lite, zoo], ignore_index=True)


def spread_frames(n_subsets=200):
    """Chapter 13: 200 random subsets at each of 4 fractions plus the full layer, and their summary."""
    rng = np.random.default_rng(5)
    fractions = [0.01, 0.05, 0.1, 0.2]
    rows = [{"selector": "random", "fraction": f, "k": round(f * 1280), "seed": s,
             "accuracy": float(_acc(f, 0.82)) + rng.normal(0, 0.03 * (1 - f))}
            for f in fractions for s in range(1, n_subsets + 1)]
    rows.append({"selector": "full", "fraction": 1.0, "k": 1280, "seed": np.nan, "accuracy": 0.818})
    spread = pd.DataFrame(rows)
    s = spread[spread.selector == "random"].groupby(["fraction", "k"], as_index=False).accuracy.agg(["mean", "min"])
    summary = pd.DataFrame({"fraction": s.fraction, "k": s.k, "mean": 100 * s["mean"], "worst": 100 * s["min"],
                            "full": 81.8, "paper_sd": [np.nan, 2.1, 1.2, 0.6]})
    return spread, summary


def importance_gaps():
    """Chapter 13: accuracy (%) of important, random and remaining neurons per fraction and ranking."""
    rows = [{"fraction": f, "k": round(f * 1280), "ranking": r, "top": 58.8 + 20 * f, "bottom": 12.8 + 30 * f + 10 * i,
             "without_top": 80.4, "random": 43.6 + 25 * f, "without_random": 80.4}
            for f in (0.01, 0.05, 0.1, 0.2) for i, r in enumerate(("f_stat", "weight_norm"))]
    return pd.DataFrame(rows)


def predictor_table():
    """Chapter 13: effective rank share, DR and gap of 42 encoders and layers in three groups."""
    rng = np.random.default_rng(6)
    groups = [("ImageNet Lite (ch. 06)", 6), ("zoo (ch. 11)", 23), ("layers (ch. 12)", 13)]
    rows = [{"group": g, "encoder": f"{g[:4]}{i}", "erank_share": float(10 ** rng.uniform(-2, -0.6)),
             "dr": float(rng.uniform(0.4, 0.95)), "gap20": float(rng.uniform(2, 30))}
            for g, n in groups for i in range(n)]
    return pd.DataFrame(rows)


def difficulty_tasks():
    """Chapter 13: DR per task along the class-count and the shots axes, three draws each."""
    rng = np.random.default_rng(7)
    rows = [{"axis": "classes", "classes": c, "shots": 100, "draw": d, "dr": 0.99 - 0.005 * c + rng.normal(0, 0.01)}
            for c in (2, 5, 10, 20) for d in range(3)]
    rows += [{"axis": "shots", "classes": 10, "shots": s, "draw": d,
              "dr": 0.9 + 0.01 * np.log10(s) + rng.normal(0, 0.01)} for s in (10, 100, 1000) for d in range(3)]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- every figure

CASES = {
    "subset_curves": lambda: plots.subset_curves(subset_summary(), paper.subset_curves()),
    "subset_curves, no paper, two models": lambda: plots.subset_curves(
        subset_summary(("built-in efficientnet_lite0", "/home/me/models/my_encoder.pt"), ["fashion_mnist_30_15"])),
    "dr_comparison": lambda: plots.dr_comparison(our_dr(), paper.load("diffused_redundancy_table")),
    "pretrained_vs_random": lambda: plots.pretrained_vs_random(versus()),
    "cost_bars": lambda: plots.cost_bars(bench()),
    "cost_bars, with memory": lambda: plots.cost_bars(bench(memory=True)),
    "accuracy_gap": lambda: plots.accuracy_gap(cost_gaps()),
    "selector_curves": lambda: plots.selector_curves(selector_summary()),
    "cka_curves": lambda: plots.cka_curves(cka_frame(), paper.load("cka_pairwise")),
    "class_heatmap": lambda: plots.class_heatmap(class_frame()),
    "gini_vs_accuracy": lambda: plots.gini_vs_accuracy(gini_frame()),
    "dr_vs_difficulty": lambda: plots.dr_vs_difficulty(difficulty_points()),
    "robustness_curves": lambda: plots.robustness_curves(robustness_curves()),
    "variant_curves": lambda: plots.variant_curves(variant_summary()),
    "variant_curves, one task": lambda: plots.variant_curves(variant_summary(["digits"])),
    "variant_redundancy": lambda: plots.variant_redundancy(variant_table()),
    "width_effect": lambda: plots.width_effect(variant_table().pipe(lambda t: t[t.variant.isin(list(WIDTHS))])),
    "layer_redundancy": lambda: plots.layer_redundancy(layer_tables()),
    "subset_spread": lambda: plots.subset_spread(*spread_frames()),
    "importance_bars": lambda: plots.importance_bars(importance_gaps().query("fraction == 0.05")),
    "predictor_scatter": lambda: plots.predictor_scatter(predictor_table()),
    "difficulty_axes": lambda: plots.difficulty_axes(difficulty_tasks()),
}


def plot_functions() -> set[str]:
    """The public figure functions of :mod:`diffred.plots`: every public function it holds
    (listed in ``__all__`` or not) that a diffred module defines, less the helpers."""
    names = set(getattr(plots, "__all__", ())) | {n for n in dir(plots) if not n.startswith("_")}
    return {n for n in names if inspect.isfunction(getattr(plots, n)) and n not in HELPERS
            and getattr(plots, n).__module__.startswith("diffred")}


def test_every_plot_function_has_a_case():
    covered = {name.split(",")[0] for name in CASES}
    assert plot_functions() - covered == set(), "add a case to CASES for each new plot function"
    assert covered - plot_functions() == set(), "a case names a function plots does not export"


@pytest.mark.parametrize("case", list(CASES))
def test_figure_is_legible(case):
    fig = CASES[case]()
    assert fig.dpi == BOOK_DPI
    found = {k: v for k, v in problems(fig).items() if v}
    assert not found, f"{case}: {found}"

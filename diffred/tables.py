"""Tables as the book shows them.

A chapter's table is a tidy DataFrame from its analysis; :func:`show` turns it into what a
reader sees: readable headers with their units (:data:`HEADERS`, never a raw column name
such as ``dr_0_9``), datasets, selectors and built-in models by their prose names, ``—``
where a value is missing, ``yes``/``no`` for booleans, numbers rounded as the prose rounds
them (accuracies to three decimals, points to one, p-values to two significant digits),
and the index as ordinary columns. The HTML carries each cell's header as ``data-label``:
on a narrow screen ``_css/diffred.css`` lays every row out as a card of "header: value"
lines, so a phone shows the numbers; on a wide screen a table wider than the page column
scrolls sideways inside a box whose shaded edge says there is more.
"""

from __future__ import annotations

import html
import math
import numbers
import re

import pandas as pd

from .names import DATASET_WORDS

MISSING = "—"
#: Readable headers (with units) of the columns the analyses produce.
HEADERS = {
    "acc": "accuracy", "acc_mean": "accuracy (mean)", "acc_std": "accuracy (std)", "accuracy": "accuracy",
    "full": "full-layer accuracy", "full_accuracy": "full-layer accuracy",
    "at_20": "accuracy at 20%", "std_20": "std at 20%", "gap_points": "gap (points)",
    "claim_holds": "claim 1 holds", "relative": "relative accuracy", "drop_points": "drop (points)",
    "dr": "DR(0.9), interpolated", "dr_interp": "DR(0.9), interpolated", "dr_grid": "DR(0.9), grid",
    "dr_closest": "DR(0.9), closest grid point", "dr_threshold": "DR(0.9), threshold", "dr_0_9": "DR(0.9)",
    "dr_low": "DR(0.9), 95% interval low", "dr_high": "DR(0.9), 95% interval high",
    "ratio_small": "mean ratio to full layer at 1-20%", "gap20": "gap at 20% (points)",
    "cka": "CKA", "cka_low": "CKA, interval low", "cka_high": "CKA, interval high",
    "baseline": "overlap-only baseline", "excess": "CKA above baseline",
    "excess_low": "above baseline, interval low", "excess_high": "above baseline, interval high",
    "k": "neurons k", "fraction": "fraction", "n_subsets": "subsets", "n_seeds": "seeds", "n": "n",
    "rho": "Spearman ρ", "p_value": "p-value", "p": "p-value",
    "effective_rank": "effective rank", "participation_ratio": "participation ratio",
    "erank_share": "effective rank / width", "pr_share": "participation ratio / width",
    "constant_share": "constant neurons (share)", "dead_share": "dead neurons (share)",
    "n_train": "training images", "n_test": "test images", "shots": "images per class", "classes": "classes",
    "train_seed": "training seed", "arch": "architecture", "upstream_fraction": "upstream data share",
    "upstream_accuracy": "upstream accuracy", "robust_accuracy": "robust accuracy",
    "train_seconds": "training time (s)", "variant_mean": "tested (mean)", "reference_mean": "compared with (mean)",
    "call": "direction per task (descriptive, not the verdict)",
    "seed_spread": "spread over seeds", "seconds": "seconds",
}
#: Prose names of the values in label columns (datasets, selectors) and of column levels.
WORDS = {
    **DATASET_WORDS, "fashion_mnist_heldout": "Fashion-MNIST 5-9",  # short, for a column header
    "pca_top": "top principal components", "pca_bottom": "bottom principal components",
    "projection_gaussian": "Gaussian random projection", "projection_authors": "authors' positive random projection",
    "first": "first k", "f_stat": "univariate F", "weight_norm": "probe weight norm",
}
#: Columns whose values are names (a dataset, a selector): shown by :data:`WORDS`.
LABEL_COLUMNS = {"dataset", "selector", "target", "predictor", "comparison", "ranking"}
#: Columns rounded to one decimal (points, percentages, seconds) or to two significant digits.
ONE_DECIMAL = {"gap_points", "drop_points", "gap20", "seconds", "train_seconds"}
P_VALUES = {"p_value", "p"}
#: A cell that shows a number (right-aligned, digits under digits); any other text is left-aligned.
NUMERIC = re.compile(r"^[<>±]?\s*[-+−]?[\d,]*\.?\d+(e[-+]\d+)?%?$")


def header(name) -> str:
    """The readable header of a column; any other name as it is (a model's or a user's
    dataset's identifier is what the reader types to re-run it)."""
    text = "" if name is None else str(name)
    return HEADERS.get(text, WORDS.get(text, text))


#: Headers ending in one of these hold percentages, points, millions or seconds: one decimal.
ONE_DECIMAL_UNITS = ("(%)", "(points)", "(M)", "(s)")


def _number(value: float, column: str, digits: int) -> str:
    if column in P_VALUES:
        return "< 0.001" if value < 0.001 else f"{value:.2g}"
    if column == "fraction":
        return f"{value:g}"
    if column in ONE_DECIMAL or header(column).endswith(ONE_DECIMAL_UNITS):
        return f"{value:,.1f}"
    if value != 0 and abs(value) < 0.5 * 10 ** -digits:  # would print as 0.000: keep two digits
        return f"{value:.1e}"
    return f"{value:,.{digits}f}"


def cell(value, column: str = "", digits: int = 3, whole: bool = False) -> str:
    """One value as the table shows it; ``whole``: the column holds whole numbers only."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool) or (hasattr(value, "dtype") and getattr(value, "dtype", None) == bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral) or (whole and isinstance(value, numbers.Real)):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return _number(float(value), column, digits)
    text = str(value)
    return header(text) if column in LABEL_COLUMNS else text  # a label cell may name a column


def _whole(series: pd.Series) -> bool:
    values = pd.to_numeric(series, errors="coerce").dropna()
    numeric = series.dtype.kind in "if" and series.dtype != bool
    return numeric and not values.empty and bool((values == values.round()).all()) and series.name != "fraction"


def _flat_columns(df: pd.DataFrame) -> list[tuple[str, ...]]:
    """Every column as a tuple of readable header levels (one level for a plain frame)."""
    levels = df.columns.nlevels
    return [tuple(header(x) for x in (c if levels > 1 else (c,))) for c in df.columns]


def tidy(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``df`` as strings, as the reader sees it: the index as columns, readable headers
    (a MultiIndex joined by " · "), values formatted by :func:`cell`."""
    frame = df.reset_index() if _has_index(df) else df.reset_index(drop=True)
    out = {}
    for pos, (name, levels) in enumerate(zip(frame.columns, _flat_columns(frame))):
        key = str(name[0] if isinstance(name, tuple) else name)  # a pivot's value name is its top level
        series = frame.iloc[:, pos]
        whole = _whole(series)
        label = " · ".join(x for x in levels if x)
        out[label or f"column {pos + 1}"] = [cell(v, key, digits, whole) for v in series]
    return pd.DataFrame(out)


def _has_index(df: pd.DataFrame) -> bool:
    return any(n is not None for n in df.index.names)


def _num(text: str) -> str:
    return ' class="num"' if NUMERIC.match(text) or text == MISSING else ""


class BookTable:
    """A table for a chapter's output: HTML with cards on a phone, plain text elsewhere."""

    def __init__(self, frame: pd.DataFrame, caption: str | None = None):
        self.frame, self.caption = frame, caption

    def _repr_html_(self) -> str:
        cols = list(self.frame.columns)
        head = "".join(f"<th scope=\"col\">{html.escape(c)}</th>" for c in cols)
        rows = "".join(
            "<tr>" + "".join(f"<td{_num(v)} data-label=\"{html.escape(c)}\">{html.escape(v)}</td>" for c, v in zip(cols, r))
            + "</tr>" for r in self.frame.itertuples(index=False))
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        label = html.escape(self.caption or "table")
        return (f"<div class=\"diffred-table-scroll\" role=\"region\" tabindex=\"0\" aria-label=\"{label}\">"
                f"<table class=\"diffred-table\">{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{rows}</tbody></table></div>")

    def __repr__(self) -> str:
        return (f"{self.caption}\n" if self.caption else "") + self.frame.to_string(index=False)


def show(df: pd.DataFrame, caption: str | None = None, digits: int = 3) -> BookTable:
    """The table a chapter displays for ``df`` (see the module's docstring); ``digits``:
    decimals of the numbers that have no rule of their own."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"tables.show needs a pandas DataFrame, got {type(df).__name__}")
    return BookTable(tidy(df, digits), caption)

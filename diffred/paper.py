"""The paper's own numbers (``data/paper/*.csv``) and claim checks against ours.

The CSVs are copied from the project's reference notes with a ``provenance`` column:
P = read in the paper text, N = printed output of an authors' analysis notebook,
D = derived from N with the authors' DR definition. See ``data/paper/SOURCE.md``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import PROJECT_ROOT

PAPER_DIR = PROJECT_ROOT / "data" / "paper"
TABLES = ("subset_accuracy", "diffused_redundancy_table", "cka_pairwise", "harder_tasks")
PROVENANCE = {"P": "paper text", "N": "authors' notebook output", "D": "derived from N (authors' DR definition)"}


def load(table: str) -> pd.DataFrame:
    """One reference table by name (comment lines starting with ``#`` skipped)."""
    if table not in TABLES:
        raise ValueError(f"unknown paper table {table!r}; choose from {TABLES}")
    path = Path(PAPER_DIR) / f"{table}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; it ships with the repository (data/paper/)")
    return pd.read_csv(path, comment="#")


def subset_curves(dataset: str | None = None, model: str = "resnet50", pretraining: str = "standard") -> pd.DataFrame:
    """The paper's accuracy-vs-fraction curves, accuracy as a share (0-1)."""
    df = load("subset_accuracy")
    df = df[(df.model == model) & (df.pretraining == pretraining)]
    if dataset is not None:
        df = df[df.dataset == dataset]
    df = df.assign(accuracy=df.acc_mean / 100.0, accuracy_std=df.acc_std / 100.0)
    return df.reset_index(drop=True)

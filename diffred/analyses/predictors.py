"""What predicts how many neurons a task needs (chapter 13, items 3 and 4 of issue 18).

* Label-free predictors of a layer's redundancy, from its features alone:
  :func:`~diffred.metrics.effective_rank` (exp of the entropy of the normalised covariance eigenvalues, the
  measure RankMe applies to embeddings; Garrido et al. 2023), :func:`~diffred.metrics.participation_ratio`
  and :func:`constant_share` (dead or constant neurons), tabulated per encoder by
  :func:`layer_predictors` beside the measured DR(0.9) and the gap at 20% of neurons.
* Task difficulty held under control (paper claim 2, "harder tasks need more neurons"):
  :func:`class_tasks` draws tasks of 2-20 classes and 10-1,000 training images per class
  from the SAME encoder's features; :func:`task_redundancy` measures each task's DR.

Plain functions on arrays and tidy frames; randomness through explicit seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics, stats, verdicts, zoo
from ..config import RunConfig
from ..curves import Curve, curve_from_features, feature_digests, features_of, subset_curve
from ..metrics import CONSTANT_STD, effective_rank, participation_ratio
from ..models import layer_names

#: Fractions probed per task of the task-difficulty study, and their subset seeds.
TASK_FRACTIONS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
DELTA = 0.9
#: The fraction of neurons at which a curve's accuracy gap (``gap20``) is read.
GAP_FRACTION = 0.2


def constant_share(X) -> tuple[float, float]:
    """``(constant, dead)``: the share of neurons of ``X (n, d)`` that are constant over the
    images (std at most :data:`CONSTANT_STD`), and of those that are always 0 (dead ReLUs)."""
    X = np.asarray(X, np.float64)
    return float((X.std(0) <= CONSTANT_STD).mean()), float((np.abs(X).max(0) <= CONSTANT_STD).mean())


def predictor_row(X) -> dict:
    """Every label-free predictor of one layer's training features ``X (n, d)``."""
    d = X.shape[1]
    er, pr = effective_rank(X), participation_ratio(X)
    const, dead = constant_share(X)
    return {"width": d, "effective_rank": er, "participation_ratio": pr, "erank_share": er / d,
            "pr_share": pr / d, "constant_share": const, "dead_share": dead}


def curve_measures(curve: pd.DataFrame, fraction: float = GAP_FRACTION) -> dict:
    """DR(0.9) read off the curve by interpolation, the grid DR, and the gap (points) at
    ``fraction`` of neurons, from the random-subset rows of one curve."""
    rows = curve[curve.selector == "random"] if "selector" in curve else curve
    rows = rows[~rows.duplicate_k.astype(bool)] if "duplicate_k" in rows else rows
    s = rows.groupby("fraction").accuracy.mean()
    full = float(s.loc[1.0])
    at = s[np.isclose(s.index, fraction)]
    return {"full_accuracy": full, "dr": metrics.dr_interpolated(s.index.to_numpy(), s.to_numpy(), full, DELTA),
            "dr_grid": metrics.dr_closest(s.index.to_numpy(), s.to_numpy(), full, DELTA),
            "gap20": 100 * (full - float(at.iloc[0])) if len(at) else np.nan}


def _take(y, classes, per_class, rng):
    """Indices of ``per_class`` random images of each of ``classes`` (all if fewer)."""
    out = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(out))


def class_tasks(y_train, y_test, n_classes=(2, 5, 10), shots=(10, 100, 1000), base_shots: int = 100,
                n_draws: int = 3, random_state: int = 0) -> list[dict]:
    """The tasks of the difficulty study, as index sets into one encoder's features: along
    the class-count axis, ``n_draws`` random class subsets of each size in ``n_classes``
    (one draw when it takes every class) at ``base_shots`` training images per class; along
    the shots axis, every class at each of ``shots`` images per class (``n_draws`` image
    draws each; shots above the smallest class's count are dropped). The test images of a
    task are the test images of its classes, the same number per class. Each task: ``axis``,
    ``classes``, ``shots``, ``draw``, ``train`` and ``test`` indices."""
    rng = np.random.default_rng(random_state)
    labels = np.unique(y_train)
    test_n = int(min((y_test == c).sum() for c in labels))
    have = int(min((y_train == c).sum() for c in labels))
    tasks = []
    for m in n_classes:
        for draw in range(1 if m >= len(labels) else n_draws):
            cls = np.sort(rng.choice(labels, min(m, len(labels)), replace=False))
            tasks.append({"axis": "classes", "classes": len(cls), "shots": min(base_shots, have), "draw": draw,
                          "train": _take(y_train, cls, base_shots, rng), "test": _take(y_test, cls, test_n, rng)})
    for s in [s for s in shots if s <= have]:
        for draw in range(n_draws):
            tasks.append({"axis": "shots", "classes": len(labels), "shots": s, "draw": draw,
                          "train": _take(y_train, labels, s, rng), "test": _take(y_test, labels, test_n, rng)})
    return tasks


def joined(a, b):
    """Two labelled feature sets ``(X, y)`` as one task: ``b``'s labels shifted past ``a``'s."""
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1] + int(a[1].max()) + 1])


def task_redundancy(train, test, tasks, seeds=(1, 2, 3), fractions=TASK_FRACTIONS, device="auto") -> pd.DataFrame:
    """One row per task: its axis, classes, shots and draw, full-layer accuracy, DR(0.9)
    (interpolated and grid) and the gap at 20%, from random-subset curves on
    ``train = (X, y)`` and ``test = (X, y)`` restricted to the task's images."""
    rows = []
    for t in tasks:
        c = curve_from_features(train[0][t["train"]], train[1][t["train"]], test[0][t["test"]],
                                test[1][t["test"]], fractions, seeds, device=device)
        rows.append({k: t[k] for k in ("axis", "classes", "shots", "draw")} | curve_measures(c)
                    | {"n_train": len(t["train"]), "n_test": len(t["test"])})
    return pd.DataFrame(rows)


CLASS_RULE = verdicts.correlation_rule(
    "harder tasks need more neurons (more classes)", "Spearman's rho between the number of classes and DR(0.9)",
    expected_sign=-1)
SHOTS_RULE = verdicts.correlation_rule(
    "harder tasks need more neurons (fewer training images)",
    "Spearman's rho between the training images per class and DR(0.9)", expected_sign=+1)
PREDICTOR_RULE = verdicts.correlation_rule(
    "a label-free predictor of DR", "Spearman's rho between the effective rank per neuron (effective rank / "
    "width) and DR(0.9)", expected_sign=-1)
GAP_RULE = verdicts.correlation_rule(
    "a label-free predictor of the gap at 20%", "Spearman's rho between the effective rank per neuron and the "
    "gap at 20% of neurons", expected_sign=+1)
#: |rho| from which a predictor is strong enough to shortlist k without labels.
STRONG_RHO = 0.7
PREDICTORS = ("erank_share", "pr_share", "constant_share")


def _correlate(rule, x, y) -> verdicts.Verdict:
    ok = np.isfinite(np.asarray(x, float)) & np.isfinite(np.asarray(y, float))
    x, y = np.asarray(x, float)[ok], np.asarray(y, float)[ok]
    if x.size < 2:
        return verdicts.Verdict(verdicts.UNDECIDED, float("nan"), "fewer than 2 values: too few to decide.",
                                n=int(x.size), rule=rule.statement)
    rho, p = stats.permutation_p_correlation(x, y)
    return rule.judge(rho, p, n=int(x.size))


def axis_verdicts(tasks: pd.DataFrame) -> dict:
    """Claim 2 along each axis of the difficulty study (rows of :func:`task_redundancy`):
    ``classes`` (:data:`CLASS_RULE`) and ``shots`` (:data:`SHOTS_RULE`)."""
    c, s = tasks[tasks.axis == "classes"], tasks[tasks.axis == "shots"]
    return {"classes": _correlate(CLASS_RULE, c.classes, c.dr), "shots": _correlate(SHOTS_RULE, s.shots, s.dr)}


def predictor_verdicts(table: pd.DataFrame) -> dict:
    """:data:`PREDICTOR_RULE` (DR) and :data:`GAP_RULE` (gap at 20%) over the encoders."""
    return {"dr": _correlate(PREDICTOR_RULE, table.erank_share, table.dr),
            "gap": _correlate(GAP_RULE, table.erank_share, table.gap20)}


def correlation_table(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho and its permutation p-value of every predictor against DR and the gap."""
    rows = []
    for pred in PREDICTORS:
        for target in ("dr", "gap20"):
            ok = table[[pred, target]].dropna()
            rho, p = stats.permutation_p_correlation(ok[pred], ok[target]) if len(ok) > 1 else (np.nan, 1.0)
            rows.append({"predictor": pred, "target": target, "rho": rho, "p_value": p, "n": len(ok)})
    return pd.DataFrame(rows)


def practical_sentence(v: verdicts.Verdict) -> str:
    """Whether a practitioner could choose k without labels, from the DR verdict."""
    if v.outcome == verdicts.HOLDS and abs(v.statistic) >= STRONG_RHO:
        return ("the effective rank orders these encoders by DR closely enough to shortlist k without labels, "
                "though a few labelled images are still needed to confirm the accuracy")
    if v.outcome == verdicts.HOLDS:
        return (f"the effective rank goes with DR as expected but |rho| is below {STRONG_RHO}: it ranks encoders "
                "roughly, not closely enough to choose k without labels")
    return "the effective rank does not predict DR well enough to choose k without labels"


#: The encoders of the book, as their chapters configure them (so the curves are cache hits).
LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite0_random")
CH06 = {"dataset": "fashion_mnist", "n_train": 3000, "n_test": 2000, "image_size": 112}
CH11 = {"dataset": "fashion_mnist_heldout", "n_train": 5000, "n_test": None, "image_size": None,
        "fractions": (0.002, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0), "seeds": (1, 2)}
CH12 = {"n_train": 3000, "n_test": 2000, "fractions": (0.002, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0),
        "seeds": (1, 2, 3)}
CH12_MODELS = (("efficientnet_lite0", "fashion_mnist", 64), ("cnn_ce_s1", "fashion_mnist_heldout", None))


def encoder_entries(lite=LITE, zoo_models=None, layers: bool = True) -> list[dict]:
    """One entry per encoder (and chapter-12 layer): ``group``, ``label``, the
    :class:`RunConfig` and the selector its chapter probes it with."""
    out = [{"group": "ImageNet Lite (ch. 06)", "label": m, "selector": "random",
            "cfg": RunConfig(model=m, **CH06).scaled()} for m in lite]
    for m in zoo_models if zoo_models is not None else zoo.zoo_names():
        sel = ["random", "first"] if m.startswith(("cnn_mrl", "cnn_ce")) else "random"
        out.append({"group": "zoo (ch. 11)", "label": m, "selector": sel, "cfg": RunConfig(model=m, **CH11).scaled()})
    for model, ds, size in CH12_MODELS if layers else ():
        for layer in layer_names(model):
            cfg = RunConfig(model=model, dataset=ds, layer=layer, image_size=size, **CH12).scaled()
            out.append({"group": "layers (ch. 12)", "label": f"{model} {layer}", "selector": "random", "cfg": cfg})
    return out


def entry_spec(entries) -> list:
    """What determines the predictor table: every entry's feature digests and curve file."""
    return [[e["label"], feature_digests(e["cfg"]), Curve(e["cfg"], e["selector"]).path.name] for e in entries]


def predictor_table(entries) -> pd.DataFrame:
    """One row per entry: its label-free predictors (training features) beside its DR(0.9)
    and gap at 20% (its chapter's random-subset curve)."""
    rows = []
    for e in entries:
        tr, _ = features_of(e["cfg"])
        curve = subset_curve(e["cfg"], e["selector"])
        rows.append({"group": e["group"], "encoder": e["label"], **predictor_row(tr.X), **curve_measures(curve)})
    return pd.DataFrame(rows)


def difficulty_study(fm_cfg: RunConfig, mnist_cfg: RunConfig, n_classes=(2, 5, 10), shots=(10, 100, 1000),
                     base_shots: int = 100, n_draws: int = 3, seeds=(1, 2, 3), random_state: int = 0) -> pd.DataFrame:
    """:func:`task_redundancy` of the class-count and shots tasks of Fashion-MNIST
    (:func:`class_tasks`) and of the 20-class task joining Fashion-MNIST and MNIST-5k at
    ``base_shots`` images per class, all on the same encoder's features."""
    fm_tr, fm_te = features_of(fm_cfg)
    train, test = (fm_tr.X, fm_tr.y), (fm_te.X, fm_te.y)
    tasks = class_tasks(fm_tr.y, fm_te.y, n_classes, shots, base_shots, n_draws, random_state)
    out = [task_redundancy(train, test, tasks, seeds, device=fm_cfg.device)]
    if mnist_cfg is not None:
        mn_tr, mn_te = features_of(mnist_cfg)
        jtr, jte = joined(train, (mn_tr.X, mn_tr.y)), joined(test, (mn_te.X, mn_te.y))
        both = class_tasks(jtr[1], jte[1], (len(np.unique(jtr[1])),), (), base_shots, 1, random_state)
        out.append(task_redundancy(jtr, jte, both, seeds, device=fm_cfg.device).assign(joined=True))
    return pd.concat(out, ignore_index=True).fillna({"joined": False})

"""The subset curve: probe accuracy against the share of neurons kept (paper Fig. 1).

What every chapter builds on:

* :func:`curve_from_features` — probe every (fraction, seed) member of a selection at once;
  one tidy row per member (``k``, test ``accuracy``, per-class ``acc_<class>`` columns).
* :func:`subset_curve` — the same on the cached features of a :class:`RunConfig`, the
  result cached too (CSV + the run config as JSON) under a key made from the feature keys,
  the code that computes results and every probe setting, so a warm build recomputes nothing.
* :func:`summarise` — mean and std over seeds per fraction, with the ratio to the full layer.
* :func:`dr_table` — claim 3 (Table 1): DR(delta) in both definitions.
* :func:`claim_within` — the headline "20% of neurons within 5 points of the full layer".
* :func:`cached_frames` — any analysis's DataFrames, cached under a spec.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics
from .config import SMOKE_LIMITS, RunConfig, scale
from .device import compute_dtype, resolve_device, resolve_runtime
from .features import Features, feature_key, load_features
from .models import Encoder, load_encoder
from .probes import LogisticProbe, RidgeProbe, paper_recipe
from .store import atomic_write_text, canonical, json_digest, log_cache, result_path
from .subsets import Selection, first_k, principal_components, random_projections, random_subsets

PROBES = ("logistic", "ridge", "paper")
SELECTORS = ("random", "first", "pca_top", "pca_bottom", "projection_gaussian", "projection_authors")
RESULTS_VERSION = 2
#: The modules whose code determines a cached result (features are keyed separately).
RESULT_CODE = ("probes", "subsets", "metrics", "curves")


def make_probe(name: str, random_state: int = 0, device: str = "auto"):
    """A probe by name: ``logistic`` (batched, default), ``ridge`` (closed form), ``paper``
    (the paper's SGD recipe on cached features)."""
    if name == "logistic":
        return LogisticProbe(random_state=random_state, device=device)
    if name == "ridge":
        return RidgeProbe(random_state=random_state, device=device)
    if name == "paper":
        return paper_recipe(random_state=random_state, device=device)
    raise ValueError(f"unknown probe {name!r}; choose one of {PROBES}")


def make_selection(selector: str, X_train: np.ndarray, fractions, seeds) -> Selection:
    """The members to probe for one selector ("reduce d features to k", whether by picking
    neurons or by projecting); PCA is fitted on the training features only."""
    d = X_train.shape[1]
    if selector == "random":
        return random_subsets(d, fractions, seeds)
    if selector == "first":
        return first_k(d, fractions)
    if selector in ("pca_top", "pca_bottom"):
        return principal_components(X_train, fractions, bottom=selector == "pca_bottom")
    if selector.startswith("projection_"):
        return random_projections(d, fractions, seeds, kind=selector.split("_", 1)[1])
    raise ValueError(f"unknown selector {selector!r}; choose one of {SELECTORS}")


def _member_rows(sel: Selection, est, pred, y_test, labels, names, d) -> list[dict]:
    rows = []
    for i, m in enumerate(sel.members):
        pc = metrics.per_class_accuracy(np.searchsorted(labels, y_test), np.searchsorted(labels, pred[i]),
                                        len(labels))
        row = {"selector": m.selector, "fraction": m.fraction, "k": m.k, "d": d, "seed": m.seed,
               "accuracy": metrics.accuracy(y_test, pred[i]),
               "val_accuracy": float(est.val_accuracy_[i]), "alpha": float(est.alpha_[i])}
        row.update({f"acc_{c}": float(v) for c, v in zip(names, pc)})
        rows.append(row)
    return rows


def curve_from_features(X_train, y_train, X_test, y_test, fractions, seeds, selector="random",
                        probe="logistic", classes=None, device="auto") -> pd.DataFrame:
    """Probe every (fraction, seed) subset at once; one tidy row per member with ``k``,
    test ``accuracy``, validation accuracy, the chosen L2 strength, and per-class accuracy
    columns ``acc_<class>``. Rows whose ``k`` repeats a larger fraction's ``k`` in the same
    seed (small fractions of narrow layers) are flagged ``duplicate_k``."""
    X_train, X_test = np.asarray(X_train, np.float32), np.asarray(X_test, np.float32)
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"train features have {X_train.shape[1]} columns, test {X_test.shape[1]}")
    d = X_train.shape[1]
    selectors = [selector] if isinstance(selector, str) else list(selector)
    sel = make_selection(selectors[0], X_train, fractions, seeds)
    for other in selectors[1:]:
        sel = sel + make_selection(other, X_train, fractions, seeds)
    est = make_probe(probe, device=device) if isinstance(probe, str) else probe
    t0 = time.perf_counter()
    est.fit(X_train, y_train, sel)
    fit_s = time.perf_counter() - t0
    pred = est.predict(X_test)
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    names = list(classes) if classes is not None and len(classes) == len(labels) else [str(c) for c in labels]
    df = pd.DataFrame(_member_rows(sel, est, pred, y_test, labels, names, d))
    df["duplicate_k"] = (df.groupby(["selector", "seed", "k"], dropna=False)["fraction"].transform("max")
                         != df["fraction"])
    df.attrs["fit_seconds"] = fit_s
    return df


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the library modules that compute results (read once per process): a change
    to any of them invalidates every cached result."""
    h = hashlib.sha256()
    for mod in RESULT_CODE:
        path = Path(__file__).parent / f"{mod}.py"
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def probe_spec(device: str = "auto") -> dict:
    """Every probe's parameters and the compute dtype (computed once per process)."""
    spec = {p: sorted((k, repr(v)) for k, v in make_probe(p).get_params().items()) for p in PROBES}
    spec["compute_dtype"] = str(compute_dtype("auto", resolve_device(device)))
    return spec


class Curve:
    """One subset-curve run: its config, selector, encoder and cache location, resolved once."""

    def __init__(self, cfg: RunConfig, selector="random"):
        self.cfg, self.selector = cfg, selector
        self.encoder: Encoder = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
        self.keys = [feature_key(self.encoder, cfg.dataset, s, n, cfg.data_seed, cfg.image_size, cfg.precision,
                                 cfg.device, resolve_runtime(cfg.runtime, cfg.device)) for s, n in (("train", cfg.n_train), ("test", cfg.n_test))]
        name = selector if isinstance(selector, str) else "+".join(selector)
        spec = {"v": RESULTS_VERSION, "code": code_digest(), "features": [json_digest(k) for k in self.keys],
                "fractions": cfg.fractions, "seeds": cfg.seeds, "selector": name, "probe": cfg.probe,
                "probe_params": probe_spec(cfg.device)}
        self.path = result_path("curve", (cfg.model, cfg.dataset, name, cfg.probe), spec)

    def cached(self) -> pd.DataFrame | None:
        """The cached result, or ``None`` if absent, unreadable or written for another config."""
        if not self.path.exists():
            return None
        try:
            df = pd.read_csv(self.path)
            meta = json.loads(self.path.with_suffix(".json").read_text())
            if {"accuracy", "fraction", "k", "seed"} <= set(df.columns) and meta["config"] == canonical(self.cfg.to_dict()):
                df.attrs["fit_seconds"] = meta.get("fit_seconds")
                return df
        except Exception:
            pass  # unreadable or mismatched: the caller recomputes
        return None

    def features(self, progress: bool = True) -> tuple[Features, Features]:
        return (load_features(self.cfg, "train", progress=progress, encoder=self.encoder),
                load_features(self.cfg, "test", progress=progress, encoder=self.encoder))

    def compute(self, progress: bool = True) -> pd.DataFrame:
        tr, te = self.features(progress)
        cfg = self.cfg
        df = curve_from_features(tr.X, tr.y, te.X, te.y, cfg.fractions, cfg.seeds, self.selector, cfg.probe,
                                 tr.classes, cfg.device)
        df.insert(0, "dataset", cfg.dataset)
        df.insert(0, "model", cfg.model)
        fit_s = df.attrs.get("fit_seconds")
        atomic_write_text(self.path, df.to_csv(index=False))
        atomic_write_text(self.path.with_suffix(".json"), json.dumps(
            {"config": canonical(cfg.to_dict()), "selector": self.selector, "fit_seconds": fit_s,
             "feature_keys": self.keys}, indent=2))
        log_cache("computed", self.path)
        df.attrs["fit_seconds"] = fit_s
        return df


def curve_path(cfg: RunConfig, selector="random") -> Path:
    """Where :func:`subset_curve` caches the result of ``cfg`` and ``selector``."""
    return Curve(cfg, selector).path


def cached_curve(cfg: RunConfig, selector="random") -> pd.DataFrame | None:
    """The cached result of :func:`subset_curve`, or ``None``."""
    return Curve(cfg, selector).cached()


def subset_curve(cfg: RunConfig, selector="random", progress: bool = True, force: bool = False) -> pd.DataFrame:
    """:func:`curve_from_features` on the cached features of ``cfg`` (result cached too).
    Adds ``model`` and ``dataset`` columns."""
    run = Curve(cfg, selector)
    if not force:
        df = run.cached()
        if df is not None:
            log_cache("hit", run.path)
            return df
    return run.compute(progress)


def features_of(cfg: RunConfig) -> tuple[Features, Features]:
    """The train and test features of ``cfg`` (cached)."""
    enc = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
    return load_features(cfg, "train", encoder=enc), load_features(cfg, "test", encoder=enc)


def feature_digests(cfg: RunConfig) -> list[str]:
    """Digests of the train and test feature keys of ``cfg``."""
    return [json_digest(k) for k in Curve(cfg).keys]


def cached_frames(name: str, spec: dict, compute, n: int = 1):
    """``compute()`` -> ``n`` DataFrames, cached under a key made from ``spec`` (CSV files
    plus a JSON sidecar with the spec and when they were computed). Returns the frames and
    the sidecar. A damaged entry is recomputed."""
    spec = canonical({"v": RESULTS_VERSION, "code": code_digest(), **spec})
    base = result_path(name, (), spec, suffix="")
    paths = [base.with_name(f"{base.name}_{i}.csv") for i in range(n)]
    side = base.with_suffix(".json")
    if side.exists() and all(p.exists() for p in paths):
        try:
            meta = json.loads(side.read_text())
            if meta["spec"] == spec:
                return [pd.read_csv(p) for p in paths], meta
        except Exception:
            pass
    t0 = time.perf_counter()
    frames = compute()
    frames = [frames] if n == 1 else list(frames)
    for p, f in zip(paths, frames):
        atomic_write_text(p, f.to_csv(index=False))
    meta = {"spec": spec, "computed": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(side, json.dumps(meta, indent=2))
    return frames, meta


def run_curves(model: str, datasets, **overrides) -> pd.DataFrame:
    """:func:`subset_curve` for one model on several datasets (each config shrunk when
    ``DIFFRED_SCALE=smoke``), concatenated."""
    frames = [subset_curve(RunConfig(model=model, dataset=ds, **overrides).scaled()) for ds in datasets]
    return pd.concat(frames, ignore_index=True)


def summarise(curve: pd.DataFrame, by=("model", "dataset", "selector")) -> pd.DataFrame:
    """Mean/std accuracy over seeds per fraction (duplicate-k rows dropped), with
    ``ratio`` = mean accuracy / the full layer's (fraction 1) mean accuracy."""
    by = [c for c in by if c in curve.columns]
    df = curve[~curve["duplicate_k"].astype(bool)] if "duplicate_k" in curve else curve
    keys = by + ["fraction"] + (["k"] if "k" in df else [])
    g = df.groupby(keys, as_index=False)["accuracy"].agg(["mean", "std", "count"])
    g = g.rename(columns={"mean": "acc_mean", "std": "acc_std", "count": "n_seeds"})
    full = g[g.fraction == 1.0].set_index(by)["acc_mean"] if by else g[g.fraction == 1.0]["acc_mean"]
    if by:
        g["full"] = g.set_index(by).index.map(full).to_numpy()
    else:
        g["full"] = float(full.iloc[0])
    g["ratio"] = g.acc_mean / g.full
    return g


def dr_table(curve: pd.DataFrame, delta: float = 0.9, by=("model", "dataset", "selector")) -> pd.DataFrame:
    """DR(delta) per group in both definitions, with the full-layer accuracy."""
    if not np.isclose(curve.fraction, 1.0).any():
        raise ValueError("DR needs the full layer: add the fraction 1.0 to the fractions")
    s = summarise(curve, by)
    by = [c for c in by if c in s.columns]
    rows = []
    for key, g in s.groupby(by) if by else [((), s)]:
        key = key if isinstance(key, tuple) else (key,)
        full = float(g.full.iloc[0])
        rows.append({**dict(zip(by, key)), "full_accuracy": full,
                     "dr_closest": metrics.dr_closest(g.fraction, g.acc_mean, full, delta),
                     "dr_threshold": metrics.dr_threshold(g.fraction, g.acc_mean, full, delta)})
    return pd.DataFrame(rows)


def claim_within(curve: pd.DataFrame, fraction: float = 0.2, points: float = 5.0) -> dict:
    """The headline check on one (model, dataset) curve: is mean accuracy at ``fraction``
    within ``points`` of the full layer? Returns the numbers and the verdict."""
    s = summarise(curve)
    at = s[np.isclose(s.fraction, fraction)]
    if at.empty:
        raise ValueError(f"fraction {fraction} is not in the curve; add it to the fractions")
    full = float(s[s.fraction == 1.0].acc_mean.iloc[0])
    part = float(at.acc_mean.iloc[0])
    gap = 100 * (full - part)
    return {"full": full, "at": part, "std": float(at.acc_std.iloc[0]) if at.n_seeds.iloc[0] > 1 else 0.0,
            "gap_points": gap, "holds": bool(gap <= points), "fraction": fraction, "points": points,
            "k": int(at.k.iloc[0]) if "k" in at else None}


def duplicate_fractions(curve: pd.DataFrame) -> list[float]:
    """Grid fractions dropped because another fraction gives the same k."""
    return sorted(set(curve.loc[curve.duplicate_k, "fraction"].tolist()))


def scale_note() -> str:
    """A sentence saying at which scale this build ran."""
    if scale() == "smoke":
        return (f"This is a smoke-scale build (DIFFRED_SCALE=smoke, for the test suite): at most "
                f"{SMOKE_LIMITS['n_train']} training images, {SMOKE_LIMITS['seeds']} seeds, "
                f"{SMOKE_LIMITS['image_size']} px. Its numbers are not the published ones.")
    return "This build ran at the published default scale."


def class_columns(curve: pd.DataFrame) -> list[str]:
    return [c for c in curve.columns if c.startswith("acc_")]


SMALL_FRACTIONS = (0.01, 0.05, 0.1, 0.2)


def redundancy(curve: pd.DataFrame, delta: float = 0.9, small=SMALL_FRACTIONS) -> pd.DataFrame:
    """Per (model, dataset, selector): full-layer accuracy, DR(delta), and ``ratio_small``,
    the mean accuracy ratio to the full layer over the fractions ``small`` (a finer measure
    than DR, which only takes grid values)."""
    dr = dr_table(curve, delta)
    s = summarise(curve)
    keys = [c for c in ("model", "dataset", "selector") if c in s.columns]
    part = s[s.fraction.round(6).isin([round(f, 6) for f in small])]
    small_ratio = part.groupby(keys).ratio.mean().rename("ratio_small").reset_index()
    return dr.merge(small_ratio, on=keys, how="left")

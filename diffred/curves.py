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
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics
from .config import SMOKE_LIMITS, RunConfig, scale
from .device import compute_dtype, resolve_device, resolve_runtime
from .features import Features, feature_identity, feature_key, file_sha256_of, load_features
from .models import Encoder, load_encoder
from .probes import LogisticProbe, RidgeProbe, paper_recipe
from .store import atomic_write_text, canonical, json_digest, log_cache, result_path, sha256_file
from .store import code_digest as _code_digest
from .subsets import Selection, first_k, principal_components, random_projections, random_subsets

PROBES = ("logistic", "ridge", "paper")
SELECTORS = ("random", "first", "pca_top", "pca_bottom", "projection_gaussian", "projection_authors")
#: 3: result keys hold the sha256 of the feature files read and the code that computed them.
RESULTS_VERSION = 3
#: The modules whose code determines a cached result (features are keyed separately; an
#: analysis cached by :func:`cached_frames` adds its own module).
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
    sel, est = fit_members(X_train, y_train, X_test, fractions, seeds, selector, probe, device)
    return curve_frame(sel, est, X_test, y_test, y_train, classes)


def fit_members(X_train, y_train, X_test, fractions, seeds, selector="random", probe="logistic", device="auto"):
    """The selection of ``selector`` (one name or several) and the probe fitted on all its
    members: ``(selection, fitted probe)``; the fit's seconds are the probe's ``fit_seconds_``."""
    X_train = np.asarray(X_train, np.float32)
    if X_train.shape[1] != np.shape(X_test)[1]:
        raise ValueError(f"train features have {X_train.shape[1]} columns, test {np.shape(X_test)[1]}")
    selectors = [selector] if isinstance(selector, str) else list(selector)
    sel = make_selection(selectors[0], X_train, fractions, seeds)
    for other in selectors[1:]:
        sel = sel + make_selection(other, X_train, fractions, seeds)
    est = make_probe(probe, device=device) if isinstance(probe, str) else probe
    t0 = time.perf_counter()
    est.fit(X_train, y_train, sel)
    est.fit_seconds_ = time.perf_counter() - t0
    return sel, est


def curve_frame(sel: Selection, est, X_test, y_test, y_train, classes=None) -> pd.DataFrame:
    """The rows of :func:`curve_from_features` for a fitted probe ``est`` of selection ``sel``."""
    pred = est.predict(np.asarray(X_test, np.float32))
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    names = list(classes) if classes is not None and len(classes) == len(labels) else [str(c) for c in labels]
    df = pd.DataFrame(_member_rows(sel, est, pred, y_test, labels, names, np.shape(X_test)[1]))
    df["duplicate_k"] = (df.groupby(["selector", "seed", "k"], dropna=False)["fraction"].transform("max")
                         != df["fraction"])
    df.attrs["fit_seconds"] = est.fit_seconds_
    return df


def code_digest(extra: tuple[str, ...] = ()) -> str:
    """Digest of the modules that compute results (:data:`RESULT_CODE`, plus ``extra``), read
    once per process: a change to any of them invalidates the results they compute."""
    return _code_digest(RESULT_CODE + tuple(extra))


@functools.lru_cache(maxsize=8)
def probe_spec(device: str = "auto") -> dict:
    """Every probe's parameters and the compute dtype (computed once per process)."""
    spec = {p: sorted((k, repr(v)) for k, v in make_probe(p).get_params().items()) for p in PROBES}
    spec["compute_dtype"] = str(compute_dtype("auto", resolve_device(device)))
    return spec


class Curve:
    """One subset-curve run: its config, selector, feature keys and cache location, resolved
    once. The network is built only when features must be computed (or its identity needs
    the downloaded weights); the result's location is known once its feature files exist."""

    def __init__(self, cfg: RunConfig, selector="random", load: bool = True):
        self.cfg, self.selector = cfg, selector
        self.name = selector if isinstance(selector, str) else "+".join(selector)
        ident = feature_identity(cfg)
        if ident is None:
            ident = self.encoder if load else None
        self.keys = None if ident is None else [
            feature_key(ident, cfg.dataset, s, n, cfg.data_seed, cfg.image_size, cfg.precision, cfg.device,
                        resolve_runtime(cfg.runtime, cfg.device))
            for s, n in (("train", cfg.n_train), ("test", cfg.n_test))]

    @functools.cached_property
    def encoder(self) -> Encoder:
        return load_encoder(self.cfg.model, arch=self.cfg.arch, layer=self.cfg.layer)

    def spec(self, files: list[str | None] | None = None) -> dict | None:
        """Everything that determines the result: the feature keys and the sha256 of the
        feature files read (``None`` while they are not cached), the code, every probe setting."""
        if self.keys is None:
            return None
        files = files or [file_sha256_of(k) for k in self.keys]
        if None in files:
            return None
        cfg = self.cfg
        return {"v": RESULTS_VERSION, "code": code_digest(), "features": [json_digest(k) for k in self.keys],
                "feature_files": list(files), "fractions": cfg.fractions, "seeds": cfg.seeds,
                "selector": self.name, "probe": cfg.probe, "probe_params": probe_spec(cfg.device),
                "device": resolve_device(cfg.device).type}

    @property
    def path(self) -> Path | None:
        spec = self.spec()
        return None if spec is None else result_path("curve", (self.cfg.model, self.cfg.dataset, self.name,
                                                               self.cfg.probe), spec)

    def cached(self, path: Path | None = None) -> pd.DataFrame | None:
        """The cached result, or ``None`` if absent, unreadable or written for another spec."""
        path = path or self.path
        if path is None or not path.exists():
            return None
        try:
            df = pd.read_csv(path)
            meta = json.loads(path.with_suffix(".json").read_text())
            # the spec names everything that shapes the result; two configs that spell the same
            # run differently (runtime "auto" or "openvino", say) share one entry
            if {"accuracy", "fraction", "k", "seed"} <= set(df.columns) and meta.get("spec") == canonical(self.spec()):
                df.attrs["fit_seconds"] = meta.get("fit_seconds")
                return df
        except Exception:
            pass  # unreadable or mismatched: the caller recomputes
        return None

    def features(self, progress: bool = True) -> tuple[Features, Features]:
        enc = self.__dict__.get("encoder")  # built already (for its identity): reuse it
        return (load_features(self.cfg, "train", progress=progress, encoder=enc),
                load_features(self.cfg, "test", progress=progress, encoder=enc))

    def compute(self, progress: bool = True, force: bool = False) -> pd.DataFrame:
        """Load (or extract) the features, then the result: read from the cache when it is
        there now that the feature files are known (unless ``force``), else computed."""
        tr, te = self.features(progress)
        if self.keys is None:
            self.keys = [feature_key(self.encoder, self.cfg.dataset, s, n, self.cfg.data_seed, self.cfg.image_size,
                                     self.cfg.precision, self.cfg.device,
                                     resolve_runtime(self.cfg.runtime, self.cfg.device))
                         for s, n in (("train", self.cfg.n_train), ("test", self.cfg.n_test))]
        spec = self.spec([tr.meta.get("sha256"), te.meta.get("sha256")])
        cfg = self.cfg
        path = result_path("curve", (cfg.model, cfg.dataset, self.name, cfg.probe), spec)
        if not force and (df := self.cached(path)) is not None:
            log_cache("hit", path)
            return df
        df = curve_from_features(tr.X, tr.y, te.X, te.y, cfg.fractions, cfg.seeds, self.selector, cfg.probe,
                                 tr.classes, cfg.device)
        df.insert(0, "dataset", cfg.dataset)
        df.insert(0, "model", cfg.model)
        fit_s = df.attrs.get("fit_seconds")
        atomic_write_text(path, df.to_csv(index=False))
        atomic_write_text(path.with_suffix(".json"), json.dumps(
            {"kind": "curve", "config": canonical(cfg.to_dict()), "selector": self.selector, "fit_seconds": fit_s,
             "feature_keys": self.keys, "spec": canonical(spec), "code_modules": list(RESULT_CODE),
             "sha256": [sha256_file(path)], "computed": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
        log_cache("computed", path)
        df.attrs["fit_seconds"] = fit_s
        return df


def curve_path(cfg: RunConfig, selector="random") -> Path | None:
    """Where :func:`subset_curve` caches the result of ``cfg`` and ``selector`` (``None``
    while its features are not cached: the result's key holds their sha256)."""
    return Curve(cfg, selector).path


def cached_curve(cfg: RunConfig, selector="random") -> pd.DataFrame | None:
    """The cached result of :func:`subset_curve`, or ``None``."""
    return Curve(cfg, selector).cached()


def subset_curve(cfg: RunConfig, selector="random", progress: bool = True, force: bool = False) -> pd.DataFrame:
    """:func:`curve_from_features` on the cached features of ``cfg`` (result cached too).
    Adds ``model`` and ``dataset`` columns."""
    run = Curve(cfg, selector)
    if not force:
        path = run.path
        df = run.cached(path)
        if df is not None:
            log_cache("hit", path)
            return df
    return run.compute(progress, force)


def features_of(cfg: RunConfig) -> tuple[Features, Features]:
    """The train and test features of ``cfg`` (cached; the network is built only to extract)."""
    return load_features(cfg, "train"), load_features(cfg, "test")


def feature_digests(cfg: RunConfig) -> list[str]:
    """Digests of the train and test feature keys of ``cfg`` and the sha256 of the feature
    files they read (the features are extracted first when they are not cached)."""
    keys = Curve(cfg).keys
    files = [file_sha256_of(k) for k in keys]
    if None in files:
        features_of(cfg)
        files = [file_sha256_of(k) for k in keys]
    return [json_digest(k) for k in keys] + files


def frames_spec(spec: dict, module: str) -> dict:
    """The full key of a :func:`cached_frames` entry: ``spec``, the results version, the
    scale setting, and the digest of the result code plus the analysis ``module``."""
    return canonical({"v": RESULTS_VERSION, "code": code_digest((module,)), "scale": scale(), **spec})


def cached_frames(name: str, spec: dict, compute, n: int = 1, module: str | None = None):
    """``compute()`` -> ``n`` DataFrames, cached under a key made from ``spec`` and the code
    of the calling analysis module (``module``, by default the caller's): CSV files plus a
    JSON sidecar with the spec, their sha256 and when they were computed. Returns the frames
    and the sidecar. A damaged entry is recomputed."""
    if module is None:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        module = caller.removeprefix("diffred.") if caller.startswith("diffred.") else ""
    spec = frames_spec(spec, module)
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
    meta = {"kind": name, "spec": spec, "module": module, "sha256": [sha256_file(p) for p in paths],
            "computed": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
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

"""The paper's claims as functions returning tidy DataFrames.

* :func:`curve_from_features` / :func:`subset_curve` — claim 1 (Fig. 1): probe accuracy
  on random subsets of the penultimate layer, one row per (fraction, seed).
* :func:`summarise` — mean and std over seeds per fraction, with the ratio to the full layer.
* :func:`dr_table` — claim 3 (Table 1): DR(delta) in both definitions.
* :func:`claim_within` — the headline "20% of neurons within 5 points of the full layer".
* :func:`imagenet_predictions` / :func:`describe_*` — the Setup chapter's evidence.

Results of :func:`subset_curve` are cached (CSV + the run config as JSON) under a key made
from the feature keys and every probe setting, so a warm book build recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics
from .config import RunConfig, cache_dir
from .features import Features, _safe, atomic_write_text, feature_key, key_digest, load_features
from .models import load_encoder
from .probes import LogisticProbe, RidgeProbe, paper_recipe
from .subsets import Selection, first_k, principal_components, random_projections, random_subsets

PROBES = ("logistic", "ridge", "paper")
SELECTORS = ("random", "first", "pca_top", "pca_bottom", "projection_gaussian", "projection_authors")
RESULTS_VERSION = 2


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
    rows = []
    for i, m in enumerate(sel.members):
        pc = metrics.per_class_accuracy(np.searchsorted(labels, y_test), np.searchsorted(labels, pred[i]),
                                        len(labels))
        row = {"selector": m.selector, "fraction": m.fraction, "k": m.k, "d": d, "seed": m.seed,
               "accuracy": metrics.accuracy(y_test, pred[i]),
               "val_accuracy": float(est.val_accuracy_[i]), "alpha": float(est.alpha_[i])}
        row.update({f"acc_{c}": float(v) for c, v in zip(names, pc)})
        rows.append(row)
    df = pd.DataFrame(rows)
    df["duplicate_k"] = (df.groupby(["selector", "seed", "k"], dropna=False)["fraction"].transform("max")
                         != df["fraction"])
    df.attrs["fit_seconds"] = fit_s
    return df


def _result_path(cfg: RunConfig, keys: list[dict], selector, probe: str):
    selector = selector if isinstance(selector, str) else "+".join(selector)
    spec = {"v": RESULTS_VERSION, "code": code_digest(), "features": [key_digest(k) for k in keys],
            "fractions": cfg.fractions,
            "seeds": cfg.seeds, "selector": selector, "probe": probe,
            "probe_params": _probe_spec(cfg.device)}
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    name = "_".join(_safe(Path(str(v)).name) for v in (cfg.model, cfg.dataset, selector, probe))
    return cache_dir() / "results" / f"curve_{name}_{h}.csv"


CACHE_LOG_ENV = "DIFFRED_CACHE_LOG"


def _log_cache(event: str, path: Path) -> None:
    """Append ``<event> <path>`` to ``$DIFFRED_CACHE_LOG`` when set (the test suite uses it
    to check that the book read what a sweep computed)."""
    import os
    log = os.environ.get(CACHE_LOG_ENV)
    if log:
        with open(log, "a") as fh:  # one short write per line: appends do not interleave
            fh.write(f"{event} {path}\n")


def curve_path(cfg: RunConfig, selector="random") -> Path:
    """Where :func:`subset_curve` caches the result of ``cfg`` and ``selector``."""
    enc = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
    keys = [feature_key(enc, cfg.dataset, s, n, cfg.data_seed, cfg.image_size, cfg.precision, cfg.device)
            for s, n in (("train", cfg.n_train), ("test", cfg.n_test))]
    return _result_path(cfg, keys, selector, cfg.probe)


def cached_curve(cfg: RunConfig, selector="random") -> pd.DataFrame | None:
    """The cached result of :func:`subset_curve`, or ``None`` if absent, unreadable or
    written for another config."""
    path = curve_path(cfg, selector)
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        if {"accuracy", "fraction", "k", "seed"} <= set(df.columns) and meta["config"] == json.loads(cfg.to_json()):
            df.attrs["fit_seconds"] = meta.get("fit_seconds")
            return df
    except Exception:
        pass  # unreadable or mismatched: the caller recomputes
    return None


def subset_curve(cfg: RunConfig, selector="random", progress: bool = True,
                 force: bool = False) -> pd.DataFrame:
    """:func:`curve_from_features` on the cached features of ``cfg`` (result cached too).
    Adds ``model`` and ``dataset`` columns."""
    enc = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
    keys = [feature_key(enc, cfg.dataset, s, n, cfg.data_seed, cfg.image_size, cfg.precision, cfg.device)
            for s, n in (("train", cfg.n_train), ("test", cfg.n_test))]
    path = _result_path(cfg, keys, selector, cfg.probe)
    if not force:
        df = cached_curve(cfg, selector)
        if df is not None:
            _log_cache("hit", path)
            return df
    tr = load_features(cfg, "train", progress=progress, encoder=enc)
    te = load_features(cfg, "test", progress=progress, encoder=enc)
    df = curve_from_features(tr.X, tr.y, te.X, te.y, cfg.fractions, cfg.seeds, selector, cfg.probe,
                             tr.classes, cfg.device)
    df.insert(0, "dataset", cfg.dataset)
    df.insert(0, "model", cfg.model)
    fit_s = df.attrs.get("fit_seconds")
    atomic_write_text(path, df.to_csv(index=False))
    atomic_write_text(path.with_suffix(".json"), json.dumps(
        {"config": json.loads(cfg.to_json()), "selector": selector, "fit_seconds": fit_s,
         "feature_keys": keys}, indent=2))
    _log_cache("computed", path)
    df.attrs["fit_seconds"] = fit_s
    return df


def code_digest() -> str:
    """sha256 of the library modules that compute results: a change to any of them
    invalidates every cached result (features are keyed separately)."""
    h = hashlib.sha256()
    for mod in ("probes", "subsets", "metrics", "experiments"):
        h.update((Path(__file__).parent / f"{mod}.py").read_bytes())
    return h.hexdigest()[:16]


def cached_frames(name: str, spec: dict, compute, n: int = 1):
    """``compute()`` -> ``n`` DataFrames, cached under a key made from ``spec`` (CSV files
    plus a JSON sidecar with the spec and when they were computed). Returns the frames and
    the sidecar. A damaged entry is recomputed."""
    spec = {"v": RESULTS_VERSION, "code": code_digest(), **spec}
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    base = cache_dir() / "results" / f"{name}_{h}"
    paths = [base.with_name(f"{base.name}_{i}.csv") for i in range(n)]
    side = base.with_suffix(".json")
    if side.exists() and all(p.exists() for p in paths):
        try:
            meta = json.loads(side.read_text())
            if meta["spec"] == json.loads(json.dumps(spec, default=str)):
                return [pd.read_csv(p) for p in paths], meta
        except Exception:
            pass
    t0 = time.perf_counter()
    frames = compute()
    frames = [frames] if n == 1 else list(frames)
    for p, f in zip(paths, frames):
        atomic_write_text(p, f.to_csv(index=False))
    meta = {"spec": json.loads(json.dumps(spec, default=str)), "computed": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_text(side, json.dumps(meta, indent=2))
    return frames, meta


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


# ------------------------------------------------------------------ setup chapter
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def imagenet_predictions(model: str = "efficientnet_lite0", photos=SKIMAGE_PHOTOS, top: int = 1) -> pd.DataFrame:
    """The encoder's ImageNet top prediction on real photos shipped by scikit-image."""
    import skimage.data
    import torch
    from timm.data import ImageNetInfo

    enc = load_encoder(model)
    info = ImageNetInfo()
    rows = []
    for name in photos:
        img = getattr(skimage.data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        h, w = img.shape[:2]
        s = min(h, w)
        crop = np.ascontiguousarray(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, :3])
        with torch.no_grad():
            p = torch.softmax(enc.logits(enc.preprocess(crop[None])), 1)[0]
        conf, idx = p.topk(top)
        for c, i in zip(conf.tolist(), idx.tolist()):
            rows.append({"photo": f"skimage.data.{name}()", "prediction": info.index_to_description(i),
                         "probability": c})
    return pd.DataFrame(rows)


def describe_models(names) -> pd.DataFrame:
    """Source, licence, architecture, width and weights checksum of each encoder."""
    rows = []
    for n in names:
        e = load_encoder(n)
        n_params = sum(p.numel() for p in e.model.parameters())
        rows.append({"model": n, "architecture": e.arch, "source": e.source, "licence": e.licence,
                     "parameters (M)": round(n_params / 1e6, 2), "feature width": e.width,
                     "native input (px)": e.native_size, "weights sha256": e.weights_sha256[:16]})
    return pd.DataFrame(rows)


def describe_datasets(names, n_train=None, n_test=None) -> pd.DataFrame:
    """Source, sizes, classes and a content checksum of each dataset's splits."""
    from .datasets import load_dataset
    rows = []
    for n in names:
        tr, te = load_dataset(n, "train"), load_dataset(n, "test")
        h = hashlib.sha256()
        for part in (tr, te):
            if isinstance(part.images, np.ndarray):
                h.update(np.ascontiguousarray(part.images).tobytes())
            h.update(part.labels.tobytes())
        shape = tr.images.shape[1:] if isinstance(tr.images, np.ndarray) else "files"
        rows.append({"dataset": n, "source": tr.source, "train": len(tr), "test": len(te),
                     "classes": len(tr.classes), "image": "x".join(map(str, shape)),
                     "content sha256": h.hexdigest()[:16]})
    return pd.DataFrame(rows)


def pretrained_vs_random(cfg: RunConfig, random_model: str = "efficientnet_lite0_random") -> pd.DataFrame:
    """Full-layer probe accuracy of the pre-trained encoder and a randomly initialised copy."""
    import dataclasses
    rows = []
    for model in (cfg.model, random_model):
        c = dataclasses.replace(cfg, model=model, fractions=(1.0,), seeds=(1,))
        df = subset_curve(c)
        rows.append({"model": model, "dataset": cfg.dataset, "n_train": c.n_train, "accuracy": float(df.accuracy.mean())})
    return pd.DataFrame(rows)


def features_of(cfg: RunConfig) -> tuple[Features, Features]:
    enc = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
    return load_features(cfg, "train", encoder=enc), load_features(cfg, "test", encoder=enc)


def run_curves(model: str, datasets, **overrides) -> pd.DataFrame:
    """:func:`subset_curve` for one model on several datasets (each config shrunk when
    ``DIFFRED_SCALE=smoke``), concatenated."""
    frames = []
    for ds in datasets:
        cfg = RunConfig(model=model, dataset=ds, **overrides).scaled()
        frames.append(subset_curve(cfg))
    return pd.concat(frames, ignore_index=True)


def duplicate_fractions(curve: pd.DataFrame) -> list[float]:
    """Grid fractions dropped because another fraction gives the same k."""
    return sorted(set(curve.loc[curve.duplicate_k, "fraction"].tolist()))


def scale_note() -> str:
    """A sentence saying at which scale this build ran."""
    from .config import SMOKE_LIMITS, scale
    if scale() == "smoke":
        return (f"This is a smoke-scale build (DIFFRED_SCALE=smoke, for the test suite): at most "
                f"{SMOKE_LIMITS['n_train']} training images, {SMOKE_LIMITS['seeds']} seeds, "
                f"{SMOKE_LIMITS['image_size']} px. Its numbers are not the published ones.")
    return "This build ran at the published default scale."


COST_METHODS = ("batched logistic", "batched logistic, alpha grid", "ridge", "scikit-learn per subset",
                "paper recipe per subset")


def probe_costs_cached(cfg: RunConfig, **kw) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`probe_costs`, cached: timings are those measured when the entry was written
    (``meta["computed"]``), on this machine, unless the cache was copied from elsewhere."""
    spec = {"config": cfg.to_dict(), "features": _feature_digests(cfg), "kw": kw, "probes": _probe_spec(cfg.device)}
    (bench, per), meta = cached_frames("probe_costs", spec, lambda: probe_costs(cfg, **kw), n=2)
    return bench, per, meta


def probe_costs(cfg: RunConfig, methods=COST_METHODS, paper_epochs_timed: int = 2,
                sklearn_max_iter: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time, peak memory and accuracy of each probe method on the same cached features and
    the same (fraction, seed) grid, measured side by side. The paper's recipe is timed for
    ``paper_epochs_timed`` epochs per subset and extrapolated to its 100 epochs (said in
    the ``note`` column). Returns (one row per method, one row per method x member)."""
    from sklearn.linear_model import LogisticRegression

    from .probes import validation_split

    tr, te = features_of(cfg)
    sel = random_subsets(tr.X.shape[1], cfg.fractions, cfg.seeds)
    rows, acc_rows = [], []

    def record(method, seconds, accs, note=""):
        rows.append({"method": method, "seconds": seconds, "note": note})
        for m, a in zip(sel.members, accs):
            acc_rows.append({"method": method, "fraction": m.fraction, "seed": m.seed, "k": m.k, "accuracy": a})

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0, None

    if "batched logistic" in methods:
        p, sec, _ = timed(lambda: LogisticProbe().fit(tr.X, tr.y, sel))
        record("batched logistic", sec, p.score(te.X, te.y), f"{p.n_epochs_} epochs, {len(sel)} subsets at once, "
               f"alpha {p.alphas[0]:g}")
    alpha_ref = LogisticProbe().alphas[0]
    if "batched logistic, alpha grid" in methods:
        grid = (1e-4, 1e-3, 1e-2)
        p, sec, _ = timed(lambda: LogisticProbe(alphas=grid).fit(tr.X, tr.y, sel))
        record("batched logistic, alpha grid", sec, p.score(te.X, te.y),
               f"alpha in {grid} chosen per subset on the validation split")
    if "ridge" in methods:
        p, sec, _ = timed(lambda: RidgeProbe().fit(tr.X, tr.y, sel))
        record("ridge", sec, p.score(te.X, te.y), "closed form, one Gram matrix")
    tri, _ = validation_split(tr.y, 0.1, 0)
    mu, sd = tr.X[tri].mean(0), tr.X[tri].std(0)
    sd[sd == 0] = 1
    Xs, Xt = (tr.X[tri] - mu) / sd, (te.X - mu) / sd
    if "scikit-learn per subset" in methods:
        C = 1.0 / (alpha_ref * len(tri))

        def sk():
            accs, cache = [], {}
            for i in range(len(sel)):
                ix = sel.indices(i)
                key = np.sort(ix).tobytes()
                if key not in cache:
                    m = LogisticRegression(C=C, max_iter=sklearn_max_iter).fit(Xs[:, ix], tr.y[tri])
                    cache[key] = m.score(Xt[:, ix], te.y)
                accs.append(cache[key])
            return accs
        accs, sec, _ = timed(sk)
        record("scikit-learn per subset", sec, accs, f"lbfgs, C = {C:.3g} (= the batched probe's alpha)")
    if "paper recipe per subset" in methods:
        from .subsets import Selection

        def recipe():
            accs, sec_total = [], 0.0
            for i in range(len(sel)):
                one = Selection(sel.bases, (sel.members[i],))
                t0 = time.perf_counter()
                p = paper_recipe(max_epochs=paper_epochs_timed).fit(tr.X, tr.y, one)
                sec_total += time.perf_counter() - t0
                accs.append(float(p.score(te.X, te.y)[0]))
            return accs, sec_total
        (accs, sec), _, _ = timed(recipe)
        record("paper recipe per subset", sec * 100 / paper_epochs_timed, accs,
               f"timed {paper_epochs_timed} epochs per subset, extrapolated to 100; accuracy after "
               f"{paper_epochs_timed} epochs only")
    return pd.DataFrame(rows), pd.DataFrame(acc_rows)


def recipe_cost_estimate(n_subsets: int, n_images: int, images_per_second: float, epochs: int = 100) -> dict:
    """What the paper's recipe costs on this machine: every probe re-runs the backbone on
    every training image in every epoch. Returns seconds for that and for one extraction."""
    return {"recipe_seconds": n_subsets * epochs * n_images / images_per_second,
            "extraction_seconds": n_images / images_per_second}


def accuracy_gaps(per_member: pd.DataFrame, reference: str = "scikit-learn per subset") -> pd.DataFrame:
    """Mean accuracy per (method, fraction) minus the reference method's, in points."""
    m = per_member.groupby(["method", "fraction"], as_index=False)["accuracy"].mean()
    ref = m[m.method == reference].set_index("fraction")["accuracy"]
    m = m[m.method != reference].copy()
    m["gap_points"] = 100 * (m.accuracy - m.fraction.map(ref))
    return m


# ------------------------------------------------------------ selectors (claim 4)
def crossover_k(summary: pd.DataFrame, a: str = "random", b: str = "pca_top", points: float = 1.0):
    """The smallest k from which selector ``a`` stays within ``points`` of selector ``b``
    (mean accuracy) at every larger tested k; ``None`` if it never does."""
    A = summary[summary.selector == a].set_index("k").acc_mean
    B = summary[summary.selector == b].set_index("k").acc_mean
    common = sorted(set(A.index) & set(B.index))
    ok = [100 * (B[k] - A[k]) <= points for k in common]
    for i, k in enumerate(common):
        if all(ok[i:]):
            return int(k)
    return None


# ------------------------------------------------------------ similarity (claim 5)
def cka_curves(cfg: RunConfig, n_samples: int = 1000) -> pd.DataFrame:
    """Linear CKA of random subsets with the whole layer and between two subsets of the same
    size (all seed pairs), per fraction, on the first ``n_samples`` test images (as the
    paper). Computed from the layer's covariance alone (:func:`metrics.cka_from_cov`)."""
    from itertools import combinations
    _, te = features_of(cfg)
    X = te.X[:n_samples]
    cov = metrics.covariance(X)
    live = np.flatnonzero(np.diag(cov) > 0)
    d = X.shape[1]
    sel = random_subsets(d, cfg.fractions, cfg.seeds)
    by_f = {}
    for i, m in enumerate(sel.members):
        by_f.setdefault((m.fraction, m.k), []).append(sel.indices(i))
    rows = []
    for (f, k), subsets in by_f.items():
        usable = [ix for ix in subsets if np.isin(ix, live).any()]
        for ix in usable:
            rows.append({"model": cfg.model, "dataset": cfg.dataset, "fraction": f, "k": k,
                         "comparison": "subset vs whole layer", "cka": metrics.cka_from_cov(cov, ix)})
        for a, b in combinations(usable, 2):
            rows.append({"model": cfg.model, "dataset": cfg.dataset, "fraction": f, "k": k,
                         "comparison": "subset vs subset", "cka": metrics.cka_from_cov(cov, a, b)})
    df = pd.DataFrame(rows)
    df.attrs["dead_neurons"] = int(d - len(live))
    return df


def effective_rank(cfg: RunConfig, n_samples: int = 1000) -> float:
    """exp(entropy of the normalised covariance spectrum): how many directions the layer's
    variance really uses (1 = one direction, d = isotropic)."""
    _, te = features_of(cfg)
    ev = np.clip(np.linalg.eigvalsh(metrics.covariance(te.X[:n_samples])), 0, None)
    p = ev / ev.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


# ------------------------------------------------------------ per class (claim 6)
def class_columns(curve: pd.DataFrame) -> list[str]:
    return [c for c in curve.columns if c.startswith("acc_")]


def per_class(curve: pd.DataFrame) -> pd.DataFrame:
    """Long table: per (fraction, class) the mean accuracy over seeds and its ratio to the
    class's full-layer accuracy (duplicate-k rows dropped)."""
    df = curve[~curve.duplicate_k.astype(bool)]
    cols = class_columns(df)
    long = df.melt(id_vars=["fraction", "k", "seed"], value_vars=cols, var_name="class", value_name="acc")
    long["class"] = long["class"].str[4:]
    m = long.groupby(["fraction", "k", "class"], as_index=False, sort=False).acc.mean()
    full = m[m.fraction == 1.0].set_index("class").acc
    m["relative"] = m.acc / m["class"].map(full)
    m["drop_points"] = 100 * (m["class"].map(full) - m.acc)
    return m


def gini_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Gini coefficient of per-class accuracy and overall accuracy, per (fraction, seed)."""
    df = curve[~curve.duplicate_k.astype(bool)]
    cols = class_columns(df)
    out = df[["fraction", "k", "seed", "accuracy"]].copy()
    out["gini"] = [metrics.gini(r) for r in df[cols].to_numpy()]
    return out


def unevenness_test(curve: pd.DataFrame, fraction: float, n_permutations: int = 10000,
                    random_state: int = 0) -> dict:
    """Is the spread of per-class accuracy drops at ``fraction`` larger than subset-to-subset
    noise alone would give? Drops D[seed, class] = class accuracy on the full layer minus on
    the subset; statistic: variance across classes of the seed-mean drop. Null: every class
    has the same expected drop, so the D values are exchangeable; the p-value is the share of
    permutations of all D values with a statistic at least as large (+1 smoothing)."""
    df = curve[~curve.duplicate_k.astype(bool)]
    if df[["model", "dataset", "selector"]].drop_duplicates().shape[0] > 1 if "model" in df else False:
        raise ValueError("unevenness_test takes the curve of one (model, dataset, selector)")
    cols = [c for c in class_columns(df) if df[c].notna().all()]
    if len(cols) < 2:
        raise ValueError("unevenness_test needs per-class accuracies of at least 2 classes with no missing values")
    full = df[df.fraction == 1.0][cols].mean().to_numpy()
    sub = df[np.isclose(df.fraction, fraction)][cols].to_numpy()
    if len(sub) < 2:
        raise ValueError(f"the test needs at least 2 subset seeds at fraction {fraction}, got {len(sub)}")
    D = full[None, :] - sub
    stat = float(D.mean(0).var())
    if not np.isfinite(stat):
        raise ValueError("the unevenness statistic is not finite; check the per-class accuracies")
    rng = np.random.default_rng(random_state)
    flat = D.ravel()
    null = np.array([rng.permutation(flat).reshape(D.shape).mean(0).var() for _ in range(n_permutations)])
    p = (1 + int((null >= stat).sum())) / (1 + n_permutations)
    worst = int(np.argmax(D.mean(0)))
    return {"fraction": fraction, "statistic": stat, "p_value": p, "n_permutations": n_permutations,
            "worst_class": cols[worst][4:], "worst_drop_points": 100 * float(D.mean(0)[worst]),
            "mean_drop_points": 100 * float(D.mean()), "best_drop_points": 100 * float(D.mean(0).min())}


# ------------------------------------------------------------ architectures (claims 2, 3, 7)
def architecture_table(models, datasets, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subset curves for every (model, dataset), and their DR(0.9) table with the
    full-layer accuracy and number of classes."""
    curves = pd.concat([run_curves(m, datasets, **overrides) for m in models], ignore_index=True)
    dr = dr_table(curves)
    n_classes = {ds: len(class_columns(curves[curves.dataset == ds].dropna(axis=1, how="all"))) for ds in datasets}
    dr["classes"] = dr.dataset.map(n_classes)
    return curves, dr


def paper_dr_points(delta: float = 0.9) -> pd.DataFrame:
    """DR(delta) and full-layer accuracy for each curve in the paper's subset-accuracy table
    (authors' notebook output), for plotting beside ours."""
    from . import paper
    c = paper.load("subset_accuracy")
    c = c.assign(accuracy=c.acc_mean / 100, model=c.model + " (" + c.pretraining + ", " + c.upstream + ")",
                 selector="random")
    t = dr_table(c, delta)
    return t.rename(columns={"dr_closest": "dr"})


# ------------------------------------------------------------ robustness (protocol choices)
def _variant_row(choice: str, value, curve: pd.DataFrame, fraction: float = 0.2, points: float = 5.0) -> dict:
    s = summarise(curve)
    full = float(s[s.fraction == 1.0].acc_mean.iloc[0])
    at = s[np.isclose(s.fraction, fraction)]
    dr = dr_table(curve).iloc[0]
    part = float(at.acc_mean.iloc[0]) if not at.empty else float("nan")
    return {"choice": choice, "value": str(value), "full": full, "at_20": part,
            "std_20": float(at.acc_std.iloc[0]) if not at.empty and at.n_seeds.iloc[0] > 1 else 0.0,
            "gap_points": 100 * (full - part), "claim_holds": bool(100 * (full - part) <= points),
            "dr_closest": float(dr.dr_closest), "dr_threshold": float(dr.dr_threshold)}


def _feature_digests(cfg: RunConfig) -> list[str]:
    enc = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
    return [key_digest(feature_key(enc, cfg.dataset, s, n, cfg.data_seed, cfg.image_size, cfg.precision, cfg.device))
            for s, n in (("train", cfg.n_train), ("test", cfg.n_test))]


def _probe_spec(device: str = "auto") -> dict:
    from .features import resolve_device
    from .probes import _compute_dtype
    spec = {p: sorted((k, repr(v)) for k, v in make_probe(p).get_params().items()) for p in PROBES}
    spec["compute_dtype"] = str(_compute_dtype("auto", resolve_device(device)))
    return spec


def robustness(base: RunConfig, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`robustness_compute`, cached (a warm book build recomputes nothing)."""
    spec = {"config": base.to_dict(), "features": _feature_digests(base), "kw": kw, "probes": _probe_spec(base.device)}
    (rows, curves), _ = cached_frames("robustness", spec, lambda: robustness_compute(base, **kw), n=2)
    return rows.assign(value=rows.value.astype(str)), curves.assign(value=curves.value.astype(str))


def robustness_compute(base: RunConfig, alphas=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), probes=("logistic", "ridge", "paper"),
               paper_epochs: int = 30, image_sizes=(64, 112, 160), precisions=("auto", "float32"),
               small_n_train: int = 3000, small_n_test: int = 2000, n_trains=(1000, 5000, 10000, None),
               seed_counts=(3, 5, 10)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vary one protocol choice at a time around ``base`` and record, for each value, the
    full-layer accuracy, the accuracy at 20%, the claim-1 gap and verdict, and DR(0.9) in both
    definitions. Returns (summary rows, all curves). Resolution and precision need new
    features, so they run on a smaller sample (``small_n_train``/``small_n_test``)."""
    import dataclasses

    from .config import SMOKE_LIMITS, scale

    rows, curves = [], []
    # The base run (its own probe, its seeds) is one of the values of several choices: the
    # default L2 strength, the default probe, the default number of seeds. Probe it once
    # (cached like any curve) and reuse it wherever a choice's probe is that same probe.
    base_curve = subset_curve(base)
    base_probe = make_probe(base.probe, device=base.device)
    tr, te = features_of(base)

    def probe_curve(est):
        if type(est) is type(base_probe) and est.get_params() == base_probe.get_params():
            return base_curve.drop(columns=["model", "dataset"])
        return curve_from_features(tr.X, tr.y, te.X, te.y, base.fractions, base.seeds, probe=est,
                                   classes=tr.classes)

    def add(choice, value, curve):
        curves.append(curve.assign(choice=choice, value=str(value)))
        rows.append(_variant_row(choice, value, curve))

    for a in alphas:
        add("L2 strength (logistic)", a, probe_curve(LogisticProbe(alphas=(a,))))
    add("L2 strength (logistic)", "chosen per subset", probe_curve(LogisticProbe(alphas=tuple(alphas))))
    for p in probes:
        est = paper_recipe(max_epochs=paper_epochs) if p == "paper" else make_probe(p)
        label = f"paper SGD recipe, {paper_epochs} epochs" if p == "paper" else p
        add("probe", label, probe_curve(est))
    small = dataclasses.replace(base, n_train=small_n_train, n_test=small_n_test).scaled()
    for size in image_sizes:
        px = size if scale() == "default" else min(size, SMOKE_LIMITS["image_size"])
        add(f"input resolution (n_train={small.n_train})", f"{px} px",
            subset_curve(dataclasses.replace(small, image_size=px)))
    for prec in precisions:
        from .features import resolved_precision
        add(f"extraction precision (n_train={small.n_train})", resolved_precision(prec, small.device),
            subset_curve(dataclasses.replace(small, precision=prec)))
    for n in n_trains:
        add("training images", "all" if n is None else n, subset_curve(dataclasses.replace(base, n_train=n).scaled()))
    for k in seed_counts:
        add("subset seeds", k, subset_curve(dataclasses.replace(base, seeds=tuple(range(1, k + 1)))))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def robustness_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per choice: the range each quantity moves over the values tried, and whether the
    claim-1 verdict or DR(0.9) changes."""
    out = []
    for choice, g in rows.groupby("choice", sort=False):
        out.append({"choice": choice, "values": ", ".join(g.value),
                    "full-layer accuracy": f"{100 * g.full.min():.1f} to {100 * g.full.max():.1f}",
                    "accuracy at 20%": f"{100 * g.at_20.min():.1f} to {100 * g.at_20.max():.1f}",
                    "DR(0.9), closest": f"{g.dr_closest.min():.2f} to {g.dr_closest.max():.2f}",
                    "DR(0.9), threshold": f"{g.dr_threshold.min():.2f} to {g.dr_threshold.max():.2f}",
                    "claim-1 verdict changes": "yes" if g.claim_holds.nunique() > 1 else "no",
                    "DR changes": "yes" if g.dr_closest.nunique() > 1 or g.dr_threshold.nunique() > 1 else "no"})
    return pd.DataFrame(out)


# ------------------------------------------------------------ pre-training (claims 8-10)
SMALL_FRACTIONS = (0.01, 0.05, 0.1, 0.2)


def zoo_cards(names) -> pd.DataFrame:
    """One row per zoo model: variant, training seed, upstream and robust accuracy, time."""
    from .zoo import read_card
    rows = []
    for n in names:
        c = read_card(n)
        cfg = c["config"]
        rows.append({"model": n, "variant": cfg["variant"], "train_seed": cfg["seed"], "arch": cfg["arch"],
                     "width": cfg["width"], "loss": cfg["loss"], "dropout": cfg["dropout"],
                     "upstream_fraction": cfg["upstream_fraction"], "upstream_accuracy": c["upstream_accuracy"],
                     "robust_accuracy": c["robust_accuracy"], "train_seconds": c["train_seconds"],
                     "parameters": c["parameters"]})
    return pd.DataFrame(rows)


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


def compare_variants(table: pd.DataFrame, variant: str, reference: str, metric: str = "ratio_small",
                     direction: int = 1) -> pd.DataFrame:
    """``variant`` against ``reference`` per dataset, across training seeds: the mean of
    ``metric`` for each, the difference, and the seed spread (the larger of the two standard
    deviations, or 0 with one seed). Per dataset: 'as the paper' when the difference has
    the expected sign (``direction``) and exceeds the spread, 'opposite' when it is beyond
    the spread the other way, else 'within seed spread'."""
    rows = []
    for ds, g in table.groupby("dataset"):
        a, b = g[g.variant == variant][metric], g[g.variant == reference][metric]
        if a.empty or b.empty:
            continue
        spread = float(np.nanmax([a.std(ddof=1) if len(a) > 1 else 0.0, b.std(ddof=1) if len(b) > 1 else 0.0]))
        diff = float(a.mean() - b.mean())
        call = ("as the paper" if direction * diff > spread else
                "opposite" if direction * diff < -spread else "within seed spread")
        rows.append({"dataset": ds, "variant": variant, "reference": reference, "metric": metric,
                     "variant_mean": float(a.mean()), "reference_mean": float(b.mean()), "difference": diff,
                     "seed_spread": spread, "n_seeds": f"{len(a)} vs {len(b)}", "call": call})
    return pd.DataFrame(rows)


def verdict(calls: pd.Series) -> str:
    """One word for a claim from its per-dataset calls."""
    calls = list(calls)
    if not calls:
        return "not tested"
    agree, against = calls.count("as the paper"), calls.count("opposite")
    if agree > len(calls) / 2 and against == 0:
        return "holds"
    if against > len(calls) / 2:
        return "does not hold (the opposite is seen)"
    return "inconclusive (within the spread across training seeds)"


def width_trend(table: pd.DataFrame, metric: str = "ratio_small") -> pd.DataFrame:
    """Spearman correlation of ``metric`` with the penultimate width, per dataset (means over
    training seeds per width)."""
    from scipy.stats import spearmanr
    rows = []
    for ds, g in table.groupby("dataset"):
        m = g.groupby("width")[metric].mean()
        rho = float(spearmanr(m.index, m.to_numpy()).statistic) if len(m) > 2 else float("nan")
        rows.append({"dataset": ds, "widths": ", ".join(str(int(w)) for w in m.index), "spearman": rho,
                     "call": "as the paper" if rho > 0.5 else "opposite" if rho < -0.5 else "within seed spread"})
    return pd.DataFrame(rows)


def pretraining_study(models, datasets, first_for=(), cka_dataset: str | None = None,
                      n_cka: int = 1000, **overrides) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Subset curves of every zoo model on every dataset, the redundancy table of the random
    subsets joined with the model cards, and CKA of random subsets on ``cka_dataset``.
    Models in ``first_for`` are also probed on their first-k neurons, in the same probe run
    (rows with ``selector == "first"``)."""
    cards = zoo_cards(models)
    frames = []
    for m in models:
        for ds in datasets:
            cfg = RunConfig(model=m, dataset=ds, image_size=None, **overrides).scaled()
            frames.append(subset_curve(cfg, selector=["random", "first"] if m in first_for else "random"))
    curves = pd.concat(frames, ignore_index=True)
    table = redundancy(curves[curves.selector == "random"]).merge(cards, on="model")
    cka = pd.DataFrame()
    if cka_dataset:
        cka = pd.concat([cka_curves(RunConfig(model=m, dataset=cka_dataset, image_size=None, **overrides).scaled(),
                                    n_cka) for m in models], ignore_index=True).merge(
            cards[["model", "variant", "train_seed"]], on="model")
    return curves, table, cka


# ------------------------------------------------------------ other layers (claim 11)
def layer_study(model: str, dataset: str, layers=None, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random-subset curves on each layer of ``model`` (default: every stage, then the
    penultimate layer); returns the curves and a per-layer table (width, full accuracy, DR)."""
    from .models import probe_layers
    layers = list(layers or probe_layers(load_encoder(model).model))
    frames = []
    for depth, layer in enumerate(layers):
        cfg = RunConfig(model=model, dataset=dataset, layer=layer, **overrides).scaled()
        frames.append(subset_curve(cfg).assign(layer=layer, depth=depth))
    curves = pd.concat(frames, ignore_index=True)
    table = redundancy(curves.assign(model=curves.layer))  # one group per layer
    table = table.rename(columns={"model": "layer"}).assign(model=model)
    table["depth"] = table.layer.map({layer: i for i, layer in enumerate(layers)})
    table["width"] = table.layer.map(curves.groupby("layer").d.first())
    return curves, table.sort_values("depth").reset_index(drop=True)

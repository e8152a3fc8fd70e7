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

import numpy as np
import pandas as pd

from . import metrics
from .config import RunConfig, cache_dir
from .features import Features, atomic_write_text, feature_key, key_digest, load_features
from .models import load_encoder
from .probes import LogisticProbe, RidgeProbe, paper_recipe
from .subsets import Selection, first_k, random_subsets

PROBES = ("logistic", "ridge", "paper")
SELECTORS = ("random", "first")
RESULTS_VERSION = 1


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


def make_selection(selector: str, d: int, fractions, seeds) -> Selection:
    if selector == "random":
        return random_subsets(d, fractions, seeds)
    if selector == "first":
        return first_k(d, fractions)
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
    sel = make_selection(selector, d, fractions, seeds)
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
    df["duplicate_k"] = df.groupby(["selector", "seed", "k"])["fraction"].transform("max") != df["fraction"]
    df.attrs["fit_seconds"] = fit_s
    return df


def _result_path(cfg: RunConfig, keys: list[dict], selector: str, probe: str):
    spec = {"v": RESULTS_VERSION, "features": [key_digest(k) for k in keys], "fractions": cfg.fractions,
            "seeds": cfg.seeds, "selector": selector, "probe": probe}
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "results" / f"curve_{cfg.model}_{cfg.dataset}_{selector}_{probe}_{h}.csv"


def subset_curve(cfg: RunConfig, selector: str = "random", progress: bool = True,
                 force: bool = False) -> pd.DataFrame:
    """:func:`curve_from_features` on the cached features of ``cfg`` (result cached too).
    Adds ``model`` and ``dataset`` columns."""
    enc = load_encoder(cfg.model, layer=cfg.layer)
    keys = [feature_key(enc, cfg.dataset, s, n, cfg.data_seed, cfg.image_size, cfg.precision)
            for s, n in (("train", cfg.n_train), ("test", cfg.n_test))]
    path = _result_path(cfg, keys, selector, cfg.probe)
    if path.exists() and not force:
        try:
            df = pd.read_csv(path)
            meta = json.loads(path.with_suffix(".json").read_text())
            if {"accuracy", "fraction", "k", "seed"} <= set(df.columns) and meta["config"] == json.loads(cfg.to_json()):
                df.attrs["fit_seconds"] = meta.get("fit_seconds")
                return df
        except Exception:
            pass  # unreadable or mismatched: recompute below
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
    df.attrs["fit_seconds"] = fit_s
    return df


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
    enc = load_encoder(cfg.model, layer=cfg.layer)
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


def probe_costs(cfg: RunConfig, methods=("batched logistic", "ridge", "scikit-learn per subset",
                                         "paper recipe per subset"), paper_epochs_timed: int = 2,
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
        record("batched logistic", sec, p.score(te.X, te.y), f"{p.n_epochs_} epochs, {len(sel)} subsets at once")
        alpha_ref = float(np.median(p.alpha_))
    else:
        alpha_ref = 1e-3
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
        record("scikit-learn per subset", sec, accs, f"lbfgs, C = {C:.3g} (the batched probe's median alpha)")
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

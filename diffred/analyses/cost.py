"""What it costs: cached features and batched probes against the paper's recipe, measured
side by side on the same features and grid (time, and the accuracy each method gives up)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from ..config import RunConfig
from ..curves import cached_frames, feature_digests, features_of, probe_spec, scale_note
from ..datasets import load_dataset
from ..features import _run_encoder
from ..models import load_encoder
from ..probes import LogisticProbe, RidgeProbe, paper_recipe, validation_split
from ..runtimes import make_runner
from ..store import FEATURE_PACKAGES, package_versions
from ..subsets import Selection, random_subsets
from . import Result


#: The methods compared; the prose quotes each one's time, and the batched probe's speed-up
#: over :data:`REFERENCE` (scikit-learn fitted per subset, the accuracy reference too).
COST_METHODS = ("batched logistic", "batched logistic, alpha grid", "ridge", "scikit-learn per subset",
                "paper recipe per subset")
BATCHED, GRID, RIDGE, REFERENCE, RECIPE = COST_METHODS
#: The CPU runtimes compared side by side: (runtime, precision, label); the first is the
#: reference the others' features are compared with, the third the CPU default.
CPU_RUNTIMES = (("torch", "float32", "torch float32"),
                ("torch", "bfloat16-autocast", "torch bf16 autocast + channels_last (the old default)"),
                ("openvino", "float32", "OpenVINO float32 (the default)"),
                ("openvino", "bfloat16", "OpenVINO bf16 hint"))
RUNTIME_BATCH = 64


def timed_features(enc, data: dict, size: int, runtime: str, precision: str, repeats: int,
                   batch: int = RUNTIME_BATCH, make=make_runner):
    """Features of every split in ``data`` through one runtime, ``repeats`` times (the
    runner, from ``make`` with :func:`~diffred.runtimes.make_runner`'s arguments, built once;
    its build, OpenVINO's conversion included, timed apart): (features by split, images/s per
    repeat, build seconds, the runtime that ran)."""
    t0 = time.perf_counter()
    runner = make(enc, runtime, precision, torch.device("cpu"), size, batch)
    build = time.perf_counter() - t0
    rates, X = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        X = {s: _run_encoder(enc, d, 0, len(d), size, torch.device("cpu"), precision, batch, runner)
             for s, d in data.items()}
        rates.append(sum(len(d) for d in data.values()) / (time.perf_counter() - t0))
    runner.close()
    return X, rates, build, runner.runtime


def compare_runtimes(enc, data: dict, size: int, repeats: int = 3, runtimes=CPU_RUNTIMES):
    """Every runtime of ``runtimes`` on the same images: median images/s over ``repeats``,
    and the largest and mean |difference| of its features to the first runtime's, relative
    to the largest and mean |reference| feature. Returns (table, features by label)."""
    rows, feats, ref = [], {}, None
    for runtime, precision, label in runtimes:
        X, rates, build, ran = timed_features(enc, data, size, runtime, precision, repeats)
        full = np.concatenate(list(X.values()))
        ref = full if ref is None else ref
        diff = np.abs(full - ref)
        feats[label] = X
        rows.append({"runtime": label, "ran_on": ran, "images": len(full), "repeats": len(rates),
                     "images_per_second": statistics.median(rates), "runs": [round(r, 1) for r in rates],
                     "convert_seconds": round(build, 1), "max_rel_diff": float(diff.max() / np.abs(ref).max()),
                     "mean_rel_diff": float(diff.mean() / np.abs(ref).mean())})
    return pd.DataFrame(rows), feats


def runtimes_cached(cfg: RunConfig, n_images: int, repeats: int = 3) -> tuple[pd.DataFrame, dict]:
    """:func:`compare_runtimes` on the first ``n_images`` test images of ``cfg``'s dataset
    (cached with the timings measured when the entry was written, keyed by the model, the
    images, the packages and this module's code)."""
    spec = {"model": cfg.model, "arch": cfg.arch, "dataset": cfg.dataset, "image_size": cfg.image_size,
            "n_images": n_images, "repeats": repeats, "runtimes": CPU_RUNTIMES,
            "packages": package_versions((*FEATURE_PACKAGES, "openvino"))}

    def compute():
        enc = load_encoder(cfg.model, arch=cfg.arch)
        data = {"test": load_dataset(cfg.dataset, "test", n=n_images, seed=cfg.data_seed)}
        return compare_runtimes(enc, data, int(cfg.image_size or enc.native_size), repeats)[0]
    (table,), meta = cached_frames("runtimes", spec, compute, n=1)
    return table, meta


def probe_costs_cached(cfg: RunConfig, **kw) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`probe_costs`, cached: timings are those measured when the entry was written
    (``meta["computed"]``), on this machine, unless the cache was copied from elsewhere."""
    spec = {"config": cfg.to_dict(), "features": feature_digests(cfg), "kw": kw, "probes": probe_spec(cfg.device)}
    (bench, per), meta = cached_frames("probe_costs", spec, lambda: probe_costs(cfg, **kw), n=2)
    return bench, per, meta


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _sklearn_per_subset(Xs, y, Xt, y_test, sel: Selection, C: float, max_iter: int) -> list[float]:
    """scikit-learn's logistic regression fitted once per distinct subset of ``sel``
    (standardised features ``Xs``/``Xt``); the test accuracy of each member."""
    accs, cache = [], {}
    for i in range(len(sel)):
        ix = sel.indices(i)
        key = np.sort(ix).tobytes()
        if key not in cache:
            m = LogisticRegression(C=C, max_iter=max_iter).fit(Xs[:, ix], y)
            cache[key] = m.score(Xt[:, ix], y_test)
        accs.append(cache[key])
    return accs


def _recipe_per_subset(tr, te, sel: Selection, epochs: int) -> tuple[list[float], float]:
    """The paper's SGD recipe fitted for ``epochs`` on each member alone: the test accuracies
    and the seconds spent fitting (prediction excluded)."""
    accs, sec_total = [], 0.0
    for i in range(len(sel)):
        one = Selection(sel.bases, (sel.members[i],))
        t0 = time.perf_counter()
        p = paper_recipe(max_epochs=epochs).fit(tr.X, tr.y, one)
        sec_total += time.perf_counter() - t0
        accs.append(float(p.score(te.X, te.y)[0]))
    return accs, sec_total


def probe_costs(cfg: RunConfig, methods=COST_METHODS, paper_epochs_timed: int = 2,
                sklearn_max_iter: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time and accuracy of each probe method on the same cached features and
    the same (fraction, seed) grid, measured side by side. The paper's recipe is timed for
    ``paper_epochs_timed`` epochs per subset and extrapolated to its 100 epochs (said in
    the ``note`` column). Returns (one row per method, one row per method x member)."""

    tr, te = features_of(cfg)
    sel = random_subsets(tr.X.shape[1], cfg.fractions, cfg.seeds)
    rows, acc_rows = [], []

    def record(method, seconds, accs, note=""):
        rows.append({"method": method, "seconds": seconds, "note": note})
        for m, a in zip(sel.members, accs):
            acc_rows.append({"method": method, "fraction": m.fraction, "seed": m.seed, "k": m.k, "accuracy": a})

    if "batched logistic" in methods:
        p, sec = _timed(lambda: LogisticProbe().fit(tr.X, tr.y, sel))
        record("batched logistic", sec, p.score(te.X, te.y), f"{p.n_epochs_} epochs, {len(sel)} subsets at once, "
               f"alpha {p.alphas[0]:g}")
    alpha_ref = LogisticProbe().alphas[0]
    if "batched logistic, alpha grid" in methods:
        grid = (1e-4, 1e-3, 1e-2)
        p, sec = _timed(lambda: LogisticProbe(alphas=grid).fit(tr.X, tr.y, sel))
        record("batched logistic, alpha grid", sec, p.score(te.X, te.y),
               f"alpha in {grid} chosen per subset on the validation split")
    if "ridge" in methods:
        p, sec = _timed(lambda: RidgeProbe().fit(tr.X, tr.y, sel))
        record("ridge", sec, p.score(te.X, te.y), "closed form, one Gram matrix")
    tri, _ = validation_split(tr.y, 0.1, 0)
    mu, sd = tr.X[tri].mean(0), tr.X[tri].std(0)
    sd[sd == 0] = 1
    Xs, Xt = (tr.X[tri] - mu) / sd, (te.X - mu) / sd
    if "scikit-learn per subset" in methods:
        C = 1.0 / (alpha_ref * len(tri))
        accs, sec = _timed(lambda: _sklearn_per_subset(Xs, tr.y[tri], Xt, te.y, sel, C, sklearn_max_iter))
        record("scikit-learn per subset", sec, accs, f"lbfgs, C = {C:.3g}, i.e. 1 / (alpha n): the batched probe's L2 strength")
    if "paper recipe per subset" in methods:
        accs, sec = _recipe_per_subset(tr, te, sel, paper_epochs_timed)
        record("paper recipe per subset", sec * 100 / paper_epochs_timed, accs,
               f"timed {paper_epochs_timed} epochs per subset, extrapolated to 100; accuracy after "
               f"{paper_epochs_timed} epochs only")
    return pd.DataFrame(rows), pd.DataFrame(acc_rows)


def recipe_cost_estimate(n_subsets: int, n_images: int, images_per_second: float, epochs: int = 100) -> dict:
    """What the paper's recipe costs on this machine: every probe re-runs the backbone on
    every training image in every epoch. Returns seconds for that and for one extraction."""
    return {"recipe_seconds": n_subsets * epochs * n_images / images_per_second,
            "extraction_seconds": n_images / images_per_second}


def accuracy_gaps(per_member: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Mean accuracy per (method, fraction) minus the reference method's, in points."""
    m = per_member.groupby(["method", "fraction"], as_index=False)["accuracy"].mean()
    ref = m[m.method == reference].set_index("fraction")["accuracy"]
    m = m[m.method != reference].copy()
    m["gap_points"] = 100 * (m.accuracy - m.fraction.map(ref))
    return m


def run(*, model, arch, dataset, n_train, image_size, fractions, seeds, n_runtime_images: int = 256) -> Result:
    """The chapter's computation: every method timed on the same cached features and grid
    (cached with its timings), the accuracy gaps to scikit-learn, and what the paper's
    recipe would cost in backbone time on this machine."""
    params = dict(model=model, arch=arch, dataset=dataset, n_train=n_train, image_size=image_size,
                  fractions=fractions, seeds=seeds, n_runtime_images=n_runtime_images)
    cfg = RunConfig(model=model, arch=arch, dataset=dataset, n_train=n_train, image_size=image_size,
                    fractions=fractions, seeds=seeds).scaled()
    bench, per_member, measured = probe_costs_cached(cfg)
    train, _ = features_of(cfg)
    n_members = len(per_member) // len(bench)
    ips = train.meta["images_per_second"]
    values = {"scale_note": scale_note(), "measured": measured, "n_members": n_members,
              "n_train_used": int(cfg.n_train), "images_per_second": ips,
              "estimate": recipe_cost_estimate(n_members, len(train.y), ips)}
    runtimes, _ = runtimes_cached(cfg, n_runtime_images)
    return Result(params, {"bench": bench, "per_member": per_member, "gaps": accuracy_gaps(per_member),
                           "runtimes": runtimes}, values)


def runtimes_table(result: Result) -> pd.DataFrame:
    """The runtime comparison as the chapter shows it."""
    shown = result.runtimes.assign(images_per_second=result.runtimes.images_per_second.round().astype(int))
    return shown[["runtime", "images_per_second", "max_rel_diff", "mean_rel_diff"]].rename(columns={
        "images_per_second": "images/s (median)", "max_rel_diff": "largest difference to torch float32 (relative)",
        "mean_rel_diff": "mean difference to torch float32 (relative)"})


def runtime_quotes(rt: pd.DataFrame) -> dict:
    """The default runtime's speed against the old default's and its largest difference to
    torch float32 (the reference)."""
    by = rt.set_index("runtime")
    default, old = by.loc[CPU_RUNTIMES[2][2]], by.loc[CPU_RUNTIMES[1][2]]
    fastest = rt.loc[rt.images_per_second.idxmax()]
    return {"rt_default_ips": float(default.images_per_second), "rt_old_ips": float(old.images_per_second),
            "rt_speedup": float(default.images_per_second / old.images_per_second),
            "rt_default_diff": float(default.max_rel_diff), "rt_old_diff": float(old.max_rel_diff),
            "rt_fastest": str(fastest.runtime), "rt_fastest_diff": float(fastest.max_rel_diff),
            "rt_images": int(rt.images.iloc[0]), "rt_repeats": int(rt.repeats.iloc[0])}


def bench_table(result: Result) -> pd.DataFrame:
    """One row per method: seconds and note (rounded for display)."""
    return result.bench.round(2)


def _timing_quotes(result: Result) -> dict:
    t = result.bench.set_index("method").seconds
    acc_m = result.per_member.groupby(["method", "fraction"]).accuracy.mean().unstack(0)
    return {"t_batched": float(t[BATCHED]), "t_grid": float(t[GRID]), "t_ridge": float(t[RIDGE]),
            "t_sklearn": float(t[REFERENCE]), "t_recipe": float(t[RECIPE]),
            "grid_diff": float(100 * (acc_m[GRID] - acc_m[BATCHED]).abs().max()),
            "speedup": float(t[REFERENCE] / t[BATCHED])}


def _gap_quotes(gaps: pd.DataFrame) -> dict:
    batched = gaps[gaps.method.str.startswith(BATCHED)]
    worst = batched.assign(a=batched.gap_points.abs()).nlargest(1, "a")
    r = gaps[gaps.method == RIDGE].sort_values("fraction")
    ridge_small = float(r.gap_points.iloc[: len(r) // 2].mean())
    return {"max_gap": float(batched.gap_points.abs().max()), "max_gap_frac": f"fraction {worst.fraction.iloc[0]:g}",
            "ridge_gap_small": abs(ridge_small), "ridge_word": "below" if ridge_small < 0 else "above"}


def quotes(result: Result) -> dict:
    """Every number and word the chapter's prose quotes."""
    estimate = result.estimate
    return {"scale_note": result.scale_note, "measured_when": result.measured["computed"],
            "n_members": result.n_members, "n_train_used": result.n_train_used, **_timing_quotes(result),
            "ips": float(result.images_per_second), "extract_s": estimate["extraction_seconds"],
            "recipe_h": estimate["recipe_seconds"] / 3600, **_gap_quotes(result.gaps),
            **runtime_quotes(result.runtimes)}

"""What it costs: cached features and batched probes against the paper's recipe, measured."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..config import RunConfig
from ..curves import cached_frames, feature_digests, features_of, probe_spec
from ..probes import LogisticProbe, RidgeProbe, paper_recipe, validation_split
from ..subsets import Selection, random_subsets


COST_METHODS = ("batched logistic", "batched logistic, alpha grid", "ridge", "scikit-learn per subset",
                "paper recipe per subset")


def probe_costs_cached(cfg: RunConfig, **kw) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`probe_costs`, cached: timings are those measured when the entry was written
    (``meta["computed"]``), on this machine, unless the cache was copied from elsewhere."""
    spec = {"config": cfg.to_dict(), "features": feature_digests(cfg), "kw": kw, "probes": probe_spec(cfg.device)}
    (bench, per), meta = cached_frames("probe_costs", spec, lambda: probe_costs(cfg, **kw), n=2)
    return bench, per, meta


def probe_costs(cfg: RunConfig, methods=COST_METHODS, paper_epochs_timed: int = 2,
                sklearn_max_iter: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time, peak memory and accuracy of each probe method on the same cached features and
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

"""Uncertainty for every verdict number (issue 14): bootstrap intervals, permutation
p-values and an overlap-only CKA baseline. Plain functions; every random draw comes from an
explicit ``random_state``.

* :func:`bootstrap_gap_images` — interval of the accuracy gap (full layer minus a subset,
  points) over subset seeds AND test images, from per-image correctness;
* :func:`bootstrap_gap` — the same from an existing curve (accuracies per fraction and
  seed): seeds resampled, test images as a binomial term (assumption in its docstring);
* :func:`permutation_p_correlation`, :func:`permutation_p_difference` — Spearman rho and a
  difference of means with permutation p-values (exact enumeration when small);
* :func:`dr_difference` — DR(a) - DR(b) (interpolated) with a bootstrap interval over
  each curve's subset seeds, for comparisons of DR (chapters 04, 06, 11);
* :func:`within_seed_permutation` — chapter 05's unevenness test with classes permuted
  within each subset seed;
* :func:`cka_overlap_baseline` — the CKA that overlap alone gives two random k-subsets of a
  layer of independent neurons (paper Section 4's similarity claim needs to beat it).

The verdicts these numbers feed are in :mod:`diffred.verdicts`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from . import metrics

LEVEL = 0.95
N_BOOT = 2000
N_PERMUTATIONS = 10000
ALTERNATIVES = ("two-sided", "greater", "less")
#: Permuted statistics within this of the observed one count as "as extreme" (float ties).
TIE_TOL = 1e-12
#: Bootstrap replicates (or permutations) drawn at once (memory: chunk x n_images floats).
BOOT_CHUNK = 200


def _quantiles(reps, level):
    lo, hi = np.quantile(np.asarray(reps, float), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_gap_images(correct, correct_full, n_boot: int = N_BOOT, level: float = LEVEL,
                         random_state: int = 0) -> dict:
    """Percentile bootstrap of the gap ``100 * (acc_full - acc_subset)`` (points) over
    subset seeds and test images. ``correct : (n_seeds, n_images)`` — 1 where subset seed
    s classified image i correctly; ``correct_full : (n_images,)`` (or ``(n_full_seeds,
    n_images)``, averaged over its rows) for the full layer, on the same images. Each
    replicate resamples seeds and images with replacement; the images are shared by the
    subset and the full layer (paired), so image difficulty common to both cancels.
    Returns ``gap``, ``low``, ``high``, ``n_seeds``, ``n_images``, ``level``, ``method``."""
    C = np.asarray(correct, float)
    full = np.asarray(correct_full, float)
    full = full.mean(0) if full.ndim == 2 else full
    if C.ndim != 2 or full.shape != (C.shape[1],):
        raise ValueError(f"correct must be (n_seeds, n_images) and correct_full (n_images,); "
                         f"got {C.shape}, {full.shape}")
    S, n = C.shape
    rng = np.random.default_rng(random_state)
    reps = []
    for start in range(0, n_boot, BOOT_CHUNK):
        m = min(BOOT_CHUNK, n_boot - start)
        w_img = rng.multinomial(n, np.full(n, 1.0 / n), size=m) / n            # (m, n_images)
        w_seed = rng.multinomial(S, np.full(S, 1.0 / S), size=m) / S           # (m, n_seeds)
        sub = np.einsum("bs,si,bi->b", w_seed, C, w_img)
        reps.append(100 * (w_img @ full - sub))
    lo, hi = _quantiles(np.concatenate(reps), level)
    gap = 100 * (full.mean() - C.mean())
    return {"gap": float(gap), "low": lo, "high": hi, "n_seeds": S, "n_images": n, "level": level,
            "method": "bootstrap over subset seeds and test images (paired)"}


def _accuracies_at(curve, fraction):
    df = curve[~curve["duplicate_k"].astype(bool)] if "duplicate_k" in curve else curve
    if "model" in df and df[["model", "dataset"]].drop_duplicates().shape[0] > 1:
        raise ValueError("bootstrap_gap takes the curve of one (model, dataset, selector)")
    at = df.loc[np.isclose(df["fraction"], fraction), "accuracy"].to_numpy(float)
    full = df.loc[np.isclose(df["fraction"], 1.0), "accuracy"].to_numpy(float)
    if at.size == 0 or full.size == 0:
        raise ValueError(f"the curve needs the fractions {fraction} and 1.0 (has {sorted(set(df['fraction']))})")
    return at, full


def bootstrap_gap(curve, fraction: float, n_test: int | None = None, n_boot: int = N_BOOT,
                  level: float = LEVEL, random_state: int = 0) -> dict:
    """Bootstrap interval of the gap ``100 * (acc_full - acc(fraction))`` (points) from an
    existing curve of ONE (model, dataset, selector), whose rows hold only one accuracy
    per (fraction, seed) — no per-image results. Each replicate

    1. resamples the subset seeds at ``fraction`` with replacement (their mean accuracy),
       and the full-layer rows likewise;
    2. if ``n_test`` is given, adds the test-image term: each of the two accuracies is
       redrawn as ``Binomial(n_test, acc) / n_test``.

    Assumes (2) that the subset's and the full layer's errors are independent across test
    images. They are positively correlated in fact (the same images are hard for both), so
    this overstates the test-image variance of the gap: the interval is conservative
    (wider than the paired :func:`bootstrap_gap_images` would give). Without ``n_test`` the
    interval covers subset-seed variation only. Returns ``gap``, ``low``, ``high``,
    ``n_seeds``, ``n_images`` (``n_test``), ``level``, ``method``."""
    at, full = _accuracies_at(curve, fraction)
    rng = np.random.default_rng(random_state)
    sub = at[rng.integers(0, at.size, (n_boot, at.size))].mean(1)
    ref = full[rng.integers(0, full.size, (n_boot, full.size))].mean(1)
    if n_test:
        sub = rng.binomial(n_test, np.clip(sub, 0, 1)) / n_test
        ref = rng.binomial(n_test, np.clip(ref, 0, 1)) / n_test
    lo, hi = _quantiles(100 * (ref - sub), level)
    method = ("bootstrap over subset seeds" + (" with a binomial test-image term (independent errors: "
              "conservative)" if n_test else " only (test images not resampled)"))
    return {"gap": float(100 * (full.mean() - at.mean())), "low": lo, "high": hi, "n_seeds": int(at.size),
            "n_images": n_test, "level": level, "method": method}


def dr_difference(rows_a, rows_b, delta: float = 0.9, n_boot: int = N_BOOT, level: float = LEVEL,
                  random_state: int = 0, n_test: int | None = None) -> dict:
    """``DR(a) - DR(b)``, each read off its curve by :func:`diffred.metrics.dr_interpolated`,
    with a percentile bootstrap interval: the two curves' subset seeds are resampled
    independently (:func:`diffred.metrics.dr_replicates`; different models or datasets
    share no subset), each with the binomial test-image term when ``n_test`` is given.
    ``rows_a``, ``rows_b``: the tidy rows of one curve each. Returns ``diff``, ``low``,
    ``high``, ``dr_a``, ``dr_b``, ``n``  (the seed counts), ``level``, ``n_boot``; feed it
    to :func:`diffred.verdicts.difference` with its interval, ``n`` (2 vs 2 seeds cannot
    decide) and a ``margin`` of the size that would matter."""
    dr_a, reps_a = metrics.dr_replicates(rows_a, delta, n_boot, random_state, n_test)
    dr_b, reps_b = metrics.dr_replicates(rows_b, delta, n_boot, random_state + 1, n_test)
    lo, hi = _quantiles(reps_a - reps_b, level)
    n = tuple(int(np.unique(np.asarray(r["seed"])).size) for r in (rows_a, rows_b))
    return {"diff": dr_a - dr_b, "low": lo, "high": hi, "dr_a": dr_a, "dr_b": dr_b, "n": n, "level": level,
            "n_boot": n_boot}


def _ranks(x):
    """Average ranks (ties share the mean rank), as Spearman's rho uses."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(1, x.size + 1)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


def _p_from_null(obs, null, alternative, exact):
    """p-value of ``obs`` against permuted statistics ``null``: exact enumeration counts
    the observed arrangement among ``null``; Monte Carlo adds it (+1 smoothing)."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    null = np.asarray(null, float)
    if alternative == "two-sided":
        hits = np.abs(null) >= abs(obs) - TIE_TOL
    elif alternative == "greater":
        hits = null >= obs - TIE_TOL
    else:
        hits = null <= obs + TIE_TOL
    k = int(hits.sum())
    return k / null.size if exact else (1 + k) / (1 + null.size)


def permutation_p_correlation(x, y, n_permutations: int = N_PERMUTATIONS, alternative: str = "two-sided",
                              random_state: int = 0) -> tuple[float, float]:
    """Spearman's rho of ``x (n,)`` and ``y (n,)`` (ties: average ranks) and its
    permutation p-value (``y`` permuted against ``x``): exact over all n! orders when
    n! <= ``n_permutations``, Monte Carlo otherwise. ``alternative``: "two-sided",
    "greater" (rho > 0), "less". A constant variable has no rho: ``(nan, 1.0)``."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.shape != ry.shape or rx.size < 2:
        raise ValueError("x and y must be equal-length with at least 2 values")
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan"), 1.0
    rx, ry = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean()), (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
    rho = float(rx @ ry)
    exact = math.factorial(rx.size) <= n_permutations
    if exact:
        perms = np.array(list(itertools.permutations(range(rx.size))))
    else:
        rng = np.random.default_rng(random_state)
        perms = np.argsort(rng.random((n_permutations, rx.size)), axis=1)
    return rho, _p_from_null(rho, ry[perms] @ rx, alternative, exact)


def permutation_p_difference(a, b, n_permutations: int = N_PERMUTATIONS, alternative: str = "two-sided",
                             random_state: int = 0) -> tuple[float, float]:
    """``mean(a) - mean(b)`` and its permutation p-value (group labels permuted): exact
    over all C(n_a + n_b, n_a) splits when there are at most ``n_permutations``, Monte
    Carlo otherwise. ``alternative``: "two-sided", "greater" (a > b), "less". The smallest
    p it can give is :func:`diffred.verdicts.smallest_p_difference` (2 vs 2: 1/3)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("both groups need at least one value")
    pooled, na = np.concatenate([a, b]), a.size
    diff = float(a.mean() - b.mean())
    exact = math.comb(pooled.size, na) <= n_permutations
    if exact:
        mask = np.zeros((math.comb(pooled.size, na), pooled.size), bool)
        for row, idx in enumerate(itertools.combinations(range(pooled.size), na)):
            mask[row, list(idx)] = True
    else:
        rng = np.random.default_rng(random_state)
        mask = np.argsort(rng.random((n_permutations, pooled.size)), axis=1) < na
    null = (mask @ pooled) / na - ((~mask) @ pooled) / (pooled.size - na)
    return diff, _p_from_null(diff, null, alternative, exact)


def within_seed_permutation(D, n_permutations: int = N_PERMUTATIONS, random_state: int = 0) -> dict:
    """Chapter 05's unevenness test. ``D : (n_seeds, n_classes)`` — per-class accuracy drop
    (full layer minus subset) for each subset seed. Statistic: the variance across classes
    of the seed-mean drop. Null: no class is hit harder than another, so within one seed
    the class labels are exchangeable; but one subset shifts every class together, so the
    cells are permuted *within each seed* (each row shuffled on its own), never across
    seeds. With one seed the statistic cannot move (p = 1): one subset cannot separate a
    class effect from its own noise. p-value with +1 smoothing. Returns ``statistic``,
    ``p_value`` (more uneven than the null), ``p_less`` (more even than the null),
    ``null_mean``, ``n_permutations``, ``n_seeds``, ``n_classes``."""
    D = np.asarray(D, float)
    if D.ndim != 2 or D.shape[1] < 2 or not np.isfinite(D).all():
        raise ValueError(f"D must be a finite (n_seeds, n_classes >= 2) array, got shape {D.shape}")
    stat = float(D.mean(0).var())
    rng = np.random.default_rng(random_state)
    null = []
    for start in range(0, n_permutations, BOOT_CHUNK):
        m = min(BOOT_CHUNK, n_permutations - start)
        shuffled = rng.permuted(np.broadcast_to(D, (m, *D.shape)), axis=2)   # each (copy, seed) row alone
        null.append(shuffled.mean(1).var(1))
    null = np.concatenate(null)
    p = (1 + int((null >= stat - TIE_TOL).sum())) / (1 + n_permutations)
    p_less = (1 + int((null <= stat + TIE_TOL).sum())) / (1 + n_permutations)
    return {"statistic": stat, "p_value": float(p), "n_permutations": n_permutations,
            "n_seeds": D.shape[0], "n_classes": D.shape[1], "null_mean": float(null.mean()),
            "p_less": float(p_less)}


def _subset_pair(rng, d, k, overlap):
    a = rng.permutation(d)[:k]
    if overlap is None:
        return a, rng.permutation(d)[:k]
    rest = np.setdiff1d(np.arange(d), a)
    return a, np.concatenate([rng.choice(a, overlap, replace=False), rng.choice(rest, k - overlap, replace=False)])


def cka_overlap_baseline(d: int, k: int, n_samples: int, n_draws: int = 20, overlap: int | None = None,
                         variances=None, random_state: int = 0) -> dict:
    """The CKA that subset overlap alone gives: a layer of ``d`` INDEPENDENT Gaussian
    neurons (variances ``variances (d,)``, default 1 — pass the real layer's to match its
    scale) observed on ``n_samples`` images; two k-subsets drawn as the chapter draws them
    (independent random subsets when ``overlap`` is None — mean overlap k^2/d — or sharing
    exactly ``overlap`` neurons). Over ``n_draws`` simulated layers: mean and std of the
    linear CKA of subset vs subset and subset vs whole layer, and the population values for
    equal variances (no sampling noise): overlap / k and sqrt(k / d). A real layer's CKA
    must exceed these for similarity to say more than "the subsets share neurons". Returns
    ``subset_vs_subset``, ``subset_vs_subset_std``, ``subset_vs_whole``,
    ``subset_vs_whole_std``, ``mean_overlap``, ``population_subset_vs_subset``,
    ``population_subset_vs_whole``, ``n_draws``."""
    feasible = overlap is None or (0 <= overlap <= k and 2 * k - overlap <= d)
    if not (1 <= k <= d and feasible):
        raise ValueError(f"need 1 <= k <= d and 0 <= overlap <= k with 2k - overlap <= d; got d={d}, k={k}, "
                         f"overlap={overlap}")
    sd = np.sqrt(np.ones(d) if variances is None else np.asarray(variances, float))
    rng = np.random.default_rng(random_state)
    pair, whole, shared = [], [], []
    for _ in range(n_draws):
        cov = metrics.covariance(rng.standard_normal((n_samples, d)) * sd)
        a, b = _subset_pair(rng, d, k, overlap)
        pair.append(metrics.cka_from_cov(cov, a, b))
        whole.append(metrics.cka_from_cov(cov, a))
        shared.append(np.intersect1d(a, b).size)
    m = float(np.mean(shared)) if overlap is None else float(overlap)
    exp_overlap = k * k / d if overlap is None else overlap
    return {"subset_vs_subset": float(np.mean(pair)), "subset_vs_subset_std": float(np.std(pair)),
            "subset_vs_whole": float(np.mean(whole)), "subset_vs_whole_std": float(np.std(whole)),
            "mean_overlap": m, "population_subset_vs_subset": exp_overlap / k,
            "population_subset_vs_whole": math.sqrt(k / d), "n_draws": n_draws}

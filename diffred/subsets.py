"""Neuron selections: which k of the layer's d neurons a probe sees.

The paper's protocol (Section 3; authors' scripts): for a subset seed s and a fraction f,
k = int(f * d) and the subset is the first k entries of a random permutation seeded by s —
so the subsets of one seed are *nested* across fractions. Each selection here is an
*ordered basis* of the layer (a neuron order, or a projection matrix whose columns are
ordered) plus the prefix lengths k to probe, so one object serves random neurons,
first-k neurons, principal components and random projections alike, and a probe can train
every prefix of one basis from a single pass over the features.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import check_fractions


def subset_size(fraction: float, d: int, clip: bool = False) -> int:
    """k = int(f * d), the paper's subset size. A fraction that rounds to 0 neurons is
    refused, or raised to 1 neuron with ``clip=True``."""
    (fraction,) = check_fractions([fraction])
    if d <= 0:
        raise ValueError(f"a layer of {d} neurons has no subsets")
    k = int(fraction * d + 1e-9)
    if k == 0:
        if clip:
            return 1
        raise ValueError(f"fraction {fraction} of a {d}-neuron layer is 0 neurons; the smallest "
                         f"fraction with a neuron is 1/{d} = {1 / d:.2g}")
    return min(k, d)


@dataclasses.dataclass(frozen=True)
class Basis:
    """An ordered basis of a ``d``-wide layer. ``order`` (m,) picks neurons; ``matrix``
    (d, m) projects. Its first k directions are the k-dimensional reduction. Projections
    act on standardised features (each neuron centred and scaled to unit variance), which
    is what the probes see."""

    selector: str
    seed: int | None
    d: int
    order: np.ndarray | None = None
    matrix: np.ndarray | None = None
    mean: np.ndarray | None = None  # subtracted before projecting (PCA)

    @property
    def size(self) -> int:
        return len(self.order) if self.order is not None else self.matrix.shape[1]

    def transform(self, X: np.ndarray, k: int | None = None) -> np.ndarray:
        """``X (n, d)`` -> its first ``k`` coordinates in this basis, ``(n, k)``."""
        if X.shape[1] != self.d:
            raise ValueError(f"features have {X.shape[1]} columns, the basis expects {self.d}")
        k = self.size if k is None else k
        if not (1 <= k <= self.size):
            raise ValueError(f"k={k} outside 1..{self.size} for this {self.selector} basis")
        if self.order is not None:
            return X[:, self.order[:k]]
        Xc = X - self.mean if self.mean is not None else X
        return Xc @ self.matrix[:, :k]


@dataclasses.dataclass(frozen=True)
class Member:
    """One probe input: the first ``k`` directions of ``bases[basis]``."""

    basis: int
    k: int
    fraction: float
    seed: int | None
    selector: str


@dataclasses.dataclass(frozen=True)
class Selection:
    """Bases plus the members (basis, k) to probe: what a batched probe trains at once."""

    bases: tuple[Basis, ...]
    members: tuple[Member, ...]

    def __len__(self) -> int:
        return len(self.members)

    def indices(self, i: int) -> np.ndarray:
        """Neuron indices of member ``i`` (only for neuron-picking selectors)."""
        m = self.members[i]
        b = self.bases[m.basis]
        if b.order is None:
            raise ValueError(f"member {i} is a {b.selector} projection, not a neuron subset")
        return b.order[: m.k]

    def __add__(self, other: "Selection") -> "Selection":
        off = len(self.bases)
        moved = tuple(dataclasses.replace(m, basis=m.basis + off) for m in other.members)
        return Selection(self.bases + other.bases, self.members + moved)


def random_permutation(d: int, seed: int) -> np.ndarray:
    """The neuron order of subset seed ``seed``: a permutation of ``range(d)``."""
    return np.random.default_rng(seed).permutation(d)


def _prefix_selection(bases: list[Basis], fractions, clip: bool) -> Selection:
    fractions = check_fractions(fractions)
    members = []
    for i, b in enumerate(bases):
        for f in fractions:
            members.append(Member(i, min(subset_size(f, b.d, clip=clip), b.size), f, b.seed, b.selector))
    return Selection(tuple(bases), tuple(members))


def random_subsets(d: int, fractions, seeds, clip: bool = True) -> Selection:
    """Random neurons, nested across fractions per seed (the paper's protocol). The full
    layer (f = 1) appears once per seed; it is the same set of neurons for every seed."""
    bases = [Basis("random", int(s), d, order=random_permutation(d, int(s))) for s in seeds]
    return _prefix_selection(bases, fractions, clip)


def first_k(d: int, fractions, clip: bool = True) -> Selection:
    """The first k neurons in the layer's own order (for Matryoshka-style models)."""
    return _prefix_selection([Basis("first", None, d, order=np.arange(d))], fractions, clip)


def _check_k_fractions(d: int, fractions, n_samples: int | None = None):
    fractions = check_fractions(fractions)
    ks = [subset_size(f, d, clip=True) for f in fractions]
    if n_samples is not None and max(ks) > min(d, n_samples):
        raise ValueError(f"asked for {max(ks)} principal components but PCA of {n_samples} samples "
                         f"has at most {min(d, n_samples)}; use more training samples or smaller fractions")
    return fractions


def principal_components(X_train: np.ndarray, fractions, bottom: bool = False, clip: bool = True) -> Selection:
    """Top-k (or bottom-k) principal components of the *training* features: the basis is
    the eigenvectors of their covariance, by decreasing (or increasing) variance."""
    X = np.asarray(X_train, dtype=np.float64)
    n, d = X.shape
    _check_k_fractions(d, fractions, n)
    mean = X.mean(0)
    std = X.std(0)
    std[std == 0] = 1.0
    Z = (X - mean) / std  # PCA of the standardised features, which the probes see
    evals, evecs = np.linalg.eigh(Z.T @ Z / max(n - 1, 1))
    order = np.argsort(evals)[::-1] if not bottom else np.argsort(evals)
    m = min(d, n)
    V = evecs[:, order[:m]].astype(np.float32)
    basis = Basis("pca_bottom" if bottom else "pca_top", None, d, matrix=V)
    return _prefix_selection([basis], fractions, clip)


def random_projections(d: int, fractions, seeds, kind: str = "gaussian", clip: bool = True) -> Selection:
    """k-dimensional random projections, nested per seed (the first k columns of one
    d x d matrix). ``kind``: ``"gaussian"`` (i.i.d. N(0, 1/d), the default) or
    ``"authors"`` (the authors' code: uniform [0, 1) entries, each column normalised to
    unit norm — all entries positive)."""
    if kind not in ("gaussian", "authors"):
        raise ValueError(f"random projection kind {kind!r} unknown; use 'gaussian' or 'authors'")
    bases = []
    for s in seeds:
        rng = np.random.default_rng(int(s))
        if kind == "gaussian":
            M = rng.normal(0.0, 1.0 / np.sqrt(d), size=(d, d))
        else:
            M = rng.random((d, d))
            M /= np.linalg.norm(M, axis=0, keepdims=True)
        bases.append(Basis(f"projection_{kind}", int(s), d, matrix=M.astype(np.float32)))
    return _prefix_selection(bases, fractions, clip)

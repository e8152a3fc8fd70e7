"""Linear probes on frozen features, many subsets at once (paper Section 3, "linear probe").

* :class:`LogisticProbe` — multinomial logistic regression (softmax + cross-entropy + L2),
  trained for *every* member of a :class:`~diffred.subsets.Selection` in one tensor
  program: the members that share a basis (the nested subsets of one seed) are packed into
  one weight matrix, masked so member i only sees its first k_i directions, and a minibatch
  of features is read once for all of them. The L2 strength is chosen per member on a
  validation split held out from the training data, together with the best epoch (the
  paper keeps the best checkpoint on a 10% validation split). Optimiser: Adam with a cosine
  schedule by default, or the paper's recipe (SGD, lr 0.1, momentum 0.9, weight decay,
  StepLR gamma 0.1) via :func:`paper_recipe`.
* :class:`RidgeProbe` — closed form: the Gram matrix ``X^T X`` is computed once and each
  member costs one k x k solve per L2 strength (one-hot least squares, argmax prediction).

Both follow scikit-learn's conventions: ``__init__`` stores parameters, ``fit`` validates
and returns ``self``, learned state ends in ``_``, randomness through ``random_state``.
Features are standardised with the training mean and std (a constant column becomes 0).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from .device import compute_dtype, resolve_device
from .subsets import Selection


def _device(device) -> torch.device:
    return resolve_device(device or "auto")


def _check_xy(X, y=None, name="X"):
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with {len(X)} labels, got shape {y.shape}")
    return X, y


def validation_split(y: np.ndarray, fraction: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_idx, val_idx) with ``fraction`` of each class held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction={fraction} must lie in (0, 1)")
    rng = np.random.default_rng(random_state)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        val.extend(idx[: max(1, int(round(fraction * len(idx))))] if len(idx) > 1 else [])
    val = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


@dataclasses.dataclass
class _Group:
    """Members of one basis packed into one weight matrix of ``kmax`` rows."""

    basis: int
    kmax: int
    heads: list  # unique head ids in this group, in column order
    ks: np.ndarray  # k per head


def _plan(selection: Selection, group_ratio: float = 1.5, small: int = 64):
    """Deduplicate members with identical inputs and pack the rest into groups."""
    sig_to_head, member_head, head_basis, head_k = {}, [], [], []
    for i, m in enumerate(selection.members):
        b = selection.bases[m.basis]
        if b.order is not None:
            sig = ("neurons", b.d, np.sort(b.order[: m.k]).tobytes())
        else:
            sig = ("basis", m.basis, m.k)
        if sig not in sig_to_head:
            sig_to_head[sig] = len(head_basis)
            head_basis.append(m.basis)
            head_k.append(m.k)
        member_head.append(sig_to_head[sig])
    groups = []
    for bi in sorted(set(head_basis)):
        hs = sorted((h for h in range(len(head_basis)) if head_basis[h] == bi), key=lambda h: head_k[h])
        cur = []
        for h in hs:
            if cur and head_k[h] > max(small, group_ratio * head_k[cur[0]]):
                groups.append(cur)
                cur = []
            cur.append(h)
        if cur:
            groups.append(cur)
    packed = [_Group(head_basis[g[0]], max(head_k[h] for h in g), g, np.array([head_k[h] for h in g]))
              for g in groups]
    return np.asarray(member_head), packed


class _Standardiser:
    def __init__(self, X: torch.Tensor):
        std, self.mean = torch.std_mean(X, 0)
        self.scale = torch.where(std > 0, std, torch.ones_like(std))

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.mean) / self.scale


def _basis_tensors(selection: Selection, dev: torch.device):
    out = []
    for b in selection.bases:
        if b.order is not None:
            out.append(("index", torch.as_tensor(b.order, device=dev, dtype=torch.long), None))
        else:
            mean = torch.as_tensor(b.mean, device=dev, dtype=torch.float32) if b.mean is not None else None
            out.append(("matrix", torch.as_tensor(b.matrix, device=dev, dtype=torch.float32), mean))
    return out


def _apply_basis_T(ZT: torch.Tensor, bt) -> torch.Tensor:
    """:func:`_apply_basis` on transposed features ``(d, n)``, returning ``(k, n)``."""
    kind, t, mean = bt
    if kind == "index":
        return ZT.index_select(0, t)
    return t.T @ (ZT - mean[:, None] if mean is not None else ZT)


def _apply_basis(Z: torch.Tensor, bt) -> torch.Tensor:
    kind, t, mean = bt
    if kind == "index":
        return Z.index_select(1, t)
    return (Z - mean if mean is not None else Z) @ t


class _Params:
    def get_params(self) -> dict:
        """The constructor's parameters (scikit-learn convention)."""
        import inspect
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}


class LogisticProbe(_Params):
    """Batched multinomial logistic probe over the members of a selection.

    Parameters
    ----------
    alphas : L2 strengths tried (penalty ``alpha/2 * ||W||^2`` added to the mean
        cross-entropy; scikit-learn's ``C`` is ``1 / (alpha * n_train)``); the best per
        member on the validation split is kept. The default is one strength, as the paper's
        fixed weight decay: on Fashion-MNIST features a grid (1e-4, 1e-3, 1e-2) chosen per
        subset changed no fraction's mean accuracy by more than 0.05 points and cost 70%
        more time (``benchmarks/RESULTS.md``).
    optimizer : ``"adam"`` (cosine-decayed learning rate) or ``"sgd"`` (momentum, StepLR).
    max_epochs, batch_size, lr : the optimisation budget; ``batch_size="auto"`` is
        ``min(1024, max(64, n // 20))`` and ``max_epochs="auto"`` is at least 10 epochs and
        500 steps, so that small datasets are trained to convergence too.
    tol, patience : stop when no member's validation accuracy improved by more than
        ``tol`` for ``patience`` epochs (``patience=None``: run all epochs).
    val_fraction : share of the training data held out (stratified) for choosing alpha and
        the epoch.
    precision : ``"float32"``, or ``"bfloat16"`` for the feature matrix and the two
        matrix products of each step (weights, softmax and optimiser stay float32), or
        ``"auto"``: bfloat16 where the hardware has native bfloat16 products. Measured on
        Fashion-MNIST features: per-fraction accuracy within 0.03 points of float32.
    keep_best : keep each member's weights from its best validation epoch (the paper's
        protocol); ``False`` keeps the last epoch's.
    """

    def __init__(self, alphas=(1e-3,), optimizer="adam", max_epochs="auto", batch_size="auto",
                 lr=None, momentum=0.9, lr_step=None, tol=1e-4, patience=3, val_fraction=0.1,
                 keep_best=True, precision="auto", random_state=0, device="auto"):
        self.alphas = alphas
        self.optimizer = optimizer
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.lr_step = lr_step
        self.tol = tol
        self.patience = patience
        self.val_fraction = val_fraction
        self.keep_best = keep_best
        self.precision = precision
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, selection: Selection, X_val=None, y_val=None) -> "LogisticProbe":
        X, y = _check_xy(X, y)
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if (alphas < 0).any() or len(alphas) == 0:
            raise ValueError(f"alphas must be non-negative and non-empty, got {self.alphas}")
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"precision {self.precision!r} unknown; use 'auto', 'float32' or 'bfloat16'")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer {self.optimizer!r} unknown; use 'adam' or 'sgd'")
        if len(selection) == 0:
            raise ValueError("the selection has no members to probe")
        for b in selection.bases:
            if b.d != X.shape[1]:
                raise ValueError(f"selection is for a {b.d}-wide layer, features have {X.shape[1]} columns")
        dev = _device(self.device)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y has a single class; a probe needs at least 2")
        gen = torch.Generator(device="cpu").manual_seed(int(self.random_state))
        if X_val is None:
            tr, va = validation_split(y_idx, self.val_fraction, self.random_state)
            Xva, yva = X[va], y_idx[va]
        else:
            X_val, y_val = _check_xy(X_val, y_val, "X_val")
            tr, Xva = np.arange(len(y_idx)), X_val
            yva = np.searchsorted(self.classes_, y_val)
        # Training rows are shuffled once (each epoch then visits the minibatches in a new
        # order), gathered, standardised in place and transposed: one copy of the data.
        rows = tr[torch.randperm(len(tr), generator=gen).numpy()]
        C, A = len(self.classes_), len(alphas)
        Xtr_t = torch.from_numpy(np.ascontiguousarray(X[rows], dtype=np.float32)).to(dev)
        self.scaler_ = _Standardiser(Xtr_t)
        Xtr_t.sub_(self.scaler_.mean).div_(self.scaler_.scale)
        Xva_t = self.scaler_(torch.as_tensor(Xva, dtype=torch.float32, device=dev))
        ytr_t = torch.as_tensor(y_idx[rows], device=dev)
        yva_t = torch.as_tensor(yva, device=dev)
        self.member_head_, self.groups_ = _plan(selection)
        self._selection = selection
        self._bases = _basis_tensors(selection, dev)

        n = len(rows)
        bs = min(1024, max(64, n // 20)) if self.batch_size == "auto" else int(self.batch_size)
        bs = min(bs, n)
        steps_per_epoch = math.ceil(n / bs)
        epochs = max(10, math.ceil(500 / steps_per_epoch)) if self.max_epochs == "auto" else int(self.max_epochs)
        total = steps_per_epoch * epochs
        lr0 = self.lr if self.lr is not None else (1e-2 if self.optimizer == "adam" else 0.1)
        step_size = self.lr_step or max(1, (10 if self.max_epochs == "auto" else int(self.max_epochs)) // 3)
        dt = compute_dtype(self.precision, dev)

        # Rows are shuffled once, and each basis's view of the training set is computed once,
        # transposed to (size, n) and stacked with the other bases of the same size:
        # V[f] is (bases, size, n). A minibatch is then a column slice, a member's input the
        # first k rows. Groups with the same prefix structure in different bases (the same
        # fractions under different subset seeds) form one *stack*, trained by batched
        # matrix products: a few large operations per step instead of many small ones.
        XT = Xtr_t.T.contiguous()
        del Xtr_t
        used = sorted({g.basis for g in self.groups_})
        fam_of, fam_members = {}, {}
        for bi in used:
            size = selection.bases[bi].size
            fam_members.setdefault(size, []).append(bi)
            fam_of[bi] = (size, len(fam_members[size]) - 1)
        V = {f: torch.stack([_apply_basis_T(XT, self._bases[bi]).to(dt) for bi in bis])
             for f, bis in fam_members.items()}
        del XT
        VV = {f: torch.stack([_apply_basis(Xva_t, self._bases[bi]).T for bi in bis]) for f, bis in fam_members.items()}
        stacks = {}
        for gi, g in enumerate(self.groups_):
            stacks.setdefault((fam_of[g.basis][0], g.kmax, tuple(g.ks)), []).append(gi)
        state = []
        for (fam, kmax, ks), gis in stacks.items():
            pos = [fam_of[self.groups_[gi].basis][1] for gi in gis]
            S, heads = len(gis), len(ks)
            H = heads * A * C
            rows = torch.arange(kmax, device=dev)[:, None]
            # class-major columns (column = class * heads * A + head * A + a): the softmax
            # then reduces over a middle axis, several times faster than over a last axis of C
            kcol = torch.as_tensor(np.tile(np.repeat(np.asarray(ks), A), C), device=dev)
            z = lambda *sh: torch.zeros(*sh, device=dev)  # noqa: E731
            contiguous = pos == list(range(pos[0], pos[0] + S))
            state.append({
                "groups": gis, "fam": fam, "kmax": kmax,
                "pos": slice(pos[0], pos[0] + S) if contiguous else torch.as_tensor(pos, device=dev),
                "mask": (rows < kcol[None]).float(),
                "alpha": torch.as_tensor(np.tile(alphas, heads * C), dtype=torch.float32, device=dev),
                "W": z(S, kmax, H), "b": z(S, 1, H), "mW": z(S, kmax, H), "vW": z(S, kmax, H),
                "mb": z(S, 1, H), "vb": z(S, 1, H), "bestW": z(S, kmax, H), "bestb": z(S, 1, H),
                "best_acc": torch.full((S, heads * A), -1.0, device=dev),
                "best_epoch": torch.zeros((S, heads * A), dtype=torch.long, device=dev)})

        onehot_all = torch.nn.functional.one_hot(ytr_t, C).float()
        t = 0
        stale = 0
        self.n_epochs_ = 0
        for epoch in range(epochs):
            for s in torch.randperm(steps_per_epoch, generator=gen).tolist():
                sl = slice(s * bs, (s + 1) * bs)
                onehot = onehot_all[sl]
                B = len(onehot)
                if self.optimizer == "adam":
                    lr = lr0 * 0.5 * (1 + math.cos(math.pi * t / total))
                else:
                    lr = lr0 * (0.1 ** (epoch // step_size))
                t += 1
                for st in state:
                    ZT = V[st["fam"]][st["pos"], : st["kmax"], sl]  # (S, kmax, B)
                    Sn = ZT.shape[0]
                    # logits transposed, (S, H, B): the layouts that avoid copies in bmm
                    Wt = st["W"].transpose(1, 2).to(dt).contiguous()
                    Lt = torch.bmm(Wt, ZT).float().add_(st["b"].transpose(1, 2))
                    P = torch.softmax(Lt.view(Sn, C, -1, B), dim=1)
                    P.sub_(onehot.T[None, :, None, :]).div_(B)
                    Gt = P.view(Sn, -1, B)
                    gW = torch.bmm(ZT, Gt.transpose(1, 2).to(dt).contiguous()).float()
                    gW.addcmul_(st["W"], st["alpha"]).mul_(st["mask"])
                    gb = Gt.sum(2)[:, None, :]
                    self._step(st, gW, gb, lr, t)
            self.n_epochs_ = epoch + 1
            improved = False
            for st in state:
                Zv = VV[st["fam"]][st["pos"], : st["kmax"], :]  # (S, kmax, n_val)
                logits = torch.baddbmm(st["b"], Zv.transpose(1, 2), st["W"])
                pred = logits.view(logits.shape[0], len(yva_t), C, -1).argmax(2)  # (S, n_val, HA)
                acc = (pred == yva_t[None, :, None]).float().mean(1)  # (S, HA)
                if bool((acc > st["best_acc"] + self.tol).any()):
                    improved = True
                upd = acc > st["best_acc"] if self.keep_best else torch.ones_like(acc, dtype=torch.bool)
                st["best_acc"] = torch.where(upd, acc, st["best_acc"])
                st["best_epoch"] = torch.where(upd, torch.full_like(st["best_epoch"], epoch + 1), st["best_epoch"])
                cols = upd.repeat(1, C)[:, None, :]  # (S, 1, H)
                st["bestW"] = torch.where(cols, st["W"], st["bestW"])
                st["bestb"] = torch.where(cols, st["b"], st["bestb"])
            stale = 0 if improved else stale + 1
            if self.patience is not None and stale >= self.patience:
                break
        per_group = [None] * len(self.groups_)
        for st in state:
            for j, gi in enumerate(st["groups"]):
                per_group[gi] = {"bestW": st["bestW"][j], "bestb": st["bestb"][j, 0],
                                 "best_acc": st["best_acc"][j], "best_epoch": st["best_epoch"][j]}
        state = per_group
        self._finish(state, alphas, C, A)
        self.n_features_in_ = X.shape[1]
        return self

    def _step(self, st, gW, gb, lr, t):
        if self.optimizer == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-8
            for p, g, m, v in ((st["W"], gW, st["mW"], st["vW"]), (st["b"], gb, st["mb"], st["vb"])):
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2 ** t)).sqrt_().add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))
        else:  # SGD with momentum, PyTorch convention (weight decay already in gW)
            for p, g, m in ((st["W"], gW, st["mW"]), (st["b"], gb, st["mb"])):
                m.mul_(self.momentum).add_(g)
                p.add_(m, alpha=-lr)

    def _finish(self, state, alphas, C, A):
        """Per head, keep the alpha with the best validation accuracy (ties: larger alpha)."""
        self.head_alpha_, self.head_val_accuracy_, self.head_epoch_ = {}, {}, {}
        self._W, self._b = [], []
        head_loc = {}
        for gi, (g, st) in enumerate(zip(self.groups_, state)):
            acc = st["best_acc"].view(len(g.heads), A).cpu().numpy()
            ep = st["best_epoch"].view(len(g.heads), A).cpu().numpy()
            W = st["bestW"].view(g.kmax, C, len(g.heads), A).permute(0, 2, 3, 1)
            b = st["bestb"].view(C, len(g.heads), A).permute(1, 2, 0)
            choice = A - 1 - np.argmax(acc[:, ::-1], axis=1)
            sel = torch.as_tensor(choice, device=W.device)
            Wc = W[:, torch.arange(len(g.heads), device=W.device), sel, :]  # (kmax, heads, C)
            bc = b[torch.arange(len(g.heads), device=W.device), sel, :]
            self._W.append(Wc.reshape(g.kmax, -1))
            self._b.append(bc.reshape(-1))
            for j, h in enumerate(g.heads):
                head_loc[h] = (gi, j)
                self.head_alpha_[h] = float(alphas[choice[j]])
                self.head_val_accuracy_[h] = float(acc[j, choice[j]])
                self.head_epoch_[h] = int(ep[j, choice[j]])
        mh = self.member_head_
        self.alpha_ = np.array([self.head_alpha_[h] for h in mh])
        self.val_accuracy_ = np.array([self.head_val_accuracy_[h] for h in mh])
        self.best_epoch_ = np.array([self.head_epoch_[h] for h in mh])
        self.coef_ = []
        for i, h in enumerate(mh):
            gi, j = head_loc[h]
            g = self.groups_[gi]
            W = self._W[gi].view(g.kmax, len(g.heads), C)[: g.ks[j], j].cpu().numpy()
            m = self._selection.members[i]
            if m.basis != g.basis:  # a deduplicated member: rows in its own neuron order
                head_order = self._selection.bases[g.basis].order[: m.k]
                pos = {n: r for r, n in enumerate(head_order)}
                W = W[[pos[n] for n in self._selection.bases[m.basis].order[: m.k]]]
            self.coef_.append(W)

    # -------------------------------------------------------------- predict
    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        """Logits ``(n_members, n, n_classes)`` on the probe's standardised inputs."""
        X, _ = _check_xy(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the probe was fitted on {self.n_features_in_}")
        dev = self._W[0].device
        Xt = self.scaler_(torch.as_tensor(X, dtype=torch.float32, device=dev))
        C = len(self.classes_)
        head_logits = {}
        views = {}
        for gi, g in enumerate(self.groups_):
            if g.basis not in views:
                views[g.basis] = _apply_basis(Xt, self._bases[g.basis])
            L = torch.addmm(self._b[gi], views[g.basis][:, : g.kmax], self._W[gi]).view(len(X), -1, C)
            for j, h in enumerate(g.heads):
                head_logits[h] = L[:, j]
        return torch.stack([head_logits[h] for h in self.member_head_]).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        """Predicted labels ``(n_members, n)``."""
        return self.classes_[self.decision_function(X).argmax(2)]

    def score(self, X, y) -> np.ndarray:
        """Accuracy per member ``(n_members,)``."""
        return (self.predict(X) == np.asarray(y)[None]).mean(1)


def paper_recipe(weight_decay=5e-4, max_epochs=100, random_state=0, device="auto") -> LogisticProbe:
    """The paper's probe recipe on cached features: SGD lr 0.1, momentum 0.9, batch 256,
    StepLR gamma 0.1 every third of the epochs, fixed weight decay (5e-4 for CIFAR, 1e-4
    for Flowers/Pets), best epoch on a 10% validation split. (The paper also augments the
    images, which cached features cannot do.)"""
    return LogisticProbe(alphas=(weight_decay,), optimizer="sgd", max_epochs=max_epochs, batch_size=256,
                         lr=0.1, momentum=0.9, patience=None, random_state=random_state, device=device)


class RidgeProbe(_Params):
    """Closed-form one-hot ridge regression per member, from one Gram matrix.

    ``W = (Z^T Z + alpha n I)^-1 Z^T Y`` on the standardised, centred training features Z
    of each member and centred one-hot targets Y; the label is the argmax. ``alpha`` is
    chosen per member on a validation split, like :class:`LogisticProbe`.
    """

    def __init__(self, alphas=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), val_fraction=0.1, random_state=0, device="auto"):
        self.alphas = alphas
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device

    def fit(self, X, y, selection: Selection) -> "RidgeProbe":
        X, y = _check_xy(X, y)
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if (alphas <= 0).any():
            raise ValueError(f"ridge alphas must be positive, got {self.alphas}")
        dev = _device(self.device)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y has a single class; a probe needs at least 2")
        tr, va = validation_split(y_idx, self.val_fraction, self.random_state)
        Xt = torch.as_tensor(X[tr], dtype=torch.float64, device=dev)
        self.scaler_ = _Standardiser(Xt)
        Xt = self.scaler_(Xt)
        Xv = self.scaler_(torch.as_tensor(X[va], dtype=torch.float64, device=dev))
        C, n = len(self.classes_), len(tr)
        Y = torch.nn.functional.one_hot(torch.as_tensor(y_idx[tr], device=dev), C).double()
        self.y_mean_ = Y.mean(0)
        G = Xt.T @ Xt  # the one Gram matrix (features are centred)
        XY = Xt.T @ (Y - self.y_mean_)
        yv = torch.as_tensor(y_idx[va], device=dev)
        self._sel = selection
        self._bases = _basis_tensors(selection, dev)
        self.member_head_, _ = _plan(selection)
        first = {}
        for i, h in enumerate(self.member_head_):
            first.setdefault(h, i)
        heads = {}
        for h, i in first.items():
            m = selection.members[i]
            b = selection.bases[m.basis]
            if b.order is not None:
                ix = torch.as_tensor(b.order[: m.k], device=dev)
                Gs, Bs = G[ix][:, ix], XY[ix]
                Zv = Xv[:, ix]
            else:
                T = torch.as_tensor(b.matrix[:, : m.k], dtype=torch.float64, device=dev)
                Gs, Bs = T.T @ G @ T, T.T @ XY
                Zv = Xv @ T  # (centring by b.mean is absorbed: features are already centred)
            eye = torch.eye(m.k, dtype=torch.float64, device=dev)
            best = (-1.0, None, None)
            for a in alphas:
                W = torch.linalg.solve(Gs + a * n * eye, Bs)
                acc = float(((Zv @ W + self.y_mean_).argmax(1) == yv).double().mean())
                if acc > best[0]:
                    best = (acc, W, float(a))
            heads[h] = best
        self._heads = heads
        self._head_member = first  # the member whose basis each head's weights refer to
        mh = self.member_head_
        self.coef_ = []
        for i, h in enumerate(mh):
            W = heads[h][1].cpu().numpy()
            m, ref = selection.members[i], selection.members[first[h]]
            if m.basis != ref.basis:  # a deduplicated member: rows in its own neuron order
                pos = {n: r for r, n in enumerate(selection.bases[ref.basis].order[: m.k])}
                W = W[[pos[n] for n in selection.bases[m.basis].order[: m.k]]]
            self.coef_.append(W)
        self.alpha_ = np.array([heads[h][2] for h in mh])
        self.val_accuracy_ = np.array([heads[h][0] for h in mh])
        self.n_features_in_ = X.shape[1]
        return self

    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        X, _ = _check_xy(X)
        dev = self.y_mean_.device
        Xt = self.scaler_(torch.as_tensor(X, dtype=torch.float64, device=dev))
        out = []
        for h in self.member_head_:
            m = self._sel.members[self._head_member[h]]
            b = self._sel.bases[m.basis]
            if b.order is not None:
                Z = Xt[:, torch.as_tensor(b.order[: m.k], device=dev)]
            else:
                Z = Xt @ torch.as_tensor(b.matrix[:, : m.k], dtype=torch.float64, device=dev)
            out.append((Z @ self._heads[h][1] + self.y_mean_).float())
        return torch.stack(out).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(2)]

    def score(self, X, y) -> np.ndarray:
        return (self.predict(X) == np.asarray(y)[None]).mean(1)

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

from .subsets import Selection


def _device(device) -> torch.device:
    from .features import resolve_device
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
        self.mean = X.mean(0)
        std = X.std(0)
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


def _apply_basis(Z: torch.Tensor, bt) -> torch.Tensor:
    kind, t, mean = bt
    if kind == "index":
        return Z.index_select(1, t)
    return (Z - mean if mean is not None else Z) @ t


class LogisticProbe:
    """Batched multinomial logistic probe over the members of a selection.

    Parameters
    ----------
    alphas : L2 strengths tried (penalty ``alpha/2 * ||W||^2`` added to the mean
        cross-entropy; scikit-learn's ``C`` is ``1 / (alpha * n_train)``); the best per
        member on the validation split is kept.
    optimizer : ``"adam"`` (cosine-decayed learning rate) or ``"sgd"`` (momentum, StepLR).
    max_epochs, batch_size, lr : the optimisation budget; ``batch_size="auto"`` is
        ``min(1024, max(64, n // 20))`` so that small datasets still get 20 steps an epoch.
    tol, patience : stop when no member's validation accuracy improved by more than
        ``tol`` for ``patience`` epochs (``patience=None``: run all epochs).
    val_fraction : share of the training data held out (stratified) for choosing alpha and
        the epoch.
    keep_best : keep each member's weights from its best validation epoch (the paper's
        protocol); ``False`` keeps the last epoch's.
    """

    def __init__(self, alphas=(1e-4, 1e-3, 1e-2), optimizer="adam", max_epochs=10, batch_size="auto",
                 lr=None, momentum=0.9, lr_step=None, tol=1e-4, patience=3, val_fraction=0.1,
                 keep_best=True, random_state=0, device="auto"):
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
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, selection: Selection, X_val=None, y_val=None) -> "LogisticProbe":
        X, y = _check_xy(X, y)
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if (alphas < 0).any() or len(alphas) == 0:
            raise ValueError(f"alphas must be non-negative and non-empty, got {self.alphas}")
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
        if X_val is None:
            tr, va = validation_split(y_idx, self.val_fraction, self.random_state)
            Xtr, ytr, Xva, yva = X[tr], y_idx[tr], X[va], y_idx[va]
        else:
            X_val, y_val = _check_xy(X_val, y_val, "X_val")
            Xtr, ytr, Xva = X, y_idx, X_val
            yva = np.searchsorted(self.classes_, y_val)
        C, A = len(self.classes_), len(alphas)
        Xtr_t = torch.as_tensor(Xtr, dtype=torch.float32, device=dev)
        self.scaler_ = _Standardiser(Xtr_t)
        Xtr_t = self.scaler_(Xtr_t)
        Xva_t = self.scaler_(torch.as_tensor(Xva, dtype=torch.float32, device=dev))
        ytr_t = torch.as_tensor(ytr, device=dev)
        yva_t = torch.as_tensor(yva, device=dev)
        self.member_head_, self.groups_ = _plan(selection)
        self._selection = selection
        self._bases = _basis_tensors(selection, dev)
        gen = torch.Generator(device="cpu").manual_seed(int(self.random_state))

        state = []
        for g in self.groups_:
            H = len(g.heads) * A * C
            rows = torch.arange(g.kmax, device=dev)[:, None]
            kcol = torch.as_tensor(np.repeat(g.ks, A * C), device=dev)
            mask = (rows < kcol[None]).float()
            acol = torch.as_tensor(np.tile(np.repeat(alphas, C), len(g.heads)), dtype=torch.float32, device=dev)
            z = lambda *s: torch.zeros(*s, device=dev)  # noqa: E731
            state.append({"W": z(g.kmax, H), "b": z(H), "mask": mask, "alpha": acol,
                          "mW": z(g.kmax, H), "vW": z(g.kmax, H), "mb": z(H), "vb": z(H),
                          "bestW": z(g.kmax, H), "bestb": z(H),
                          "best_acc": torch.full((len(g.heads) * A,), -1.0, device=dev),
                          "best_epoch": torch.zeros(len(g.heads) * A, dtype=torch.long, device=dev)})

        n = len(ytr)
        bs = min(1024, max(64, n // 20)) if self.batch_size == "auto" else int(self.batch_size)
        bs = min(bs, n)
        steps_per_epoch = math.ceil(n / bs)
        total = steps_per_epoch * int(self.max_epochs)
        lr0 = self.lr if self.lr is not None else (1e-2 if self.optimizer == "adam" else 0.1)
        step_size = self.lr_step or max(1, int(self.max_epochs) // 3)
        # Rows are shuffled once; each basis's view of the training set is computed once,
        # so a minibatch is a contiguous slice. Each epoch visits the batches in a new order.
        order = torch.randperm(n, generator=gen).to(dev)
        Xtr_t, ytr_t = Xtr_t.index_select(0, order), ytr_t.index_select(0, order)
        tviews = {bi: _apply_basis(Xtr_t, self._bases[bi]).contiguous() for bi in {g.basis for g in self.groups_}}
        vviews = {bi: _apply_basis(Xva_t, self._bases[bi]) for bi in tviews}
        del Xtr_t
        onehot_all = torch.nn.functional.one_hot(ytr_t, C).float()
        t = 0
        stale = 0
        self.n_epochs_ = 0
        for epoch in range(int(self.max_epochs)):
            for s in torch.randperm(steps_per_epoch, generator=gen).tolist():
                sl = slice(s * bs, (s + 1) * bs)
                onehot = onehot_all[sl]
                B = len(onehot)
                if self.optimizer == "adam":
                    lr = lr0 * 0.5 * (1 + math.cos(math.pi * t / total))
                else:
                    lr = lr0 * (0.1 ** (epoch // step_size))
                t += 1
                for g, st in zip(self.groups_, state):
                    Z = tviews[g.basis][sl, : g.kmax]
                    logits = torch.addmm(st["b"], Z, st["W"]).view(B, -1, C)
                    P = torch.softmax(logits, dim=2)
                    P.sub_(onehot[:, None, :]).div_(B)
                    G = P.view(B, -1)
                    gW = Z.T @ G
                    gW.addcmul_(st["W"], st["alpha"]).mul_(st["mask"])
                    gb = G.sum(0)
                    self._step(st, gW, gb, lr, t)
            self.n_epochs_ = epoch + 1
            improved = False
            for g, st in zip(self.groups_, state):
                Z = vviews[g.basis][:, : g.kmax]
                pred = torch.addmm(st["b"], Z, st["W"]).view(len(yva_t), -1, C).argmax(2)
                acc = (pred == yva_t[:, None]).float().mean(0)
                better = acc > st["best_acc"] + self.tol
                if bool(better.any()):
                    improved = True
                upd = acc > st["best_acc"] if self.keep_best else torch.ones_like(acc, dtype=torch.bool)
                st["best_acc"] = torch.where(upd, acc, st["best_acc"])
                st["best_epoch"] = torch.where(upd, torch.full_like(st["best_epoch"], epoch + 1), st["best_epoch"])
                cols = upd.repeat_interleave(C)
                st["bestW"] = torch.where(cols[None], st["W"], st["bestW"])
                st["bestb"] = torch.where(cols, st["b"], st["bestb"])
            stale = 0 if improved else stale + 1
            if self.patience is not None and stale >= self.patience:
                break
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
            W = st["bestW"].view(g.kmax, len(g.heads), A, C)
            b = st["bestb"].view(len(g.heads), A, C)
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
        self._head_loc = head_loc
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


class RidgeProbe:
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
        mh = self.member_head_
        self.coef_ = [heads[h][1].cpu().numpy() for h in mh]
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
        for i, h in enumerate(self.member_head_):
            m = self._sel.members[i]
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

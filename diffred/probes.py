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
The logistic probe's training engine (packing, stacking, steps) is :mod:`diffred.probe_train`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from .device import compute_dtype, resolve_device
from .probe_train import (Standardiser, adam_step, apply_basis_T, basis_tensors, check_xy, evaluate, family_views,
                          gradients, init_stacks, plan, schedule, sgd_step, stack_batches, validation_split)
from .subsets import Selection

__all__ = ["LogisticProbe", "RidgeProbe", "paper_recipe", "validation_split"]


def _device(device) -> torch.device:
    return resolve_device(device or "auto")


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
        500 steps, so that small datasets are trained to convergence too; ``lr=None`` is
        0.1 for SGD and, for Adam, 0.01 up to 256-row batches and ``0.01 * sqrt(batch / 256)``
        above (0.02 at 1024).
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
    def _check(self, X, y, selection: Selection) -> np.ndarray:
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
        return alphas

    def _data(self, X, y_idx, X_val, y_val, gen, dev):
        """Shuffled, standardised training rows (transposed, ``(d, n)``), their labels, and the
        standardised validation set. Training rows are shuffled once (each epoch then visits
        the minibatches in a new order), gathered, standardised in place: one copy."""
        if X_val is None:
            tr, va = validation_split(y_idx, self.val_fraction, self.random_state)
            Xva, yva = X[va], y_idx[va]
        else:
            X_val, y_val = check_xy(X_val, y_val, "X_val")
            tr, Xva = np.arange(len(y_idx)), X_val
            yva = np.searchsorted(self.classes_, y_val)
        rows = tr[torch.randperm(len(tr), generator=gen).numpy()]
        Xtr_t = torch.from_numpy(np.ascontiguousarray(X[rows], dtype=np.float32)).to(dev)
        self.scaler_ = Standardiser(Xtr_t)
        Xtr_t.sub_(self.scaler_.mean).div_(self.scaler_.scale)
        Xva_t = self.scaler_(torch.as_tensor(Xva, dtype=torch.float32, device=dev))
        XT = Xtr_t.T.contiguous()
        del Xtr_t
        return XT, torch.as_tensor(y_idx[rows], device=dev), Xva_t, torch.as_tensor(yva, device=dev)

    def fit(self, X, y, selection: Selection, X_val=None, y_val=None) -> "LogisticProbe":
        X, y = check_xy(X, y)
        alphas = self._check(X, y, selection)
        dev = _device(self.device)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y has a single class; a probe needs at least 2")
        gen = torch.Generator(device="cpu").manual_seed(int(self.random_state))
        XT, ytr_t, Xva_t, yva_t = self._data(X, y_idx, X_val, y_val, gen, dev)
        C, A = len(self.classes_), len(alphas)
        self.member_head_, self.groups_ = plan(selection)
        self._selection = selection
        self._bases = basis_tensors(selection, dev)
        sch = schedule(XT.shape[1], self.batch_size, self.max_epochs, self.lr, self.optimizer, self.lr_step)
        dt = compute_dtype(self.precision, dev)
        V, VV, fam_of = family_views(selection, self.groups_, self._bases, XT, Xva_t, dt, sch["bs"])
        del XT
        state = init_stacks(self.groups_, fam_of, alphas, C, dev)
        stack_batches(state, V)
        self._train(state, V, VV, torch.nn.functional.one_hot(ytr_t, C).float(), yva_t, C, sch, gen, dt)
        per_group = [None] * len(self.groups_)
        for st in state:
            for j, gi in enumerate(st["groups"]):
                per_group[gi] = {"bestW": st["bestW"][j], "bestb": st["bestb"][j, 0],
                                 "best_acc": st["best_acc"][j], "best_epoch": st["best_epoch"][j]}
        self._finish(per_group, alphas, C, A)
        self.n_features_in_ = X.shape[1]
        return self

    def _train(self, state, V, VV, onehot_all, yva_t, C, sch, gen, dt) -> None:
        """The epochs: minibatches in a new order each epoch, validation after each, early stop."""
        bs, t, stale = sch["bs"], 0, 0
        self.n_epochs_ = 0
        for epoch in range(sch["epochs"]):
            for s in torch.randperm(sch["steps"], generator=gen).tolist():
                sl = slice(s * bs, (s + 1) * bs)
                onehot = onehot_all[sl]
                if self.optimizer == "adam":
                    lr = sch["lr0"] * 0.5 * (1 + math.cos(math.pi * t / sch["total"]))
                else:
                    lr = sch["lr0"] * (0.1 ** (epoch // sch["step_size"]))
                t += 1
                for st in state:
                    gW, gb = gradients(st, onehot, s, C, dt)
                    if self.optimizer == "adam":
                        adam_step(st, gW, gb, lr, t)
                    else:
                        sgd_step(st, gW, gb, lr, self.momentum)
            self.n_epochs_ = epoch + 1
            improved = evaluate(state, VV, yva_t, C, epoch, self.tol, self.keep_best)
            stale = 0 if improved else stale + 1
            if self.patience is not None and stale >= self.patience:
                break

    def _finish(self, state, alphas, C, A):
        """Keep every alpha's best-epoch weights per group, then per head the alpha with the
        best validation accuracy (ties: larger alpha)."""
        self.alphas_ = np.asarray(alphas, dtype=np.float64)
        self._all = []  # per group: validation accuracy and epoch (heads, A), W (kmax, heads, A, C), b
        for g, st in zip(self.groups_, state):
            self._all.append((st["best_acc"].view(len(g.heads), A).cpu().numpy(),
                              st["best_epoch"].view(len(g.heads), A).cpu().numpy(),
                              st["bestW"].view(g.kmax, C, len(g.heads), A).permute(0, 2, 3, 1),
                              st["bestb"].view(C, len(g.heads), A).permute(1, 2, 0)))
        self._select(lambda acc: A - 1 - np.argmax(acc[:, ::-1], axis=1))

    def at_alpha(self, alpha: float) -> "LogisticProbe":
        """This fitted probe with every member at L2 strength ``alpha`` (one of ``alphas``)
        instead of the validation's choice. Each alpha's heads trained on the same minibatches
        with their own weights, so this is the probe a fit with ``alphas=(alpha,)`` gives, up
        to when training stopped (the fit with all alphas stops when none of them improves)."""
        hit = np.flatnonzero(np.isclose(self.alphas_, alpha, rtol=1e-9, atol=0))
        if len(hit) == 0:
            raise ValueError(f"alpha {alpha} was not fitted; the probe has alphas {self.alphas_.tolist()}")
        other = copy.copy(self)
        other._select(lambda acc: np.full(len(acc), hit[0]))
        return other

    def _select(self, choose) -> None:
        """Weights, alpha, validation accuracy and epoch per head and member, for the alpha
        index ``choose(acc)`` gives each head of a group (``acc``: heads x alphas)."""
        self.head_alpha_, self.head_val_accuracy_, self.head_epoch_ = {}, {}, {}
        self._W, self._b, head_loc = [], [], {}
        for gi, (g, (acc, ep, W, b)) in enumerate(zip(self.groups_, self._all)):
            choice = choose(acc)
            sel, heads = torch.as_tensor(choice, device=W.device), torch.arange(len(g.heads), device=W.device)
            self._W.append(W[:, heads, sel, :].reshape(g.kmax, -1))  # (kmax, heads * C)
            self._b.append(b[heads, sel, :].reshape(-1))
            for j, h in enumerate(g.heads):
                head_loc[h] = (gi, j)
                self.head_alpha_[h] = float(self.alphas_[choice[j]])
                self.head_val_accuracy_[h] = float(acc[j, choice[j]])
                self.head_epoch_[h] = int(ep[j, choice[j]])
        mh = self.member_head_
        self.alpha_ = np.array([self.head_alpha_[h] for h in mh])
        self.val_accuracy_ = np.array([self.head_val_accuracy_[h] for h in mh])
        self.best_epoch_ = np.array([self.head_epoch_[h] for h in mh])
        self.coef_ = [self._member_coef(i, *head_loc[h]) for i, h in enumerate(mh)]

    def _member_coef(self, i: int, gi: int, j: int) -> np.ndarray:
        g, C = self.groups_[gi], len(self.classes_)
        W = self._W[gi].view(g.kmax, len(g.heads), C)[: g.ks[j], j].cpu().numpy()
        m = self._selection.members[i]
        if m.basis != g.basis:  # a deduplicated member: rows in its own neuron order
            pos = {n: r for r, n in enumerate(self._selection.bases[g.basis].order[: m.k])}
            W = W[[pos[n] for n in self._selection.bases[m.basis].order[: m.k]]]
        return W

    # -------------------------------------------------------------- predict
    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        """Logits ``(n_members, n, n_classes)`` on the probe's standardised inputs."""
        X, _ = check_xy(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the probe was fitted on {self.n_features_in_}")
        dev = self._W[0].device
        XtT = self.scaler_(torch.as_tensor(X, dtype=torch.float32, device=dev)).T.contiguous()
        C = len(self.classes_)
        head_logits = {}
        views = {}
        for gi, g in enumerate(self.groups_):
            if g.basis not in views:  # (k, n): a subset of neurons is a gather of whole rows
                views[g.basis] = apply_basis_T(XtT, self._bases[g.basis])
            L = torch.addmm(self._b[gi][:, None], self._W[gi].T, views[g.basis][: g.kmax]).T.view(len(X), -1, C)
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
        X, y = check_xy(X, y)
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if (alphas <= 0).any():
            raise ValueError(f"ridge alphas must be positive, got {self.alphas}")
        dev = _device(self.device)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y has a single class; a probe needs at least 2")
        tr, va = validation_split(y_idx, self.val_fraction, self.random_state)
        Xt = torch.as_tensor(X[tr], dtype=torch.float64, device=dev)
        self.scaler_ = Standardiser(Xt)
        Xt = self.scaler_(Xt)
        Xv = self.scaler_(torch.as_tensor(X[va], dtype=torch.float64, device=dev))
        C, n = len(self.classes_), len(tr)
        Y = torch.nn.functional.one_hot(torch.as_tensor(y_idx[tr], device=dev), C).double()
        self.y_mean_ = Y.mean(0)
        G = Xt.T @ Xt  # the one Gram matrix (features are centred)
        XY = Xt.T @ (Y - self.y_mean_)
        yv = torch.as_tensor(y_idx[va], device=dev)
        self._sel = selection
        self._bases = basis_tensors(selection, dev)
        self.member_head_, _ = plan(selection)
        first = {}
        for i, h in enumerate(self.member_head_):
            first.setdefault(h, i)
        heads = {h: self._solve(selection.members[i], selection, G, XY, Xv, yv, alphas, n)
                 for h, i in first.items()}
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

    def _solve(self, m, selection, G, XY, Xv, yv, alphas, n):
        """(validation accuracy, weights, alpha) of one member, the best alpha's."""
        dev = G.device
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
        return best

    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        X, _ = check_xy(X)
        dev = self.y_mean_.device
        Xt = self.scaler_(torch.as_tensor(X, dtype=torch.float64, device=dev))
        XtT = Xt.T.contiguous()  # neurons as rows: a subset's columns are a gather of whole rows
        out = []
        for h in self.member_head_:
            m = self._sel.members[self._head_member[h]]
            b = self._sel.bases[m.basis]
            if b.order is not None:
                ZT = XtT.index_select(0, torch.as_tensor(b.order[: m.k], device=dev))
                out.append((self._heads[h][1].T @ ZT).T.add_(self.y_mean_).float())
            else:
                Z = Xt @ torch.as_tensor(b.matrix[:, : m.k], dtype=torch.float64, device=dev)
                out.append((Z @ self._heads[h][1] + self.y_mean_).float())
        return torch.stack(out).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(2)]

    def score(self, X, y) -> np.ndarray:
        return (self.predict(X) == np.asarray(y)[None]).mean(1)

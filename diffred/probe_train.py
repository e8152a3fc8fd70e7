"""The batched logistic probe's training engine (used by :mod:`diffred.probes`).

Members of a selection that share a basis (the nested subsets of one seed) are packed into
one weight matrix (:func:`plan`), masked so member i only sees its first k_i directions.
Each basis's view of the training set is computed once, transposed to ``(size, n)`` and
stacked with the other bases of the same size (:func:`family_views`); groups with the same
prefix structure in different bases form one *stack* (:func:`init_stacks`), trained by
batched matrix products (:func:`train_step`): a few large operations per step instead of
many small ones. :func:`evaluate` keeps each member's best validation epoch.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from .subsets import Selection


def check_xy(X, y=None, name="X"):
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
class Group:
    """Members of one basis packed into one weight matrix of ``kmax`` rows."""

    basis: int
    kmax: int
    heads: list  # unique head ids in this group, in column order
    ks: np.ndarray  # k per head


def _heads(selection: Selection):
    """Deduplicate members with identical inputs: (member -> head, head -> basis, head -> k)."""
    sig_to_head, member_head, head_basis, head_k = {}, [], [], []
    for m in selection.members:
        b = selection.bases[m.basis]
        sig = ("neurons", b.d, np.sort(b.order[: m.k]).tobytes()) if b.order is not None else ("basis", m.basis, m.k)
        if sig not in sig_to_head:
            sig_to_head[sig] = len(head_basis)
            head_basis.append(m.basis)
            head_k.append(m.k)
        member_head.append(sig_to_head[sig])
    return member_head, head_basis, head_k


def plan(selection: Selection, group_ratio: float = 1.5, small: int = 64):
    """Deduplicate members with identical inputs and pack the rest into groups."""
    member_head, head_basis, head_k = _heads(selection)
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
    packed = [Group(head_basis[g[0]], max(head_k[h] for h in g), g, np.array([head_k[h] for h in g]))
              for g in groups]
    return np.asarray(member_head), packed


class Standardiser:
    def __init__(self, X: torch.Tensor):
        std, self.mean = torch.std_mean(X, 0)
        self.scale = torch.where(std > 0, std, torch.ones_like(std))

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.mean) / self.scale


def basis_tensors(selection: Selection, dev: torch.device):
    out = []
    for b in selection.bases:
        if b.order is not None:
            out.append(("index", torch.as_tensor(b.order, device=dev, dtype=torch.long), None))
        else:
            mean = torch.as_tensor(b.mean, device=dev, dtype=torch.float32) if b.mean is not None else None
            out.append(("matrix", torch.as_tensor(b.matrix, device=dev, dtype=torch.float32), mean))
    return out


def apply_basis_T(ZT: torch.Tensor, bt) -> torch.Tensor:
    """A basis applied to transposed features ``(d, n)``, returning ``(k, n)``: a gather of
    neuron rows, or a projection onto the basis's directions (after removing its mean)."""
    kind, t, mean = bt
    if kind == "index":
        return ZT.index_select(0, t)
    return t.T @ (ZT - mean[:, None] if mean is not None else ZT)


def schedule(n: int, batch_size, max_epochs, lr, optimizer: str, lr_step) -> dict:
    """Minibatch size, steps per epoch, epochs, total steps, initial learning rate, StepLR step."""
    bs = min(1024, max(64, n // 20)) if batch_size == "auto" else int(batch_size)
    bs = min(bs, n)
    steps = math.ceil(n / bs)
    epochs = max(10, math.ceil(500 / steps)) if max_epochs == "auto" else int(max_epochs)
    # Adam's default rate grows with the square root of minibatches above 256 rows (2e-2 at
    # 1024): on the whole Fashion-MNIST grid (1024-row batches) 1e-2 left the probe up to 0.51
    # points below scikit-learn's optimum, 2e-2 0.28. Smaller batches keep 1e-2.
    lr0 = lr if lr is not None else (1e-2 * math.sqrt(max(1.0, bs / 256)) if optimizer == "adam" else 0.1)
    step_size = lr_step or max(1, (10 if max_epochs == "auto" else int(max_epochs)) // 3)
    return {"bs": bs, "steps": steps, "epochs": epochs, "total": steps * epochs, "lr0": lr0, "step_size": step_size}


def family_views(selection: Selection, groups, bases, XT: torch.Tensor, Xva: torch.Tensor, dt, bs: int):
    """Per basis size ("family"): the training views as one contiguous ``(bases, size, B)``
    block per minibatch of ``bs`` columns of ``XT`` (in ``dt``; a step reads its block
    without a strided copy), the stacked validation views ``(bases, size, n_val)``, and
    basis -> (family, position)."""
    fam_of, fam_members = {}, {}
    for bi in sorted({g.basis for g in groups}):
        size = selection.bases[bi].size
        fam_members.setdefault(size, []).append(bi)
        fam_of[bi] = (size, len(fam_members[size]) - 1)
    n = XT.shape[1]
    V = {f: [torch.stack([apply_basis_T(XT[:, i:i + bs], bases[bi]).to(dt) for bi in bis])
             for i in range(0, n, bs)] for f, bis in fam_members.items()}
    VV = {f: torch.stack([apply_basis_T(Xva.T, bases[bi]) for bi in bis]).contiguous()
          for f, bis in fam_members.items()}
    return V, VV, fam_of


def init_stacks(groups, fam_of, alphas: np.ndarray, C: int, dev: torch.device) -> list[dict]:
    """One training state per stack of groups with the same family, width and prefix ks."""
    A = len(alphas)
    stacks = {}
    for gi, g in enumerate(groups):
        stacks.setdefault((fam_of[g.basis][0], g.kmax, tuple(g.ks)), []).append(gi)
    state = []
    for (fam, kmax, ks), gis in stacks.items():
        pos = [fam_of[groups[gi].basis][1] for gi in gis]
        S, heads = len(gis), len(ks)
        H = heads * A * C
        rows = torch.arange(kmax, device=dev)[:, None]
        # class-major columns (column = class * heads * A + head * A + a): the softmax
        # then reduces over a middle axis, several times faster than over a last axis of C
        kcol = torch.as_tensor(np.tile(np.repeat(np.asarray(ks), A), C), device=dev)
        contiguous = pos == list(range(pos[0], pos[0] + S))
        st = {"groups": gis, "fam": fam, "kmax": kmax,
              "pos": slice(pos[0], pos[0] + S) if contiguous else torch.as_tensor(pos, device=dev),
              "mask": (rows < kcol[None]).float(),
              "alpha": torch.as_tensor(np.tile(alphas, heads * C), dtype=torch.float32, device=dev),
              "best_acc": torch.full((S, heads * A), -1.0, device=dev),
              "best_epoch": torch.zeros((S, heads * A), dtype=torch.long, device=dev)}
        for name, shape in (("W", (S, kmax, H)), ("b", (S, 1, H))):
            for prefix in ("", "m", "v", "best"):
                st[prefix + name] = torch.zeros(*shape, device=dev)
        state.append(st)
    return state


def stack_batches(state: list[dict], V: dict) -> None:
    """Give each stack its own contiguous ``(S, kmax, B)`` block per minibatch (``st["Z"]``),
    emptying ``V`` as it goes: a batched product on a row prefix of a larger block would copy
    it on every call (measured: twice as slow as on a contiguous block)."""
    for fam, blocks in V.items():
        for step, block in enumerate(blocks):
            for st in state:
                if st["fam"] == fam:
                    st.setdefault("Z", []).append(block[st["pos"], : st["kmax"]].contiguous())
            blocks[step] = None


def gradients(st: dict, onehot: torch.Tensor, step: int, C: int, dt):
    """Mean cross-entropy + L2 gradients of one stack on minibatch ``step``: (gW, gb)."""
    ZT = st["Z"][step]  # (S, kmax, B)
    Sn, B = ZT.shape[0], len(onehot)
    # logits transposed, (S, H, B): the layouts that avoid copies in bmm
    Wt = st["W"].transpose(1, 2).to(dt).contiguous()
    Lt = torch.bmm(Wt, ZT).float().add_(st["b"].transpose(1, 2))
    P = torch.softmax(Lt.view(Sn, C, -1, B), dim=1)
    P.sub_(onehot.T[None, :, None, :]).div_(B)
    Gt = P.view(Sn, -1, B)
    gW = torch.bmm(ZT, Gt.transpose(1, 2).to(dt).contiguous()).float()
    gW.addcmul_(st["W"], st["alpha"]).mul_(st["mask"])
    return gW, Gt.sum(2)[:, None, :]


def adam_step(st: dict, gW, gb, lr: float, t: int) -> None:
    b1, b2, eps = 0.9, 0.999, 1e-8
    for p, g, m, v in ((st["W"], gW, st["mW"], st["vW"]), (st["b"], gb, st["mb"], st["vb"])):
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v / (1 - b2 ** t)).sqrt_().add_(eps)
        p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))


def sgd_step(st: dict, gW, gb, lr: float, momentum: float) -> None:
    """SGD with momentum, PyTorch convention (weight decay already in gW)."""
    for p, g, m in ((st["W"], gW, st["mW"]), (st["b"], gb, st["mb"])):
        m.mul_(momentum).add_(g)
        p.add_(m, alpha=-lr)


@torch.no_grad()
def evaluate(state: list[dict], VV: dict, yva: torch.Tensor, C: int, epoch: int, tol: float,
             keep_best: bool) -> bool:
    """Validation accuracy of every head after ``epoch``; keeps the best weights. Returns
    whether any head improved by more than ``tol``."""
    improved = False
    for st in state:
        Zv = VV[st["fam"]][st["pos"], : st["kmax"], :]  # (S, kmax, n_val)
        # logits transposed, (S, H, n_val), class-major rows: the argmax runs over a leading axis
        Lt = torch.bmm(st["W"].transpose(1, 2), Zv).add_(st["b"].transpose(1, 2))
        pred = Lt.view(Lt.shape[0], C, -1, len(yva)).max(1).indices  # (S, HA, n_val); 10x argmax(1)
        acc = (pred == yva[None, None, :]).float().mean(2)  # (S, HA)
        if bool((acc > st["best_acc"] + tol).any()):
            improved = True
        upd = acc > st["best_acc"] if keep_best else torch.ones_like(acc, dtype=torch.bool)
        st["best_acc"] = torch.where(upd, acc, st["best_acc"])
        st["best_epoch"] = torch.where(upd, torch.full_like(st["best_epoch"], epoch + 1), st["best_epoch"])
        cols = upd.repeat(1, C)[:, None, :]  # (S, 1, H)
        st["bestW"] = torch.where(cols, st["W"], st["bestW"])
        st["bestb"] = torch.where(cols, st["b"], st["bestb"])
    return improved

"""Training the zoo: small networks whose pre-training the project controls.

The paper's claims 8-10 say the pre-training loss, the upstream data and the layer width
govern diffused redundancy; its checkpoints (robust and Matryoshka ResNet50s, ViTs on
ImageNet-21k) cannot be fetched here. So the project trains its own, small enough for a CPU,
each a named variant of one reference recipe:

* upstream data: Fashion-MNIST *training* images of classes 0-4 (T-shirt/top, Trouser,
  Pullover, Dress, Coat), 30,000 images; the downstream tasks (``fashion_mnist_heldout`` =
  classes 5-9, MNIST-5k, digits) share no class with it;
* the reference (``cnn_ce``): :class:`~diffred.zoo.SmallCNN`, penultimate width 256,
  cross-entropy, Adam with a cosine schedule, a fixed number of steps;
* one change per variant (:data:`VARIANTS`): adversarial training (l2 PGD), dropout on the
  penultimate layer, DeCov, a Matryoshka loss, the width, 10% of the upstream data (same
  number of steps), a small vision Transformer.

``diffred train <variant> --seed S`` trains one, seeded (torch, numpy, data order), and
writes ``data/models/<variant>_s<S>.safetensors`` with its model card (config, upstream
accuracy, robust accuracy for the adversarial study, training time, sha256) beside it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import zoo
from .datasets import load_dataset
from .store import atomic_write_bytes, atomic_write_text, sha256_file

UPSTREAM_CLASSES = (0, 1, 2, 3, 4)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. ``steps`` is the budget every variant shares; ``loss`` is ``ce``,
    ``adversarial``, ``decov`` or ``matryoshka``."""

    variant: str = "cnn_ce"
    arch: str = "cnn"
    width: int = 256
    loss: str = "ce"
    dropout: float = 0.0
    epsilon: float = 1.0          # l2 radius in [0, 1] pixel units (adversarial)
    pgd_steps: int = 3            # PGD steps while training (adversarial)
    decov_weight: float = 0.1
    matryoshka_sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    upstream_fraction: float = 1.0
    upstream_classes: tuple[int, ...] = UPSTREAM_CLASSES
    steps: int = 600              # 76,800 images: about 2.6 epochs of the 30,000 upstream images
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 1

    def name(self) -> str:
        return f"{self.variant}_s{self.seed}"


def _v(variant, **kw) -> TrainConfig:
    return TrainConfig(variant=variant, **kw)


#: Every variant: the reference and one change each (``TrainConfig`` fields).
VARIANTS: dict[str, TrainConfig] = {
    "cnn_ce": _v("cnn_ce"),
    "cnn_adv": _v("cnn_adv", loss="adversarial"),
    **{f"cnn_dropout{int(p * 100)}": _v(f"cnn_dropout{int(p * 100)}", dropout=p) for p in (0.1, 0.3, 0.5, 0.8)},
    "cnn_decov": _v("cnn_decov", loss="decov"),
    "cnn_mrl": _v("cnn_mrl", loss="matryoshka"),
    **{f"cnn_w{k}": _v(f"cnn_w{k}", width=k, matryoshka_sizes=()) for k in (16, 64, 128, 512, 1024)},
    "cnn_up10": _v("cnn_up10", upstream_fraction=0.1),
    "vit": _v("vit", arch="vit"),
}


def variant_config(variant: str, seed: int = 1, **overrides) -> TrainConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return dataclasses.replace(VARIANTS[variant], seed=int(seed), **overrides)


def upstream_data(cfg: TrainConfig, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Upstream images in [0, 1], ``(n, 1, 28, 28)``, and labels 0..len(classes)-1."""
    data = load_dataset("fashion_mnist", split)
    keep = np.isin(data.labels, cfg.upstream_classes)
    images, labels = data.images[keep], data.labels[keep]
    labels = np.searchsorted(np.asarray(cfg.upstream_classes), labels)
    if split == "train" and cfg.upstream_fraction < 1.0:
        rng = np.random.default_rng(0)  # the same 10% for every seed: only the data size varies
        idx = np.sort(rng.permutation(len(labels))[: int(round(cfg.upstream_fraction * len(labels)))])
        images, labels = images[idx], labels[idx]
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)[:, None]
    return x, torch.from_numpy(labels.astype(np.int64))


def normalise(x01: torch.Tensor) -> torch.Tensor:
    return (x01 - zoo.ZOO_MEAN[0]) / zoo.ZOO_STD[0]


def pgd_l2(model: nn.Module, x01: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
           step_size: float | None = None) -> torch.Tensor:
    """l2 PGD (Madry et al. 2018) in [0, 1] pixel space: ``steps`` normalised-gradient steps of
    ``step_size`` (default 2.5 eps / steps), each projected onto the eps-ball and [0, 1]."""
    step_size = step_size or 2.5 * epsilon / steps
    was_training = model.training
    model.eval()
    delta = torch.zeros_like(x01, requires_grad=True)
    for _ in range(steps):
        loss = F.cross_entropy(model(normalise(x01 + delta)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        g = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        with torch.no_grad():
            delta += step_size * g
            norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta *= (epsilon / norm.clamp_min(1e-12)).clamp(max=1.0)
            delta.copy_((x01 + delta).clamp(0, 1) - x01)
    model.train(was_training)
    return (x01 + delta).detach()


def decov(h: torch.Tensor) -> torch.Tensor:
    """DeCov (Cogswell et al. 2016): half the squared off-diagonal mass of the batch
    covariance of the penultimate activations."""
    c = h - h.mean(0, keepdim=True)
    cov = c.T @ c / len(h)
    return 0.5 * (cov.pow(2).sum() - cov.diagonal().pow(2).sum())


class _Matryoshka(nn.Module):
    """Extra linear heads on the first m neurons (Kusupati et al. 2022); the model's own
    classifier serves the full width."""

    def __init__(self, sizes, width: int, n_classes: int):
        super().__init__()
        self.sizes = [m for m in sizes if m < width]
        self.heads = nn.ModuleList(nn.Linear(m, n_classes) for m in self.sizes)

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(F.cross_entropy(head(h[:, :m]), y) for m, head in zip(self.sizes, self.heads))


@torch.no_grad()
def accuracy(model: nn.Module, x01: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    right = sum(int((model(normalise(x01[i:i + batch])).argmax(1) == y[i:i + batch]).sum())
                for i in range(0, len(y), batch))
    return right / len(y)


def robust_accuracy(model: nn.Module, x01: torch.Tensor, y: torch.Tensor, epsilon: float,
                    steps: int = 20, batch: int = 500) -> float:
    """Accuracy under l2 PGD-``steps`` at radius ``epsilon``."""
    right = 0
    for i in range(0, len(y), batch):
        adv = pgd_l2(model, x01[i:i + batch], y[i:i + batch], epsilon, steps)
        with torch.no_grad():
            right += int((model(normalise(adv)).argmax(1) == y[i:i + batch]).sum())
    return right / len(y)


def train(cfg: TrainConfig, log=print, log_every: int = 200) -> tuple[nn.Module, dict]:
    """Train one variant; returns the model and its measured history."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    x, y = upstream_data(cfg, "train")
    n_classes = len(cfg.upstream_classes)
    model = zoo.build(cfg.arch, cfg.width, n_classes, cfg.dropout)
    extra = _Matryoshka(cfg.matryoshka_sizes, cfg.width, n_classes) if cfg.loss == "matryoshka" else None
    params = list(model.parameters()) + (list(extra.parameters()) if extra else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    gen = torch.Generator().manual_seed(cfg.seed)
    order, pos = torch.randperm(len(y), generator=gen), 0
    history, t0 = [], time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        if pos + cfg.batch_size > len(order):
            order, pos = torch.randperm(len(y), generator=gen), 0
        idx = order[pos:pos + cfg.batch_size]
        pos += cfg.batch_size
        xb, yb = x[idx], y[idx]
        if cfg.loss == "adversarial":
            xb = pgd_l2(model, xb, yb, cfg.epsilon, cfg.pgd_steps)
        h = model.forward_head(model.forward_features(normalise(xb)), pre_logits=True)
        logits = model.head.classifier(model.head.drop(h))
        loss = F.cross_entropy(logits, yb)
        if cfg.loss == "decov":
            loss = loss + cfg.decov_weight * decov(h)
        elif cfg.loss == "matryoshka":
            loss = loss + extra.loss(h, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == cfg.steps - 1:
            history.append({"step": step, "loss": round(loss.item(), 5)})
            log(f"{cfg.name()}: step {step}/{cfg.steps} loss {loss.item():.4f}")
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{cfg.name()}: the loss became {float(loss)} at step {step}")
    seconds = time.perf_counter() - t0
    model.eval()
    return model, {"history": history, "train_seconds": round(seconds, 1)}


def _card_markdown(card: dict) -> str:
    c = card["config"]
    rows = "\n".join(f"| `{k}` | {v} |" for k, v in c.items())
    robust = card.get("robust_accuracy")
    return "\n".join([
        f"# Model card: {card['name']}", "",
        f"{card['summary']}.", "",
        f"- Upstream accuracy (Fashion-MNIST test images of classes {list(c['upstream_classes'])}): "
        f"{100 * card['upstream_accuracy']:.2f}%",
        f"- Robust accuracy (l2 PGD-20, eps = {card['robust_epsilon']}, first {card['robust_n']} of those images): "
        f"{100 * robust:.2f}%" if robust is not None else "- Robust accuracy: not measured for this variant",
        f"- Training time: {card['train_seconds']} s on {card['machine']}",
        f"- Parameters: {card['parameters']:,}; weights: `{card['name']}.safetensors`, sha256 `{card['sha256']}`",
        f"- Trained {card['trained']} with diffred {card['diffred_version']}, torch {card['torch']}", "",
        "Downstream use: the probes in the book read its penultimate layer (width "
        f"{c['width']}) on tasks that share no class with the upstream data.", "",
        "| config | value |", "|---|---|", rows, ""])


def save(model: nn.Module, cfg: TrainConfig, info: dict, root: Path | None = None, robust: bool | None = None,
         log=print) -> dict:
    """Evaluate, then write weights (float32 safetensors), the JSON card and the Markdown card."""
    import os
    import platform

    from safetensors.torch import save as st_save

    root = Path(root or zoo.zoo_dir())
    xt, yt = upstream_data(cfg, "test")
    card = {"name": cfg.name(), "config": dataclasses.asdict(cfg),
            "summary": f"{cfg.arch.upper()} variant '{cfg.variant}' (seed {cfg.seed}), trained on Fashion-MNIST "
                       f"classes {list(cfg.upstream_classes)}",
            "upstream_accuracy": round(accuracy(model, xt, yt), 4), "train_seconds": info["train_seconds"],
            "history": info["history"], "parameters": sum(p.numel() for p in model.parameters()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads",
            "trained": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
            "diffred_version": "0.1.0"}
    robust = cfg.loss == "adversarial" or cfg.variant == "cnn_ce" if robust is None else robust
    card["robust_epsilon"], card["robust_n"], card["robust_accuracy"] = cfg.epsilon, 1000, None
    if robust:
        card["robust_accuracy"] = round(robust_accuracy(model, xt[:1000], yt[:1000], cfg.epsilon), 4)
    weights = root / f"{cfg.name()}.safetensors"
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(weights, lambda fh: fh.write(st_save(sd)))
    card["sha256"] = sha256_file(weights)
    atomic_write_text(root / f"{cfg.name()}.json", json.dumps(card, indent=2) + "\n")
    atomic_write_text(root / f"{cfg.name()}.md", _card_markdown(card))
    log(f"{cfg.name()}: upstream accuracy {card['upstream_accuracy']:.4f}"
        + (f", robust {card['robust_accuracy']:.4f}" if card["robust_accuracy"] is not None else "")
        + f", {info['train_seconds']} s -> {weights}")
    return card

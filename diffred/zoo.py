"""The project's own small networks, trained on Fashion-MNIST (``diffred.train``), and the
committed weights in ``data/models/``.

Both architectures end the same way, so their penultimate layers compare like for like: a
trunk (convolutions, or a Transformer) pooled to one vector, then ``Linear -> ReLU`` of width
``K`` (the penultimate layer the probes read), then a linear classifier. The trunk's stages
are named (``stage1``...) so intermediate layers can be probed too.

A committed model is ``data/models/<name>.safetensors`` with its card ``<name>.json``
(training config, upstream accuracy, robust accuracy where measured, training time,
sha256) and ``<name>.md`` (the same, for people). :func:`load_zoo_encoder` rebuilds the
architecture from the card, checks the weights' sha256 and returns an Encoder like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import PROJECT_ROOT
from .store import sha256_file

ZOO_DIR = PROJECT_ROOT / "data" / "models"
ZOO_ENV = "DIFFRED_ZOO_DIR"  # another folder of zoo models (the tests train into one)
#: Pixel normalisation of every zoo model: x in [0, 1] -> (x - 0.5) / 0.5.
ZOO_MEAN, ZOO_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
NATIVE_SIZE = 28


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Encoders feed 3 channels; the zoo models see one (the images are grey)."""
    return x.mean(1, keepdim=True) if x.shape[1] == 3 else x


class _Head(nn.Module):
    """pooled trunk -> Linear -> ReLU (the penultimate layer, width K) [-> dropout] -> classes."""

    def __init__(self, in_dim: int, width: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(in_dim, width)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width, n_classes)

    def penultimate(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(pooled))


class SmallCNN(nn.Module):
    """Four 3x3 convolution stages (16, 32, 64, 128 channels; 28 -> 28 -> 14 -> 7 -> 7 px),
    global average pooling, then the head."""

    def __init__(self, width: int = 256, n_classes: int = 5, dropout: float = 0.0, channels=(16, 32, 64, 128)):
        super().__init__()
        c1, c2, c3, c4 = channels

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.stage1 = block(1, c1, 1)
        self.stage2 = block(c1, c2, 2)
        self.stage3 = block(c2, c3, 2)
        self.stage4 = block(c3, c4, 1)  # 7 x 7
        self.head = _Head(c4, width, n_classes, dropout)
        self.num_features = width

    def forward_features(self, x):
        return self.stage4(self.stage3(self.stage2(self.stage1(_gray(x)))))

    def forward_head(self, x, pre_logits: bool = False):
        h = self.head.penultimate(x.mean((2, 3)))
        return h if pre_logits else self.head.classifier(self.head.drop(h))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class SmallViT(nn.Module):
    """A small vision Transformer: 4x4 patches (49 tokens), a class token, learned position
    embeddings, ``depth`` pre-norm blocks; the class token feeds the same head as the CNN."""

    def __init__(self, width: int = 256, n_classes: int = 5, dropout: float = 0.0, dim: int = 64,
                 depth: int = 4, heads: int = 4, patch: int = 4):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, patch, patch)
        n_tokens = (NATIVE_SIZE // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_tokens + 1, dim) * 0.02)
        for i in range(depth):
            self.add_module(f"stage{i + 1}", nn.TransformerEncoderLayer(
                dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True))
        self.depth = depth
        self.norm = nn.LayerNorm(dim)
        self.head = _Head(dim, width, n_classes, dropout)
        self.num_features = width

    def forward_features(self, x):
        x = _gray(x)
        if x.shape[-1] != NATIVE_SIZE or x.shape[-2] != NATIVE_SIZE:
            x = F.interpolate(x, size=(NATIVE_SIZE, NATIVE_SIZE), mode="bilinear", align_corners=False)
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1) + self.pos
        for i in range(self.depth):
            t = getattr(self, f"stage{i + 1}")(t)
        return self.norm(t)

    def forward_head(self, x, pre_logits: bool = False):
        h = self.head.penultimate(x[:, 0])
        return h if pre_logits else self.head.classifier(self.head.drop(h))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


ARCHITECTURES = {"cnn": SmallCNN, "vit": SmallViT}


def zoo_dir() -> Path:
    import os
    return Path(os.environ.get(ZOO_ENV) or ZOO_DIR)


def build(arch: str, width: int, n_classes: int, dropout: float = 0.0) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"zoo architecture {arch!r} unknown; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](width=width, n_classes=n_classes, dropout=dropout)


def zoo_names(root: Path | None = None) -> list[str]:
    """Names of the committed zoo models (a card and a weight file each)."""
    root = Path(root or zoo_dir())
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json") if p.with_suffix(".safetensors").is_file())


def read_card(name: str, root: Path | None = None) -> dict:
    path = Path(root or zoo_dir()) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"model card {path} is unreadable ({err}); restore it from git or retrain with "
                         f"`diffred train {name.rsplit('_s', 1)[0]}`") from err


def load_zoo_model(name: str, root: Path | None = None) -> tuple[nn.Module, dict]:
    """The network and card of a committed zoo model, its weights checked against the card."""
    from safetensors.torch import load_file

    root = Path(root or zoo_dir())
    card = read_card(name, root)
    weights = root / f"{name}.safetensors"
    sha = sha256_file(weights)
    if sha != card["sha256"]:
        raise ValueError(f"{weights} does not match its card (sha256 {sha[:12]}... against "
                         f"{card['sha256'][:12]}...): restore it from git or retrain it")
    cfg = card["config"]
    model = build(cfg["arch"], cfg["width"], len(cfg["upstream_classes"]), cfg["dropout"])
    model.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()}, strict=True)
    return model, card

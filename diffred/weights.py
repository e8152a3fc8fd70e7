"""Weight files: reading and saving checkpoints, their identity, and the Hugging Face hub.

* :func:`read_checkpoint` / :func:`save_checkpoint` — state dicts as training scripts save
  them (nested, ``module.``-prefixed, safetensors), read with ``weights_only=True``;
* :func:`mismatch_summary` — why a checkpoint does not fit an architecture, and which timm
  architectures it does fit;
* :func:`file_sha256` (once per process per path, size and mtime), :func:`random_weights_id`,
  :func:`state_sha256` — the weights' identity in cache keys;
* :func:`hub_reachable` — whether the hub answers, checked once per process, so an offline
  run fails in seconds.
"""

from __future__ import annotations

import hashlib
import os
import socket
from functools import lru_cache
from pathlib import Path

import torch

from .store import atomic_write_bytes, sha256_file


def file_stamp(path: str | Path) -> tuple[str, int, int]:
    """``(resolved path, size, mtime_ns)``: changes when a file is overwritten in place."""
    st = Path(path).stat()
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


@lru_cache(maxsize=64)
def _stamped_sha256(stamp: tuple[str, int, int]) -> str:
    return sha256_file(stamp[0])


def file_sha256(path: str | Path) -> str:
    """sha256 of a weight file, hashed once per process per (path, size, mtime)."""
    return _stamped_sha256(file_stamp(path))


def random_weights_id(arch: str) -> str:
    """The identity of timm's random initialisation of ``arch`` under torch seed 0 (the key's
    torch and timm versions complete it)."""
    return hashlib.sha256(f"random-init|{arch}|torch-seed-0".encode()).hexdigest()


HUB_HOST = ("huggingface.co", 443)


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub answers (checked once per process): ``False`` when
    ``HF_HUB_OFFLINE`` is set or a TCP connection to huggingface.co:443 fails in ``timeout`` s."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def hub_cached_file(arch: str) -> str | None:
    """The local copy of timm's pretrained weights for ``arch`` in the Hugging Face cache."""
    import timm
    try:
        from huggingface_hub import try_to_load_from_cache
        cfg = timm.models.get_pretrained_cfg(arch)
        repo = cfg.hf_hub_id if cfg is not None else None
        if not repo:
            return None
        for fname in filter(None, (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin")):
            found = try_to_load_from_cache(repo, fname)
            if isinstance(found, str):
                return found
    except Exception:
        return None
    return None


def read_checkpoint(path: str | Path) -> dict:
    """A state dict from a checkpoint file, unwrapping ``state_dict``/``model`` nesting and a
    ``module.`` prefix. Loaded with ``weights_only=True`` (no code from the file runs)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's own text advises weights_only=False: not ours to give
        what = "not a pickle torch can read safely" if "weights_only" in str(err) or "Unpickl" in \
            type(err).__name__ else f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
        raise ValueError(f"{path} is not a readable checkpoint ({what}); expected a state dict saved with "
                         "torch.save(model.state_dict(), path) (.pth/.pt) or a .safetensors file. "
                         "diffred loads checkpoints with weights_only=True, so no code in the file runs") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} holds no state dict of tensors (found {type(obj).__name__}); "
                         "save one with torch.save(model.state_dict(), path)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def save_checkpoint(encoder, path: str | Path, nest: str | None = "state_dict",
                    prefix: str = "") -> Path:
    """Save a model's weights the way training scripts commonly do: a state dict, optionally
    nested under ``nest`` and with every key prefixed (``"module."`` as DataParallel does);
    ``.safetensors`` paths are written with safetensors. Written atomically."""
    model = getattr(encoder, "model", encoder)
    sd = {prefix + k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save
        atomic_write_bytes(path, lambda fh: fh.write(save(sd)))
    else:
        obj = {nest: sd} if nest else sd
        atomic_write_bytes(path, lambda fh: torch.save(obj, fh))
    return path


def state_sha256(model: torch.nn.Module) -> str:
    """sha256 of a model's tensors (names, shapes and values): the identity of weights that
    come from no file (random initialisation, timm's hub cache)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


CANDIDATE_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "wide_resnet50_2", "vgg16_bn",
                   "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "efficientnet_b0",
                   "mobilenetv3_large_100", "vit_tiny_patch16_224", "vit_small_patch16_224",
                   "vit_base_patch16_224", "convnext_tiny", "test_resnet", "test_vit", "test_efficientnet")


def _shapes(arch: str) -> dict:
    import timm
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in timm.create_model(arch, pretrained=False).state_dict().items()}


def matching_archs(sd: dict, asked: str, limit: int = 40) -> list[str]:
    """timm architectures among :data:`CANDIDATE_ARCHS` and ``asked``'s family whose keys and
    shapes are exactly those of state dict ``sd`` (built on the meta device: no memory)."""
    import timm
    family = timm.list_models(f"{asked.split('.')[0].split('_')[0]}*")[:limit // 2]
    want = {k: tuple(v.shape) for k, v in sd.items()}
    out = []
    for name in dict.fromkeys([*CANDIDATE_ARCHS, *family]):
        if name == asked.split(".")[0] or name not in timm.list_models():
            continue
        try:
            if _shapes(name) == want:
                out.append(name)
        except Exception:  # an architecture that cannot be built on the meta device
            continue
    return out


def mismatch_summary(sd: dict, model: torch.nn.Module, name: str, arch: str) -> str | None:
    """``None`` if ``sd`` fits ``model``; else a summary: counts of missing, unexpected and
    mis-shaped keys with a few names, and the timm architectures it does fit."""
    target = model.state_dict()
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in target]
    shaped = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in target.items()
              if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shaped):
        return None

    def few(items):
        return f" (e.g. {', '.join(items[:3])}{', ...' if len(items) > 3 else ''})" if items else ""
    fits = matching_archs(sd, arch)
    hint = (f"It matches the timm architecture{'s' if len(fits) > 1 else ''} {', '.join(fits)}: pass "
            f"arch={fits[0]}" if fits else "It matches none of the common timm architectures tried; pass "
            "the architecture it was trained as")
    return (f"checkpoint {name} ({len(sd)} tensors) does not fit architecture {arch!r} ({len(target)} tensors): "
            f"{len(missing)} missing keys{few(missing)}, {len(unexpected)} unexpected keys{few(unexpected)}, "
            f"{len(shaped)} keys of another shape{few(shaped)}. {hint}")



"""Runtimes that run an encoder over batches: torch, or OpenVINO on the CPU.

:func:`make_runner` returns a callable ``runner(x) -> np.ndarray`` that maps a preprocessed
batch ``(n, 3, S, S)`` to features ``(n, width)``, for the runtime that
:func:`diffred.device.resolve_runtime` chose:

* ``"openvino"`` — the encoder's feature function (penultimate layer or the pooled output of
  an intermediate layer, :meth:`Encoder.features`) is converted with
  ``openvino.convert_model`` once per (model weights, layer, image size, batch shape) and the
  converted model is stored under ``cache_dir()/openvino`` (written atomically, named by a
  digest of that key, as feature files are) after its features were checked against torch's
  on two random images (:func:`agrees`); it is compiled for the CPU with the float32 or
  bf16 inference-precision hint. Batches have one static shape: a shorter last batch is
  padded with zeros and the padding's rows are dropped, so a feature never depends on where
  its image sat in a batch. When conversion fails (an architecture OpenVINO cannot take)
  the runner is torch's, with one log line saying so.
* ``"torch"`` — the module itself, under autocast (bfloat16 on the CPU, float16 on CUDA)
  with channels_last unless the precision is float32, on pinned memory for CUDA.

Measured on 2 busy cores (``benchmarks/RESULTS.md``): OpenVINO float32 is about twice as
fast as torch's bfloat16 autocast and agrees with torch float32 to about 1e-5 relative.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .device import autocast
from .models import Encoder, _pool
from .store import cache_dir, json_digest, safe_name

log = logging.getLogger(__name__)
IR_VERSION = 3  # 3: traced without torch's check, static shape set by reshape
OV_HINT = {"float32": "f32", "bfloat16": "bf16"}


class _Features(torch.nn.Module):
    """:meth:`Encoder.features` as a traceable module, for one layer or several at once (their
    features side by side, in the order of ``layers``). An intermediate layer's output is
    caught by a hook that does not stop the forward pass (the converter drops the unused
    rest of the graph)."""

    def __init__(self, encoder: Encoder, layers=None):
        super().__init__()
        self.model, self.encoder = encoder.model, encoder
        self.layers = list(layers or [encoder.layer])

    def forward(self, x):
        if self.layers == ["penultimate"]:
            return self.encoder.features(x)
        caught, handles = {}, []
        for layer in self.layers:
            if layer != "penultimate":
                handles.append(self.model.get_submodule(layer).register_forward_hook(
                    lambda _m, _i, out, name=layer: caught.__setitem__(name, _pool(out))))
        try:
            f = self.model.forward_features(x)
        finally:
            for h in handles:
                h.remove()
        if "penultimate" in self.layers:
            caught["penultimate"] = self.model.forward_head(f, pre_logits=True)
        return torch.cat([caught[layer] for layer in self.layers], 1)


def ir_key(encoder: Encoder, image_size: int, batch_size: int, layers=None) -> dict:
    """Everything that determines a converted model (the precision is chosen at compile time)."""
    import openvino as ov
    return {"ir": IR_VERSION, "openvino": ov.get_version(), "torch": torch.__version__,
            "model": encoder.name, "arch": encoder.arch, "weights_sha256": encoder.weights_sha256,
            "layer": "+".join(layers or [encoder.layer]), "image_size": int(image_size), "batch": int(batch_size)}


def ir_path(key: dict, root: Path | None = None) -> Path:
    """Where the converted model for ``key`` lives (``.xml``; its weights beside it, ``.bin``)."""
    root = Path(root) if root is not None else cache_dir()
    layer = key["layer"] if "+" not in key["layer"] else f"{key['layer'].count('+') + 1}layers"
    stem = f"{safe_name(layer)}_{key['image_size']}px_b{key['batch']}_{json_digest(key)[:16]}"
    return root / "openvino" / safe_name(key["model"]) / f"{stem}.xml"


def convert(encoder: Encoder, image_size: int, batch_size: int, layers=None):
    """The OpenVINO model of ``encoder``'s features (of ``layers``, side by side, when given)
    at one batch shape: read from the cache,
    or converted and cached (the ``.bin`` is moved in before the ``.xml``, so an ``.xml``
    means a complete pair)."""
    import openvino as ov
    key = ir_key(encoder, image_size, batch_size, layers)
    path = ir_path(key)
    core = _core()
    if path.exists() and path.with_suffix(".bin").exists():
        try:
            return core.read_model(str(path)), path
        except Exception as err:  # a damaged pair: convert again
            log.warning("converted model %s unreadable (%s); converting again", path, type(err).__name__)
    shape = (int(batch_size), 3, int(image_size), int(image_size))
    model = _converted(_Features(encoder, layers).eval(), shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".convert."))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / "key.json").write_text(json.dumps(key, indent=2, sort_keys=True))
        os.replace(tmp / "key.json", path.with_suffix(".json"))
        os.replace(tmp / "model.bin", path.with_suffix(".bin"))
        os.replace(tmp / "model.xml", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model, path


def _trace(module: torch.nn.Module, shape: tuple, example_batch: int):
    """``module`` traced on an example of ``example_batch`` images, converted, then given the
    static ``shape``. torch's own trace check is skipped (it runs the module twice more: 0.8 s
    of EfficientNet-Lite0's 2.9 s); :func:`agrees` checks the result against torch instead."""
    import openvino as ov
    example = torch.zeros((example_batch, *shape[1:]))
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation and tracer warnings
        traced = torch.jit.trace(module, example, check_trace=False, strict=False)
        model = ov.convert_model(traced, example_input=example)
    model.reshape({0: list(shape)})
    return model


def agrees(model, module: torch.nn.Module, shape: tuple, rtol: float = 1e-4) -> bool:
    """Whether a converted ``model`` gives ``module``'s float32 features (within ``rtol`` of
    the largest) on two seeded random images placed in a batch of zeros of ``shape``."""
    x = torch.zeros(shape)
    x[:2] = torch.randn((2, *shape[1:]), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(False), torch.no_grad():
        ref = module(x[:2]).numpy()
    out = _core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x.numpy())[0]
    if out.shape != (shape[0], *ref.shape[1:]):
        return False
    return bool(np.abs(out[:2] - ref).max() <= rtol * max(float(np.abs(ref).max()), 1e-12))


def _converted(module: torch.nn.Module, shape: tuple):
    """``module`` converted for one batch shape. A one-image example traces the graph (1.3 s
    less than a whole batch for EfficientNet-Lite0 at 112 px), unless the trace fixed the
    batch somewhere (a class token expanded to the example's batch, say): then the whole
    batch is the example. Either is checked against torch (:func:`agrees`)."""
    try:
        model = _trace(module, shape, 1)
        if agrees(model, module, shape):
            return model
    except Exception:  # the one-image trace does not convert: the whole batch below
        pass
    model = _trace(module, shape, shape[0])
    if not agrees(model, module, shape):
        raise RuntimeError("the converted model's features differ from torch's float32 features")
    return model


@functools.lru_cache(maxsize=1)
def _core():
    import openvino as ov
    return ov.Core()


@functools.lru_cache(maxsize=8)
def _compiled(path: str, mtime: float, precision: str):
    """A converted model compiled for the CPU at ``precision`` (one per process and file)."""
    core = _core()
    return core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": OV_HINT[precision]})


def static_batches(x: torch.Tensor, batch_size: int, run) -> np.ndarray:
    """``run`` (a compiled model of one static batch shape: array in, features out) over
    ``x`` a batch at a time; a shorter last batch is padded with zeros and the padding's rows
    dropped, so a feature never depends on where its image sat."""
    x = np.ascontiguousarray(x.numpy(), dtype=np.float32)
    out, B = [], int(batch_size)
    for i in range(0, len(x), B):
        part = x[i:i + B]
        n = len(part)
        if n < B:
            part = np.concatenate([part, np.zeros((B - n, *part.shape[1:]), np.float32)])
        out.append(np.array(run(part)[:n], dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class OpenVINORunner:
    """Batches through a compiled OpenVINO model of one static batch shape."""

    runtime = "openvino"

    def __init__(self, encoder: Encoder, image_size: int, batch_size: int, precision: str, layers=None):
        if precision not in OV_HINT:
            raise ValueError(f"OpenVINO precision {precision!r} unknown; use float32 or bfloat16")
        _, path = convert(encoder, image_size, batch_size, layers)
        self.precision, self.batch_size, self.path = precision, int(batch_size), path
        self.compiled = _compiled(str(path), path.stat().st_mtime, precision)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return static_batches(x, self.batch_size, self._run)

    def _run(self, part: np.ndarray) -> np.ndarray:
        self.request.infer({0: part}, share_inputs=True)  # no copy: the array outlives the call
        return self.request.get_output_tensor(0).data

    def close(self) -> None:
        pass


class TorchRunner:
    """The torch module on ``device``: autocast and channels_last unless float32. With
    ``layers``, one forward pass gives their features side by side."""

    runtime = "torch"

    def __init__(self, encoder: Encoder, device: torch.device, precision: str, layers=None):
        self.encoder, self.device, self.precision = encoder, device, precision
        self.fast = precision not in ("float32", "float32-plain")
        several = layers is not None and list(layers) != [encoder.layer]
        self.forward = _Features(encoder, layers) if several else encoder.features
        encoder.model.to(device)
        if self.fast:
            encoder.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        if self.fast:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            f = self.forward(x)
        return f.float().cpu().numpy()

    def close(self) -> None:
        self.encoder.model.to("cpu").to(memory_format=torch.contiguous_format)


def make_runner(encoder: Encoder, runtime: str, precision: str, device: torch.device, image_size: int,
                batch_size: int, layers=None):
    """A runner for a resolved ``runtime`` and ``precision`` (the feature key's values), of
    ``encoder``'s layer or of several ``layers`` at once (features side by side).
    OpenVINO that cannot convert the encoder falls back to torch at the same precision
    (float32, or bfloat16 autocast), with one log line."""
    if runtime == "openvino":
        try:
            return OpenVINORunner(encoder, image_size, batch_size, precision, layers)
        except Exception as err:
            fallback = "float32" if precision == "float32" else "bfloat16-autocast"
            log.warning("OpenVINO could not convert %s (layer %s: %s: %s); extracting with torch %s instead",
                        encoder.name, "+".join(layers or [encoder.layer]), type(err).__name__,
                        str(err).splitlines()[0][:160] if str(err) else "", fallback)
            return TorchRunner(encoder, torch.device("cpu"), fallback, layers)
    return TorchRunner(encoder, device, precision, layers)

"""Where and in which number format the library computes.

Ground floor of the library: it imports nothing else from ``diffred``.

* :func:`resolve_device` — ``"auto"`` is ``$DIFFRED_DEVICE`` when set (``diffred run
  --device`` sets it), else CUDA when present, else the CPU.
* :func:`resolve_runtime` — which runtime extracts features: ``"auto"`` is OpenVINO on the
  CPU (when the ``openvino`` package is installed) and torch on CUDA.
* :func:`resolved_precision` — what a feature-extraction precision means for a runtime on
  this machine (it goes into cache keys).
* :func:`compute_dtype` — the probes' matrix-product dtype.
* :func:`autocast` — the autocast context for extraction.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os

import torch

DEVICE_ENV = "DIFFRED_DEVICE"
RUNTIME_ENV = "DIFFRED_RUNTIME"
RUNTIMES = ("auto", "openvino", "torch")
PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_device(device: str | None = "auto") -> torch.device:
    """``"auto"`` -> ``$DIFFRED_DEVICE`` if set, else CUDA when present, else CPU. Asking
    for CUDA without one is an error."""
    if device in ("auto", None):
        device = os.environ.get(DEVICE_ENV) or "auto"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} unknown; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but this machine has no CUDA GPU; "
                           "use device='auto' or 'cpu'")
    return dev


@functools.lru_cache(maxsize=1)
def openvino_available() -> bool:
    """Whether the ``openvino`` package is installed (it is not imported here)."""
    return importlib.util.find_spec("openvino") is not None


def resolve_runtime(runtime: str | None = "auto", device: str | None = "auto") -> str:
    """The runtime that extracts features: ``"torch"`` or ``"openvino"``.

    ``"auto"`` is ``$DIFFRED_RUNTIME`` when set, else OpenVINO on the CPU when installed
    (float32 within 1e-5 of torch and about twice as fast as torch's bfloat16 autocast) and
    torch on CUDA (autocast, pinned memory). ``"openvino"`` on a CUDA device is torch too:
    CUDA keeps torch."""
    if runtime in ("auto", None):
        runtime = os.environ.get(RUNTIME_ENV) or "auto"
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r} unknown; use one of {', '.join(RUNTIMES)}")
    if runtime == "torch" or resolve_device(device).type != "cpu":
        return "torch"
    if runtime == "openvino" and not openvino_available():
        raise RuntimeError("runtime='openvino' needs the openvino package: pip install openvino "
                           "(or use runtime='torch')")
    return "openvino" if openvino_available() else "torch"


def resolved_precision(precision: str, device: str = "auto", runtime: str = "torch") -> str:
    """What ``precision`` means for a resolved ``runtime`` on this machine; the value goes
    into cache keys, so every distinct computation has its own.

    * torch: ``"auto"`` is bfloat16 autocast (with channels_last) on the CPU and float16
      autocast on CUDA; ``"bfloat16"`` is ``"bfloat16-autocast"``; ``"float32"`` is plain.
    * openvino: ``"auto"`` and ``"float32"`` are ``"float32"`` (exact to 1e-5);
      ``"bfloat16"`` is OpenVINO's bf16 inference hint, ``"bfloat16"``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} unknown; use one of {', '.join(PRECISIONS)}")
    if runtime == "openvino":
        return "bfloat16" if precision == "bfloat16" else "float32"
    if precision == "float32":
        return "float32"
    if precision == "bfloat16":
        return "bfloat16-autocast"
    return "float16-autocast" if resolve_device(device).type == "cuda" else "bfloat16-autocast"


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compute_dtype(precision: str, dev: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 where the hardware does bfloat16 products natively (CUDA with
    bf16 support; CPUs with AVX512-BF16 or AMX), else float32."""
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    native = torch.cuda.is_bf16_supported() if dev.type == "cuda" else cpu_has_bf16()
    return torch.bfloat16 if native else torch.float32


def autocast(device: torch.device, precision: str):
    """The autocast context for a resolved extraction ``precision`` on ``device``."""
    if precision in ("float32", "float32-plain"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype)

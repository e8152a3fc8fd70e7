"""Where and in which number format the library computes.

Ground floor of the library: it imports nothing else from ``diffred``.

* :func:`resolve_device` — ``"auto"`` is ``$DIFFRED_DEVICE`` when set (``diffred run
  --device`` sets it), else CUDA when present, else the CPU.
* :func:`resolved_precision` — what a feature-extraction precision means on this machine
  (it goes into cache keys).
* :func:`compute_dtype` — the probes' matrix-product dtype.
* :func:`autocast` — the autocast context for extraction.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

DEVICE_ENV = "DIFFRED_DEVICE"


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


def resolved_precision(precision: str, device: str = "auto") -> str:
    """What ``precision`` means on this machine: ``"auto"`` is bfloat16 autocast on the CPU
    and float16 autocast on CUDA. The resolved value goes into cache keys."""
    if precision != "auto":
        return precision
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

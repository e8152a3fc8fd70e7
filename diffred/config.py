"""Run configuration and cache locations.

One frozen dataclass, :class:`RunConfig`, describes everything that determines the
result of one experiment (model, dataset, layer, fractions, seeds, probe, image size,
sample sizes, device). It is saved as JSON beside every cached artefact it produced, so a
cache file can always be traced back to the run that wrote it.

The paper's protocol constants (fraction grid, seeds 1-5) live here too; they come from
``data/paper/SOURCE.md`` (the paper's Section 3 and the authors' scripts).
"""

from __future__ import annotations

import dataclasses
import json
import os

from .device import PRECISIONS, RUNTIMES
from .store import PROJECT_ROOT, cache_dir  # noqa: F401  (re-exported: the settings' home)

# The paper's fraction grid (Fig. 1; authors' scripts), and the subset seeds 1-5.
PAPER_FRACTIONS: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 1.0,
)
PAPER_SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)


#: ``DIFFRED_SCALE=smoke`` shrinks every run (used by the test suite to build the book
#: quickly). Anything else, or unset, means the published default scale.
SCALE_ENV = "DIFFRED_SCALE"
SMOKE_LIMITS = {"n_train": 1500, "n_test": 500, "seeds": 2, "image_size": 64}


def scale() -> str:
    """``"smoke"`` when the run is shrunk for tests, else ``"default"``."""
    return "smoke" if os.environ.get(SCALE_ENV, "").strip().lower() == "smoke" else "default"


def check_fractions(fractions) -> tuple[float, ...]:
    """Validate a sequence of neuron fractions: each must lie in (0, 1]."""
    out = []
    for f in fractions:
        try:
            f = float(f)
        except (TypeError, ValueError):
            raise ValueError(f"fraction {f!r} is not a number; give fractions in (0, 1], e.g. 0.2") from None
        if not (0.0 < f <= 1.0):
            raise ValueError(f"fraction {f} is outside (0, 1]; a fraction is the share of the layer's "
                             "neurons kept, e.g. 0.2 for 20%")
        out.append(f)
    if not out:
        raise ValueError("no fractions given; give at least one fraction in (0, 1]")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that determines one subset-curve run.

    ``n_train``/``n_test`` of ``None`` mean the whole split; ``image_size`` of ``None``
    means the model's own input size; ``arch`` is the timm architecture when ``model`` is a
    checkpoint path (ignored otherwise); ``runtime`` is ``"auto"`` (OpenVINO on the CPU,
    torch on CUDA), ``"openvino"`` or ``"torch"``; ``precision`` is ``"auto"`` (float32 on
    OpenVINO, bfloat16 autocast on torch's CPU path, float16 autocast on CUDA), ``"float32"``
    or ``"bfloat16"`` (see :func:`diffred.device.resolved_precision`).
    """

    model: str = "efficientnet_lite0"
    arch: str | None = None  # the timm architecture of a checkpoint file given as ``model``
    dataset: str = "fashion_mnist"
    layer: str = "penultimate"
    fractions: tuple[float, ...] = PAPER_FRACTIONS
    seeds: tuple[int, ...] = PAPER_SEEDS
    probe: str = "logistic"
    image_size: int | None = 112
    n_train: int | None = None
    n_test: int | None = None
    data_seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    runtime: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "fractions", check_fractions(self.fractions))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds:
            raise ValueError("no subset seeds given; give at least one, e.g. seeds=(1, 2, 3, 4, 5)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} unknown; use one of {', '.join(PRECISIONS)}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime {self.runtime!r} unknown; use one of {', '.join(RUNTIMES)}")
        for name in ("n_train", "n_test", "image_size"):
            v = getattr(self, name)
            if v is not None and int(v) <= 0:
                raise ValueError(f"{name}={v} must be a positive integer (or None for the default)")

    def scaled(self) -> "RunConfig":
        """This config shrunk to the smoke scale when ``DIFFRED_SCALE=smoke``, else itself."""
        if scale() != "smoke":
            return self
        lim = SMOKE_LIMITS
        return dataclasses.replace(
            self,
            n_train=min(self.n_train or lim["n_train"], lim["n_train"]),
            n_test=min(self.n_test or lim["n_test"], lim["n_test"]),
            seeds=self.seeds[: lim["seeds"]],
            # None (the model's own size) stays None: the zoo's 28 px models are small already
            image_size=None if self.image_size is None else min(self.image_size, lim["image_size"]),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(names)}")
        d = dict(d)
        for key in ("fractions", "seeds"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

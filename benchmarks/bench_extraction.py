"""Feature-extraction runtimes side by side: images/s, agreement with torch float32, probe accuracy.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_extraction.py [--images 1024] [--repeats 3]

For each model (EfficientNet-Lite0 and Lite2 at 112 px, the zoo CNN at its own 28 px) and each
runtime (torch float32; torch bfloat16 autocast + channels_last, the old CPU default; ONNX
Runtime float32 on torch's ONNX export; OpenVINO float32, the new default; OpenVINO bf16
inference hint), the same Fashion-MNIST images go through ``diffred.features._run_encoder``
(preprocessing included, the next batch prepared in a background thread) ``--repeats`` times,
in batches of ``RUNTIME_BATCH``; the median images/s is reported. The one-off conversion
(OpenVINO's, cached on disk afterwards; ONNX's export) is timed separately (``convert_seconds``). Features are
compared with torch float32's: max |difference| / max |reference| and mean |difference| /
mean |reference|. A batched logistic probe (fractions 0.1 and 1, seeds 1-2) is fitted on
each runtime's train features and scored on its test features. For OpenVINO float32 on Lite0
the run is repeated with preprocessing in the same thread, to measure what the overlap buys,
and in batches of 32 and 64 (the CPU default batch is 32 from 96 px up, ``features.default_batch``).
Results go to ``extraction.json``; ``report.py`` writes the table into ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from diffred import features as F
from diffred.analyses.cost import RUNTIME_BATCH, timed_features
from diffred.datasets import load_dataset
from diffred.models import load_encoder
from diffred.probes import LogisticProbe
from diffred.runtimes import _Features, make_runner, static_batches
from diffred.subsets import random_subsets

HERE = Path(__file__).resolve().parent
MODELS = (("efficientnet_lite0", 112), ("efficientnet_lite2", 112), ("cnn_ce_s1", 28))
RUNTIMES = (("torch", "float32", "torch float32"),
            ("torch", "bfloat16-autocast", "torch bf16 autocast + channels_last (old default)"),
            ("onnxruntime", "float32", "ONNX Runtime float32"),
            ("openvino", "float32", "OpenVINO float32 (new default)"),
            ("openvino", "bfloat16", "OpenVINO bf16 hint"))
BATCH = RUNTIME_BATCH


class OnnxRuntimeRunner:
    """The encoder's features exported to ONNX (torch's TorchScript exporter, one static batch
    shape, opset 17) and run by ONNX Runtime's CPU provider; a shorter last batch is padded
    with zeros and its rows dropped, as OpenVINO's runner does. For this benchmark only."""

    runtime = "onnxruntime"

    def __init__(self, enc, image_size: int, batch_size: int):
        import onnxruntime as ort
        self.batch_size = int(batch_size)
        path = Path(os.environ["DIFFRED_CACHE"]) / "onnx" / f"{enc.name}_{image_size}px_b{batch_size}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        example = torch.zeros((self.batch_size, 3, image_size, image_size))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(_Features(enc).eval(), (example,), str(path), dynamo=False, input_names=["x"],
                              output_names=["features"], opset_version=17)
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return static_batches(x, self.batch_size, lambda part: self.session.run(None, {"x": part})[0])

    def close(self) -> None:
        pass


def make_any_runner(enc, runtime, precision, device, image_size, batch_size):
    """:func:`diffred.runtimes.make_runner`, or the ONNX Runtime runner above."""
    if runtime == "onnxruntime":
        return OnnxRuntimeRunner(enc, image_size, batch_size)
    return make_runner(enc, runtime, precision, device, image_size, batch_size)


def probe_accuracy(X, data):
    sel = random_subsets(X["train"].shape[1], [0.1, 1.0], [1, 2])
    acc = LogisticProbe(random_state=0).fit(X["train"], data["train"].labels, sel).score(X["test"], data["test"].labels)
    frac = np.array([m.fraction for m in sel.members])
    return float(acc[frac == 1.0].mean()), float(acc[frac == 0.1].mean())


def bench_model(name, size, data, repeats):
    enc = load_encoder(name)
    rows, ref = [], None
    for runtime, precision, label in RUNTIMES:
        X, rates, convert, ran = timed_features(enc, data, size, runtime, precision, repeats, make=make_any_runner)
        full = np.concatenate([X["train"], X["test"]])
        ref = full if ref is None else ref
        diff = np.abs(full - ref)
        acc_full, acc_10 = probe_accuracy(X, data)
        rows.append({"model": name, "image_size": size, "runtime": label, "ran_on": ran,
                     "images": len(full), "images_per_second": statistics.median(rates),
                     "runs": [round(r, 1) for r in rates], "convert_seconds": round(convert, 1),
                     "max_rel_diff": float(diff.max() / np.abs(ref).max()),
                     "mean_rel_diff": float(diff.mean() / np.abs(ref).mean()),
                     "probe_acc_full": acc_full, "probe_acc_10pct": acc_10})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def overlap(data, repeats):
    """OpenVINO float32 on Lite0 with and without preparing the next batch in a thread."""
    enc = load_encoder("efficientnet_lite0")
    out = {}
    for prefetch in (True, False, True, False):
        F.PREFETCH = prefetch
        _, rates, _, _ = timed_features(enc, data, 112, "openvino", "float32", repeats)
        out.setdefault("with_thread" if prefetch else "same_thread", []).extend(rates)
    F.PREFETCH = True
    return {k: statistics.median(v) for k, v in out.items()} | {"runs": out}


def batch_sizes(data, repeats):
    """OpenVINO float32 on Lite0 at 112 px in batches of 32 and of 64, alternating."""
    enc = load_encoder("efficientnet_lite0")
    out = {}
    for batch in (32, 64, 32, 64):
        _, rates, _, _ = timed_features(enc, data, 112, "openvino", "float32", repeats, batch=batch)
        out.setdefault(str(batch), []).extend(rates)
    return {k: statistics.median(v) for k, v in out.items()} | {"runs": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1024, help="training images (plus half as many test images)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default=",".join(m for m, _ in MODELS))
    ap.add_argument("--out", default=str(HERE / "extraction.json"))
    args = ap.parse_args()
    os.environ.setdefault("DIFFRED_CACHE", tempfile.mkdtemp(prefix="bench-extraction-"))  # converted models
    data = {s: load_dataset("fashion_mnist", s, n=args.images if s == "train" else args.images // 2, seed=0)
            for s in ("train", "test")}
    rows = []
    for name, size in MODELS:
        if name in args.models.split(","):
            rows += bench_model(name, size, data, args.repeats)
    result = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M"), "batch": BATCH,
              "repeats": args.repeats, "rows": rows, "overlap": overlap(data, args.repeats),
              "batches": batch_sizes(data, args.repeats)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["overlap"]))


if __name__ == "__main__":
    main()

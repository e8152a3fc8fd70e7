"""Feature-extraction runtimes side by side: images/s, agreement with torch float32, probe accuracy.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_extraction.py [--images 1024] [--repeats 3]

For each model (EfficientNet-Lite0 and Lite2 at 112 px, the zoo CNN at its own 28 px) and each
runtime (torch float32; torch bfloat16 autocast + channels_last, the old CPU default; OpenVINO
float32, the new default; OpenVINO bf16 inference hint), the same Fashion-MNIST images go
through ``diffred.features._run_encoder`` (preprocessing included, the next batch prepared in a
background thread) ``--repeats`` times; the median images/s is reported. OpenVINO's one-off
conversion is timed separately (``convert_seconds``; cached on disk afterwards). Features are
compared with torch float32's: max |difference| / max |reference| and mean |difference| /
mean |reference|. A batched logistic probe (fractions 0.1 and 1, seeds 1-2) is fitted on
each runtime's train features and scored on its test features. For OpenVINO float32 on Lite0
the run is repeated with preprocessing in the same thread, to measure what the overlap buys.
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
from pathlib import Path

import numpy as np
import torch

from diffred import features as F
from diffred.analyses.cost import RUNTIME_BATCH, timed_features
from diffred.datasets import load_dataset
from diffred.models import load_encoder
from diffred.probes import LogisticProbe
from diffred.subsets import random_subsets

HERE = Path(__file__).resolve().parent
MODELS = (("efficientnet_lite0", 112), ("efficientnet_lite2", 112), ("cnn_ce_s1", 28))
RUNTIMES = (("torch", "float32", "torch float32"),
            ("torch", "bfloat16-autocast", "torch bf16 autocast + channels_last (old default)"),
            ("openvino", "float32", "OpenVINO float32 (new default)"),
            ("openvino", "bfloat16", "OpenVINO bf16 hint"))
BATCH = RUNTIME_BATCH


def probe_accuracy(X, data):
    sel = random_subsets(X["train"].shape[1], [0.1, 1.0], [1, 2])
    acc = LogisticProbe(random_state=0).fit(X["train"], data["train"].labels, sel).score(X["test"], data["test"].labels)
    frac = np.array([m.fraction for m in sel.members])
    return float(acc[frac == 1.0].mean()), float(acc[frac == 0.1].mean())


def bench_model(name, size, data, repeats):
    enc = load_encoder(name)
    rows, ref = [], None
    for runtime, precision, label in RUNTIMES:
        X, rates, convert, ran = timed_features(enc, data, size, runtime, precision, repeats)
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
              "repeats": args.repeats, "rows": rows, "overlap": overlap(data, args.repeats)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["overlap"]))


if __name__ == "__main__":
    main()

"""Probe benchmark: the whole (fraction x seed) grid on the same cached features, side by side.

    .venv/bin/python benchmarks/bench_probes.py [--n-train N] [--seeds 1,2,3,4,5] [--out benchmarks/probes.csv]

Each method runs in its own subprocess (so peak memory = that process's max RSS), one after
the other on the same machine and the same cached EfficientNet-Lite0 features of
Fashion-MNIST. The paper's recipe is timed for 2 epochs per subset and extrapolated to 100.
Also measures feature extraction: the CPU default (channels_last + bfloat16 autocast) against
a plain float32 loop, and what the precision does to probe accuracy.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from diffred.analyses.cost import COST_METHODS as METHODS  # noqa: E402


def one(method: str, n_train, seeds) -> None:
    from diffred.config import RunConfig
    from diffred.analyses.cost import probe_costs
    cfg = RunConfig(n_train=n_train, seeds=tuple(seeds))
    bench, per = probe_costs(cfg, methods=(method,))
    bench = bench[bench.method == method]
    per = per[per.method == method]
    print(json.dumps({"bench": bench.to_dict("records"), "per": per.to_dict("records"),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def extraction(n_images: int) -> list[dict]:
    import dataclasses

    import numpy as np

    from diffred.config import RunConfig
    from diffred.datasets import load_dataset
    from diffred.features import _run_encoder
    from diffred.models import load_encoder
    from diffred.probes import LogisticProbe
    from diffred.subsets import random_subsets
    import torch

    enc = load_encoder("efficientnet_lite0")
    rows, feats = [], {}
    data = {s: load_dataset("fashion_mnist", s, n=n_images if s == "train" else n_images // 2, seed=0)
            for s in ("train", "test")}
    for precision in ("float32", "auto"):
        model = enc.model.to(memory_format=torch.channels_last if precision == "auto" else torch.contiguous_format)
        enc2 = dataclasses.replace(enc, model=model)
        t0 = time.perf_counter()
        feats[precision] = {s: _run_encoder(enc2, d, 0, len(d), 112, torch.device("cpu"), precision, 128)
                            for s, d in data.items()}
        sec = time.perf_counter() - t0
        n = sum(len(d) for d in data.values())
        sel = random_subsets(1280, [0.01, 0.1, 0.2, 1.0], [1, 2, 3])
        p = LogisticProbe().fit(feats[precision]["train"], data["train"].labels, sel)
        acc = p.score(feats[precision]["test"], data["test"].labels)
        rows.append({"precision": "float32" if precision == "float32" else "bfloat16 autocast + channels_last",
                     "images": n, "seconds": sec, "images_per_second": n / sec,
                     "probe_acc_full": float(acc[[i for i, m in enumerate(sel.members) if m.fraction == 1.0]].mean()),
                     "probe_acc_20pct": float(acc[[i for i, m in enumerate(sel.members) if m.fraction == 0.2]].mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--methods", default=";".join(METHODS), help="methods separated by ;")
    ap.add_argument("--extract-images", type=int, default=4000)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    ap.add_argument("--update", action="store_true",
                    help="re-run only --methods and replace their rows in an existing results file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.one:
        one(args.one, args.n_train, seeds)
        return
    import pandas as pd
    results = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                          f"{__import__('os').cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
               "n_train": args.n_train, "seeds": seeds, "methods": [], "per": []}
    todo = args.methods.split(";")
    if args.update:
        results = json.loads(Path(args.out).read_text())
        results["methods"] = [r for r in results["methods"] if r["method"] not in todo]
        results["per"] = [r for r in results["per"] if r["method"] not in todo]
    for m in todo:
        out = subprocess.run([sys.executable, __file__, "--one", m, "--seeds", args.seeds]
                             + (["--n-train", str(args.n_train)] if args.n_train else []),
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        for b in r["bench"]:
            b["peak_mb"] = r["peak_mb"]
            b["measured"] = time.strftime("%Y-%m-%d %H:%M")
            results["methods"].append(b)
            print(b, flush=True)
        results["per"].extend(r["per"])
    if not args.update:
        results["extraction"] = extraction(args.extract_images)
        print(results["extraction"])
    Path(args.out).write_text(json.dumps(results, indent=1))
    per = pd.DataFrame(results["per"]).groupby(["method", "fraction"]).accuracy.mean().unstack(0)
    print(per.round(4))


if __name__ == "__main__":
    main()

"""Write benchmarks/RESULTS.md from the measured JSON files (no number is typed by hand).

    .venv/bin/python benchmarks/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def extraction_runtimes() -> list[str]:
    """The runtimes table from ``extraction.json`` (``bench_extraction.py``)."""
    path = HERE / "extraction.json"
    if not path.exists():
        return []
    e = json.loads(path.read_text())
    t = pd.DataFrame(e["rows"])
    t["x old default"] = t.images_per_second / t.groupby("model").images_per_second.transform(
        lambda s: s[t.loc[s.index, "runtime"].str.contains("old default")].iloc[0])
    cols = ["model", "image_size", "runtime", "images_per_second", "x old default", "max_rel_diff", "mean_rel_diff",
            "convert_seconds", "probe_acc_full", "probe_acc_10pct"]
    o = e["overlap"]
    return ["## Feature-extraction runtimes on the CPU", "",
            f"Measured {e['date']} on {e['machine']} (load average {e['load_average']:.1f} at the end),",
            f"`bench_extraction.py`: {t.images.iloc[0]} Fashion-MNIST images (train and test), batch",
            f"{e['batch']}, median of {e['repeats']} runs, preprocessing included; differences relative to torch",
            "float32's features; probe accuracy from the batched logistic probe (seeds 1-2) on each runtime's features.",
            "`convert_seconds`: the one-off conversion (OpenVINO's, cached on disk afterwards; ONNX's export).", "",
            t[cols].to_markdown(index=False, floatfmt=".4g"), "",
            f"Overlap (OpenVINO float32, Lite0): {o['with_thread']:.0f} images/s with the next batch prepared in a "
            f"background thread, {o['same_thread']:.0f} images/s in the same thread.", ""] + batch_line(e)


def batch_line(e: dict) -> list[str]:
    """The batch-size comparison of ``extraction.json``, when it has one."""
    b = e.get("batches")
    if not b:
        return []
    return [f"Batch size (OpenVINO float32, Lite0 at 112 px, alternating runs): {b['32']:.0f} images/s in batches "
            f"of 32 (the CPU default from 96 px up), {b['64']:.0f} in batches of 64.", ""]


def default_images_per_second() -> float | None:
    """Lite0's images/s on the CPU default runtime (OpenVINO float32), from ``extraction.json``."""
    path = HERE / "extraction.json"
    if not path.exists():
        return None
    rows = [r for r in json.loads(path.read_text())["rows"]
            if r["model"] == "efficientnet_lite0" and "new default" in r["runtime"]]
    return float(rows[0]["images_per_second"]) if rows else None


def main() -> None:
    probes = json.loads((HERE / "results.json").read_text())
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/report.py` from `results.json` (`bench_probes.py`) and `build.json`",
             "(`bench_build.py`). Re-run those scripts to refresh; nothing here is typed by hand.", ""]
    build = HERE / "build.json"
    if build.exists():
        b = json.loads(build.read_text())
        lines += ["## Book build at the default scale", "",
                  f"Measured {b['date']} on {b['machine']}"
                  + (f" (load average {b['load_average_end']:.1f} at the end)" if "load_average_end" in b else "")
                  + " (`bench_build.py`: three builds, one after the other,", "into one folder).", "",
                  "| build | seconds | minutes |", "|---|---:|---:|",
                  f"| cold: empty `DIFFRED_CACHE`, no execution cache | {b['cold_seconds']:.0f} | "
                  f"{b['cold_seconds'] / 60:.1f} |",
                  f"| warm: the same build again, nothing changed | {b['warm_seconds']:.0f} | "
                  f"{b['warm_seconds'] / 60:.1f} |"]
        if "reexecuted_seconds" in b:
            lines += [f"| re-executed: execution cache emptied, `DIFFRED_CACHE` warm | {b['reexecuted_seconds']:.0f} | "
                      f"{b['reexecuted_seconds'] / 60:.1f} |"]
        lines += ["", "The warm build reuses every executed chapter from the execution cache (jupyter-cache);",
                  "`diffred.bookcache` empties that cache whenever the library, the data, the citation files,",
                  "the figure numbering, the packages, the settings or the figure files changed, and then every",
                  "chapter runs again on the feature and result cache: that is the re-executed row.", ""]
        if b.get("chapters"):
            cols = [c for c in ("cold", "warm", "reexecuted") if any(t.get(c) is not None for t in b["chapters"].values())]
            lines += ["Execution time per chapter, as MyST-NB reports it (seconds; 0 = served from the execution "
                      "cache):", "", "| chapter | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
            lines += [f"| {c} | " + " | ".join(f"{t[k]:.0f}" if t.get(k) is not None else "-" for k in cols) + " |"
                      for c, t in b["chapters"].items()]
            lines += [""]
    m = pd.DataFrame(probes["methods"])
    ref = m.set_index("method").seconds
    n = "all" if probes["n_train"] is None else probes["n_train"]
    lines += ["## Probes: the whole (fraction x seed) grid on cached features", "",
              f"Measured {probes['date']} on {probes['machine']}; EfficientNet-Lite0 (ImageNet) features of",
              f"Fashion-MNIST at 112 px, {n} training images (10% held out for validation), 10,000 test",
              f"images, the paper's 15 fractions x seeds {probes['seeds']}. Each method ran in its own process",
              "(peak memory = that process's maximum resident set, features included), one after another.", "",
              "| method | seconds | x faster than scikit-learn | peak memory (MB) | note |", "|---|---:|---:|---:|---|"]
    sk = ref.get("scikit-learn per subset")
    for r in m.itertuples():
        speed = f"{sk / r.seconds:.0f}x" if sk else ""
        lines.append(f"| {r.method} | {r.seconds:.1f} | {speed} | {r.peak_mb:.0f} | {r.note} |")
    per = pd.DataFrame(probes["per"]).groupby(["method", "fraction"]).accuracy.mean().unstack(0)
    lines += ["", "Mean test accuracy per fraction (over seeds):", "",
              per.round(4).to_markdown(), ""]
    if sk:
        gap = (per.drop(columns="scikit-learn per subset").sub(per["scikit-learn per subset"], axis=0) * 100)
        lines += ["Difference to scikit-learn, in accuracy points (largest absolute value per method):", ""]
        for col in gap.columns:
            lines.append(f"- {col}: {gap[col].abs().max():.2f} points")
        lines.append("")
    ex = pd.DataFrame(probes.get("extraction", []))
    if not ex.empty:
        base = ex.iloc[0].images_per_second
        ex["speed-up"] = ex.images_per_second / base
        lines += ["## Torch's two CPU precisions (`bench_probes.py`)", "",
                  f"Measured {probes.get('date', '?')}, with the probe rows above. The torch runtime only "
                  "(`runtime=\"torch\"`, the default before OpenVINO;",
                  "the next section compares every runtime). Same images (Fashion-MNIST at 112 px), same model;",
                  "probe accuracy from the batched probe on the features each precision produced (subset seeds 1-3).", "",
                  ex.round(4).to_markdown(index=False), ""]
    lines += extraction_runtimes()
    sw = HERE / "sweep.json"
    if sw.exists():
        w = json.loads(sw.read_text())
        lines += ["## Sweeps: `diffred sweep` on a Dask LocalCluster against a sequential run", "",
                  f"Measured {w['date']} on {w['machine']} (`bench_sweep.py`): the grid `{w['grid']}` at the "
                  f"{w['scale']} scale ({w['jobs']} probe runs), each run from an empty cache, one after the other.", "",
                  "| run | seconds | ratio to sequential |", "|---|---:|---:|",
                  f"| sequential, one process | {w['sequential_seconds']:.1f} | 1.00 |",
                  f"| `diffred sweep`, LocalCluster with {w['workers']} workers | {w['sweep_seconds']:.1f} | "
                  f"{w['sweep_seconds'] / w['sequential_seconds']:.2f} |", "",
                  "The sweep's time includes starting the cluster and importing torch in every worker; on a",
                  "machine whose cores one process already keeps busy (torch's threads), spreading the grid over",
                  "processes does not pay. Sweeps are for more cores, more GPUs and more machines than one.", "",
                  f"Largest difference in any probe accuracy between the two: {w['max_accuracy_difference_points']:.2f} "
                  "points (the runs use different thread counts per process, and floating-point sums depend on it; "
                  "with equal thread counts the results are identical, as `tests/test_sweep.py` checks).", ""]
    cpu_ips = default_images_per_second() or (float(ex.images_per_second.max()) if not ex.empty else None)
    batched = ref.get("batched logistic")
    lines += ["## CPU and GPU side by side", "",
              "| device | feature extraction, Lite0 at 112 px (images/s) | probe grid, batched logistic (s) |", "|---|---:|---:|",
              f"| CPU ({probes['machine']}) | {cpu_ips:.0f} | {batched:.1f} |" if cpu_ips and batched else
              "| CPU | see above | see above |",
              "| GPU | not yet measured | not yet measured |", "",
              "No GPU was lent to the sessions that wrote these numbers. On a machine with one, "
              "`bench_probes.py` measures the same rows there (the library picks CUDA when present).", ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print((HERE / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()

"""A grid through `diffred sweep` (Dask LocalCluster) against the same grid run sequentially.

    .venv/bin/python benchmarks/bench_sweep.py [--grid data/grids/default.yaml] [--scale smoke]

Both runs start from an empty cache (features are extracted in each), one after the other on
this machine, each in its own process: the sequential run uses every core in one process, the
sweep one worker process per core (``--workers``) with an even share of the cores each.
Writes ``benchmarks/sweep.json``; ``report.py`` turns it into a table in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def curves(cache: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_csv(p) for p in sorted((cache / "results").glob("curve_*.csv"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default=str(REPO / "data/grids/default.yaml"))
    ap.add_argument("--scale", default="smoke", choices=["smoke", "default"])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    env = {**os.environ}
    env.pop("DIFFRED_SCALE", None)
    if args.scale == "smoke":
        env["DIFFRED_SCALE"] = "smoke"
    seq_cache, dask_cache = (Path(tempfile.mkdtemp(prefix=f"diffred-sweep-{k}-")) for k in ("seq", "dask"))
    code = f"from diffred import sweep; sweep.run_sequential(sweep.load_grid({args.grid!r}))"
    t_seq = timed([sys.executable, "-c", code], {**env, "DIFFRED_CACHE": str(seq_cache)})
    diffred = str(Path(sys.executable).parent / "diffred")
    t_dask = timed([diffred, "sweep", args.grid, "--workers", str(args.workers), "--quiet"],
                   {**env, "DIFFRED_CACHE": str(dask_cache)})
    a, b = curves(seq_cache), curves(dask_cache)
    assert a.keys() == b.keys(), "the two runs produced different cache entries"
    gap = max(float((a[k].accuracy - b[k].accuracy).abs().max()) for k in a)
    os.environ.pop("DIFFRED_SCALE", None)
    os.environ.update({"DIFFRED_SCALE": "smoke"} if args.scale == "smoke" else {})
    from diffred.sweep import load_grid  # the job count at the scale that ran
    result = {"date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "grid": Path(args.grid).name,
              "scale": args.scale, "jobs": len(load_grid(args.grid)), "workers": args.workers,
              "sequential_seconds": round(t_seq, 1), "sweep_seconds": round(t_dask, 1),
              "max_accuracy_difference_points": round(100 * gap, 2)}
    (REPO / "benchmarks" / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

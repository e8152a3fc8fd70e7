"""Book build times: from a cold cache and with warm caches, at the published default scale.

    .venv/bin/python benchmarks/bench_build.py [--cache /tmp/diffred-cold]

Runs ``jupyter-book build -W -n --keep-going --all`` three times into one temporary folder
and writes ``benchmarks/build.json``:

1. cold: an empty ``DIFFRED_CACHE`` and no execution cache; every chapter executes and
   extracts its features;
2. warm: the same command again, nothing changed; the execution cache (jupyter-cache,
   kept honest by ``diffred.bookcache``) serves every chapter;
3. re-executed: the execution cache emptied (as any change to ``diffred/`` or ``data/``
   does), ``DIFFRED_CACHE`` warm; every chapter executes again and reads its features and
   probe results from the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


EXECUTED = re.compile(r"chapters/(\w+)\.md: Executed notebook in ([\d.]+) seconds")
CACHED = re.compile(r"chapters/(\w+)\.md: Using cached notebook")


def build(cache: Path, out: Path) -> tuple[float, dict]:
    """Seconds for one build, and the seconds MyST-NB reports per executed chapter."""
    env = {**os.environ, "DIFFRED_CACHE": str(cache)}
    env.pop("DIFFRED_SCALE", None)
    jb = Path(sys.executable).parent / "jupyter-book"
    t0 = time.perf_counter()
    proc = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "--all", "--path-output", str(out), str(REPO)],
                          env=env, capture_output=True, text=True)
    sec = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"book build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    log = proc.stdout + proc.stderr
    chapters = {name: float(t) for name, t in EXECUTED.findall(log)}
    chapters.update({name: 0.0 for name in CACHED.findall(log)})
    return sec, chapters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="diffred-cold-"))
    out = Path(tempfile.mkdtemp(prefix="diffred-book-"))
    shutil.rmtree(cache, ignore_errors=True)
    cold, cold_chapters = build(cache, out)
    warm, warm_chapters = build(cache, out)
    shutil.rmtree(out / "_build" / ".jupyter_cache")
    rerun, rerun_chapters = build(cache, out)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "load_average_end": round(os.getloadavg()[0], 2),
              "cold_seconds": round(cold, 1), "warm_seconds": round(warm, 1), "reexecuted_seconds": round(rerun, 1),
              "chapters": {c: {"cold": cold_chapters.get(c), "warm": warm_chapters.get(c),
                               "reexecuted": rerun_chapters.get(c)} for c in cold_chapters}}
    (REPO / "benchmarks" / "build.json").write_text(json.dumps(result, indent=1))
    print(result)


if __name__ == "__main__":
    main()

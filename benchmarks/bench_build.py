"""Book build times: from a cold cache and with warm caches, at the published default scale.

    .venv/bin/python benchmarks/bench_build.py [--cache /tmp/diffred-cold]

Runs ``jupyter-book build -W -n --keep-going --all`` twice into a temporary folder, the first
time with an empty ``DIFFRED_CACHE``, the second with the cache the first one filled, and
writes ``benchmarks/build.json``.
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
    chapters = {name: float(t) for name, t in EXECUTED.findall(proc.stdout + proc.stderr)}
    return sec, chapters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=None)
    ap.add_argument("--warm-only", action="store_true",
                    help="keep --cache, build once to fill it, then time a warm build; keep the recorded cold time")
    args = ap.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="diffred-cold-"))
    out = Path(tempfile.mkdtemp(prefix="diffred-book-"))
    path = REPO / "benchmarks" / "build.json"
    if args.warm_only:
        build(cache, out)
        warm, _ = build(cache, out)
        result = json.loads(path.read_text())
        result.update({"warm_seconds": round(warm, 1), "warm_date": time.strftime("%Y-%m-%d %H:%M")})
        path.write_text(json.dumps(result, indent=1))
        print(result)
        return
    shutil.rmtree(cache, ignore_errors=True)
    cold, cold_chapters = build(cache, out)
    warm, warm_chapters = build(cache, out)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "cold_seconds": round(cold, 1), "warm_seconds": round(warm, 1),
              "chapters": {c: {"cold": cold_chapters.get(c), "warm": warm_chapters.get(c)} for c in cold_chapters}}
    path.write_text(json.dumps(result, indent=1))
    print(result)


if __name__ == "__main__":
    main()

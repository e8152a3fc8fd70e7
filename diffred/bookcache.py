"""Sphinx extension: Jupyter Book's execution cache, kept honest.

The book executes its chapters in MyST-NB's ``cache`` mode: an executed notebook is stored
in jupyter-cache (``<build>/.jupyter_cache``) and reused while the notebook's code cells
are unchanged, so a second build with nothing changed executes nothing, and an edit to a
chapter's prose or to one chapter's code re-executes at most that chapter.

jupyter-cache keys a notebook on its code cells only. A chapter's outputs also depend on
things outside its cells: the library (``diffred/``), the committed data and models
(``data/``), the citation files the cite blocks are made from, the figure numbering (the
figure directives of every page, in ``_toc.yml`` order), the installed packages, the
``DIFFRED_*`` settings, the system datasets, and the figure files the chapters wrote.
This extension hashes all of them (:func:`inputs_digest`) when the builder starts and
empties the execution cache when the hash differs from the one stored by the last
successful build, so every chapter runs again. The stored hash is written when a build
finishes without error, with the figure files as they are then.

Listed in ``_config.yml`` under ``sphinx.extra_extensions``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from .datasets import FASHION_DIR
from .figures import figure_counts, figure_dir
from .store import FEATURE_PACKAGES, atomic_write_text, cache_dir, json_digest, sha256_file

STAMP = "diffred-inputs.json"
#: Files and folders (relative to the project root) whose content a chapter's outputs depend on.
INPUT_PATHS = ("diffred", "data", "pyproject.toml", "CITATION.cff", "references.bib", "_toc.yml", "_config.yml")
#: Settings that change what a chapter computes or writes.
ENV_VARS = ("DIFFRED_SCALE", "DIFFRED_DEVICE", "DIFFRED_CACHE", "DIFFRED_FIGURE_DIR", "DIFFRED_FIGURE_URL",
            "DIFFRED_ZOO_DIR", "CUDA_VISIBLE_DEVICES")
PACKAGES = tuple(dict.fromkeys(("torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "pandas",
                                 "matplotlib", "seaborn", "myst-nb", "jupyter-book", "safetensors",
                                 *FEATURE_PACKAGES)))
SUFFIXES_SKIPPED = (".pyc",)


def _files_digest(base: Path, path: Path) -> str:
    """sha256 over the names (relative to ``base``) and contents of the file ``path`` or of
    every file under the folder ``path`` (nothing when it does not exist)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    h = hashlib.sha256()
    for f in files:
        if f.suffix in SUFFIXES_SKIPPED or "__pycache__" in f.parts:
            continue
        h.update(f"{f.relative_to(base)}\0".encode())
        h.update(bytes.fromhex(sha256_file(f)))
    return h.hexdigest()


def settings() -> dict:
    """The environment variables that change what a chapter computes, and the cache folder."""
    env = {k: os.environ.get(k) for k in ENV_VARS}
    env["resolved cache"] = str(cache_dir().resolve())
    return env


def inputs_digest(root: Path) -> dict:
    """Everything outside a chapter's code cells that its outputs depend on, hashed per part
    (so a mismatch can be reported by name)."""

    parts = {rel: _files_digest(root, root / rel) for rel in INPUT_PATHS}
    parts["figure numbering"] = json_digest(figure_counts(root))
    parts["settings"] = json_digest(settings())
    versions = {"python": sys.version}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    parts["packages"] = json_digest(versions)
    system = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(FASHION_DIR.glob("*"))] \
        if FASHION_DIR.is_dir() else []
    parts["system datasets"] = json_digest(system)
    parts["figure files"] = _files_digest(figure_dir(), figure_dir())
    return parts


def stale_parts(cache: Path, root: Path) -> list[str]:
    """The inputs that changed since the last successful build stored its hash in ``cache``
    (every part when there is no usable record)."""
    now = inputs_digest(root)
    try:
        before = json.loads((cache / STAMP).read_text())
    except (OSError, ValueError):
        return sorted(now)
    if not isinstance(before, dict):
        return sorted(now)
    changed = sorted(k for k in now if before.get(k) != now[k])
    if "settings" in changed and isinstance(before.get("settings values"), dict):
        old, new = before["settings values"], settings()
        names = sorted(k for k in new if old.get(k) != new[k])
        changed[changed.index("settings")] = f"settings ({', '.join(names)})" if names else "settings"
    return changed


def invalidate(cache: Path, root: Path) -> list[str]:
    """Empty the execution cache ``cache`` when any input changed; returns what changed."""
    changed = stale_parts(cache, root)
    if changed and cache.exists():
        shutil.rmtree(cache)
    return changed


def record(cache: Path, root: Path) -> None:
    """Store the inputs' hash beside the execution cache (after a successful build)."""
    cache.mkdir(parents=True, exist_ok=True)
    record = {**inputs_digest(root), "settings values": settings()}  # the values, to name what changed
    atomic_write_text(cache / STAMP, json.dumps(record, indent=1, sort_keys=True))


def execution_cache_path(app) -> Path | None:
    """MyST-NB's execution cache folder for this build, or None when not in cache mode."""
    cfg = getattr(getattr(app, "env", None), "mystnb_config", None)
    if cfg is None or cfg.execution_mode != "cache":
        return None
    return Path(cfg.execution_cache_path)


def _on_builder_inited(app) -> None:
    from sphinx.util import logging
    cache = execution_cache_path(app)
    if cache is None:
        return
    changed = invalidate(cache, Path(app.srcdir))
    log = logging.getLogger(__name__)
    if changed:
        log.info(f"diffred: execution cache emptied, every chapter runs (changed: {', '.join(changed)})")
    else:
        log.info("diffred: inputs unchanged since the last build; chapters with unchanged code are reused")


def _on_build_finished(app, exception) -> None:
    cache = execution_cache_path(app)
    if cache is not None and exception is None and not getattr(app, "_warncount", 0):
        record(cache, Path(app.srcdir))


def setup(app):
    # after MyST-NB's own builder-inited handler, which resolves the cache path
    app.connect("builder-inited", _on_builder_inited, priority=900)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

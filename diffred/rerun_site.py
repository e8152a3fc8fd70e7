"""The page of a re-run chapter (``diffred run``), made by the book's own machinery.

A chapter executed by papermill is a notebook whose glued numbers, cite blocks and math only
Jupyter Book / MyST-NB can render. :func:`build_site` therefore builds a one-page Jupyter
Book from the executed notebook, with the book's ``_config.yml`` (its extensions, local
MathJax, style sheet, bibliography and stderr removal) and ``execute_notebooks: off``: the
page shows what the run computed, exactly as the book would. Code cells are folded
(``hide-input``), machine paths are scrubbed, and the site lands in ``<results>/site/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

from .downloads import scrub_paths
from .store import PROJECT_ROOT, atomic_write_text

#: Project files the chapters link to or read while building (bibliography, downloads).
LINKED_FILES = ("references.bib", "README.md", "CITATION.cff", "data")
#: Book extensions the one-page site leaves out: the execution-cache guard (nothing runs).
SKIPPED_EXTENSIONS = ("diffred.bookcache",)
#: Cell tags that already hide a cell's input; other code cells get ``hide-input``.
HIDING_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
#: Wall-clock limit of the one-page build (seconds).
BUILD_TIMEOUT_S = 600


def site_config(book_root: Path = PROJECT_ROOT) -> dict:
    """The book's ``_config.yml`` for a one-page site of an executed notebook: nothing is
    executed, the static folders are the book's own (absolute paths), the bibliography is
    the book's."""
    config = yaml.safe_load((Path(book_root) / "_config.yml").read_text())
    config["execute"] = {**config.get("execute", {}), "execute_notebooks": "off"}
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["extensions"] = [e for e in sphinx.get("extensions", []) if e not in SKIPPED_EXTENSIONS]
    static = [Path(book_root) / p for p in sphinx.get("html_static_path", []) if p != "_figures"]
    missing = [str(p) for p in static if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"the book's static folders {missing} are missing; run `make setup` "
                                "(it vendors MathJax into _mathjax/)")
    sphinx["html_static_path"] = [str(p) for p in static]
    return config


def fold_code(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every code cell not already hidden or removed gets the ``hide-input`` tag (folded,
    one click to open), and its stderr outputs are dropped."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if not HIDING_TAGS & set(tags):
            tags.append("hide-input")
        cell.outputs = [o for o in cell.get("outputs", [])
                        if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return nb


def write_book(notebook: Path, folder: Path, book_root: Path = PROJECT_ROOT) -> str:
    """A one-page Jupyter Book in ``folder`` around ``notebook`` (its page is
    ``chapters/<stem>``); returns that docname."""
    docname = f"chapters/{Path(notebook).stem}"
    nb = fold_code(nbformat.read(notebook, as_version=4))
    (folder / "chapters").mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{docname}.ipynb", scrub_paths(nbformat.writes(nb)))
    atomic_write_text(folder / "_config.yml", yaml.safe_dump(site_config(book_root), sort_keys=False))
    atomic_write_text(folder / "_toc.yml", yaml.safe_dump({"format": "jb-book", "root": docname}))
    for name in LINKED_FILES:
        if (Path(book_root) / name).exists():
            os.symlink(Path(book_root) / name, folder / name)
    return docname


def build_site(notebook: Path, figures: Path, site: Path, book_root: Path = PROJECT_ROOT) -> Path:
    """Build the one-page site of ``notebook`` into ``site`` (its figures copied beside the
    page, where the page links them); returns the page's HTML file. A failed build raises a
    RuntimeError with the end of its log."""
    with tempfile.TemporaryDirectory(prefix="diffred-site-") as tmp:
        folder = Path(tmp)
        docname = write_book(Path(notebook), folder, book_root)
        exe = Path(sys.executable).parent / "jupyter-book"
        done = subprocess.run([str(exe), "build", "--quiet", "--path-output", str(folder), str(folder)],
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                              env={**os.environ, "TQDM_DISABLE": "1"})
        html = folder / "_build" / "html"
        if done.returncode != 0 or not (html / f"{docname}.html").is_file():
            log = scrub_paths((done.stdout + done.stderr)[-3000:])
            raise RuntimeError(f"the page of {Path(notebook).name} did not build:\n{log}")
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(html, site)
    if Path(figures).is_dir():
        shutil.copytree(figures, site / Path(docname).parent / "figures", dirs_exist_ok=True)
    return site / f"{docname}.html"


def redirect_page(target: str) -> str:
    """A small HTML page that sends the browser to ``target`` (a relative URL)."""
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={target}"><title>Redirecting</title></head>'
            f'<body><a href="{target}">{target}</a></body></html>\n')

"""The Sphinx extension that offers each executed chapter as a notebook download.

MyST-NB writes the notebook it executed (outputs included) to ``_build/jupyter_execute/
<page>.ipynb``, outside the HTML. sphinx-book-theme lists an ``.ipynb`` entry in a page's
download menu when the page context holds ``ipynb_source``, but sets it only when a launch
button (Binder, Colab, ...) is configured, which this offline book has none of. This
extension copies the executed notebook to ``_sources/<page>.ipynb`` (beside the ``.md`` the
menu already offers) and sets ``ipynb_source`` before the theme builds its menu.

MyST-NB 1.x writes that file from the notebook it *parsed*: when a page's outputs come from
the execution cache (a build with nothing changed), the file holds the cells without their
outputs. The outputs are then taken from the execution cache itself (:func:`with_cached_outputs`),
the same merge MyST-NB makes for the page.

Before copying, stderr outputs are dropped (as on the page) and text that names where the build machine keeps its files (the cache folder,
the project folder, the home folder) is written as ``$DIFFRED_CACHE``, ``<project>`` and
``~``: a download must not show them (:func:`scrub_paths`).
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path

import nbformat

from .bookcache import execution_cache_path
from .store import PROJECT_ROOT, atomic_write_text, cache_dir

#: The folder MyST-NB writes executed notebooks to, beside the HTML output folder.
EXECUTED_FOLDER = "jupyter_execute"
#: sphinx-book-theme builds its download menu at priority 501; this runs just before.
PRIORITY = 500


def machine_paths() -> dict[str, str]:
    """Each spelling of this machine's folders a page could show, longest first, with what
    replaces it."""
    spellings: dict[str, str] = {}
    for folder, word in ((cache_dir(), "$DIFFRED_CACHE"), (PROJECT_ROOT, "<project>"),
                         (Path.home(), "~")):
        for spelling in {str(folder), str(Path(folder).resolve())}:
            spellings.setdefault(spelling, word)
    return dict(sorted(spellings.items(), key=lambda kv: len(kv[0]), reverse=True))


def scrub_paths(text: str, paths: dict[str, str] | None = None) -> str:
    """``text`` with every machine folder of :func:`machine_paths` replaced by its name."""
    for spelling, word in (paths or machine_paths()).items():
        if spelling not in ("", "/"):
            text = text.replace(spelling, word)
    return text


def executed_notebook(outdir: Path, pagename: str) -> Path | None:
    """The notebook MyST-NB executed for ``pagename``, or None for a plain page."""
    path = Path(outdir).parent / EXECUTED_FOLDER / f"{pagename}.ipynb"
    return path if path.is_file() else None


def without_stderr(nb: dict) -> dict:
    """``nb`` (notebook JSON) without stderr stream outputs: the book's pages drop them
    (``stderr_output: remove``), and progress bars and warnings are not results."""
    for cell in nb.get("cells", []):
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"]
                               if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return nb


def has_outputs(nb: dict) -> bool:
    """Whether any code cell of ``nb`` (notebook JSON) holds an output."""
    return any(cell.get("outputs") for cell in nb.get("cells", []) if cell.get("cell_type") == "code")


def with_cached_outputs(nb: dict, cache: Path | None) -> dict:
    """``nb`` with the outputs jupyter-cache (at ``cache``) holds for its code, when ``nb``
    has none of its own; ``nb`` unchanged when it has outputs, or the cache has no match."""
    if has_outputs(nb) or cache is None or not Path(cache).is_dir():
        return nb
    from jupyter_cache import get_cache  # MyST-NB's own dependency, needed only here

    with suppress(KeyError):  # no executed notebook with this code in the cache
        _, merged = get_cache(str(cache)).merge_match_into_notebook(nbformat.from_dict(nb))
        return json.loads(nbformat.writes(merged))
    return nb


def publish_notebook(source: Path, target: Path, cache: Path | None = None) -> Path:
    """Copy an executed notebook to ``target`` without its stderr outputs and with machine
    paths scrubbed, its outputs taken from the execution cache ``cache`` when the file has
    none; it must be a JSON notebook (a ValueError names the file otherwise)."""
    try:
        nb = json.loads(Path(source).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{source} is not a JSON notebook ({err})") from err
    nb = with_cached_outputs(nb, cache)
    atomic_write_text(Path(target), scrub_paths(json.dumps(without_stderr(nb), indent=1, ensure_ascii=False)))
    return Path(target)


def add_notebook_download(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: publish the page's executed notebook and list it in the menu."""
    if app.builder.format != "html" or context.get("page_source_suffix") == ".ipynb":
        return  # not HTML, or the page's own source (offered by the theme) is the notebook
    source = executed_notebook(Path(app.outdir), pagename)
    if source is None:
        return
    publish_notebook(source, Path(app.outdir) / "_sources" / f"{pagename}.ipynb", execution_cache_path(app))
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("html-page-context", add_notebook_download, priority=PRIORITY)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

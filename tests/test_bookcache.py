"""The book's execution cache: reused when nothing changed, emptied when anything a chapter
depends on changed (diffred.bookcache)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import _tail, book_command, book_env
from diffred import bookcache
from diffred.figures import toc_pages

CHAPTER = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---

# A chapter

Some prose.

```{glue:figure} fig_a
:name: fig-a

A caption.
```
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A small project tree with every kind of input, its own figure folder and cache."""
    root = tmp_path / "project"
    (root / "chapters").mkdir(parents=True)
    (root / "diffred").mkdir()
    (root / "data" / "paper").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n- file: chapters/a\n- file: chapters/b\n")
    (root / "index.md").write_text("# Index\n")
    (root / "chapters" / "a.md").write_text(CHAPTER)
    (root / "chapters" / "b.md").write_text(CHAPTER.replace("fig-a", "fig-b").replace("fig_a", "fig_b"))
    (root / "diffred" / "lib.py").write_text("X = 1\n")
    (root / "data" / "paper" / "claims.csv").write_text("claim,value\n1,0.9\n")
    for name in ("pyproject.toml", "CITATION.cff", "references.bib", "_config.yml"):
        (root / name).write_text(f"# {name}\n")
    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "fig-a.png").write_bytes(b"\x89PNG one")
    monkeypatch.setenv("DIFFRED_FIGURE_DIR", str(figs))
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path / "features"))
    for var in ("DIFFRED_SCALE", "DIFFRED_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "build" / ".jupyter_cache"
    cache.mkdir(parents=True)
    (cache / "global.db").write_text("executed notebooks")
    return root, cache, figs


def test_unchanged_inputs_keep_the_cache(project):
    root, cache, _ = project
    bookcache.record(cache, root)
    assert bookcache.stale_parts(cache, root) == []
    (root / "chapters" / "a.md").write_text(CHAPTER.replace("Some prose.", "Other prose."))
    assert bookcache.invalidate(cache, root) == []  # prose: jupyter-cache needs nothing re-run
    assert (cache / "global.db").is_file()


def test_no_record_means_everything_runs(project):
    root, cache, _ = project
    changed = bookcache.invalidate(cache, root)
    assert "diffred" in changed and "data" in changed
    assert not cache.exists()


@pytest.mark.parametrize("change, part", [
    (lambda root, figs: (root / "diffred" / "lib.py").write_text("X = 2\n"), "diffred"),
    (lambda root, figs: (root / "data" / "paper" / "claims.csv").write_text("claim,value\n1,0.8\n"), "data"),
    (lambda root, figs: (root / "data" / "models").mkdir(), None),  # an empty folder holds no input
    (lambda root, figs: (root / "CITATION.cff").write_text("version: 2\n"), "CITATION.cff"),
    (lambda root, figs: (root / "references.bib").write_text("@article{x}\n"), "references.bib"),
    (lambda root, figs: (root / "chapters" / "a.md").write_text(CHAPTER + "\n```{glue:figure} fig_c\n```\n"),
     "figure numbering"),
    (lambda root, figs: (figs / "fig-a.png").write_bytes(b"\x89PNG two"), "figure files"),
    (lambda root, figs: (figs / "fig-a.png").unlink(), "figure files"),
    ("DIFFRED_SCALE", "settings (DIFFRED_SCALE)"),
    ("DIFFRED_DEVICE", "settings (DIFFRED_DEVICE)"),
])
def test_any_outside_input_empties_the_cache(project, monkeypatch, change, part):
    root, cache, figs = project
    bookcache.record(cache, root)
    if isinstance(change, str):
        monkeypatch.setenv(change, "smoke" if change == "DIFFRED_SCALE" else "cpu")  # undone after the test
    else:
        change(root, figs)
    changed = bookcache.invalidate(cache, root)
    if part is None:
        assert changed == [] and cache.exists()
    else:
        assert changed == [part]
        assert not cache.exists()


def test_damaged_record_means_everything_runs(project):
    root, cache, _ = project
    bookcache.record(cache, root)
    (cache / bookcache.STAMP).write_text("{not json")
    assert set(bookcache.stale_parts(cache, root)) == set(bookcache.inputs_digest(root))
    (cache / bookcache.STAMP).write_text("[1, 2]")
    assert set(bookcache.stale_parts(cache, root)) == set(bookcache.inputs_digest(root))


def test_second_build_executes_nothing(built_book):
    """The suite's own book build recorded its inputs; building again with nothing changed
    reuses every chapter, and the pages still carry their outputs."""
    if os.environ.get("DIFFRED_BUILT_BOOK"):
        pytest.skip("testing an existing build; no build folder of this session to rebuild")
    out = built_book.parent.parent
    env = book_env()
    proc = subprocess.run(book_command(out), env=env, cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, _tail(log)
    root = Path(__file__).resolve().parents[1]
    chapters = [page for page in toc_pages()  # the pages that are notebooks (not the index, sources, ...)
                if "{code-cell}" in (root / f"{page}.md").read_text()]
    said = [line for line in log.splitlines() if "diffred:" in line]
    assert said and "inputs unchanged since the last build" in said[0], said or _tail(log)
    assert re.findall(r"Executed notebook", log) == []
    assert len(re.findall(r"Using cached notebook", log)) == len(chapters)
    page = (built_book / "chapters" / "02_random_subsets.html").read_text()
    assert "fig-subset-curves" in page and ".png" in page

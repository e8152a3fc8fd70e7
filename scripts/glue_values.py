#!/usr/bin/env python3
"""Write every glued value of a built book to JSON: the glue ledger.

Reads the executed notebooks MyST-NB leaves under ``<build>/jupyter_execute`` (or any folder
of executed ``.ipynb`` files) and, for every
output that ``myst_nb.glue`` stored (its metadata names it under ``scrapbook``), records the
page, the key and the value as the book shows it (the ``text/plain`` form; figures and other
rich outputs are recorded by their MIME types, since their bytes carry timestamps and fonts).

    .venv/bin/python scripts/glue_values.py [_build] > ledger.json
    .venv/bin/python scripts/glue_values.py --diff before.json after.json

``--diff`` prints the keys that appear in only one ledger and the values that differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _value(out: dict) -> str:
    """A glued output as the book shows it: its text/plain form, or its MIME types."""
    book = out.get("metadata", {}).get("scrapbook", {})
    # a notebook executed outside MyST-NB (jupytext, papermill) keeps the glue under
    # "application/papermill.record/<mime>": read it as "<mime>"
    prefix = book.get("mime_prefix", "")
    data = {k.removeprefix(prefix): v for k, v in out.get("data", {}).items()}
    if "text/plain" in data and len(data) == 1:
        return "".join(data["text/plain"])
    return "<" + ", ".join(sorted(data)) + ">"


def _notebook_outputs(nb_path: Path):
    """(key, output) for every glued output of one executed notebook: from the
    ``<name>.glue.json`` MyST-NB writes beside it when present, else from its cells."""
    side = nb_path.with_suffix(".glue.json")
    if side.is_file():
        yield from json.loads(side.read_text()).items()
        return
    for cell in json.loads(nb_path.read_text()).get("cells", []):
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                yield name, out


def ledger(build: Path) -> list[dict]:
    """Every glued value under ``build/jupyter_execute`` (or ``build``), sorted by page and key."""
    base = build / "jupyter_execute" if (build / "jupyter_execute").is_dir() else build
    rows = [{"page": str(nb.relative_to(base).with_suffix("")), "key": key, "value": _value(out)}
            for nb in sorted(base.rglob("*.ipynb")) for key, out in _notebook_outputs(nb)]
    return sorted(rows, key=lambda r: (r["page"], r["key"]))


def diff(before: list[dict], after: list[dict]) -> list[str]:
    """Lines describing keys only in one ledger and values that differ."""
    a = {(r["page"], r["key"]): r["value"] for r in before}
    b = {(r["page"], r["key"]): r["value"] for r in after}
    lines = [f"- {p} {k}" for p, k in sorted(a.keys() - b.keys())]
    lines += [f"+ {p} {k}" for p, k in sorted(b.keys() - a.keys())]
    lines += [f"~ {p} {k}: {a[p, k]!r} -> {b[p, k]!r}" for p, k in sorted(a.keys() & b.keys()) if a[p, k] != b[p, k]]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default="_build", help="the book's build folder (default: _build)")
    parser.add_argument("--diff", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two ledgers written by this script")
    args = parser.parse_args(argv)
    if args.diff:
        before, after = (json.loads(Path(p).read_text()) for p in args.diff)
        lines = diff(before, after)
        print("\n".join(lines) if lines else "identical")
        return 0
    build = Path(args.build)
    if not build.is_dir():
        sys.exit(f"glue_values: {build} does not exist; build the book first (make book), or give a folder "
                 "of executed notebooks")
    json.dump(ledger(build), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

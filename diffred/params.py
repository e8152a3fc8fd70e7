"""A chapter's parameters on the command line: found, typed and checked before a kernel starts.

* :func:`chapter_path` — a chapter by file name, stem or number;
* :func:`chapter_parameters` — the literal defaults of its ``parameters`` cell, and
  :func:`parameter_types` — the type of those whose default is ``None`` (from
  :data:`NONE_DEFAULT_TYPES`, else from the parameter's comment);
* :func:`parse_parameters` — ``key=value`` strings to typed values, one-line errors;
* :func:`check_inputs` — inputs that would fail inside the kernel, caught before it starts.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from .config import PROJECT_ROOT, check_fractions
from .datasets import check_images, load_dataset
from .models import CHECKPOINT_SUFFIXES, load_encoder

#: The type of chapter parameters whose default is ``None`` (``None`` stays allowed), with a
#: word for the error message.
NONE_DEFAULT_TYPES = {"n_train": (int, "a number of images"), "n_test": (int, "a number of images"),
                      "arch": (str, "a timm architecture name"), "models": (list, "a list of model names")}


def chapter_path(name: str) -> Path:
    """A chapter by file name, stem, or number prefix (``02``)."""
    chapters = sorted((PROJECT_ROOT / "chapters").glob("[0-9]*.md"))
    for p in chapters:
        if name in (p.name, p.stem) or p.stem.split("_")[0] == name or p.stem.split("_", 1)[-1] == name:
            return p
    raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(p.stem for p in chapters)}")


def chapter_parameters(path: Path) -> dict:
    """The literal defaults of a chapter's ``parameters`` cell."""
    import jupytext
    nb = jupytext.read(path)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            out = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    raise ValueError(f"{path} has no cell tagged 'parameters'")


def _comments(source: str) -> dict:
    """``{name: comment}`` for ``name = value  # comment`` lines of a cell."""
    out = {}
    with_comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            with_comments[tok.start[0]] = tok.string.lstrip("# ").strip()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.lineno in with_comments:
            out[node.targets[0].id] = with_comments[node.lineno]
    return out


def _type_from_comment(comment: str):
    if re.search(r"\[|\blist\b|\bevery\b", comment):
        return list, "a list"
    if re.search(r"['\"]", comment) or re.search(r"\bname\b|\bpath\b", comment):
        return str, "a name"
    if re.search(r"\d|\bnumber\b|\bimages\b", comment):
        return int, "a number"
    return None


def parameter_types(path: Path, defaults: dict) -> dict:
    """The expected type (and a word for it) of each parameter whose default is ``None``:
    from :data:`NONE_DEFAULT_TYPES`, else inferred from the parameter's comment; parameters
    with neither are left unchecked."""
    import jupytext
    source = next((c.source for c in jupytext.read(path).cells if "parameters" in c.metadata.get("tags", [])), "")
    comments = _comments(source)
    out = {}
    for key, default in defaults.items():
        if default is None:
            kind = NONE_DEFAULT_TYPES.get(key) or _type_from_comment(comments.get(key, ""))
            if kind:
                out[key] = kind
    return out


def _check_none_default(key: str, text: str, value, kind) -> None:
    typ, word = kind
    ok = value is None or (isinstance(value, typ) and not isinstance(value, bool))
    if not ok:
        example = {int: "5000", str: "resnet50", list: "[efficientnet_lite0]"}.get(typ, "...")
        raise ValueError(f"parameter {key}={text!r} should be {word} ({typ.__name__}) or None, "
                         f"e.g. -p {key}={example}")


def parse_parameters(pairs: list[str], defaults: dict, types: dict | None = None) -> dict:
    """``key=value`` strings -> typed values, checked against the chapter's parameters.

    Values are Python literals (``0.2``, ``[1, 2]``, ``None``); anything else is a string
    (a model name, a path). A bare string given for a list parameter becomes a one-item list
    (``-p datasets=/data/birds``). ``types`` gives the type of parameters whose default is
    ``None`` (:func:`parameter_types`)."""
    out = {}
    types = types or {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"parameter {pair!r} must look like key=value")
        key, text = pair.split("=", 1)
        if key not in defaults:
            raise ValueError(f"unknown parameter {key!r}; this chapter takes: {', '.join(defaults)}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare string such as a model name or a path
        default = defaults[key]
        if (isinstance(default, list) or types.get(key, (None,))[0] is list) and isinstance(value, (str, tuple)):
            value = [value] if isinstance(value, str) else list(value)
        if default is None and key in types:
            _check_none_default(key, text, value, types[key])
        elif default is not None and not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int)) and not (
                isinstance(default, int) and value is None):
            raise ValueError(f"parameter {key}={text!r} should be a {type(default).__name__} "
                             f"like the default {default!r}")
        out[key] = value
    return out


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_inputs(params: dict) -> None:
    """Fail before a kernel starts on inputs that would fail inside it: fractions out of
    range, a checkpoint that is not one (or does not fit its architecture), an image folder
    with fewer than two classes or unreadable images."""
    if "fractions" in params:
        check_fractions(params["fractions"])
    for key in ("model", "models"):
        for m in _as_list(params.get(key, [])):
            if isinstance(m, str) and (Path(m).suffix in CHECKPOINT_SUFFIXES or "/" in m):
                load_encoder(m, arch=params.get("arch"))  # missing file, not a checkpoint, mismatch
    for key in ("dataset", "datasets", "compare_dataset"):
        for d in _as_list(params.get(key, [])):
            if isinstance(d, str) and ("/" in d or Path(d).expanduser().is_dir()):
                if not Path(d).expanduser().is_dir():
                    raise FileNotFoundError(f"dataset folder {d} does not exist")
                for split in ("train", "test"):
                    check_images(load_dataset(d, split).images)



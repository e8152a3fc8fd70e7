"""The package versions a build used, against the lock file it was meant to use.

``requirements.lock`` (written by ``make lock`` from ``pyproject.toml``) pins every package
the book installs, with hashes; ``make setup`` installs from it. :func:`table` is what the
Setup chapter prints: one row per package that ``pyproject.toml`` names (the packages the
book imports, directly or as tools: its direct dependencies and the test extra), with the
version the lock pins and the version this build actually ran with.

The tests use :func:`locked_versions`, :func:`requirements` and :func:`mismatches` to check
that ``pyproject.toml`` and the lock agree.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pandas as pd
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .store import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements.lock"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
#: A pin in a pip-compile lock file: ``name==version`` at the start of a line (extras
#: stripped, hashes on the continuation lines).
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def locked_versions(path: Path | None = None) -> dict[str, str]:
    """Every pin of the lock file: canonical package name -> exact version."""
    path = Path(path or LOCK)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make lock` to write it from pyproject.toml")
    return {canonicalize_name(m.group(1)): m.group(2) for m in PIN.finditer(path.read_text())}


def requirements(path: Path | None = None, extras: tuple[str, ...] = ("test", "bench")) -> list[Requirement]:
    """The dependencies ``pyproject.toml`` declares, with those of ``extras`` (by default the
    ones ``make lock`` locks)."""
    project = tomllib.loads(Path(path or PYPROJECT).read_text())["project"]
    specs = list(project.get("dependencies", []))
    for extra in extras:
        specs += project.get("optional-dependencies", {}).get(extra, [])
    return [Requirement(s) for s in specs]


def mismatches(pyproject: Path | None = None, lock: Path | None = None) -> list[str]:
    """What keeps the lock from satisfying ``pyproject.toml``: a dependency the lock lacks,
    or one whose locked version is outside its specifier. Empty when they agree."""
    pins = locked_versions(lock)
    problems = []
    for req in requirements(pyproject):
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name}: in pyproject.toml ({req}) but not in the lock")
        elif not req.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(f"{req.name}: the lock pins {pins[name]}, outside pyproject.toml's {req.specifier}")
    return problems


def locked_python(path: Path | None = None) -> str | None:
    """The Python (major.minor) the lock was resolved for, from pip-compile's header."""
    m = re.search(r"pip-compile with Python (\d+\.\d+)", Path(path or LOCK).read_text())
    return m.group(1) if m else None


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def table(pyproject: Path | None = None, lock: Path | None = None) -> pd.DataFrame:
    """The versions this build used: one row per package ``pyproject.toml`` names (and
    Python), with the locked and the installed version and whether they are the same."""
    pins = locked_versions(lock)
    python = locked_python(lock)
    rows = [{"package": "python", "locked": python, "installed": sys.version.split()[0],
             "as_locked": python is not None and sys.version.startswith(python + ".")}]
    seen = set()
    for req in requirements(pyproject, extras=("test",)):  # not the benchmark-only extra
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        locked, installed = pins.get(name), _installed(name)
        rows.append({"package": name, "locked": locked, "installed": installed,
                     "as_locked": None if locked is None else _same_release(installed, locked)})
    return pd.DataFrame(rows)


def _same_release(installed: str | None, locked: str) -> bool:
    """A local build tag (torch's ``+cu130``) is part of the same release as its pin."""
    return installed is not None and installed.split("+")[0] == locked.split("+")[0]

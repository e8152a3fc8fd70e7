"""The locked environment: ``requirements.lock`` agrees with ``pyproject.toml``, pins every
package exactly with hashes, and is what this environment was installed from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from diffred import versions

REPO = Path(__file__).resolve().parents[1]
#: One requirement block of a pip-compile lock: the pin line and its continuation lines.
BLOCK = re.compile(r"^([A-Za-z0-9][^\s=]*)==\S+(?:[^\n]*\\\n)*[^\n]*", re.M)


def test_lock_and_pyproject_agree():
    """Every dependency of pyproject.toml (and its test and bench extras) is pinned by the lock at a
    version its specifier allows. After editing pyproject.toml's dependencies: `make lock`."""
    problems = versions.mismatches()
    assert not problems, "requirements.lock disagrees with pyproject.toml (run `make lock`):\n" + \
        "\n".join(problems)


def test_every_pin_is_exact_and_hashed():
    text = versions.LOCK.read_text()
    blocks = BLOCK.findall(text)
    pins = versions.locked_versions()
    assert len(pins) > 50, f"only {len(pins)} pins: is {versions.LOCK.name} a full lock?"
    full = {m.group(1).lower(): m.group(0) for m in BLOCK.finditer(text)}
    unhashed = [name for name, block in full.items() if "--hash=sha256:" not in block]
    assert not unhashed, f"pins without a hash: {unhashed}"
    assert len(blocks) == len(pins)
    loose = [line for line in text.splitlines()
             if line and not line.startswith(("#", " ")) and "==" not in line]
    assert not loose, f"lines that pin no exact version: {loose}"


def test_the_lock_names_how_it_was_made():
    head = versions.LOCK.read_text()[:3000]
    assert "make lock" in head and "torch" in head


def test_mismatches_names_a_missing_and_an_unsatisfied_dependency(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.1.0 \\\n    --hash=sha256:00\ntimm==1.0.3 \\\n    --hash=sha256:11\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=2", "timm>=1.1", "Scikit_Learn"]\n')
    problems = versions.mismatches(pyproject, lock)
    assert len(problems) == 2
    assert "timm" in problems[0] and "1.0.3" in problems[0]
    assert "Scikit_Learn" in problems[1] and "not in the lock" in problems[1]
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=2", "timm==1.0.3"]\n')
    assert versions.mismatches(pyproject, lock) == []


def test_a_missing_lock_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make lock"):
        versions.locked_versions(tmp_path / "requirements.lock")


def test_versions_table_lists_what_the_book_imports():
    table = versions.table()
    assert list(table.columns) == ["package", "locked", "installed", "as_locked"]
    names = set(table["package"])
    assert {"python", "torch", "timm", "numpy", "pandas", "scikit-learn", "jupyter-book"} <= names
    torch = table.set_index("package").loc["torch"]
    assert torch["locked"] == "2.14.1" and torch["installed"].startswith("2.14.1")


def test_this_environment_was_installed_from_the_lock():
    """`make setup` installs from the lock: every package pyproject.toml names runs at its
    locked version (a venv installed otherwise fails here; rebuild it with `make setup`)."""
    table = versions.table()
    off = table[table["as_locked"] == False]  # noqa: E712 - None (not locked) is not False
    assert off.empty, "installed versions differ from requirements.lock:\n" + off.to_string(index=False)

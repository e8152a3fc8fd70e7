"""Shared fixtures: the book, built once per test session at smoke scale.

``built_book`` first runs ``diffred sweep data/grids/default.yaml`` on a two-worker Dask
LocalCluster, then executes every chapter listed in ``_toc.yml`` with ``DIFFRED_SCALE=smoke``
(the library shrinks every run) and builds the HTML with the same flags as ``make book``
(``-W -n --keep-going --all``: any warning fails), into a temporary folder so that a
developer's ``_build/`` is left alone. Features are cached in ``$DIFFRED_CACHE`` (default
``<repo>/.cache``) and so reused between sessions.

Set ``DIFFRED_BUILT_BOOK=<path to _build/html>`` to test an existing build instead, e.g.
after ``make book``: ``DIFFRED_BUILT_BOOK=_build/html pytest -m browser``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]

#: The grid swept before the book is built (the chapters then read its results).
SWEEP_GRID = REPO / "data" / "grids" / "default.yaml"
#: Wall-clock limit for one smoke-scale book build (every chapter executed).
BOOK_BUILD_TIMEOUT_S = 3600
#: How much of the build log a failure message quotes.
LOG_TAIL_LINES = 80


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROBLEM = re.compile(r"WARNING|ERROR|Error|Exception|Traceback")


def _tail(text: str, n: int = LOG_TAIL_LINES) -> str:
    """The warnings and errors of a build log, then its last lines."""
    lines = _ANSI.sub("", text).splitlines()
    problems = [line for line in lines if _PROBLEM.search(line)
                and "Kernel is running over TCP" not in line]
    return "\n".join(["--- warnings and errors ---", *problems[:n],
                      "--- end of the log ---", *lines[-n:]])


def _ensure_mathjax() -> None:
    """``_config.yml`` serves MathJax from ``_mathjax/``; fill it if ``make setup`` did not."""
    if (REPO / "_mathjax" / "tex-mml-chtml.js").is_file():
        return
    proc = subprocess.run(
        [str(REPO / "scripts" / "vendor_mathjax.sh")],
        capture_output=True, text=True, cwd=REPO,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/vendor_mathjax.sh failed:\n{proc.stdout}{proc.stderr}")


def _jupyter_book() -> str:
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.is_file():
        pytest.fail(f"jupyter-book is not installed beside {sys.executable}; run `make setup`")
    return str(exe)


def book_env() -> dict:
    """The environment the test suite builds the book in (smoke scale)."""
    env = os.environ.copy()
    env["DIFFRED_SCALE"] = "smoke"
    env.setdefault("DIFFRED_CACHE", str(REPO / ".cache"))
    # Kernels and anything a chapter shells out to come from this environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def book_command(out: Path) -> list[str]:
    """``make book``'s build command, into ``out``."""
    return [_jupyter_book(), "build", "-W", "-n", "--keep-going", "--all", "--path-output", str(out), str(REPO)]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML folder of the book (``.../_build/html``), built once per session."""
    reuse = os.environ.get("DIFFRED_BUILT_BOOK")
    if reuse:
        html = Path(reuse).resolve()
        if not (html / "index.html").is_file():
            pytest.fail(f"DIFFRED_BUILT_BOOK={reuse} holds no index.html; "
                        "point it at a built _build/html, or unset it to build the book")
        return html

    _ensure_mathjax()
    out = tmp_path_factory.mktemp("book")
    env = book_env()
    # The chapters' subset curves come from a sweep of the embedded-default grid on a
    # two-worker Dask LocalCluster; the build then logs every curve it reads from the cache
    # (test_sweep_feeds_the_book checks it read the sweep's results and recomputed none).
    sweep = subprocess.run([str(Path(sys.executable).parent / "diffred"), "sweep", str(SWEEP_GRID),
                            "--workers", "2", "--quiet", "--out", str(out / "sweep.csv")],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=BOOK_BUILD_TIMEOUT_S)
    (out / "sweep.log").write_text(sweep.stdout + sweep.stderr)
    if sweep.returncode != 0:
        pytest.fail(f"diffred sweep {SWEEP_GRID.name} failed:\n{_tail(sweep.stdout + sweep.stderr)}")
    env["DIFFRED_CACHE_LOG"] = str(out / "cache.log")
    cmd = book_command(out)
    log_path = out / "build.log"
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              timeout=BOOK_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        log = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        log_path.write_text(log)
        pytest.fail(f"book build ran past {BOOK_BUILD_TIMEOUT_S} s (log: {log_path}):\n"
                    f"{_tail(log)}")
    log_path.write_text(proc.stdout)
    html = out / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        pytest.fail(f"book build failed with exit code {proc.returncode} "
                    f"(full log: {log_path}):\n{_tail(proc.stdout)}")
    return html


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
#: Schemes that never leave the machine (no request to any host).
INLINE_SCHEMES = {"data", "blob", "about", "file"}


def is_local(url: str) -> bool:
    """Whether a request for ``url`` stays on this machine."""
    parts = urlsplit(url)
    return parts.scheme in INLINE_SCHEMES or parts.hostname in LOCAL_HOSTS


@pytest.fixture(scope="session")
def browser_context():
    """One headless chromium for the session; requests off this machine are aborted."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        # Record, but never wait on, anything off this machine: the tests then fail
        # fast and identically with or without internet access.
        context.route("**/*", lambda r: r.continue_() if is_local(r.request.url) else r.abort())
        yield context
        context.close()
        browser.close()

"""Where results live on disk, and how they get there safely.

Ground floor of the library: it imports nothing else from ``diffred``. It holds

* the cache root (:func:`cache_dir`, ``$DIFFRED_CACHE`` or ``<project>/.cache``);
* atomic writes (:func:`atomic_write_bytes`, :func:`atomic_write_text`: a temporary file
  beside the target, fsync, ``os.replace``), so an interrupted run never leaves half a file;
* hashes (:func:`sha256_file`, :func:`json_digest`: the one way a dict becomes a key);
* names (:func:`safe_name`) and every cache path (:func:`feature_path`, :func:`result_path`);
* the cache log (``$DIFFRED_CACHE_LOG``), which the test suite reads to check that the book
  used what a sweep computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "DIFFRED_CACHE"
CACHE_LOG_ENV = "DIFFRED_CACHE_LOG"


def cache_dir() -> Path:
    """The cache root: ``$DIFFRED_CACHE`` if set, else ``<project>/.cache`` (git-ignored)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / ".cache"
    return Path.home() / ".cache" / "diffred"


def atomic_write_bytes(path: Path, writer) -> None:
    """Call ``writer(fileobj)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_digest(obj) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys; non-JSON values by ``str``): the one
    way a key or spec dict becomes a digest."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def canonical(obj):
    """``obj`` as it reads back from the JSON that :func:`json_digest` hashes."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def safe_name(s: str) -> str:
    """``s`` with every character that is not alphanumeric or ``-_.`` replaced, at most 60 long."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))[-60:]


def feature_path(key: dict, root: Path | None = None) -> Path:
    """The one function that names a feature cache file."""
    root = Path(root) if root is not None else cache_dir()
    stem = f"{safe_name(Path(key['dataset']).name)}_{key['split']}_{key['image_size']}px_{json_digest(key)[:16]}"
    return root / "features" / safe_name(key["model"]) / f"{stem}.npz"


def result_path(kind: str, parts, spec: dict, suffix: str = ".csv", root: Path | None = None) -> Path:
    """The one function that names a result cache file: ``results/<kind>_<parts>_<digest>``,
    ``parts`` readable name pieces, ``spec`` everything that determines the content."""
    root = Path(root) if root is not None else cache_dir()
    name = "_".join([kind] + [safe_name(Path(str(p)).name) for p in parts])
    return root / "results" / f"{name}_{json_digest(spec)[:16]}{suffix}"


def log_cache(event: str, path: Path) -> None:
    """Append ``<event> <path>`` to ``$DIFFRED_CACHE_LOG`` when set."""
    log = os.environ.get(CACHE_LOG_ENV)
    if log:
        with open(log, "a") as fh:  # one short write per line: appends do not interleave
            fh.write(f"{event} {path}\n")

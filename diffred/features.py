"""Feature extraction, once, with a content-keyed on-disk cache.

The paper re-runs the backbone for every probe epoch (about 20,000 probe trainings). Here
the frozen backbone runs once per (model weights, dataset, split, sample, layer, image size,
precision); its penultimate activations are stored and every probe reads them.

Cache files live under ``cache_dir()/features`` and are named by :func:`feature_path` from
the inputs that determine their content: the key (assembled by :func:`diffred.store.feature_key`)
holds what was extracted and the digest of the code and the package versions that extracted
it. Float32 extraction on CUDA runs with TF32 off, so its features are float32's. Each ``.npz`` holds the features, the labels and
its own key; a JSON sidecar holds the key's inputs, the array shapes and the file's sha256.
Writes are atomic (temporary file + ``os.replace``). Extraction proceeds in chunks saved as
they finish, so an interrupted run resumes from the last finished chunk. A cache file that
is truncated, corrupted or holds another key is detected, reported and recomputed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import RunConfig
from .datasets import ImageData, dataset_identity, load_dataset
from .device import resolve_device, resolve_runtime, resolved_precision
from .models import Encoder, encoder_identity, load_encoder
from .store import (
    FEATURE_FORMAT,
    atomic_write_bytes,
    atomic_write_text,
    feature_path,
    json_digest,
    sha256_file,
)
from .store import feature_key as _store_key
from .runtimes import TorchRunner, make_runner

FORMAT_VERSION = FEATURE_FORMAT
CHUNK = 2048


@dataclasses.dataclass
class Features:
    """Cached activations of one split: ``X (n, d)`` float32, ``y (n,)`` int64."""

    X: np.ndarray
    y: np.ndarray
    classes: list[str]
    meta: dict


def feature_key(encoder: Encoder, dataset: str, split: str, n: int | None, data_seed: int,
                image_size: int | None, precision: str, device: str = "auto", runtime: str = "torch") -> dict:
    """Everything that determines a feature file's content (:func:`diffred.store.feature_key`).
    ``encoder`` is an :class:`Encoder` or an :class:`~diffred.models.Identity` (the same
    names, known without building the network)."""
    return _store_key(encoder.name, encoder.arch, encoder.weights_sha256, encoder.layer, dataset_identity(dataset),
                      split, n, data_seed, int(image_size or encoder.native_size),
                      resolved_precision(precision, device, runtime), runtime)


def sidecar(key: dict) -> dict | None:
    """The JSON sidecar of ``key``'s feature file, if it has one (its content is not checked)."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads(feature_path(key).with_suffix(".json").read_text())
    return None


def file_sha256_of(key: dict) -> str | None:
    """The sha256 of the feature file that :func:`load_features` reads for ``key``: its own,
    or for a sample, that of the whole split it is taken from; ``None`` when neither is cached.
    Read from the sidecar (a damaged file is caught when it is loaded)."""
    meta = sidecar(key)
    if meta is None and key.get("n") is not None:
        meta = sidecar({**key, "n": None, "data_seed": None})
    return meta.get("sha256") if meta else None


@contextlib.contextmanager
def _strict_float32(dev: torch.device, precision: str):
    """TF32 off for float32 extraction on CUDA (TF32 convolutions round to 10-bit mantissas:
    they would be other features under the same key as the CPU's float32)."""
    if dev.type != "cuda" or precision != "float32":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def read_cache(path: Path, key: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Cached ``(X, y)`` if ``path`` holds a sound file for ``key``; ``None`` when absent.
    A damaged or mismatched file is reported with a warning, removed, and ``None`` returned."""
    side = path.with_suffix(".json")
    if not path.exists():
        return None
    problem = None
    try:
        meta = json.loads(side.read_text())
        if meta.get("key") != key:
            problem = "its sidecar holds another key"
        elif meta.get("sha256") != sha256_file(path):
            problem = "its checksum does not match (truncated or modified)"
        else:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != json_digest(key):
                    problem = "it holds another key"
                else:
                    X, y = z["X"], z["y"]
                    if X.shape != tuple(meta["shape"]) or len(y) != X.shape[0]:
                        problem = "its arrays have the wrong shape"
                    else:
                        return X, y
    except Exception as err:  # unreadable JSON or npz
        problem = f"it cannot be read ({type(err).__name__}: {str(err)[:100]})"
    warnings.warn(f"feature cache {path} is unusable: {problem}; recomputing it", RuntimeWarning, stacklevel=2)
    for p in (path, side):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return None


#: Images per forward pass. On 2 CPU cores (OpenVINO float32, three alternating runs, identical
#: features at every size) EfficientNet-Lite0 at 112 px ran 828 images/s in batches of 32, 790
#: in 64 and ~17% slower again in 128; the zoo CNN at 28 px ran 16,400 in 64 and 14,600 in 32.
#: So the CPU takes :data:`SMALL_CPU_BATCH` images a pass from :data:`LARGE_IMAGE` px up.
BATCH_SIZE = {"cpu": 64, "cuda": 128}
SMALL_CPU_BATCH, LARGE_IMAGE = 32, 96
#: Prepare the next batch (decode, resize, normalise) in a background thread while the
#: current one runs (``benchmarks/bench_extraction.py`` measures it both ways).
PREFETCH = True


def _run_encoder(encoder: Encoder, data: ImageData, start: int, stop: int, image_size: int,
                 device: torch.device, precision: str, batch_size: int, runner=None) -> np.ndarray:
    """Features of images ``start:stop``, a batch at a time through ``runner`` (torch at
    ``precision`` when none is given). The next batch is decoded, resized and normalised in
    a background thread while the current one runs."""
    runner = runner or TorchRunner(encoder, device, precision)
    starts = list(range(start, stop, batch_size))

    def prepare(i):
        return encoder.preprocess(data.batch(i, min(i + batch_size, stop), image_size), image_size)

    out = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(prepare, starts[0]) if starts else None
        for k in range(len(starts)):
            x = ahead.result()
            if k + 1 < len(starts):
                ahead = pool.submit(prepare, starts[k + 1]) if PREFETCH else None
            out.append(runner(x))
            if ahead is None and k + 1 < len(starts):  # no overlap: prepare after the run
                ahead = pool.submit(prepare, starts[k + 1])
    return np.concatenate(out) if out else np.zeros((0, encoder.width), np.float32)


def default_batch(dev: torch.device, image_size: int | None) -> int:
    """Images per forward pass on ``dev`` at ``image_size`` (see :data:`BATCH_SIZE`)."""
    if dev.type == "cpu" and (image_size or 0) >= LARGE_IMAGE:
        return SMALL_CPU_BATCH
    return BATCH_SIZE.get(dev.type, BATCH_SIZE["cuda"])


def extract(encoder: Encoder, data: ImageData, key: dict, device: str = "auto",
            batch_size: int | None = None, progress: bool = True, force: bool = False) -> Features:
    """Features of ``data`` under ``key``: read from the cache, or computed (resuming any
    finished chunks of an interrupted run) and cached. ``batch_size`` defaults to
    :func:`default_batch` for the device and image size (the features do not depend on it)."""
    return extract_layers([encoder], data, [key], device, batch_size, progress, force)[0]


def extract_layers(encoders: list[Encoder], data: ImageData, keys: list[dict], device: str = "auto",
                   batch_size: int | None = None, progress: bool = True, force: bool = False) -> list[Features]:
    """:func:`extract` for several layers of one network (``encoders``, one per layer, sharing
    the network; ``keys`` theirs): the layers not cached are extracted in one pass over the
    images (one converted model with their features side by side), each cached on its own."""
    found = [None if force else cached_features(k, data) for k in keys]
    todo = [i for i, f in enumerate(found) if f is None]
    if not todo:
        return found
    enc, key = encoders[todo[0]], keys[todo[0]]
    dev = resolve_device(device)
    batch_size = batch_size or default_batch(dev, key["image_size"])
    layers = [encoders[i].layer for i in todo]
    runner = make_runner(enc, key.get("runtime", "torch"), key["precision"], dev, key["image_size"], batch_size,
                         layers=layers if len(layers) > 1 else None)
    partials = [_partial_dir(keys[i]) for i in todo]
    widths = [encoders[i].width for i in todo]
    t0 = time.perf_counter()
    bar = tqdm(total=len(data), desc=f"features {key['model']}/{Path(key['dataset']).name}/{key['split']}"
               + (f" ({len(layers)} layers)" if len(layers) > 1 else ""), unit="img", disable=not progress,
               mininterval=10)
    parts = [[] for _ in todo]
    for c in range(0, len(data), CHUNK):
        arrs = _chunk(enc, data, c, min(c + CHUNK, len(data)), key, dev, batch_size, runner, partials, widths)
        for p, a in zip(parts, arrs):
            p.append(a)
        bar.update(min(CHUNK, len(data) - c))
    bar.close()
    runner.close()
    elapsed = time.perf_counter() - t0
    y = np.asarray(data.labels, dtype=np.int64)
    for j, i in enumerate(todo):
        X = np.concatenate(parts[j]).astype(np.float32) if parts[j] else np.zeros((0, widths[j]), np.float32)
        found[i] = _store(keys[i], X, y, data, {"seconds": round(elapsed, 2), "device": str(dev),
                                                 "ran_on": runner.runtime, "layers_in_pass": len(todo),
                                                 "images_per_second": round(len(data) / elapsed, 1)
                                                 if elapsed > 0 else None})
        shutil.rmtree(partials[j], ignore_errors=True)
    return found


def _partial_dir(key: dict) -> Path:
    """Where an extraction's finished chunks wait (so an interrupted run resumes)."""
    path = feature_path(key)
    partial = path.parent / (path.stem + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "key.json").write_text(json.dumps(key, sort_keys=True))
    return partial


def _chunk(encoder, data, start, stop, key, dev, batch_size, runner, partials, widths) -> list[np.ndarray]:
    """One chunk of images for every layer: read back if every layer's chunk file is sound,
    else computed in one pass and saved per layer."""
    files = [p / f"chunk_{start:08d}.npy" for p in partials]
    arrs = []
    for f, w in zip(files, widths):
        with contextlib.suppress(Exception):
            a = np.load(f, allow_pickle=False)
            if a.shape == (stop - start, w):
                arrs.append(a)
    if len(arrs) == len(files):
        return arrs
    with _strict_float32(dev, key["precision"]):
        X = _run_encoder(encoder, data, start, stop, key["image_size"], dev, key["precision"], batch_size, runner)
    arrs = np.split(X, np.cumsum(widths)[:-1], axis=1) if len(widths) > 1 else [X]
    for f, a in zip(files, arrs):
        atomic_write_bytes(f, lambda fh, a=np.ascontiguousarray(a): np.save(fh, a))
    return arrs


def _store(key: dict, X: np.ndarray, y: np.ndarray, data: ImageData, run: dict) -> Features:
    """Write one feature file (atomically) and its sidecar; the features as read back."""
    if not np.isfinite(X).all():
        raise FloatingPointError(f"non-finite features from {key['model']} on {key['dataset']}; "
                                 "try precision='float32'")
    path = feature_path(key)
    atomic_write_bytes(path, lambda fh: np.savez(fh, X=X, y=y, key=np.array(json_digest(key))))
    meta = {"key": key, "shape": list(X.shape), "sha256": sha256_file(path), "classes": list(data.classes),
            "source": data.source, **run, "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True))
    return Features(X, y, list(data.classes), meta)


def feature_identity(config: RunConfig):
    """What names ``config``'s features in a key, without building the network; ``None``
    when only the built network can say (a hub model not downloaded yet, or no image size
    and no known native size)."""
    ident = encoder_identity(config.model, config.arch, layer=config.layer)
    if ident is None or (config.image_size is None and ident.native_size is None):
        return None
    return ident


def load_features(config: RunConfig, split: str, progress: bool = True, force: bool = False,
                  encoder: Encoder | None = None) -> Features:
    """Features of one split for a run config (cached). The network is built (or ``encoder``
    used) only when the features must be extracted: a cache hit reads the file, and a seeded
    sample of a cached split takes its rows."""
    ident = encoder or feature_identity(config)
    if ident is None:
        encoder = ident = load_encoder(config.model, arch=config.arch, layer=config.layer)
    key, data, found = _request(ident, config, split, force)
    if found is None:  # extract (extract's own cache read finds nothing, or force)
        encoder = encoder or load_encoder(config.model, arch=config.arch, layer=config.layer)
        found = extract(encoder, data, key, device=config.device, progress=progress, force=force)
    found.meta = {**found.meta, "config": config.to_dict()}
    return found


def _request(ident, config: RunConfig, split: str, force: bool = False):
    """The key and images of one split of ``config``, and its features if the cache has them
    (the file itself, or the rows of a seeded sample of a cached whole split)."""
    n = config.n_train if split == "train" else config.n_test
    full = load_dataset(config.dataset, split)
    if n is not None and n >= len(full):
        n = None  # the whole split: one cache entry, whatever n asked for it
    data = full.subset(n, config.data_seed)
    runtime = resolve_runtime(config.runtime, config.device)
    key = feature_key(ident, config.dataset, split, n, config.data_seed, config.image_size, config.precision,
                      config.device, runtime)
    found = None if force else (cached_features(key, data) or (
        derived_features(ident, config, split, n, full, data, runtime) if n is not None else None))
    return key, data, found


def prefetch_layers(config: RunConfig, layers, progress: bool = True) -> None:
    """Cache the features of ``layers`` of ``config``'s network (both splits): the layers
    not cached yet are extracted together, in one pass over the images per split."""
    configs = [dataclasses.replace(config, layer=layer) for layer in layers]
    built: dict[str, Encoder] = {}  # each layer's encoder built at most once, for both splits

    def encoder(c: RunConfig) -> Encoder:
        if c.layer not in built:
            built[c.layer] = load_encoder(c.model, arch=c.arch, layer=c.layer)
        return built[c.layer]

    for split in ("train", "test"):
        asks = [_request(feature_identity(c) or encoder(c), c, split) for c in configs]
        todo = [i for i, (_, _, found) in enumerate(asks) if found is None]
        if todo:  # the network is built only now, for the layers to extract
            extract_layers([encoder(configs[i]) for i in todo], asks[todo[0]][1], [asks[i][0] for i in todo],
                           device=config.device, progress=progress)


def cached_features(key: dict, data: ImageData) -> Features | None:
    """The cached features of ``key`` (``None`` when absent or unusable)."""
    path = feature_path(key)
    cached = read_cache(path, key)
    if cached is None:
        return None
    return Features(cached[0], cached[1], list(data.classes), json.loads(path.with_suffix(".json").read_text()))


def derived_features(ident, config: RunConfig, split: str, n: int, full: ImageData, data: ImageData,
                     runtime: str) -> Features | None:
    """A seeded sample of a split whose features are cached: its rows, nothing extracted."""
    full_key = feature_key(ident, config.dataset, split, None, config.data_seed, config.image_size,
                           config.precision, config.device, runtime)
    cached = read_cache(feature_path(full_key), full_key)
    if cached is None:
        return None
    idx = np.sort(np.random.default_rng(config.data_seed).permutation(len(full))[:n])
    meta = json.loads(feature_path(full_key).with_suffix(".json").read_text())
    meta = {**meta, "derived_from": str(feature_path(full_key)), "n": n}
    return Features(cached[0][idx], cached[1][idx], list(data.classes), meta)

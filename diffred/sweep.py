"""Sweeps: many (model x dataset x selector) subset curves on Dask distributed.

A grid file (YAML) lists blocks; each block crosses its ``models`` and ``datasets`` and runs
every entry of ``selectors`` with the block's other settings (any :class:`RunConfig` field):

    defaults:                      # shared by every block (optional)
      fractions: [0.01, 0.1, 0.2, 1.0]
      seeds: [1, 2, 3, 4, 5]
    blocks:
      - models: [efficientnet_lite0, resnet50]
        datasets: [fashion_mnist, cifar10]
        selectors: [random, [pca_top, pca_bottom]]   # a list = one probe run, as chapter 3
        n_train: null

Each (model, dataset, sample) becomes a task chain on the cluster: one feature extraction,
then every probe run that reads those features. Results go to the content-keyed cache the
chapters read (:func:`diffred.curves.subset_curve`), so what a sweep computed is what the
book shows. Work already in the cache is skipped before anything is submitted (idempotent);
a killed sweep restarts where it stopped (finished curves are cached; an interrupted
extraction resumes from its last saved chunk); a task on a lost worker is retried on another
(``retries``), and since every cache write is atomic (temporary file, then rename) and keyed
by content, a retried or repeated task rewrites the same entry whole, never half of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pandas as pd

from .config import RunConfig
from .curves import SELECTORS, Curve, cached_curve, curve_path, subset_curve
from .device import DEVICE_ENV
from .features import load_features
from .models import load_encoder

BLOCK_KEYS = {"models", "datasets", "selectors"}
CONFIG_KEYS = {f.name for f in dataclasses.fields(RunConfig)} - {"model", "dataset"}


@dataclasses.dataclass(frozen=True)
class Job:
    """One probe run: a config and a selector (a name, or a tuple of names run together)."""

    config: RunConfig
    selector: str | tuple[str, ...] = "random"

    @property
    def feature_group(self) -> tuple:
        """Jobs with the same group read the same cached features."""
        c = self.config
        return (c.model, c.arch, c.dataset, c.layer, c.n_train, c.n_test, c.data_seed, c.image_size,
                c.precision)

    def label(self) -> str:
        sel = self.selector if isinstance(self.selector, str) else "+".join(self.selector)
        n = self.config.n_train if self.config.n_train is not None else "all"
        return f"{Path(self.config.model).name}/{Path(self.config.dataset).name}/{sel}/n={n}"


def _selector(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return value[0] if len(value) == 1 else tuple(value)
    raise ValueError(f"selector {value!r} must be a name or a list of names")


def expand(grid: dict, scaled: bool = True) -> list[Job]:
    """The jobs of a grid (a dict as in the module docstring), in order, without repeats.
    ``scaled`` applies ``DIFFRED_SCALE`` as the chapters do (:meth:`RunConfig.scaled`)."""
    if not isinstance(grid, dict) or "blocks" not in grid:
        raise ValueError("a grid needs a 'blocks:' list (and optionally 'defaults:'); see diffred/sweep.py")
    defaults = grid.get("defaults") or {}
    unknown = sorted(set(grid) - {"defaults", "blocks", "name", "description"})
    if unknown:
        raise ValueError(f"unknown top-level grid keys {unknown}; use defaults, blocks, name, description")
    jobs: list[Job] = []
    for i, block in enumerate(grid["blocks"] or []):
        spec = {**defaults, **block}
        bad = sorted(set(spec) - BLOCK_KEYS - CONFIG_KEYS)
        if bad:
            raise ValueError(f"block {i + 1}: unknown keys {bad}; valid: "
                             f"{', '.join(sorted(BLOCK_KEYS | CONFIG_KEYS))}")
        for need in ("models", "datasets"):
            if not spec.get(need):
                raise ValueError(f"block {i + 1} lists no {need}")
        selectors = [_selector(s) for s in spec.get("selectors") or ["random"]]
        for sel in selectors:
            for name in (sel,) if isinstance(sel, str) else sel:
                if name not in SELECTORS:
                    raise ValueError(f"block {i + 1}: unknown selector {name!r}; choose from {SELECTORS}")
        settings = {k: v for k, v in spec.items() if k in CONFIG_KEYS}
        for model in spec["models"]:
            for dataset in spec["datasets"]:
                cfg = RunConfig(model=str(model), dataset=str(dataset), **settings)
                cfg = cfg.scaled() if scaled else cfg
                for sel in selectors:
                    job = Job(cfg, sel)
                    if job not in jobs:
                        jobs.append(job)
    if not jobs:
        raise ValueError("the grid has no jobs")
    return jobs


def load_grid(path: str | Path, scaled: bool = True) -> list[Job]:
    """:func:`expand` of a YAML grid file."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"grid file {path} does not exist (examples: grids/default.yaml, grids/paper.yaml)")
    try:
        grid = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    return expand(grid, scaled=scaled)


def _selector_arg(sel):
    return sel if isinstance(sel, str) else list(sel)


# ------------------------------------------------------------------ tasks (run on workers)
def _worker_setup() -> None:
    """Pin this worker to one GPU when there are several (the config keeps device='auto',
    so cache keys match the chapters')."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 1 and not os.environ.get(DEVICE_ENV):
        try:
            from distributed import get_worker
            name = get_worker().name
            index = int(name) if str(name).isdigit() else 0
        except (ImportError, ValueError):
            index = 0
        os.environ[DEVICE_ENV] = f"cuda:{index % torch.cuda.device_count()}"


def extract_task(cfg: RunConfig) -> dict:
    """Cache the train and test features of ``cfg``; returns where they came from."""
    _worker_setup()
    t0 = time.perf_counter()
    enc = load_encoder(cfg.model, arch=cfg.arch, layer=cfg.layer)
    tr = load_features(cfg, "train", progress=False, encoder=enc)
    te = load_features(cfg, "test", progress=False, encoder=enc)
    return {"n_train": int(tr.X.shape[0]), "n_test": int(te.X.shape[0]),
            "seconds": round(time.perf_counter() - t0, 2), "pid": os.getpid()}


def curve_task(cfg: RunConfig, selector, features: dict | None = None) -> dict:
    """Probe one job (its features are cached by the extraction this depends on)."""
    _worker_setup()
    t0 = time.perf_counter()
    df = subset_curve(cfg, selector=_selector_arg(selector), progress=False)
    return {"path": str(curve_path(cfg, _selector_arg(selector))), "rows": len(df),
            "seconds": round(time.perf_counter() - t0, 2), "pid": os.getpid()}


# ------------------------------------------------------------------ planning and running
def plan(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """Split jobs into (already in the cache, still to run)."""
    done, todo = [], []
    for job in jobs:
        (done if cached_curve(job.config, _selector_arg(job.selector)) is not None else todo).append(job)
    return done, todo


UNKNOWN = "unknown until the model is loaded"


def dry_plan(jobs: list[Job]) -> list[tuple[Job, str]]:
    """Each job with ``"cached"``, ``"to run"``, or :data:`UNKNOWN`, decided without building
    or downloading any network: a timm hub model's cache key holds the hash of its downloaded
    weights, so whether it is cached is known only once it is loaded."""
    out = []
    for job in jobs:
        run = Curve(job.config, _selector_arg(job.selector), load=False)
        if run.keys is None:
            out.append((job, UNKNOWN))
        else:
            out.append((job, "cached" if run.cached() is not None else "to run"))
    return out


def worker_threads(n_workers: int) -> int:
    """Torch/BLAS threads per LocalCluster worker: an even share of the cores. Floating-point
    sums depend on the thread count, so a sequential run matches a sweep bit for bit when it
    uses the same number (``OMP_NUM_THREADS``)."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))


def local_cluster(n_workers: int | None = None, gpus: int | None = None):
    """A LocalCluster: one worker process per GPU when there are GPUs, else one per core,
    each with one task thread and an even share of the cores for torch."""
    from distributed import LocalCluster
    if gpus is None:
        import torch
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    n = n_workers or (gpus or os.cpu_count() or 1)
    threads = str(worker_threads(n))
    import logging
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=logging.CRITICAL, env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})


def run(jobs: list[Job], client=None, retries: int = 3, progress: bool = True, log=print) -> pd.DataFrame:
    """Run ``jobs`` on a Dask client (skipping those already cached); one row per job."""
    from distributed import as_completed
    done, todo = plan(jobs)
    log(f"{len(jobs)} probe runs in the grid: {len(done)} already in the cache, {len(todo)} to run")
    rows = [{"job": j.label(), "status": "cached", "seconds": 0.0, "path": str(_path(j))} for j in done]
    if not todo:
        return pd.DataFrame(rows)
    groups: dict[tuple, list[Job]] = {}
    for job in todo:
        groups.setdefault(job.feature_group, []).append(job)
    futures = {}
    for group_jobs in groups.values():
        cfg = group_jobs[0].config
        feats = client.submit(extract_task, cfg, key=f"extract-{_digest(group_jobs[0].feature_group)}",
                              retries=retries, pure=False)
        for job in group_jobs:
            fut = client.submit(curve_task, job.config, job.selector, feats, retries=retries, pure=False,
                                key=f"curve-{_digest((job.config, job.selector))}")
            futures[fut] = job
    from tqdm.auto import tqdm
    bar = tqdm(total=len(futures), desc="probe runs", unit="run", disable=not progress)
    t0 = time.perf_counter()
    failed = []
    for fut in as_completed(list(futures)):
        job = futures[fut]
        try:
            out = fut.result()  # a task that failed on every retry raises here, with its error
        except Exception as err:  # one bad job does not stop the others
            failed.append(f"{job.label()}: {type(err).__name__}: {err}")
            rows.append({"job": job.label(), "status": "failed", "seconds": None, "path": None})
        else:
            rows.append({"job": job.label(), "status": "computed", "seconds": out["seconds"], "path": out["path"]})
        bar.update(1)
    bar.close()
    log(f"finished {len(futures) - len(failed)} of {len(futures)} probe runs in {time.perf_counter() - t0:.1f} s")
    if failed:
        raise RuntimeError(f"{len(failed)} probe run(s) failed (the others are cached; fix and run the "
                           "sweep again to do only what is missing):\n  " + "\n  ".join(failed))
    return pd.DataFrame(rows)


def run_sequential(jobs: list[Job], log=print) -> pd.DataFrame:
    """The same jobs one after another in this process (the reference for tests/benchmarks)."""
    done, todo = plan(jobs)
    rows = [{"job": j.label(), "status": "cached", "seconds": 0.0, "path": str(_path(j))} for j in done]
    for job in todo:
        out = curve_task(job.config, job.selector)
        rows.append({"job": job.label(), "status": "computed", "seconds": out["seconds"], "path": out["path"]})
    return pd.DataFrame(rows)


def _path(job: Job) -> Path:
    return curve_path(job.config, _selector_arg(job.selector))


def _digest(obj) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sweep(grid_path: str | Path, scheduler: str | None = None, n_workers: int | None = None,
          progress: bool = True, log=print) -> pd.DataFrame:
    """``diffred sweep``: load a grid, connect to ``scheduler`` (``tcp://host:port``) or start
    a LocalCluster, run it, and return one row per job."""
    from distributed import Client
    jobs = load_grid(grid_path)
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise RuntimeError(f"no Dask scheduler answers at {scheduler} ({err}); start one with "
                               "`dask scheduler` and workers with `dask worker <address>`") from None
        cluster = None
    else:
        cluster = local_cluster(n_workers)
        client = Client(cluster)
    try:
        log(f"Dask scheduler {client.scheduler.address}; dashboard {client.dashboard_link}")
        log(f"workers: {len(client.scheduler_info()['workers'])}")
        return run(jobs, client, progress=progress, log=log)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

"""`diffred sweep` on Dask: grids, a two-worker LocalCluster on loopback, a worker killed
mid-run, and a re-run that does only what is missing."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from diffred import sweep

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "defaults": {"image_size": 32, "n_train": 300, "n_test": 200, "fractions": [0.05, 0.2], "seeds": [1, 2]},
    "blocks": [{"models": ["efficientnet_lite0", "efficientnet_lite0_random"], "datasets": ["digits"],
                "selectors": ["random", ["pca_top", "pca_bottom"]]}],
}


def test_grid_expansion_and_validation():
    jobs = sweep.expand(TINY)
    assert len(jobs) == 4 and len({j.feature_group for j in jobs}) == 2
    assert jobs[1].selector == ("pca_top", "pca_bottom")
    twice = {"blocks": TINY["blocks"] * 2, "defaults": TINY["defaults"]}
    assert sweep.expand(twice) == jobs  # repeats are run once
    with pytest.raises(ValueError, match="unknown keys \\['n_trian'\\]"):
        sweep.expand({"blocks": [{"models": ["m"], "datasets": ["d"], "n_trian": 5}]})
    with pytest.raises(ValueError, match="unknown selector 'pca'"):
        sweep.expand({"blocks": [{"models": ["m"], "datasets": ["d"], "selectors": ["pca"]}]})
    with pytest.raises(ValueError, match="lists no datasets"):
        sweep.expand({"blocks": [{"models": ["m"]}]})
    with pytest.raises(ValueError, match="outside"):
        sweep.expand({"blocks": [{"models": ["m"], "datasets": ["d"], "fractions": [2]}]})
    with pytest.raises(FileNotFoundError, match="grid file"):
        sweep.load_grid("no/such/grid.yaml")


def test_shipped_grids_parse():
    default = sweep.load_grid(REPO / "data/grids/default.yaml", scaled=False)
    assert {j.config.model for j in default} == {f"efficientnet_lite{i}" for i in (0, 1, 2)} | {"efficientnet_lite0_random"}
    paper = sweep.load_grid(REPO / "data/grids/paper.yaml", scaled=False)
    assert {j.config.dataset for j in paper} == {"cifar10", "cifar100", "flowers102", "oxford_pets"}
    assert all(j.config.image_size == 224 for j in paper)


def _curves(cache: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_csv(p) for p in sorted((cache / "results").glob("curve_*.csv"))}


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def sequential(grid_file, tmp_path_factory):
    """The grid run one job after another in a fresh process, with the thread count a
    two-worker cluster gives each worker (floating-point sums depend on it)."""
    cache = tmp_path_factory.mktemp("sequential")
    threads = str(sweep.worker_threads(2))
    env = {**os.environ, "DIFFRED_CACHE": str(cache), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    code = f"from diffred import sweep; sweep.run_sequential(sweep.load_grid({str(grid_file)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    curves = _curves(cache)
    assert len(curves) == 4
    return curves


@pytest.fixture
def cluster_client(tmp_path, monkeypatch):
    from distributed import Client
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path / "cache"))  # workers inherit it
    cluster = sweep.local_cluster(n_workers=2)
    client = Client(cluster)
    yield client, tmp_path / "cache"
    client.close()
    cluster.close()


@pytest.mark.slow
def test_local_cluster_equals_sequential_and_reruns_skip(cluster_client, grid_file, sequential):
    client, cache = cluster_client
    jobs = sweep.load_grid(grid_file)
    table = sweep.run(jobs, client, progress=False, log=lambda *a: None)
    assert list(table.status) == ["computed"] * 4
    assert _curves(cache).keys() == sequential.keys()
    for name, df in _curves(cache).items():
        pd.testing.assert_frame_equal(df, sequential[name])
    again = sweep.run(jobs, client, progress=False, log=lambda *a: None)
    assert list(again.status) == ["cached"] * 4  # idempotent: nothing is submitted
    victim = Path(table.path.iloc[0])
    victim.unlink()  # as if the sweep had been killed before this one finished
    resumed = sweep.run(jobs, client, progress=False, log=lambda *a: None)
    assert sorted(resumed.status) == ["cached"] * 3 + ["computed"]
    pd.testing.assert_frame_equal(pd.read_csv(victim), sequential[victim.name])


@pytest.mark.slow
def test_worker_killed_mid_run_loses_and_duplicates_nothing(cluster_client, grid_file, sequential):
    client, cache = cluster_client
    pids = client.run(os.getpid)  # worker address -> process id
    killed = []

    def kill_first_busy_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            busy = [addr for addr, tasks in client.processing().items() if tasks]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_busy_worker)
    killer.start()
    table = sweep.run(sweep.load_grid(grid_file), client, progress=False, log=lambda *a: None)
    killer.join()
    assert killed, "no worker was busy to kill"
    assert list(table.status) == ["computed"] * 4
    curves = _curves(cache)
    assert curves.keys() == sequential.keys()  # one entry per job: nothing duplicated
    for name, df in curves.items():
        pd.testing.assert_frame_equal(df, sequential[name])
    leftovers = [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"half-written files left behind: {leftovers}"


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(TINY))
    with pytest.raises(RuntimeError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        sweep.sweep(path, scheduler="tcp://127.0.0.1:9")


@pytest.mark.slow
def test_sweep_feeds_the_book(built_book):
    """conftest swept data/grids/default.yaml before building: every curve of the sweep was
    read by the chapters from the cache, none recomputed, and no chapter curve was missed."""
    out = built_book.parent.parent
    if not (out / "sweep.csv").is_file():
        pytest.skip("DIFFRED_BUILT_BOOK reuses a build that was not made by the test fixture")
    swept = set(pd.read_csv(out / "sweep.csv").path)
    events = [line.split(" ", 1) for line in (out / "cache.log").read_text().splitlines()]
    hits = {path for event, path in events if event == "hit"}
    computed = {path for event, path in events if event == "computed"}
    assert swept <= hits, f"curves the sweep made that no chapter read: {sorted(swept - hits)}"
    assert not computed & swept

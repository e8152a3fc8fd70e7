"""Cache keys that follow content, and ``diffred cache`` on a small built cache."""

import json
import shutil
import time

import pandas as pd
import pytest
import timm
import torch

from diffred import cache, cli, curves, models, store, sweep
from diffred import features as F
from diffred.config import RunConfig
from test_features import key, tiny_encoder


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def copied_library(tmp_path, monkeypatch):
    """A copy of ``diffred/`` that the code digests read instead of the real one."""
    lib = tmp_path / "lib"
    shutil.copytree(store.LIBRARY, lib, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(store, "LIBRARY", lib)
    store.code_digest.cache_clear()
    yield lib
    store.code_digest.cache_clear()


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    store.code_digest.cache_clear()


def test_preprocessing_change_rekeys_features(copied_library):
    enc = tiny_encoder()
    before = F.feature_path(key(enc))
    _edit(copied_library / "models.py", "x = x.float().div_(255.0)", "x = x.float().div_(255.0) * 0.5")
    assert F.feature_path(key(enc)) != before
    assert "models" in store.FEATURE_CODE and "datasets" in store.FEATURE_CODE


@pytest.mark.parametrize("module", ["plots.py", "figures.py", "bookcache.py", "analyses/setup.py", "probes.py"])
def test_a_change_outside_feature_code_keeps_feature_keys(copied_library, module):
    enc = tiny_encoder()
    before = F.feature_path(key(enc))
    (copied_library / module).write_text((copied_library / module).read_text() + "\n# a chapter-side change\n")
    store.code_digest.cache_clear()
    assert F.feature_path(key(enc)) == before


def test_chapters_book_config_and_tests_are_not_feature_code():
    assert all(not m.startswith(("chapters", "tests", "_config", "plots", "figures")) for m in store.FEATURE_CODE)
    # and the result key does change with the result code (a probe change recomputes curves)
    assert "probes" in curves.RESULT_CODE


def test_package_version_change_rekeys_features(monkeypatch):
    enc = tiny_encoder()
    before = F.feature_path(key(enc))
    real = store.importlib.metadata.version
    monkeypatch.setattr(store.importlib.metadata, "version", lambda n: "0.0-other" if n == "timm" else real(n))
    store.package_versions.cache_clear()
    try:
        assert F.feature_path(key(enc)) != before
    finally:
        store.package_versions.cache_clear()
    assert key(enc)["packages"]["torch"] == store.importlib.metadata.version("torch")


def test_runtime_is_in_the_key():
    enc = tiny_encoder()
    k = F.feature_key(enc, "toy", "train", None, 0, 16, "float32", runtime="openvino")
    assert k["runtime"] == "openvino" and "openvino" in k["packages"]
    assert F.feature_path(k) != F.feature_path(key(enc))
    with pytest.raises(ValueError, match="runtime"):
        F.feature_key(enc, "toy", "train", None, 0, 16, "float32", runtime="tflite")


def _checkpoint(path, seed=1):
    torch.manual_seed(seed)
    m = timm.create_model("test_resnet", pretrained=False)
    torch.save(m.state_dict(), path)
    return m


def _cfg(ck, **kw):
    base = dict(model=str(ck), arch="test_resnet", dataset="digits", n_train=60, n_test=40, image_size=16,
                fractions=(0.5, 1.0), seeds=(1,), precision="float32", device="cpu")
    return RunConfig(**{**base, **kw})


@pytest.fixture
def built(root, tmp_path):
    """A cache with two feature files, one curve and one analysis table, from a tiny timm model."""
    ck = tmp_path / "tiny.pth"
    _checkpoint(ck)
    curve = curves.subset_curve(_cfg(ck), progress=False)
    curves.cached_frames("demo", {"x": 1}, lambda: pd.DataFrame({"a": [1, 2]}), module="analyses.robustness")
    return ck, curve


def test_result_key_holds_feature_files_and_recomputes_when_they_change(built, root):
    ck, curve = built
    run = curves.Curve(_cfg(ck))
    assert run.spec()["feature_files"] == [F.file_sha256_of(k) for k in run.keys]
    assert curves.cached_curve(_cfg(ck)) is not None
    side = F.feature_path(run.keys[0]).with_suffix(".json")  # another feature file content
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "sha256": "0" * 64}))
    assert curves.cached_curve(_cfg(ck)) is None


def test_cache_ls_lists_every_entry_as_current(built, root, capsys):
    items = cache.entries()
    assert sorted(e.kind for e in items) == ["curve", "features", "features", "frames"]
    assert all(e.current is True for e in items), [(e.kind, e.why) for e in items]
    assert {e.split for e in items if e.kind == "features"} == {"train", "test"}
    assert cli.main(["cache", "ls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(r["current"] and r["bytes"] > 0 and r["created"] for r in rows)
    assert cli.main(["cache", "ls"]) == 0
    assert "4 entries" in capsys.readouterr().out
    assert cli.main(["cache", "du", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_kind"]["features"] > 0


def test_cache_prune_removes_what_this_code_would_not_use(built, root, monkeypatch, capsys):
    real = store.importlib.metadata.version
    monkeypatch.setattr(store.importlib.metadata, "version", lambda n: "9.9" if n == "torch" else real(n))
    store.package_versions.cache_clear()
    try:
        stale = {e.kind for e in cache.entries() if e.current is False}
        assert stale == {"features", "curve"}  # the analysis table is keyed by result code only
        assert cli.main(["cache", "prune"]) == 0
        assert "would remove 3 entries" in capsys.readouterr().out
        assert len(cache.entries()) == 4  # a dry run by default
        assert cli.main(["cache", "prune", "--yes"]) == 0
        assert [e.kind for e in cache.entries()] == ["frames"]
    finally:
        store.package_versions.cache_clear()
    assert cache.prune(older_than="2999-01-01", apply=True) and cache.entries() == []
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        cache.prune(older_than="last week")


def test_cache_verify_finds_and_removes_damage(built, root, capsys):
    assert cli.main(["cache", "verify"]) == 0
    assert "match their checksums" in capsys.readouterr().out
    npz = next(e.path for e in cache.entries() if e.kind == "features")
    raw = npz.read_bytes()
    npz.write_bytes(raw[:-50] + bytes([raw[-50] ^ 0xFF]) + raw[-49:])
    csv = next(e.path for e in cache.entries() if e.kind == "curve")
    csv.write_text(csv.read_text() + "1,2,3\n")
    assert cli.main(["cache", "verify", "--json"]) == 1
    bad = json.loads(capsys.readouterr().out)
    assert sorted(b["kind"] for b in bad) == ["curve", "features"] and all("checksum" in b["problem"] for b in bad)
    assert cli.main(["cache", "verify", "--remove"]) == 0
    assert not npz.exists() and not csv.exists() and cache.verify() == []


def test_overwritten_checkpoint_is_reloaded_in_process(tmp_path):
    ck = tmp_path / "m.pth"
    _checkpoint(ck, seed=1)
    a = models.load_encoder(str(ck), arch="test_resnet")
    time.sleep(0.01)
    m2 = _checkpoint(ck, seed=2)
    b = models.load_encoder(str(ck), arch="test_resnet")
    assert a.weights_sha256 != b.weights_sha256
    assert all(torch.equal(x, y) for x, y in zip(b.model.state_dict().values(), m2.state_dict().values()))


def test_dry_run_builds_no_model(root, tmp_path, monkeypatch):
    ck = tmp_path / "tiny.pth"
    _checkpoint(ck)
    monkeypatch.setattr(models, "hub_cached_file", lambda arch: None)

    def no_model(*a, **k):
        raise AssertionError("a dry run built a model")
    monkeypatch.setattr(timm, "create_model", no_model)
    jobs = [sweep.Job(_cfg(ck)), sweep.Job(_cfg("resnet18.tv_in1k", arch=None))]
    states = [s for _, s in sweep.dry_plan(jobs)]
    assert states == ["to run", sweep.UNKNOWN]


def test_offline_hub_fails_in_seconds(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    monkeypatch.setattr(models, "hub_cached_file", lambda arch: None)
    models._load_cached.cache_clear()
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="unreachable.*checkpoint"):
        models.load_encoder("resnet18.tv_in1k")
    assert time.perf_counter() - t0 < 5


def test_hub_offline_setting_is_honoured(monkeypatch):
    from diffred import weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights.hub_reachable.cache_clear()
    try:
        assert weights.hub_reachable() is False
    finally:
        weights.hub_reachable.cache_clear()


def test_cuda_float32_runs_without_tf32(monkeypatch):
    seen = []

    class Dev:
        type = "cuda"
    with F._strict_float32(Dev(), "float32"):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
    assert seen == [(False, False)]
    with F._strict_float32(torch.device("cpu"), "float32"):
        pass


def test_features_keyed_without_building_the_network(tmp_path):
    ck = tmp_path / "tiny.pth"
    _checkpoint(ck)
    ident = models.encoder_identity(str(ck), arch="test_resnet")
    enc = models.load_encoder(str(ck), arch="test_resnet")
    for a, b in ((ident, enc), (models.encoder_identity("efficientnet_lite0_random"),
                                models.load_encoder("efficientnet_lite0_random"))):
        assert F.feature_key(a, "digits", "train", 10, 0, None, "float32") == \
            F.feature_key(b, "digits", "train", 10, 0, None, "float32")

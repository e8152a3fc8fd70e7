"""The feature cache: round trip, key sensitivity, corruption detected, resumption."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from diffred import features as F
from diffred.datasets import ImageData
from diffred.device import resolve_device
from diffred.models import Encoder


class Tiny(torch.nn.Module):
    """A stand-in with timm's interface: mean colour per channel, then a fixed linear map."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 8)
        torch.manual_seed(0)
        self.calls = 0

    def forward_features(self, x):
        self.calls += 1
        return x

    def forward_head(self, x, pre_logits=False):
        return self.lin(x.mean((2, 3)))


def tiny_encoder(name="tiny"):
    torch.manual_seed(0)
    return Encoder(name=name, arch="tiny", model=Tiny().eval(), width=8, mean=(0.5,) * 3, std=(0.5,) * 3,
                   interpolation="bilinear", native_size=16, source="test", licence="n/a",
                   weights_sha256="abc")


def tiny_data(n=50):
    rng = np.random.default_rng(0)
    return ImageData("toy", "train", rng.integers(0, 255, (n, 8, 8), dtype=np.uint8),
                     rng.integers(0, 3, n), ["a", "b", "c"], "synthetic")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path))
    return tmp_path


def key(enc, **kw):
    base = dict(dataset="toy", split="train", n=None, data_seed=0, image_size=16, precision="float32")
    base.update(kw)
    return F.feature_key(enc, **base)


def test_round_trip_and_second_call_recomputes_nothing(cache):
    enc, data = tiny_encoder(), tiny_data()
    k = key(enc)
    a = F.extract(enc, data, k, progress=False)
    calls = enc.model.calls
    b = F.extract(enc, data, k, progress=False)
    assert enc.model.calls == calls
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    meta = json.loads(F.feature_path(k).with_suffix(".json").read_text())
    assert meta["key"] == k and meta["shape"] == [50, 8]


def test_batched_equals_one_pass(cache):
    enc, data = tiny_encoder(), tiny_data()
    whole = F._run_encoder(enc, data, 0, 50, 16, torch.device("cpu"), "float32", 50)
    parts = F._run_encoder(enc, data, 0, 50, 16, torch.device("cpu"), "float32", 7)
    assert np.allclose(whole, parts, atol=1e-6)


@pytest.mark.parametrize("change", [dict(image_size=32), dict(precision="auto"), dict(split="test"),
                                    dict(n=10), dict(dataset="other")])
def test_key_sensitivity(change):
    enc = tiny_encoder()
    assert F.feature_path(key(enc)) != F.feature_path(key(enc, **change))


def test_weights_change_the_key():
    a, b = tiny_encoder(), tiny_encoder()
    b.weights_sha256 = "def"
    assert F.feature_path(key(a)) != F.feature_path(key(b))


@pytest.mark.parametrize("damage", ["truncate", "flip", "sidecar"])
def test_corrupted_cache_detected_and_recomputed(cache, damage):
    enc, data = tiny_encoder(), tiny_data()
    k = key(enc)
    good = F.extract(enc, data, k, progress=False).X
    path = F.feature_path(k)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        path.write_bytes(raw[:-100] + bytes([raw[-100] ^ 0xFF]) + raw[-99:])
    else:
        meta = json.loads(path.with_suffix(".json").read_text())
        meta["key"]["image_size"] = 99
        path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="unusable"):
        again = F.extract(enc, data, k, progress=False).X
    assert np.array_equal(good, again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.extract(enc, data, k, progress=False)


def test_interrupted_run_resumes(cache, monkeypatch):
    enc = tiny_encoder()
    data = tiny_data(n=5000)  # three chunks of 2048
    k = key(enc)
    real = F._run_encoder
    seen = []

    def flaky(encoder, d, start, stop, *a):
        seen.append(start)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(encoder, d, start, stop, *a)

    monkeypatch.setattr(F, "_run_encoder", flaky)
    with pytest.raises(KeyboardInterrupt):
        F.extract(enc, data, k, progress=False)
    assert not F.feature_path(k).exists()
    seen.clear()
    monkeypatch.setattr(F, "_run_encoder", lambda *a: (seen.append(a[2]), real(*a))[1])
    out = F.extract(enc, data, k, progress=False)
    assert seen == [2048, 4096]  # the first chunk was not recomputed
    monkeypatch.setattr(F, "_run_encoder", real)
    ref = real(enc, data, 0, 5000, 16, torch.device("cpu"), "float32", 128)
    assert np.allclose(out.X, ref, atol=1e-6)


def test_cuda_request_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA"):
        resolve_device("cuda")


def test_sample_of_a_cached_split_is_derived_not_extracted(cache, monkeypatch):
    from diffred.config import RunConfig
    enc, data = tiny_encoder(), tiny_data(n=60)
    monkeypatch.setattr(F, "load_dataset", lambda name, split: data)
    cfg = RunConfig(model="tiny", dataset="toy", image_size=16, precision="float32", n_train=None)
    whole = F.load_features(cfg, "train", progress=False, encoder=enc)
    calls = enc.model.calls
    part = F.load_features(RunConfig(model="tiny", dataset="toy", image_size=16, precision="float32", n_train=20),
                           "train", progress=False, encoder=enc)
    assert enc.model.calls == calls  # nothing extracted
    sub = data.subset(20, 0)
    ref = F.extract(enc, sub, F.feature_key(enc, "toy", "train", 20, 0, 16, "float32"), progress=False)
    assert np.allclose(part.X, ref.X, atol=1e-6) and np.array_equal(part.y, sub.labels)
    assert np.array_equal(F.load_features(RunConfig(model="tiny", dataset="toy", image_size=16, precision="float32",
                                                    n_train=1000), "train", progress=False, encoder=enc).X, whole.X)


def test_a_cache_hit_builds_no_network(cache, monkeypatch):
    """Features already cached are read without building the encoder: its identity names
    the file; the network is built only to extract."""
    from diffred.config import RunConfig
    from diffred.models import Identity
    enc, data = tiny_encoder(), tiny_data(n=30)
    monkeypatch.setattr(F, "load_dataset", lambda name, split: data)
    cfg = RunConfig(model="tiny", dataset="toy", image_size=16, precision="float32")
    first = F.load_features(cfg, "train", progress=False, encoder=enc)
    ident = Identity(enc.name, enc.arch, enc.weights_sha256, enc.native_size)
    monkeypatch.setattr(F, "encoder_identity", lambda *a, **k: ident)

    def refuse(*a, **k):
        raise AssertionError("the network was built for a cache hit")
    monkeypatch.setattr(F, "load_encoder", refuse)
    again = F.load_features(cfg, "train", progress=False)
    assert np.array_equal(again.X, first.X) and again.meta["config"]["model"] == "tiny"
    with pytest.raises(AssertionError, match="built for a cache hit"):  # a miss must build it
        F.load_features(RunConfig(model="tiny", dataset="toy", image_size=20, precision="float32"), "train",
                        progress=False)


def test_native_sizes_are_timms():
    import timm
    from diffred.models import NATIVE_SIZES
    for arch, size in NATIVE_SIZES.items():
        assert timm.models.get_pretrained_cfg(arch).input_size[-1] == size, arch


# --- several layers in one pass ----------------------------------------------------------

def _layer_encoders():
    from diffred.models import load_encoder, probe_layers
    model = "cnn_ce_s1"  # a committed zoo model: small, native 28 px
    return [load_encoder(model, layer=layer) for layer in probe_layers(load_encoder(model).model)]


@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_several_layers_in_one_pass_equal_one_layer_at_a_time(cache, runtime):
    if runtime == "openvino":
        pytest.importorskip("openvino")
    encs, small = _layer_encoders(), tiny_data(n=70)  # 70: the last batch of 16 is padded
    data = ImageData("toy", "train", small.images.repeat(4, 1).repeat(4, 2)[:, :28, :28], small.labels,
                     small.classes, "synthetic")
    keys = [key(e, image_size=28, runtime=runtime) for e in encs]
    together = F.extract_layers(encs, data, keys, device="cpu", batch_size=16, progress=False)
    assert [t.X.shape[1] for t in together] == [e.width for e in encs] and len(encs) >= 3
    assert all(json.loads(F.feature_path(k).with_suffix(".json").read_text())["layers_in_pass"] == len(encs)
               for k in keys)
    for e, k, t in zip(encs, keys, together):
        alone = F.extract(e, data, k, device="cpu", batch_size=16, progress=False, force=True)
        assert np.allclose(t.X, alone.X, rtol=0, atol=1e-5 * np.abs(alone.X).max())


def test_prefetch_layers_caches_every_layer_and_load_features_extracts_nothing(cache, monkeypatch):
    from diffred.config import RunConfig
    encs = _layer_encoders()
    cfg = RunConfig(model="cnn_ce_s1", dataset="digits", n_train=200, n_test=100, image_size=28)
    calls = []
    real = F.extract_layers
    monkeypatch.setattr(F, "extract_layers", lambda e, *a, **k: calls.append(len(e)) or real(e, *a, **k))
    F.prefetch_layers(cfg, [e.layer for e in encs], progress=False)
    assert calls == [len(encs), len(encs)]  # one pass per split, every layer in it
    F.prefetch_layers(cfg, [e.layer for e in encs], progress=False)
    assert calls == [len(encs), len(encs)]  # all cached: nothing extracted
    monkeypatch.setattr(F, "extract", lambda *a, **k: pytest.fail("extracted again"))
    for e in encs:
        f = F.load_features(dataclasses.replace(cfg, layer=e.layer), "train", progress=False)
        assert f.X.shape == (200, e.width)

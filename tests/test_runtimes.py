"""Runtimes: OpenVINO agrees with torch float32, falls back to torch when it cannot convert,
reuses its converted model, and every runtime/precision has its own feature key."""

import logging

import numpy as np
import pytest
import torch

from diffred import features as F
from diffred import runtimes as R
from diffred.config import RunConfig
from diffred.datasets import ImageData
from diffred.device import resolve_runtime, resolved_precision
from diffred.models import Encoder, load_encoder

pytest.importorskip("openvino")

#: OpenVINO float32 features within this relative difference of torch float32
REL_TOL = 1e-4


class Small(torch.nn.Module):
    """A small convolutional net with timm's interface (conv, BN, ReLU, two stages, pooling)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stage0 = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                          torch.nn.ReLU())
        self.stage1 = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU())

    def forward_features(self, x):
        return self.stage1(self.stage0(x))

    def forward_head(self, x, pre_logits=False):
        return x.mean((2, 3))


def small_encoder(layer="penultimate", width=16):
    return Encoder(name="small", arch="small", model=Small().eval(), width=width, mean=(0.5,) * 3,
                   std=(0.5,) * 3, interpolation="bilinear", native_size=16, source="test", licence="n/a",
                   weights_sha256="abc", layer=layer)


def images(n=32, size=12, seed=0):
    rng = np.random.default_rng(seed)
    return ImageData("toy", "train", rng.integers(0, 255, (n, size, size), dtype=np.uint8),
                     rng.integers(0, 3, n), ["a", "b", "c"], "synthetic")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path))
    return tmp_path


def rel_diff(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def run(enc, data, runtime, precision, batch=8, size=16):
    runner = R.make_runner(enc, runtime, precision, torch.device("cpu"), size, batch)
    return F._run_encoder(enc, data, 0, len(data), size, torch.device("cpu"), precision, batch, runner), runner


@pytest.mark.parametrize("layer,width", [("penultimate", 16), ("stage0", 8)])
def test_openvino_agrees_with_torch_float32(cache, layer, width):
    enc, data = small_encoder(layer, width), images(n=29)  # 29: the last batch of 8 is padded
    ov_x, runner = run(enc, data, "openvino", "float32")
    assert runner.runtime == "openvino"
    ref, _ = run(enc, data, "torch", "float32")
    assert ov_x.shape == ref.shape == (29, width)
    assert rel_diff(ov_x, ref) < REL_TOL


def test_features_do_not_depend_on_batch_position(cache):
    enc, data = small_encoder(), images(n=20)
    whole, _ = run(enc, data, "openvino", "float32", batch=8)  # batches 0-7, 8-15, 16-19 + padding
    shifted = F._run_encoder(enc, data, 5, 20, 16, torch.device("cpu"), "float32", 8,
                             R.make_runner(enc, "openvino", "float32", torch.device("cpu"), 16, 8))  # 5-12, 13-19
    assert np.allclose(whole[5:], shifted, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_lite0_openvino_agrees_with_torch_on_32_images(cache):
    enc, data = load_encoder("efficientnet_lite0"), images(n=32, size=28)
    ov_x, runner = run(enc, data, "openvino", "float32", batch=32, size=112)
    ref, _ = run(enc, data, "torch", "float32", batch=32, size=112)
    assert runner.runtime == "openvino" and rel_diff(ov_x, ref) < REL_TOL


def test_conversion_failure_falls_back_to_torch(cache, monkeypatch, caplog):
    def broken(*a, **k):
        raise RuntimeError("cannot convert this")

    monkeypatch.setattr(R, "convert", broken)
    enc, data = small_encoder(), images()
    with caplog.at_level(logging.WARNING, logger="diffred.runtimes"):
        x, runner = run(enc, data, "openvino", "float32")
    assert runner.runtime == "torch" and runner.precision == "float32"
    assert len(caplog.records) == 1 and "extracting with torch" in caplog.records[0].getMessage()
    ref, _ = run(enc, data, "torch", "float32")
    assert np.array_equal(x, ref)


class Tokens(Small):
    """A class token expanded to the batch (as a ViT does): a one-image trace fixes the batch."""

    def forward_features(self, x):
        f = super().forward_features(x).flatten(2).transpose(1, 2)  # (n, tokens, 16)
        cls = torch.ones(1, 1, 16).expand(x.shape[0], -1, -1)
        return torch.cat([cls, f], 1).transpose(1, 2)[..., None]


def test_a_trace_that_fixes_the_batch_is_converted_from_a_whole_batch(cache):
    enc = small_encoder()
    enc.model = Tokens().eval()
    module, shape = R._Features(enc).eval(), (8, 3, 16, 16)
    try:  # the one-image trace either fails to convert or gives other features
        assert not R.agrees(R._trace(module, shape, 1), module, shape)
    except Exception as err:
        assert "convert" in str(err).lower() or "shape" in str(err).lower()
    data = images(n=11)
    ov_x, runner = run(enc, data, "openvino", "float32")
    ref, _ = run(enc, data, "torch", "float32")
    assert runner.runtime == "openvino" and rel_diff(ov_x, ref) < REL_TOL


def test_agrees_tells_another_network_apart(cache):
    module, shape = R._Features(small_encoder()).eval(), (8, 3, 16, 16)
    model = R._trace(module, shape, 1)
    assert R.agrees(model, module, shape)
    other = small_encoder()
    other.model = Small().eval()
    with torch.no_grad():
        other.model.stage1[0].weight.mul_(1.01)
    assert not R.agrees(model, R._Features(other).eval(), shape)


def test_converted_model_is_cached_and_reused(cache, monkeypatch):
    enc = small_encoder()
    _, path = R.convert(enc, 16, 8)
    assert path.exists() and path.with_suffix(".bin").exists() and path.is_relative_to(cache / "openvino")
    import openvino as ov

    def no_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(ov, "convert_model", no_conversion)
    _, again = R.convert(enc, 16, 8)
    assert again == path
    assert R.ir_path(R.ir_key(enc, 16, 16)) != path  # another batch shape: another model


def test_keys_differ_by_runtime_and_precision():
    enc = small_encoder()
    keys = {(rt, p): F.feature_key(enc, "toy", "train", None, 0, 16, p, "cpu", rt)
            for rt, p in [("torch", "auto"), ("torch", "float32"), ("openvino", "float32"), ("openvino", "bfloat16")]}
    assert keys[("torch", "auto")]["precision"] == "bfloat16-autocast"
    assert keys[("openvino", "bfloat16")]["precision"] == "bfloat16"
    assert len({F.feature_path(k) for k in keys.values()}) == 4
    assert resolved_precision("auto", "cpu", "openvino") == "float32"


def test_runtime_resolution(monkeypatch):
    monkeypatch.delenv("DIFFRED_RUNTIME", raising=False)
    assert resolve_runtime("auto", "cpu") == "openvino"
    assert resolve_runtime("torch", "cpu") == "torch"
    monkeypatch.setenv("DIFFRED_RUNTIME", "torch")
    assert resolve_runtime("auto", "cpu") == "torch"
    with pytest.raises(ValueError, match="runtime"):
        resolve_runtime("tensorrt", "cpu")
    with pytest.raises(ValueError, match="runtime"):
        RunConfig(runtime="onnx")
    assert RunConfig(precision="bfloat16").precision == "bfloat16"


def test_extract_records_the_runtime_that_ran(cache):
    enc, data = small_encoder(), images(n=10)
    k = F.feature_key(enc, "toy", "train", None, 0, 16, "float32", "cpu", "openvino")
    out = F.extract(enc, data, k, progress=False)
    assert out.meta["ran_on"] == "openvino" and out.X.shape == (10, 16)


def test_runtimes_side_by_side_on_the_zoo_cnn(cache):
    """Chapter 09's comparison on a small real network: every runtime runs, torch float32 is
    the reference (difference 0), OpenVINO float32 agrees with it to 1e-4, bf16 does not."""
    from diffred.analyses import cost
    enc = load_encoder("cnn_ce_s1")
    data = {"test": images(n=64, size=28)}
    table, feats = cost.compare_runtimes(enc, data, 28, repeats=1)
    assert table.runtime.tolist() == [label for _, _, label in cost.CPU_RUNTIMES]
    by = table.set_index("runtime")
    assert by.max_rel_diff.iloc[0] == 0.0 and (table.images_per_second > 0).all() and (table.repeats == 1).all()
    assert by.loc["OpenVINO float32 (the default)", "max_rel_diff"] < 1e-4
    assert by.loc["torch bf16 autocast + channels_last (the old default)", "max_rel_diff"] > 1e-4
    assert feats["torch float32"]["test"].shape == (64, enc.width)


def test_benchmark_onnx_runtime_runner_agrees_with_torch_float32(cache):
    """The ONNX Runtime row of ``benchmarks/bench_extraction.py``: exported, padded like
    OpenVINO's last batch, and within REL_TOL of torch float32."""
    pytest.importorskip("onnxruntime")
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_extraction.py"
    spec = importlib.util.spec_from_file_location("bench_extraction", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    enc, data = small_encoder(), images(n=29)
    runner = bench.make_any_runner(enc, "onnxruntime", "float32", torch.device("cpu"), 16, 8)
    onnx_x = F._run_encoder(enc, data, 0, len(data), 16, torch.device("cpu"), "float32", 8, runner)
    ref, _ = run(enc, data, "torch", "float32")
    assert runner.runtime == "onnxruntime" and onnx_x.shape == ref.shape == (29, 16)
    assert rel_diff(onnx_x, ref) < REL_TOL

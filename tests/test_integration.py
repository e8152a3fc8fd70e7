"""The embedded default, for real: ImageNet EfficientNet-Lite0 on Fashion-MNIST, small."""

import dataclasses

import numpy as np
import pytest

from diffred import curves
from diffred.analyses import setup
from diffred.config import RunConfig
from diffred.models import load_encoder

pytestmark = pytest.mark.slow


def test_pretrained_lite0_recognises_real_photos():
    pred = setup.imagenet_predictions("efficientnet_lite0", photos=("chelsea", "coffee"))
    assert "cat" in pred.prediction.iloc[0]
    assert pred.prediction.iloc[1] == "espresso" and pred.probability.iloc[1] > 0.5


def test_real_subset_curve_small(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path))
    cfg = RunConfig(dataset="fashion_mnist", n_train=1200, n_test=400, image_size=64,
                    fractions=(0.01, 0.1, 0.5, 1.0), seeds=(1, 2))
    curve = curves.subset_curve(cfg, progress=False)
    s = curves.summarise(curve).set_index("fraction")
    assert s.loc[1.0, "acc_mean"] > 0.7          # pre-trained features are good
    assert s.loc[0.5, "acc_mean"] > s.loc[0.01, "acc_mean"]
    again = curves.subset_curve(cfg, progress=False)  # cached: identical
    assert np.array_equal(curve.accuracy.values, again.accuracy.values)
    rand = curves.subset_curve(dataclasses.replace(cfg, model="efficientnet_lite0_random",
                                                        fractions=(1.0,), seeds=(1,)), progress=False)
    assert rand.accuracy.iloc[0] < s.loc[1.0, "acc_mean"]


def test_lite2_loads_with_its_width():
    enc = load_encoder("efficientnet_lite2")
    assert enc.width == 1280 and enc.native_size == 260

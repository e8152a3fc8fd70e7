"""Chapter 06's model-size axis (EfficientNet-Lite0/1/2, issue 18 item 5) and the sweep grid
of chapter 13 at full size (item 6), with known answers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from diffred import sweep
from diffred.analyses import Result, architectures as arch

REPO = Path(__file__).resolve().parents[1]


def _curve(model, dataset, accs, width=100):
    """A random-subset curve at fractions 0.1, 0.2 and 1.0 (two seeds, equal accuracy)."""
    return pd.DataFrame([{"model": model, "dataset": dataset, "selector": "random", "fraction": f,
                          "k": round(width * f), "seed": s, "accuracy": a, "duplicate_k": False}
                         for f, a in zip((0.1, 0.2, 1.0), accs) for s in (1, 2)])


def _build():
    curves = pd.concat([_curve("big", "x", (0.5, 0.8, 0.9)), _curve("big", "y", (0.5, 0.6, 0.7)),
                        _curve("small", "x", (0.5, 0.85, 0.9)), _curve("small_random", "x", (0.1, 0.2, 0.3)),
                        _curve("unlisted", "x", (0.1, 0.2, 0.3))], ignore_index=True)
    dr = pd.DataFrame({"model": ["big", "big", "small", "small_random", "unlisted"],
                       "dataset": ["x", "y", "x", "x", "x"], "full_accuracy": [0.9, 0.7, 0.9, 0.3, 0.3],
                       "dr_interp": [0.8, 0.6, 0.9, 0.1, 0.5], "classes": [10, 20, 10, 10, 10]})
    published = pd.DataFrame({"model": ["big", "small"], "params_m": [6.0, 4.0], "top1": [78.0, 75.0]})
    return curves, dr, published


def test_size_table_orders_by_parameters_and_averages_over_tasks():
    t = arch.size_table(*_build())
    assert list(t.model) == ["small", "big"]          # fewest parameters first; unlisted models left out
    big = t.set_index("model").loc["big"]
    assert big.tasks == 2 and big.width == 100
    assert big.dr == pytest.approx(0.7) and big.full_accuracy == pytest.approx(80.0)
    assert big.gap20 == pytest.approx((10 + 10) / 2)  # 0.9 - 0.8 and 0.7 - 0.6, in points
    assert math.isnan(big.dr_random)
    assert t.set_index("model").loc["small", "dr_random"] == pytest.approx(0.1)


def test_size_sentence_names_the_trend_and_says_it_is_no_test():
    t = arch.size_table(*_build())
    s = arch.size_sentence(t)
    assert "small, big" in s and "4.0M to 6.0M" in s and "75.0% to 78.0%" in s
    assert "0.900, 0.700" in s and "it falls with model size" in s and "not a test" in s
    assert "rises" in arch.size_sentence(t.assign(dr=[0.5, 0.6]))
    assert "does not move monotonically" in arch.size_sentence(pd.concat([t, t]).assign(dr=[0.5, 0.6, 0.4, 0.7]))
    assert "fewer than two" in arch.size_sentence(t.iloc[:1])


def test_setting_quotes_words_the_models_datasets_and_widths():
    curves, dr, published = _build()
    r = Result({"models": ["big", "small", "small_random"], "datasets": ["x", "y"]},
               {"dr": dr, "sizes": arch.size_table(curves, dr, published)})
    q = arch.setting_quotes(r)
    assert q["models_pre"] == "big and small" and q["models_random"] == "small_random"
    assert q["datasets_used"] == "x and y" and q["classes_note"] == "of 10 to 20 classes"
    assert q["widths_note"] == "the probed penultimate layer has 100 neurons in each"
    assert q["setting_note"].startswith("Here the whole layer of big on x reaches")
    assert arch.setting_quotes(Result({"models": ["big"], "datasets": ["x"]}, {
        "dr": dr.assign(classes=10), "sizes": r.sizes}))["classes_note"] == "all 10-class"


def test_published_imagenet_numbers_are_the_three_lite_models():
    t = arch.imagenet_accuracy()
    assert list(t.model) == [f"efficientnet_lite{i}" for i in (0, 1, 2)]
    assert t.params_m.is_monotonic_increasing and t.top1.is_monotonic_increasing
    with pytest.raises(FileNotFoundError, match="data/imagenet"):
        arch.imagenet_accuracy(REPO / "data" / "imagenet" / "no_such.csv")


def test_chapter_06_parameters_and_default_grid_block_agree():
    text = (REPO / "chapters" / "06_architectures.md").read_text()
    jobs = sweep.load_grid(REPO / "data/grids/default.yaml", scaled=False)
    ch06 = {j.config.model for j in jobs if j.config.n_test == 2000}
    assert ch06 == {f"efficientnet_lite{i}" for i in (0, 1, 2)} | {"efficientnet_lite0_random"}
    assert all(f'"{m}"' in text for m in ch06)


def test_how_random_grid_parses_with_the_size_axis_and_every_stage():
    jobs = sweep.load_grid(REPO / "data/grids/how_random.yaml", scaled=False)
    assert {j.config.model for j in jobs} >= {f"efficientnet_lite{i}{s}" for i in (0, 1, 2) for s in ("", "_random")}
    assert {j.config.layer for j in jobs} >= {f"blocks.{i}" for i in range(7)}
    assert all(j.config.image_size == 112 for j in jobs)


def test_how_random_grid_dry_run_lists_every_job(tmp_path):
    cli = Path(sys.executable).parent / "diffred"
    env = os.environ | {"DIFFRED_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}  # an empty cache: nothing cached
    out = subprocess.run([str(cli), "sweep", str(REPO / "data/grids/how_random.yaml"), "--dry-run"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    n = len(sweep.load_grid(REPO / "data/grids/how_random.yaml"))
    assert out.stdout.startswith(f"{n} probe runs: 0 in the cache, {n} to run")

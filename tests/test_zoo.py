"""The project's own models: training (a few steps, loss falls), cards, loading by name,
intermediate layers, and the claim checks on synthetic tables with known answers."""

import numpy as np
import pandas as pd
import pytest
import torch

from diffred import curves, train, zoo
from diffred.analyses import pretraining
from diffred.models import layer_output, load_encoder, probe_layers


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    cfg = train.variant_config("cnn_ce", seed=7, steps=60, batch_size=64)
    model, info = train.train(cfg, log=lambda *a: None, log_every=10)
    card = train.save(model, cfg, info, root=root, robust=False, log=lambda *a: None)
    return root, card, info


def test_training_lowers_the_loss_and_writes_a_card(tiny_zoo):
    root, card, info = tiny_zoo
    losses = [h["loss"] for h in info["history"]]
    assert np.mean(losses[-2:]) < losses[0] - 0.3, losses
    assert card["upstream_accuracy"] > 0.4  # 5 classes: chance is 0.2
    for suffix in (".safetensors", ".json", ".md"):
        assert (root / f"cnn_ce_s7{suffix}").is_file()
    assert "Model card: cnn_ce_s7" in (root / "cnn_ce_s7.md").read_text()


def test_training_is_reproducible():
    cfg = train.variant_config("cnn_mrl", seed=3, steps=5, batch_size=32)
    a, _ = train.train(cfg, log=lambda *a: None)
    b, _ = train.train(cfg, log=lambda *a: None)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_zoo_model_loads_by_name_and_checks_its_weights(tiny_zoo, monkeypatch):
    root, card, _ = tiny_zoo
    monkeypatch.setenv(zoo.ZOO_ENV, str(root))
    from diffred import models
    models._load_cached.cache_clear()
    enc = load_encoder("cnn_ce_s7")
    assert enc.width == 256 and enc.native_size == 28 and enc.weights_sha256 == card["sha256"]
    x = enc.preprocess(np.zeros((3, 28, 28), np.uint8))
    assert enc.features(x).shape == (3, 256)
    assert probe_layers(enc.model) == ["stage1", "stage2", "stage3", "stage4", "penultimate"]
    assert load_encoder("cnn_ce_s7", layer="stage2").width == 32
    with pytest.raises(ValueError, match="stage1, stage2"):
        load_encoder("cnn_ce_s7", layer="nope")
    w = root / "cnn_ce_s7.safetensors"
    original = w.read_bytes()
    try:
        w.write_bytes(original[:-8] + b"\x00" * 8)
        models._load_cached.cache_clear()
        with pytest.raises(ValueError, match="does not match its card"):
            load_encoder("cnn_ce_s7")
    finally:
        w.write_bytes(original)
        models._load_cached.cache_clear()


def test_layer_output_pools_and_stops_early():
    m = zoo.build("cnn", 32, 5)
    calls = []
    m.stage4.register_forward_hook(lambda *a: calls.append(1))
    out = layer_output(m, "stage2", torch.zeros(4, 1, 28, 28))
    assert out.shape == (4, 32) and not calls  # stage4 never ran
    v = zoo.build("vit", 16, 5)
    assert layer_output(v, "stage1", torch.zeros(2, 3, 28, 28)).shape == (2, 64)


def test_pgd_stays_in_the_ball_and_the_image_range():
    torch.manual_seed(0)
    m = zoo.build("cnn", 16, 5)
    x = torch.rand(8, 1, 28, 28)
    y = torch.randint(0, 5, (8,))
    adv = train.pgd_l2(m, x, y, epsilon=0.5, steps=4)
    assert (adv - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1


def test_decov_is_zero_for_uncorrelated_and_positive_for_correlated():
    h = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert float(train.decov(h)) == pytest.approx(0.0, abs=1e-7)
    g = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    assert float(train.decov(g)) == pytest.approx(1.0)  # cov = [[1, 1], [1, 1]]: off-diagonal mass 2, half of it


def _table(values: dict) -> pd.DataFrame:
    rows = []
    for (variant, ds), seeds in values.items():
        for i, v in enumerate(seeds):
            rows.append({"variant": variant, "dataset": ds, "train_seed": i + 1, "ratio_small": v})
    return pd.DataFrame(rows)


def test_compare_variants_and_verdicts_on_known_tables():
    t = _table({("a", "x"): [0.80, 0.82], ("ref", "x"): [0.70, 0.71],
                ("a", "y"): [0.75, 0.76], ("ref", "y"): [0.70, 0.72],
                ("a", "z"): [0.70, 0.74], ("ref", "z"): [0.71, 0.72]})
    c = pretraining.compare_variants(t, "a", "ref", direction=+1).set_index("dataset")
    assert c.loc["x", "difference"] == pytest.approx(0.105)
    assert list(c.call) == ["as the paper", "as the paper", "within seed spread"]
    assert pretraining.verdict(c.call) == "holds"
    flipped = pretraining.compare_variants(t, "a", "ref", direction=-1)
    assert pretraining.verdict(flipped.call) == "does not hold (the opposite is seen)"
    assert pretraining.verdict(pd.Series(["as the paper", "opposite", "within seed spread"])).startswith("inconclusive")


def test_width_trend_spearman():
    t = pd.DataFrame({"dataset": "x", "width": [16, 64, 256, 1024], "ratio_small": [0.5, 0.6, 0.7, 0.9]})
    r = pretraining.width_trend(t)
    assert r.spearman.iloc[0] == pytest.approx(1.0) and r.call.iloc[0] == "as the paper"
    assert pretraining.width_trend(t.assign(ratio_small=t.ratio_small[::-1].to_numpy())).call.iloc[0] == "opposite"


def test_redundancy_ratio_small():
    rows = []
    for f, acc in [(0.01, 0.5), (0.05, 0.6), (0.1, 0.7), (0.2, 0.8), (0.5, 0.9), (1.0, 1.0)]:
        rows.append({"model": "m", "dataset": "d", "selector": "random", "fraction": f, "k": int(f * 100),
                     "seed": 1, "accuracy": acc, "duplicate_k": False})
    r = curves.redundancy(pd.DataFrame(rows))
    assert r.ratio_small.iloc[0] == pytest.approx(0.65)
    assert r.dr_closest.iloc[0] == pytest.approx(0.5)  # ratio 0.9 reached at fraction 0.5


def test_every_variant_is_committed_and_loads_offline(monkeypatch):
    """data/models/ holds every variant of diffred.train, each trained with the recipe the
    code names (the card's config), small, and loadable by name with its sha256 checked."""
    import dataclasses
    import json

    monkeypatch.delenv(zoo.ZOO_ENV, raising=False)
    names = zoo.zoo_names()
    variants = {zoo.read_card(n)["config"]["variant"] for n in names}
    assert variants == set(train.VARIANTS), f"missing: {set(train.VARIANTS) - variants}"
    for n in names:
        card = zoo.read_card(n)
        cfg = card["config"]
        expected = dataclasses.asdict(train.variant_config(cfg["variant"], seed=cfg["seed"]))
        assert json.loads(json.dumps(expected)) == cfg, f"{n} was trained with another recipe"
        assert (zoo.ZOO_DIR / f"{n}.safetensors").stat().st_size < 5e6
        assert 0.2 < card["upstream_accuracy"] <= 1.0 and card["train_seconds"] > 0
        enc = load_encoder(n)
        assert enc.width == cfg["width"] and enc.weights_sha256 == card["sha256"]
    adv = [zoo.read_card(n) for n in names if n.startswith("cnn_adv")]
    ref = [zoo.read_card(n) for n in names if n.startswith("cnn_ce_")]
    assert all(c["robust_accuracy"] is not None for c in adv + ref)


def test_cli_train(tmp_path, capsys):
    from diffred import cli
    assert cli.main(["train", "cnn_w16", "--seeds", "4", "--steps", "3", "--out", str(tmp_path)]) == 0
    card = zoo.read_card("cnn_w16_s4", tmp_path)
    assert card["config"]["steps"] == 3 and card["config"]["width"] == 16
    assert cli.main(["train", "cnn_huge"]) == 2
    assert "unknown variant 'cnn_huge'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                                  "efficientnet_lite2_random", "cnn_ce_s1"])
def test_layer_names_without_a_network_are_the_networks_own(name):
    from diffred.models import layer_names
    assert layer_names(name) == probe_layers(load_encoder(name).model)

"""The sentence that says why a chapter's full-layer accuracy differs from chapter 02's
headline (issue 14, item 6): known answers against chapter 02's real parameters cell."""

import pytest

from diffred.analyses import setting


@pytest.fixture(autouse=True)
def _default_scale(monkeypatch):
    monkeypatch.delenv("DIFFRED_SCALE", raising=False)


def test_headline_config_is_chapter_02s_parameters_cell():
    head = setting.headline_config()
    assert (head.model, head.dataset, head.n_train, head.n_test, head.image_size, head.probe) == (
        "efficientnet_lite0", "fashion_mnist", None, None, 112, "logistic")


def test_a_smaller_sample_is_named_against_the_headline():
    note = setting.note_for("efficientnet_lite0", "fashion_mnist", 0.846, n_train=5000)
    assert note.startswith("Here the whole layer of efficientnet_lite0 on fashion_mnist reaches 84.6% "
                           "(5,000 training images, all test images, 112 px, the logistic probe).")
    assert "5,000 training images here against all training images" in note
    assert "px here" not in note and "test images here" not in note  # only what differs is named


def test_the_headline_setting_and_another_model():
    same = setting.note_for("efficientnet_lite0", "fashion_mnist", 0.89)
    assert same.endswith("differ only by the probe's noise.")
    other = setting.note_for("cnn_ce_s1", "digits", 0.95, image_size=None)
    assert "another model or task (efficientnet_lite0 on fashion_mnist)" in other
    assert "the model's own input size" in other


def test_smoke_scale_shrinks_both_sides(monkeypatch):
    monkeypatch.setenv("DIFFRED_SCALE", "smoke")
    note = setting.note_for("efficientnet_lite0", "fashion_mnist", 0.8, n_train=5000)
    assert "64 px" in note and "differ only by the probe's noise" in note  # both scaled to 1,500 images at 64 px

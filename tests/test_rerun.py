"""`diffred run`: a chapter re-executed with a user's checkpoint and image folder, and the
clear, clean failures for bad input (nothing half-written is left behind)."""

import json
import os
import re
import sys
from html.parser import HTMLParser

import nbformat
import numpy as np
import pandas as pd
import pytest
import timm
import torch

from diffred import cli
from diffred.datasets import write_image_folder
from diffred.models import load_encoder, save_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder("digits", tmp_path_factory.mktemp("data") / "digits_folder", 20, 10)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    model = timm.create_model("resnet18", pretrained=False)
    return save_checkpoint(model, tmp_path_factory.mktemp("ck") / "resnet18_random.pth",
                           nest="model", prefix="module.")


def test_image_folder_writer_layout(folder):
    for split, n in (("train", 20), ("test", 10)):
        classes = sorted(p.name for p in (folder / split).iterdir())
        assert classes == [str(i) for i in range(10)]
        assert all(len(list((folder / split / c).glob("*.png"))) == n for c in classes)
    with pytest.raises(FileExistsError):
        write_image_folder("digits", folder, 5)


def test_safetensors_checkpoint_loads(tmp_path):
    torch.manual_seed(0)
    m = timm.create_model("test_resnet", pretrained=False)
    path = save_checkpoint(m, tmp_path / "m.safetensors")
    enc = load_encoder(str(path), arch="test_resnet")
    assert all(torch.equal(a, b) for a, b in zip(enc.model.state_dict().values(), m.state_dict().values()))


@pytest.mark.slow
def test_run_chapter_with_checkpoint_and_folder(tmp_path, checkpoint, folder, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    args = ["run", "02_random_subsets", "--quiet", "--out", str(out), "-p", f"model={checkpoint}",
            "-p", "arch=resnet18", "-p", f"datasets={folder}", "-p", "fractions=[0.05, 0.2, 1.0]",
            "-p", "seeds=[1, 2]", "-p", "image_size=64"]
    assert cli.main(args) == 0
    (run,) = out.iterdir()
    assert run.name.startswith("02_random_subsets__arch-resnet18_datasets-digits_folder")
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {"02_random_subsets.ipynb", "02_random_subsets.html", "parameters.json",
            "figures/fig-subset-curves.png", "figures/fig-subset-curves.svg",
            "figures/fig-subset-curves.csv", "figures/fig-dr-table.csv"} <= files
    assert json.loads((run / "parameters.json").read_text())["datasets"] == [str(folder)]
    curve = pd.read_csv(run / "figures" / "fig-subset-curves.csv")
    ours = curve[curve.source == "ours"]
    assert sorted(ours.k) == [25, 102, 512]  # resnet18 is 512 wide: floor(f * 512)
    assert ours.acc_mean.between(0.0, 1.0).all() and ours.full.iloc[0] > 0.1  # above chance (10 classes)
    assert "site/chapters/02_random_subsets.html" in (run / "02_random_subsets.html").read_text()
    page = (run / "site" / "chapters" / "02_random_subsets.html").read_text()
    assert page.count('class="figure-download"') >= 3 and "Cite this figure" in page
    assert "the checkpoint resnet18_random.pth (resnet18)" in visible_text(page)
    assert not list(out.glob("*.partial"))


@pytest.mark.slow
def test_run_failing_cell_reports_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    assert cli.main(["run", "02", "--quiet", "--out", str(out), "-p", "probe=nonsense",
                     "-p", "datasets=digits", "-p", "fractions=[1.0]", "-p", "seeds=[1]"]) == 2
    err = capsys.readouterr().err
    assert "stopped in cell" in err and "unknown probe 'nonsense'" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def _refused(args, capsys, tmp_path):
    out = tmp_path / "results"
    rc = cli.main(["run", "02", "--quiet", "--out", str(out), *args])
    assert rc == 2
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    return capsys.readouterr().err


def test_bad_inputs_are_refused_before_anything_runs(tmp_path, capsys, folder):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 100)
    assert "not a readable checkpoint" in _refused(["-p", f"model={junk}", "-p", "arch=resnet18"], capsys, tmp_path)
    assert "needs its timm architecture" in _refused(["-p", f"model={junk}"], capsys, tmp_path)
    assert "outside (0, 1]" in _refused(["-p", "fractions=[0.5, 2.0]"], capsys, tmp_path)
    assert "should be a int" in _refused(["-p", "image_size=big"], capsys, tmp_path)
    one = tmp_path / "one_class" / "only"
    one.mkdir(parents=True)
    np.save(one / "x.npy", np.zeros(3))
    assert "at least 2" in _refused(["-p", f"datasets={one.parent}"], capsys, tmp_path)
    broken = tmp_path / "broken"
    import shutil
    shutil.copytree(folder, broken)
    (broken / "train" / "3" / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    err = _refused(["-p", f"datasets={broken}"], capsys, tmp_path)
    assert "1 of" in err and "damaged.png" in err and "cannot be read" in err
    assert "does not exist" in _refused(["-p", "datasets=/no/such/folder"], capsys, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_request_without_cuda(tmp_path, capsys):
    assert "no CUDA GPU" in _refused(["--device", "cuda"], capsys, tmp_path)


class _Text(HTMLParser):
    """The text a reader sees, without scripts, styles, code and math (``span.math``)."""

    SKIP = {"script", "style", "pre", "code"}

    def __init__(self):
        super().__init__()
        self.parts, self.stack = [], []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag in self.SKIP or "math" in classes or self.stack:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if not self.stack:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


#: Inline math MyST would have parsed, left raw: $<non-space>...<non-space>$.
RAW_DOLLAR_MATH = re.compile(r"(?<![\\$])\$(?=\S)[^$\n]*?\S\$(?!\d)")
MACHINE_PATHS = ("/tmp/", "/root/", "/work/", "site-packages")


@pytest.mark.slow
def test_rerun_page_is_rendered_like_the_book(tmp_path, monkeypatch):
    """Chapter 02 re-run on another model (the zoo's small CNN, on digits): its page names that
    model, pasted every glued value, holds math for the book's own MathJax and no stderr, no
    machine path, folded code, and offers the executed notebook."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DIFFRED_CACHE", str(cache))
    out = tmp_path / "results"
    assert cli.main(["run", "02", "--quiet", "--out", str(out), "-p", "model=cnn_ce_s1", "-p", "datasets=['digits']",
                     "-p", "fractions=[0.1, 0.2, 1.0]", "-p", "seeds=[1]", "-p", "image_size=32"]) == 0
    (run,) = out.iterdir()
    site = run / "site"
    html = (site / "chapters" / "02_random_subsets.html").read_text()
    text = visible_text(html)
    used = text.split("What this build uses.")[1][:400]  # Sphinx's smart quotes: ’
    assert used.startswith(" The project\u2019s cnn_ce_s1, frozen") and "EfficientNet-Lite0" not in used
    assert "{glue" not in html and "pasted-text" in html
    assert not RAW_DOLLAR_MATH.findall(text) and "\\(" not in text
    assert html.count('class="math notranslate nohighlight"') >= 3
    assert 'src="../_static/tex-mml-chtml.js' in html and (site / "_static" / "tex-mml-chtml.js").is_file()
    assert "stderr" not in html and "Tqdm" not in html
    assert not [p for p in (*MACHINE_PATHS, str(cache), os.environ.get("VIRTUAL_ENV") or "/.venv/") if p in html]
    assert html.count("tag_hide-input") >= 2  # the chapter's visible code cells are folded
    assert (site / "chapters" / "figures" / "fig-subset-curves.png").is_file()
    nb = nbformat.reads((site / "_sources" / "chapters" / "02_random_subsets.ipynb").read_text(), as_version=4)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_cli_output_is_kept_per_command_and_inputs(tmp_path, monkeypatch):
    from diffred.analyses import rerun
    runs = []

    def fake_cli(command):
        runs.append(command)
        (tmp_path / f"{rerun.CHAPTER}__run{len(runs)}").mkdir()
        return f"stdout {len(runs)}"

    monkeypatch.setattr(rerun, "run_cli", fake_cli)
    cmd = [sys.executable, "-m", "diffred.cli", "run", rerun.CHAPTER, "-p", "seeds=[1]"]
    assert rerun.cli_output(cmd, tmp_path) == ("stdout 1", tmp_path / f"{rerun.CHAPTER}__run1")
    assert rerun.cli_output(cmd, tmp_path) == ("stdout 1", tmp_path / f"{rerun.CHAPTER}__run1") and len(runs) == 1
    other = cmd[:-1] + ["seeds=[1, 2]"]  # other arguments: run again
    assert rerun.cli_output(other, tmp_path)[0] == "stdout 2" and len(runs) == 2
    import shutil
    shutil.rmtree(tmp_path / f"{rerun.CHAPTER}__run1")  # the kept run's folder is gone: run again
    assert rerun.cli_output(cmd, tmp_path) == ("stdout 3", tmp_path / f"{rerun.CHAPTER}__run3")
    monkeypatch.setenv("DIFFRED_SCALE", "smoke")  # another setting: run again
    assert rerun.cli_output(cmd, tmp_path)[0] == "stdout 4"

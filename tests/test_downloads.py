"""The notebook download extension, the re-run page's one-page book and the prose names of
models and datasets, on constructed inputs with known answers."""

from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest

from diffred import downloads, names, rerun_site
from diffred.analyses.rerun import file_listing


def test_scrub_paths_replaces_longest_spelling_first():
    paths = {"/data/cache": "$DIFFRED_CACHE", "/data": "<project>", "/root": "~"}
    ordered = dict(sorted(paths.items(), key=lambda kv: len(kv[0]), reverse=True))
    text = "read /data/cache/f.npz from /data/x and /root/.bashrc"
    assert downloads.scrub_paths(text, ordered) == "read $DIFFRED_CACHE/f.npz from <project>/x and ~/.bashrc"


def test_machine_paths_cover_cache_and_project(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", str(tmp_path / "c"))
    paths = downloads.machine_paths()
    assert paths[str(tmp_path / "c")] == "$DIFFRED_CACHE"
    assert paths[str(downloads.PROJECT_ROOT)] == "<project>"
    lengths = [len(k) for k in paths]
    assert lengths == sorted(lengths, reverse=True)


def _executed(tmp_path, text="print('hi')", output="hi\n"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(text)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output),
                    nbformat.v4.new_output("stream", name="stderr", text="TqdmWarning: /venv/site-packages")]
    nb.cells = [cell]
    path = tmp_path / "_build" / downloads.EXECUTED_FOLDER / "chapters" / "02_x.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_page_context_publishes_the_executed_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRED_CACHE", "/cache/here")
    _executed(tmp_path, output="cached at /cache/here/features\n")
    outdir = tmp_path / "_build" / "html"
    app = SimpleNamespace(outdir=str(outdir), builder=SimpleNamespace(format="html"))
    context = {"page_source_suffix": ".md"}
    downloads.add_notebook_download(app, "chapters/02_x", "page.html", context, None)
    assert context["ipynb_source"] == "chapters/02_x.ipynb"
    published = nbformat.reads((outdir / "_sources" / "chapters" / "02_x.ipynb").read_text(), as_version=4)
    assert [o.text for o in published.cells[0].outputs] == ["cached at $DIFFRED_CACHE/features\n"]
    plain = {"page_source_suffix": ".md"}
    downloads.add_notebook_download(app, "chapters/sources", "page.html", plain, None)
    assert "ipynb_source" not in plain  # a page MyST-NB did not execute has no notebook


def test_cached_page_publishes_the_cached_outputs(tmp_path):
    """A page served from the execution cache: MyST-NB wrote its notebook without outputs;
    the published copy carries the outputs jupyter-cache holds for that code."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    executed = _executed(tmp_path, text="x = 1\nprint(x)", output="1\n")
    nb = nbformat.read(executed, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cache = tmp_path / "_build" / ".jupyter_cache"
    get_cache(str(cache)).cache_notebook_bundle(CacheBundleIn(nb, "chapters/02_x.md"), check_validity=False)
    parsed = nbformat.from_dict(nb)
    parsed.cells[0].outputs = []
    nbformat.write(parsed, executed)  # what MyST-NB writes on a cache hit

    target = tmp_path / "out.ipynb"
    downloads.publish_notebook(executed, target, cache)
    published = nbformat.reads(target.read_text(), as_version=4)
    assert [o.text for o in published.cells[0].outputs] == ["1\n"]  # stderr dropped as before
    other = tmp_path / "other.ipynb"  # code the cache never ran: nothing to merge
    parsed.cells[0].source = "y = 2"
    nbformat.write(parsed, other)
    downloads.publish_notebook(other, target, cache)
    assert nbformat.reads(target.read_text(), as_version=4).cells[0].outputs == []
    assert downloads.with_cached_outputs({"cells": []}, tmp_path / "missing") == {"cells": []}


def test_publish_refuses_what_is_not_json(tmp_path):
    bad = tmp_path / "x.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="x.ipynb is not a JSON notebook"):
        downloads.publish_notebook(bad, tmp_path / "out.ipynb")


def test_fold_code_tags_and_drops_stderr():
    nb = nbformat.v4.new_notebook()
    shown, hidden, text = (nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2"),
                           nbformat.v4.new_markdown_cell("$x$"))
    hidden.metadata["tags"] = ["remove-input"]
    shown.outputs = [nbformat.v4.new_output("stream", name="stderr", text="100%|###| tqdm"),
                     nbformat.v4.new_output("stream", name="stdout", text="ok")]
    nb.cells = [shown, hidden, text]
    out = rerun_site.fold_code(nb)
    assert out.cells[0].metadata["tags"] == ["hide-input"]
    assert [o["name"] for o in out.cells[0].outputs] == ["stdout"]
    assert out.cells[1].metadata["tags"] == ["remove-input"]
    assert "tags" not in out.cells[2].metadata


def test_site_config_is_the_books_without_execution(tmp_path):
    (tmp_path / "_mathjax").mkdir()
    (tmp_path / "_css").mkdir()
    (tmp_path / "_config.yml").write_text(
        "title: t\nexecute:\n  execute_notebooks: cache\n  stderr_output: remove\n"
        "sphinx:\n  config:\n    extensions: [myst_nb, diffred.bookcache, diffred.downloads]\n"
        "    html_static_path: [_mathjax, _figures, _css]\n")
    config = rerun_site.site_config(tmp_path)
    assert config["execute"] == {"execute_notebooks": "off", "stderr_output": "remove"}
    assert config["sphinx"]["config"]["extensions"] == ["myst_nb", "diffred.downloads"]
    assert config["sphinx"]["config"]["html_static_path"] == [str(tmp_path / "_mathjax"), str(tmp_path / "_css")]
    (tmp_path / "_css").rmdir()
    with pytest.raises(FileNotFoundError, match="make setup"):
        rerun_site.site_config(tmp_path)


def test_redirect_page_points_at_the_site():
    html = rerun_site.redirect_page("site/chapters/02.html")
    assert 'content="0; url=site/chapters/02.html"' in html and 'href="site/chapters/02.html"' in html


def test_model_and_dataset_words():
    assert names.model_words("efficientnet_lite0") == "the ImageNet-pretrained EfficientNet-Lite0"
    assert names.model_words("efficientnet_lite2_random") == "a randomly initialised EfficientNet-Lite2"
    assert names.model_words("/m/robust.pth", "resnet50") == "the checkpoint robust.pth (resnet50)"
    assert names.model_words("vit_base_patch16_224") == "timm's vit_base_patch16_224"
    assert names.model_words("cnn_ce_s1") == "the project's cnn_ce_s1"
    assert names.dataset_words("fashion_mnist_heldout") == "held-out Fashion-MNIST classes 5-9"
    quotes = names.model_quotes("efficientnet_lite1", key="control")
    assert quotes == {"control_words": "the ImageNet-pretrained EfficientNet-Lite1",
                      "control_words_cap": "The ImageNet-pretrained EfficientNet-Lite1",
                      "control_short": "EfficientNet-Lite1"}
    assert names.dataset_quotes("mnist5k") == {"dataset_words": "MNIST-5k"}
    assert names.dataset_words("/data/birds") == "the image folder birds"
    with pytest.raises(ValueError, match="model is empty"):
        names.model_words(" ")


def test_file_listing_summarises_the_site(tmp_path):
    (tmp_path / "site" / "_static").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("abc")
    (tmp_path / "site" / "_static" / "a.js").write_text("12345")
    (tmp_path / "x.ipynb").write_text("{}")
    listing = file_listing(tmp_path)
    pd.testing.assert_frame_equal(listing, pd.DataFrame({"file": ["site/ (2 files)", "x.ipynb"], "bytes": [8, 2]}))

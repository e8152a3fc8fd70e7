"""Figure downloads and cite blocks (diffred.figures), on synthetic figures."""

import hashlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from diffred import figures  # noqa: E402


def _fig():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1], label="a")
    ax.legend()
    return fig


def test_publish_writes_real_files_and_numbers_in_order(tmp_path):
    book = figures.FigureBook("99_not_in_the_book", "A chapter", out_dir=tmp_path, url="figs")
    data = pd.DataFrame({"fraction": [0.1, 1.0], "accuracy": [0.5, 0.9]})
    first = book.publish(_fig(), data, "fig-one", "First")
    second = book.publish(_fig(), {"ours": data, "paper": data.assign(accuracy=0.8)}, "fig-two", "Second",
                          reproduces="Fig. 1")
    assert (first.number, second.number) == (1, 2)
    png, svg, csv = (first.files[k] for k in ("PNG", "SVG", "CSV"))
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in svg.read_bytes()[:2000]
    pd.testing.assert_frame_equal(pd.read_csv(csv), data)
    both = pd.read_csv(second.files["CSV"])
    assert list(both.source.unique()) == ["ours", "paper"] and len(both) == 4
    html = second._repr_html_()
    for name in ("figs/fig-two.png", "figs/fig-two.svg", "figs/fig-two.csv"):
        assert f'href="{name}"' in html
    assert 'data-number="2"' in html and "Cite this figure" in html


def test_same_figure_gives_same_bytes(tmp_path):
    digests = []
    for run in range(2):
        book = figures.FigureBook("01_setup", "Setup", out_dir=tmp_path / str(run), url="x")
        p = book.publish(_fig(), pd.DataFrame({"a": [1]}), "fig-same", "Same")
        digests.append([hashlib.sha256(f.read_bytes()).hexdigest() for f in p.files.values()])
    assert digests[0] == digests[1]


def test_citation_names_book_figure_and_paper(tmp_path):
    book = figures.FigureBook("98_per_class", "Per-class effects", out_dir=tmp_path, url="x")
    p = book.publish(_fig(), pd.DataFrame({"a": [1]}), "fig-gini", "Gini against accuracy",
                     reproduces="Section 5")
    cff = figures.read_citation()
    assert cff["title"] in p.plain and "Figure 1: Gini against accuracy" in p.plain
    assert "chapters/98_per_class.html#fig-gini" in p.plain
    assert p.bibtex.startswith("@misc{diffred")
    assert "@inproceedings{nanda2023diffused," in p.bibtex          # the paper's own entry follows
    assert "reproduces Section 5 of \\cite{nanda2023diffused}" in p.bibtex
    assert p.bibtex.count("{") == p.bibtex.count("}")


def test_bad_labels_and_data_are_refused(tmp_path):
    book = figures.FigureBook("x", "X", out_dir=tmp_path, url="x")
    with pytest.raises(ValueError, match="fig-some-name"):
        book.publish(_fig(), pd.DataFrame({"a": [1]}), "Figure 1", "t")
    book.publish(_fig(), pd.DataFrame({"a": [1]}), "fig-a", "t")
    with pytest.raises(ValueError, match="used twice"):
        book.publish(_fig(), pd.DataFrame({"a": [1]}), "fig-a", "t")
    with pytest.raises(ValueError, match="empty"):
        book.publish(_fig(), pd.DataFrame({"a": []}), "fig-b", "t")
    with pytest.raises(TypeError, match="DataFrame"):
        book.publish(_fig(), [1, 2], "fig-c", "t")


def test_numbers_continue_across_the_pages_of_the_toc(tmp_path):
    """Sphinx numbers figures book-wide in toc order; so does figures_before."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n"
                                       "  - file: chapters/a\n  - file: chapters/b\n  - file: chapters/c\n")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "index.md").write_text("```{figure} x.png\n```\n")
    (tmp_path / "chapters/a.md").write_text("```{glue:figure} f1\n```\ntext\n```{glue:figure} f2\n```\n")
    (tmp_path / "chapters/b.md").write_text("no figures; ```{glue:figure} inline is not a directive\n")
    (tmp_path / "chapters/c.md").write_text("```{glue:figure} f3\n```\n")
    assert [figures.figures_before(p, tmp_path) for p in ("index", "a", "b", "c", "zz")] == [0, 1, 3, 3, 0]

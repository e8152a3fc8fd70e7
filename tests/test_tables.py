"""diffred.tables on constructed frames with known answers: readable headers, "—" for
missing values, yes/no, rounding as the prose rounds, pivots flattened, cards' labels."""

import numpy as np
import pandas as pd
import pytest

from diffred import tables


def _frame():
    return pd.DataFrame({"dataset": ["fashion_mnist", "digits"], "dr_closest": [0.9, np.nan],
                         "claim_holds": [True, False], "k": [12, 25], "p_value": [0.0004, 0.0312],
                         "gap_points": [2.345, 1.0], "fraction": [0.0005, 0.2]})


def test_headers_values_and_rounding():
    shown = tables.show(_frame()).frame
    assert list(shown.columns) == ["dataset", "DR(0.9), closest grid point", "claim 1 holds", "neurons k",
                                   "p-value", "gap (points)", "fraction"]
    assert shown.iloc[0].tolist() == ["Fashion-MNIST", "0.900", "yes", "12", "< 0.001", "2.3", "0.0005"]
    assert shown.iloc[1].tolist() == ["digits", "—", "no", "25", "0.031", "1.0", "0.2"]


def test_unknown_columns_keep_their_names_and_numbers_keep_digits():
    """A name the book does not know (a model's or a user's dataset's identifier) is shown as
    given: it is what the reader types to re-run it."""
    shown = tables.show(pd.DataFrame({"efficientnet_lite0": [0.12345], "count_all": [1234567.0]}), digits=2).frame
    assert list(shown.columns) == ["efficientnet_lite0", "count_all"]
    assert shown.iloc[0].tolist() == ["0.12", "1,234,567"]


def test_pivot_is_flattened_with_index_as_columns():
    df = pd.DataFrame({"model": ["m", "m"], "dataset": ["fashion_mnist", "mnist5k"],
                       "dr_interp": [0.91, 0.88], "full_accuracy": [0.85, np.nan]})
    pivot = df.pivot_table(index="model", columns="dataset", values=["dr_interp", "full_accuracy"], dropna=False)
    shown = tables.show(pivot).frame
    assert list(shown.columns) == ["model", "DR(0.9), interpolated · Fashion-MNIST", "DR(0.9), interpolated · MNIST-5k",
                                   "full-layer accuracy · Fashion-MNIST", "full-layer accuracy · MNIST-5k"]
    assert shown.iloc[0].tolist() == ["m", "0.910", "0.880", "0.850", "—"]


def test_html_has_a_scroll_box_and_card_labels():
    html = tables.show(_frame(), caption="DR <table>")._repr_html_()
    assert html.startswith('<div class="diffred-table-scroll" role="region" tabindex="0"')
    assert '<td class="num" data-label="DR(0.9), closest grid point">—</td>' in html
    assert '<td data-label="dataset">Fashion-MNIST</td>' in html  # text: left-aligned, no class
    assert "<caption>DR &lt;table&gt;</caption>" in html  # escaped
    assert "NaN" not in html and "True" not in html and "dr_closest" not in html


def test_plain_text_repr_for_the_notebook():
    text = repr(tables.show(_frame(), caption="c"))
    assert text.splitlines()[0] == "c" and "Fashion-MNIST" in text and "NaN" not in text


def test_show_refuses_what_is_not_a_frame():
    with pytest.raises(TypeError, match="needs a pandas DataFrame, got list"):
        tables.show([1, 2])


def test_a_header_with_a_unit_rounds_to_one_decimal():
    shown = tables.show(pd.DataFrame({"ImageNet top-1 (%)": [75.1], "parameters (M)": [4.7], "ratio": [0.8123]})).frame
    assert shown.iloc[0].tolist() == ["75.1", "4.7", "0.812"]
    assert tables.show(pd.DataFrame({"predictor": ["erank_share"], "ranking": ["f_stat"]})).frame.iloc[0].tolist() == \
        ["effective rank / width", "univariate F"]


def test_a_tiny_number_keeps_its_digits():
    shown = tables.show(pd.DataFrame({"max_rel_diff": [8.7e-6, 0.0, 0.171]})).frame
    assert shown.iloc[:, 0].tolist() == ["8.7e-06", "0.000", "0.171"]

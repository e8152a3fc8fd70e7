"""Computed sentences and shown text of the Setup and Re-run chapters (known answers)."""

from diffred.analyses import setup


def test_random_sentence_follows_the_accuracy_against_chance():
    fair = setup.random_sentence(0.6, 10)
    poor = setup.random_sentence(0.2, 10)
    assert "fair feature extractor" in fair and "6.0 times" in fair
    assert "close to useless" in poor and "2.0 times" in poor
    # the threshold itself counts as fair
    assert "fair" in setup.random_sentence(setup.FAIR_TIMES_CHANCE / 10, 10)


def test_versions_table_has_readable_headers_and_no_missing_cells():
    t = setup.versions_table()
    assert list(t.columns) == ["Package", "Locked version", "Installed version", "As locked"]
    assert t.Package.iloc[0] == "python" and "torch" in set(t.Package)
    assert not t.isna().any().any()
    assert set(t["As locked"]) <= {"yes", "no", "—"}


def test_rerun_transcript_hides_the_cache_folder(tmp_path):
    from diffred.analyses import rerun
    text = f"$ diffred run 02 -p model={tmp_path}/rerun-demo/x.pth\nwrote {tmp_path.resolve()}/results/02/"
    shown = rerun.without_machine_paths(text, tmp_path)
    assert str(tmp_path) not in shown
    assert "$DIFFRED_CACHE/rerun-demo/x.pth" in shown and "$DIFFRED_CACHE/results/02/" in shown


def test_paper_dr_span_keeps_printed_and_derived_rows_apart():
    import pandas as pd
    from diffred.analyses.headline import paper_dr_span
    table = pd.DataFrame({"dr_0_9": [0.5, 0.9, 0.1, 0.95], "provenance": ["P", "P", "D", "D"]})
    span = paper_dr_span(table)
    assert (span["p_dr_min"], span["p_dr_max"], span["p_dr_n"]) == (0.5, 0.9, 2)
    assert (span["d_dr_min"], span["d_dr_max"], span["d_dr_n"]) == (0.1, 0.95, 2)

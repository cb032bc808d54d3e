"""Notebook niceties: superrun_table, SuperrunView, plot_superrun, Context._repr_html_."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import make_runs

import dastrax
from dastrax.ui.display import (
    SuperrunView,
    format_livetime,
    format_time,
    plot_superrun,
    superrun_table,
)

SPEC = {"0": "all", "1": [(22, 26)], "2": [(40, 45), (47, 49)]}


@pytest.fixture
def sr(st):
    make_runs(st)
    st.define_run("_sr", SPEC)
    return st


def test_superrun_table(sr):
    table = superrun_table(sr, "_sr")
    assert table.index.name == "subrun"
    assert table.index.tolist() == [0, 1, 2]
    assert table["run_id"].tolist() == ["0", "1", "2"]
    assert table["whole"].tolist() == [True, False, False]
    assert table["n_ranges"].tolist() == [1, 1, 2]
    assert table["ranges"].tolist() == [[(0, 10)], [(22, 26)], [(40, 45), (47, 49)]]
    assert table["start"].tolist() == [0, 22, 40]
    assert table["end"].tolist() == [10, 26, 49]
    np.testing.assert_allclose(table["livetime"], [10e-9, 4e-9, 7e-9])
    assert table.attrs["livetime"] == pytest.approx(table["livetime"].sum())
    assert (table.attrs["start"], table.attrs["end"]) == (0, 49)
    # stored: make_runs made peaks (and records), not peak_classification
    assert table["peaks_stored"].all() and table["records_stored"].all()
    assert not table["peak_classification_stored"].any()
    assert st_summary_equals(sr, table)


def st_summary_equals(st, table) -> bool:
    summary = st.superrun_summary("_sr")
    pd.testing.assert_frame_equal(summary, table)
    return True


def test_table_index_is_the_subrun_coordinate(sr):
    table = superrun_table(sr, "_sr", targets=["peaks"])
    assert list(table.columns[-1:]) == ["peaks_stored"]
    ds = sr.get_dataset("_sr", "peaks")
    assert ds.attrs["subruns"] == table["run_id"].tolist()
    subrun = ds["subrun"].values
    time = ds["time"].values
    for i, row in table.iterrows():
        mine = time[subrun == i]
        assert len(mine) > 0
        assert all(any(s <= t < e for s, e in row["ranges"]) for t in mine)


def test_nested_superruns_are_flattened(sr):
    sr.define_run("_part", {"1": [(22, 26)]})
    sr.define_run("_outer", {"_part": "all", "2": [(40, 45)]})
    table = superrun_table(sr, "_outer", targets=[])
    assert table["run_id"].tolist() == ["1", "2"]
    assert table["ranges"].tolist() == [[(22, 26)], [(40, 45)]]
    assert list(table.columns) == [
        "run_id",
        "whole",
        "n_ranges",
        "ranges",
        "start",
        "end",
        "livetime",
    ]


def test_table_refuses_what_is_not_a_superrun(sr):
    with pytest.raises(dastrax.InvalidRunName):
        superrun_table(sr, "0")
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="_nope"):
        superrun_table(sr, "_nope")


def test_superrun_view_text_and_html(sr):
    view = sr.show_superrun("_sr", ["peaks"])
    assert isinstance(view, SuperrunView)
    text = repr(view)
    assert text.startswith("<superrun _sr: 3 subruns")
    assert "persisted: peaks no" in text
    assert "livetime 2.1e-08 s" in text  # seconds, as everywhere
    page = view._repr_html_()
    assert "<svg" in page and "<table" in page
    assert page.count("<rect") == 4  # one per time range
    for run_id in ("0", "1", "2"):
        assert f"<title>{run_id}: " in page
    assert "[40, 45), [47, 49)" in page
    assert "not stored" in page

    sr.persist_superrun("_sr", "peaks")
    after = SuperrunView(sr, "_sr", ["peaks", "peak_classification"])
    assert after.persisted == {"peaks": True, "peak_classification": False}
    assert "persisted: peaks yes, peak_classification no" in repr(after)


def test_default_targets_are_the_registered_types(sr):
    view = SuperrunView(sr, "_sr")
    assert view.targets == ["peak_classification", "peaks", "records"]


def test_plot_superrun(sr):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plot_superrun(sr, "_sr")
    try:
        assert len(ax.collections) == 3  # one bar row per subrun
        bars = [len(c.get_paths()) for c in ax.collections]
        assert bars == [1, 1, 2]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
        assert ax.get_xlabel() == "time since 1970-01-01T00:00:00 UTC [ns]"
        assert "_sr" in ax.get_title()
        # ranges in ns since the superrun start: the last bar ends at 49
        x_max = max(p.vertices[:, 0].max() for c in ax.collections for p in c.get_paths())
        assert x_max == pytest.approx(49)
        # drawing into a given axes
        fig, given = plt.subplots()
        assert plot_superrun(sr, "_sr", ax=given) is given
        plt.close(fig)
    finally:
        plt.close(ax.figure)


def test_plot_superrun_without_matplotlib(sr, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"dastrax\[plot\]"):
        plot_superrun(sr, "_sr")


def test_context_repr_html(st):
    page = st._repr_html_()
    assert st.storage[0].url in page
    for name in ("records", "peaks", "peak_classification", "PeakClassification"):
        assert name in page
    assert "threads" in page


def test_formatting():
    # livetime is shown one way everywhere: seconds (issue 23)
    assert format_livetime(3e-8) == "3e-08 s"
    assert format_livetime(90.0) == "90 s"
    assert format_livetime(7200.0) == "7200 s"
    assert format_livetime(0.0) == "0 s"
    assert format_time(0) == "1970-01-01T00:00:00 UTC"
    assert format_time(1_700_000_000 * 10**9 + 5) == "2023-11-14T22:13:20.000000005 UTC"

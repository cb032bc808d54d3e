"""strax 2.2.3's tests/test_core.py, translated to dastrax's spellings; scenario and
assertions kept. strax's ``processing_conditions`` (processor, multiprocessing, workers)
have no counterpart: dastrax runs one dask graph on the configured scheduler. strax's
``storage=[]`` (compute, store nothing) is a temporary directory here: dastrax stores
what it makes."""

from __future__ import annotations

import numpy as np
import pytest

import dastrax
from dastrax.errors import DastraxError, PluginError

from .plugins import PEAK_DTYPE, RUN_ID, PeakClassification, Peaks, Records

N_ROWS = Records.recs_per_chunk.default * Records.n_chunks.default


def context(path, plugins=(Records, Peaks), **options):
    return dastrax.Context(
        storage=dastrax.DataDirectory(str(path)),
        register=list(plugins),
        use_per_run_defaults=True,
        progress=False,
        **options,
    )


def test_core(tmp_path):
    """test_core: get_array(run_id=..., targets=...)."""
    st = context(tmp_path)
    bla = st.get_array(run_id=RUN_ID, targets="peaks")
    assert len(bla) == N_ROWS
    assert bla.dtype == dastrax.core.plugin.to_numpy_dtype(PEAK_DTYPE)


def test_core_df(tmp_path):
    """test_core_df: get_df of data with a multi-dimensional field. dastrax's get_df
    leaves such fields out (API.md, get_df) where strax keeps them as objects and
    warns."""
    st = context(tmp_path)
    df = st.get_df(run_id=RUN_ID, targets="peaks")
    assert len(df) == N_ROWS
    assert "data" not in df.columns
    assert len(st.get_array(RUN_ID, "peaks")["data"][0]) == 200


def test_multirun(tmp_path):
    """test_multirun: several run ids, a run_id field."""
    st = context(tmp_path)
    bla = st.get_array(run_id=["0", "1"], targets="peaks")
    assert len(bla) == N_ROWS * 2
    np.testing.assert_equal(bla["run_id"], np.array(["0"] * N_ROWS + ["1"] * N_ROWS))


def test_filestore(tmp_path):
    """test_filestore: scan_runs and list_available before and after making; loads of
    stored data read it, never remake it."""
    st = context(tmp_path)
    assert not st.is_stored(RUN_ID, "peaks")
    st.scan_runs()
    assert st.list_available("peaks") == []

    # strax stores nothing when columns are dropped; a dastrax load makes and stores
    # missing data whatever it returns (SEMANTICS.md, "Loads that make")
    assert st.get_array(run_id=RUN_ID, targets="peaks", keep_columns=["time"]).dtype.names[0] == (
        "time"
    )
    peaks_1 = st.get_array(run_id=RUN_ID, targets="peaks")
    assert len(peaks_1) == N_ROWS
    assert st.is_stored(RUN_ID, "peaks")
    st.scan_runs()
    assert st.list_available("peaks") == [RUN_ID]
    assert st.scan_runs()["name"].values.tolist() == [RUN_ID]

    metadata = st.get_metadata(RUN_ID, "peaks")
    assert len(metadata)
    assert len(metadata["chunks"]) == Records.n_chunks.default  # (strax: rechunked to 1)

    group = tmp_path / str(st.key_for(RUN_ID, "peaks")) / "zarr.json"
    mtime_before = group.stat().st_mtime_ns
    peaks_2 = st.get_array(run_id=RUN_ID, targets="peaks")
    np.testing.assert_array_equal(peaks_1, peaks_2)
    assert mtime_before == group.stat().st_mtime_ns


def test_datadirectory_deleted(tmp_path):
    """test_datadirectory_deleted (strax #93): deleting the directory after the context
    is made neither crashes nor fails silently. dastrax: reading a storage path that
    does not exist is an error naming it (SEMANTICS.md, "Loads that make"); a make
    creates it."""
    import shutil

    data_dir = tmp_path / "bla"
    data_dir.mkdir()
    st = context(data_dir)
    shutil.rmtree(data_dir)
    with pytest.raises(DastraxError, match="bla"):
        st.scan_runs()
    st.make(run_id=RUN_ID, targets="peaks")
    st.scan_runs()
    assert st.is_stored(RUN_ID, "peaks")
    assert st.list_available("peaks") == [RUN_ID]


def test_exception(tmp_path):
    """test_exception: a plugin that raises; nothing is stored."""
    st = context(tmp_path, config={"crash": True})
    with pytest.raises(PluginError, match="CRASH"):
        st.get_array(run_id=RUN_ID, targets="peaks")
    assert not st.is_stored(RUN_ID, "records")
    assert not st.is_stored(RUN_ID, "peaks")


def test_random_access(tmp_path):
    """test_random_access: time_range loads, of one type and of two types of one data
    kind (peak_classification, an output of a two-output plugin). (strax's part that
    deletes a chunk file is left out: dastrax's zarr chunk files need not match chunks.)"""
    st = context(tmp_path, plugins=(Records, Peaks, PeakClassification))
    st.make(run_id=RUN_ID, targets=("peaks", "peak_classification"))
    per_chunk = Records.recs_per_chunk.default
    df = st.get_array(RUN_ID, "peaks", time_range=(3, 5))
    df_pbar = st.get_array(RUN_ID, "peaks", time_range=(3, 5), progress_bar=False)
    assert len(df) == 2 * per_chunk
    assert df["time"].min() == 3
    assert df["time"].max() == 4
    assert np.all(df == df_pbar), "progress-bar changes the result?!?"
    df = st.get_array(RUN_ID, ["peaks", "peak_classification"], time_range=(3, 5))
    assert len(df) == 2 * per_chunk
    assert df["time"].min() == 3
    assert df["time"].max() == 4
    assert "type" in df.dtype.names


def test_rechunk_on_save(tmp_path):
    """test_rechunk_on_save: loading twice gives the same rows."""
    st = context(tmp_path)
    np.testing.assert_array_equal(st.get_array("0", "peaks"), st.get_array("0", "peaks"))


def test_run_selection(tmp_path):
    """test_run_selection: scan_runs, run_metadata(projection=), select_runs by mode, tags
    and run_id. (dastrax's run documents need start and end: added.)"""
    mock_rundb = [
        dict(name="0", mode="funny", tags=[dict(name="bad")], start=0, end=10),
        dict(
            name="1",
            mode="nice",
            tags=[dict(name="interesting"), dict(name="bad")],
            start=20,
            end=30,
        ),
        dict(name="2", mode="nice", tags=[dict(name="interesting")], start=40, end=50),
    ]
    sf = dastrax.DataDirectory(str(tmp_path), provide_run_metadata=True)
    for d in mock_rundb:
        sf.write_run_metadata(d["name"], d)
    st = dastrax.Context(storage=sf, progress=False)
    assert len(st.scan_runs()) == len(mock_rundb)
    doc = st.run_metadata("0")
    assert {k: doc[k] for k in mock_rundb[0]} == mock_rundb[0]
    assert st.run_metadata("0", projection="name") == {"name": "0"}
    assert len(st.select_runs(run_mode="nice")) == 2
    assert len(st.select_runs(include_tags="interesting")) == 2
    assert len(st.select_runs(include_tags="interesting", exclude_tags="bad")) == 1
    assert len(st.select_runs(include_tags="interesting", run_mode="nice")) == 2
    assert len(st.select_runs(run_id="0")) == 1
    assert len(st.select_runs(run_id="*", exclude_tags="bad")) == 1


def test_dtype_mismatch(tmp_path):
    """test_dtype_mismatch: a plugin returning the wrong dtype (strax's
    PluginGaveWrongOutput is dastrax's PluginError)."""
    st = context(tmp_path, config=dict(give_wrong_dtype=True))
    with pytest.raises(PluginError, match="wrong dtype"):
        st.get_array(run_id=RUN_ID, targets="peaks")


@pytest.mark.parametrize("targets", [("peaks", "records"), ("records", "peaks")])
def test_allow_multiple(tmp_path, targets):
    """test_allow_multiple and test_allow_multiple_inverted: loading types of two data
    kinds at once is refused; making them at once (strax: allow_multiple=True) stores
    both, whatever their order."""
    st = context(tmp_path)
    assert not st.is_stored(RUN_ID, "peaks")
    for function in (st.get_array, st.get_df):
        with pytest.raises(ValueError, match="data kinds"):
            function(run_id=RUN_ID, targets=targets)
    assert not st.is_stored(RUN_ID, "peaks")
    st.make(run_id=RUN_ID, targets=targets)
    for t in targets:
        assert st.is_stored(RUN_ID, t)

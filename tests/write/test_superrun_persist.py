"""Persisting superruns (SEMANTICS.md "Stored superruns"): the chunk table, loads equal to
the unstored ones, several targets together, and a store that zarr/xarray open alone."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import make_context, make_runs, stored_files
from superrun_util import assert_rows, cut, expected, expected_chunk_table

import dastrax

# run 0 from 3 ns, runs 1 and 2 whole: flattened [3, 10), [20, 30), [40, 50)
SPEC = {"0": [(3, 10)], "1": "all", "2": "all"}
HULLS = {"0": (3, 10), "1": (20, 30), "2": (40, 50)}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Runs 0, 1, 2 with peaks and peak_classification made, once for the module."""
    path = tmp_path_factory.mktemp("persist") / "data"
    make_runs(make_context(path), targets=["peaks", "peak_classification"])
    return path


@pytest.fixture
def runs(template, storage_dir):
    """A context on a copy of the template runs, with superrun ``_p`` defined."""
    shutil.copytree(template, storage_dir, dirs_exist_ok=True)
    st = make_context(storage_dir)
    st.define_run("_p", SPEC)
    return st


def _row_subruns(rows):
    return [("0", "1", "2")[int(t >= 20) + int(t >= 40)] for t in rows["time"]]


@pytest.mark.parametrize("target_mb", [0.03, 0.011, 0.05, 0.2, 200])
def test_chunk_table_of_a_persisted_superrun(runs, target_mb):
    st = runs
    want_rows = expected(SPEC)
    row_bytes = st.get_array("0", "peaks").dtype.itemsize
    (key,) = st.persist_superrun("_p", "peaks", chunk_target_size_mb=target_mb)
    assert str(key) == f"_p-peaks-{key.lineage_hash}"
    assert key == st.key_for("_p", "peaks") and st.is_stored("_p", "peaks")
    want = expected_chunk_table(
        want_rows["time"],
        want_rows["endtime"],
        row_bytes,
        target_mb,
        3,
        50,
        _row_subruns(want_rows),
        HULLS,
    )
    meta = st.get_metadata("_p", "peaks")
    assert meta["chunk_target_size_mb"] == target_mb
    chunks = meta["chunks"]
    assert [{k: c[k] for k in ("start", "end", "n", "subruns")} for c in chunks] == want
    assert [c["chunk_i"] for c in chunks] == list(range(len(chunks)))
    assert all(c["run_id"] == "_p" for c in chunks)
    assert chunks[0]["start"] == 3 and chunks[-1]["end"] == 50
    for a, b in zip(chunks, chunks[1:]):
        assert a["end"] == b["start"] == b["first_time"]
    off = 0
    for c in chunks:
        rows = want_rows[off : off + c["n"]]
        off += c["n"]
        assert c["first_time"] == rows["time"][0]
        assert c["last_endtime"] == rows["endtime"].max()
        assert c["nbytes"] == c["n"] * row_bytes
        for sub in c["subruns"].values():  # subrun ranges lie inside the chunk
            assert c["start"] <= sub["start"] < sub["end"] <= c["end"]
    if target_mb == 0.03:  # 24 rows a chunk -> 3 ns (30 rows) a chunk
        assert len(chunks) == 9
        assert chunks[2]["subruns"] == {"0": {"start": 9, "end": 10}, "1": {"start": 20, "end": 22}}
    if target_mb == 200:
        assert len(chunks) == 1
        assert chunks[0]["subruns"] == {
            "0": {"start": 3, "end": 10},
            "1": {"start": 20, "end": 30},
            "2": {"start": 40, "end": 50},
        }

    # get_iter yields exactly the stored chunks
    it = list(st.get_iter("_p", "peaks"))
    assert [(c.start, c.end, c.subruns, len(c)) for c in it] == [
        (c["start"], c["end"], c["subruns"], c["n"]) for c in chunks
    ]
    assert all(c.run_id == "_p" and c.data_type == "peaks" for c in it)
    assert_rows(np.concatenate([c.data for c in it]), want_rows)


def test_persisted_and_unstored_loads_are_identical(runs, storage_dir):
    st = runs
    unstored = {
        "array": st.get_array("_p", "peaks"),
        "dataset": st.get_dataset("_p", "peaks").compute(),
        "df": st.get_df("_p", "peaks"),
        "iter": list(st.get_iter("_p", "peaks")),
        "range": st.get_array("_p", ["peaks", "peak_classification"], time_range=(8, 45)),
        "ds_range": st.get_dataset("_p", "peaks", columns=["area"], time_range=(8, 45)).compute(),
    }
    assert_rows(unstored["array"], expected(SPEC), area=1)
    st.persist_superrun("_p", ["peaks", "peak_classification"], chunk_target_size_mb=0.05)
    st = make_context(storage_dir)  # fresh caches
    assert st.is_stored("_p", "peaks") and st.is_stored("_p", "peak_classification")
    stored = {
        "array": st.get_array("_p", "peaks"),
        "dataset": st.get_dataset("_p", "peaks").compute(),
        "df": st.get_df("_p", "peaks"),
        "iter": list(st.get_iter("_p", "peaks")),
        "range": st.get_array("_p", ["peaks", "peak_classification"], time_range=(8, 45)),
        "ds_range": st.get_dataset("_p", "peaks", columns=["area"], time_range=(8, 45)).compute(),
    }
    a, b = unstored["array"], stored["array"]
    assert a.dtype == b.dtype
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    a, b = unstored["range"], stored["range"]
    assert a.dtype == b.dtype and len(a) == len(b) > 0
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    pd.testing.assert_frame_equal(unstored["df"], stored["df"])
    xr.testing.assert_identical(unstored["dataset"], stored["dataset"])
    xr.testing.assert_identical(unstored["ds_range"], stored["ds_range"])
    assert stored["dataset"].attrs["subruns"] == ["0", "1", "2"]
    np.testing.assert_array_equal(stored["dataset"].subrun.values, [0] * 70 + [1] * 100 + [2] * 100)
    for key in ("iter",):
        x = np.concatenate([c.data for c in unstored[key]])
        y = np.concatenate([c.data for c in stored[key]])
        for name in x.dtype.names:
            np.testing.assert_array_equal(x[name], y[name], err_msg=name)
    # unstored: one chunk per subrun chunk; stored: one per stored chunk
    assert len(unstored["iter"]) == 27
    assert len(stored["iter"]) == len(st.get_metadata("_p", "peaks")["chunks"]) > 1


def test_several_targets_persist_together_sharing_boundaries(runs, storage_dir):
    st = runs
    keys = st.persist_superrun("_p", ["peaks", "peak_classification"], chunk_target_size_mb=0.03)
    assert [k.data_type for k in keys] == ["peaks", "peak_classification"]
    a = st.get_metadata("_p", "peaks")["chunks"]
    b = st.get_metadata("_p", "peak_classification")["chunks"]
    assert len(a) == 9
    assert [(c["start"], c["end"], c["n"], c["subruns"]) for c in a] == [
        (c["start"], c["end"], c["n"], c["subruns"]) for c in b
    ]
    both = st.get_array("_p", ["peaks", "peak_classification"])
    assert_rows(both, expected(SPEC), area=1)
    np.testing.assert_array_equal(both["type"], 1 + both["channel"] % 2)
    ds = st.get_dataset(
        "_p", ["peaks", "peak_classification"], columns=["type", "area"], chunks="stored"
    )
    assert set(ds.data_vars) == {"type", "area", "time", "length", "dt"}
    assert ds.type.data.numblocks == (9,)
    np.testing.assert_array_equal(ds.type.values, both["type"])

    # persisting again writes nothing
    before = {p: (storage_dir / p).stat().st_mtime_ns for p in stored_files(storage_dir)}
    assert st.persist_superrun("_p", ["peaks", "peak_classification"]) == keys
    assert {p: (storage_dir / p).stat().st_mtime_ns for p in stored_files(storage_dir)} == before


def test_make_with_write_superruns_persists_the_targets_named(st, storage_dir):
    make_runs(st, targets="records")
    st.define_run("_m", ["0", "2"])
    st.set_context_config({"write_superruns": True})
    st.make("_m", ["peaks", "peak_classification"])
    assert st.is_stored("_m", "peaks") and st.is_stored("_m", "peak_classification")
    assert not st.is_stored("_m", "records")  # a dependency: not persisted
    assert st.is_stored("0", "peaks") and st.is_stored("2", "peak_classification")
    assert not st.is_stored("1", "peaks")  # not a subrun
    a = st.get_metadata("_m", "peaks")["chunks"]
    b = st.get_metadata("_m", "peak_classification")["chunks"]
    assert [(c["start"], c["end"], c["n"]) for c in a] == [
        (c["start"], c["end"], c["n"]) for c in b
    ]
    assert_rows(
        st.get_array("_m", ["peaks", "peak_classification"]), expected({"0": "all", "2": "all"})
    )
    with pytest.raises(dastrax.InvalidRequest, match="kind"):
        st.persist_superrun("_m", ["peaks", "records"])
    for bad in (0, -1, "big"):
        with pytest.raises(dastrax.InvalidRequest, match="chunk_target_size_mb"):
            st.persist_superrun("_m", "records", chunk_target_size_mb=bad)
    assert not st.is_stored("_m", "records")


def test_persisted_superrun_opens_with_xarray_alone(runs, storage_dir):
    st = runs
    (key, _) = st.persist_superrun(
        "_p", ["peaks", "peak_classification"], chunk_target_size_mb=0.05
    )
    ds = xr.open_zarr(str(storage_dir / str(key)))
    assert "subrun" in ds.coords
    assert ds.time.dims == ("peaks",)
    assert ds.data.dims == ("peaks", "data_dim1")
    want = expected(SPEC)
    np.testing.assert_array_equal(ds.time.values, want["time"])
    np.testing.assert_array_equal(ds.channel.values, want["channel"])
    np.testing.assert_array_equal(ds.subrun.values, [0] * 70 + [1] * 100 + [2] * 100)
    meta = ds.attrs["dastrax"]
    assert meta["run_id"] == "_p" and meta["subruns"] == ["0", "1", "2"]
    assert [c["n"] for c in meta["chunks"]] == [
        c["n"] for c in st.get_metadata("_p", "peaks")["chunks"]
    ]
    other = xr.open_zarr(str(storage_dir / str(st.key_for("_p", "peak_classification"))))
    np.testing.assert_array_equal(other.type.values, 1 + want["channel"] % 2)
    np.testing.assert_array_equal(other.subrun.values, ds.subrun.values)


def test_superrun_of_superruns_persists_with_flat_subruns(runs):
    st = runs
    st.define_run("_outer", {"_p": [(5, 25)], "2": [(44, 48)]})
    flat = {"0": [(5, 10)], "1": [(20, 25)], "2": [(44, 48)]}
    unstored = st.get_array("_outer", "peaks")
    assert_rows(unstored, expected(flat))
    st.persist_superrun("_outer", "peaks", chunk_target_size_mb=0.02)
    stored = st.get_array("_outer", "peaks")
    assert_rows(stored, expected(flat))
    rows = expected(flat)
    want = expected_chunk_table(
        rows["time"],
        rows["endtime"],
        unstored.dtype.itemsize,
        0.02,
        5,
        48,
        _row_subruns(rows),
        {"0": (5, 10), "1": (20, 25), "2": (44, 48)},
    )
    chunks = st.get_metadata("_outer", "peaks")["chunks"]
    assert [{k: c[k] for k in ("start", "end", "n", "subruns")} for c in chunks] == want
    assert st.get_dataset("_outer", "peaks").attrs["subruns"] == ["0", "1", "2"]
    # the inner superrun is not stored by persisting the outer one
    assert not st.is_stored("_p", "peaks")


def test_targets_persisted_one_at_a_time_still_merge(runs):
    st = runs
    st.set_context_config({"write_superruns": True, "chunk_target_size_mb": 0.03})
    st.make("_p", "peaks")
    st.make("_p", "peak_classification")  # other row size: other boundaries
    a = st.get_metadata("_p", "peaks")["chunks"]
    b = st.get_metadata("_p", "peak_classification")["chunks"]
    assert len(a) == 9 and len(b) == 1
    both = st.get_array("_p", ["peaks", "peak_classification"])
    assert_rows(both, expected(SPEC), area=1)
    np.testing.assert_array_equal(both["type"], 1 + both["channel"] % 2)
    ds = st.get_dataset("_p", ["peak_classification", "peaks"], columns=["type", "area"])
    np.testing.assert_array_equal(ds.type.values, both["type"])
    np.testing.assert_array_equal(ds.area.values, both["area"])
    cut_rows = st.get_array("_p", ["peaks", "peak_classification"], time_range=(8, 45))
    assert_rows(cut_rows, cut(expected(SPEC), [(8, 45)]))
    np.testing.assert_array_equal(cut_rows["type"], 1 + cut_rows["channel"] % 2)


def test_get_iter_with_a_time_range_cuts_chunks_and_their_subruns(runs):
    st = runs
    st.persist_superrun("_p", "peaks", chunk_target_size_mb=0.03)
    # stored chunks: [3, 6) [6, 9) [9, 22) [22, 25) [25, 28) [28, 41) ...
    chunks = list(st.get_iter("_p", "peaks", time_range=(7, 24)))
    assert [(c.start, c.end) for c in chunks] == [(7, 9), (9, 22), (22, 24)]
    assert [c.subruns for c in chunks] == [
        {"0": {"start": 7, "end": 9}},
        {"0": {"start": 9, "end": 10}, "1": {"start": 20, "end": 22}},
        {"1": {"start": 22, "end": 24}},
    ]
    assert all(c.run_id == "_p" for c in chunks)
    rows = np.concatenate([c.data for c in chunks])
    assert_rows(rows, cut(expected(SPEC), [(7, 24)]))
    for c in chunks:
        assert np.all((c.data["time"] >= c.start) & (c.data["time"] < c.end))

"""Regular runs: plugins, lineage, keys, storage layout and the Context's loaders."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import make_context, make_runs, stored_files
from dastrax.testutils import Peaks, Records

import dastrax
from dastrax.errors import UnknownConfigWarning


def expected_records(offset=0, n_chunks=10, per_chunk=10, chunk_ns=1):
    """The rows Records makes, from the formula in API.md (independent of dastrax)."""
    times = [
        offset + i * chunk_ns + (j * chunk_ns) // per_chunk
        for i in range(n_chunks)
        for j in range(per_chunk)
    ]
    channels = [j for _ in range(n_chunks) for j in range(per_chunk)]
    return np.array(times, dtype=np.int64), np.array(channels).astype(np.int16)


def test_tutorial_regular_runs(st):
    st.set_config({"bonus_area": 42})
    make_runs(st)
    key = st.key_for("2", "peaks")
    assert str(key) == f"2-peaks-{key.lineage_hash}"
    assert len(key.lineage_hash) == 10 and key.lineage_hash.isalnum()
    assert key.lineage["peaks"] == (
        "Peaks",
        "0.0.1",
        {"bonus_area": 42, "n_channels": 100, "waveform_length": 200},
    )
    assert key.lineage["records"][0] == "Records"
    assert "time_offset" not in key.lineage["records"][2]  # untracked

    meta = st.get_metadata("2", "peaks")
    rows = st.get_array("2", "peaks")
    assert sum(c["n"] for c in meta["chunks"]) == len(rows) == 100
    for c in meta["chunks"]:
        assert c["start"] <= c["first_time"] <= c["last_endtime"] <= c["end"]
        assert c["run_id"] == "2"
    assert meta["data_kind"] == "peaks" and meta["key"] == str(key)
    assert meta["lineage_hash"] == key.lineage_hash

    times, channels = expected_records(offset=40)
    np.testing.assert_array_equal(rows["time"], times)
    np.testing.assert_array_equal(rows["channel"], channels)
    assert np.all(rows["area"] == 43)

    both = st.get_array(["0", "1", "2"], "peaks")
    parts = [st.get_array(r, "peaks") for r in ["0", "1", "2"]]
    for name in rows.dtype.names:
        np.testing.assert_array_equal(both[name], np.concatenate([p[name] for p in parts]))
    assert list(both["run_id"]) == ["0"] * 100 + ["1"] * 100 + ["2"] * 100
    one = st.get_array(["1"], "peaks")
    assert "run_id" in one.dtype.names  # a list, even of one, adds run_id
    assert "run_id" not in st.get_array("1", "peaks").dtype.names


def test_storage_layout_is_one_group_per_key_with_column_arrays(st, storage_dir):
    st.make("0", "peaks")
    key = str(st.key_for("0", "peaks"))
    group = storage_dir / key
    doc = json.loads((group / "zarr.json").read_text())
    meta = doc["attributes"]["dastrax"]
    assert meta["data_type"] == "peaks" and meta["run_id"] == "0"
    assert {c["chunk_i"] for c in meta["chunks"]} == set(range(10))
    arrays = {p.name for p in group.iterdir() if p.is_dir()}
    assert arrays == {"time", "length", "dt", "channel", "area", "area_per_channel", "data"}
    data_meta = json.loads((group / "data" / "zarr.json").read_text())
    assert data_meta["shape"] == [100, 200]
    assert data_meta["dimension_names"] == ["peaks", "data_dim1"]
    assert [c["name"] for c in data_meta["codecs"]][-1] == "crc32c"
    # an ordinary zarr group: xarray opens it without dastrax
    ds = xr.open_zarr(str(group))
    np.testing.assert_array_equal(ds.time.values, st.get_array("0", "peaks")["time"])
    assert not [p for p in storage_dir.iterdir() if p.name.startswith(".tmp-")]


def test_dataset_is_lazy_one_block_per_chunk_and_reads_no_chunk_data(st, storage_dir):
    st.make("0", "peaks")
    key = str(st.key_for("0", "peaks"))
    chunk_file = storage_dir / key / "area" / "c" / "0"
    chunk_file.write_bytes(b"garbage" * 10)  # damage one chunk: opening must not notice
    ds = st.get_dataset("0", "peaks", chunks="stored")
    assert ds.area.data.numblocks == (10,)
    assert ds.area.data.chunks == ((10,) * 10,)
    # by default blocks follow bytes: 100 rows of 1.2 kB are one block, 30 rows a block
    assert st.get_dataset("0", "peaks").area.data.chunks == ((100,),)
    assert st.get_dataset("0", "peaks", chunks=30).area.data.chunks == ((30, 30, 30, 10),)
    assert ds.data.shape == (100, 200)
    assert ds.attrs["subruns"] == ["0"]
    assert list(ds.dims) == ["peaks", "area_per_channel_dim1", "data_dim1"]
    with pytest.raises(dastrax.CorruptData, match=str(chunk_file)):
        ds.area.compute()
    # the undamaged columns still load
    np.testing.assert_array_equal(ds.time.values, expected_records()[0])


def _set_atimes_old(root):
    for p in root.rglob("*"):
        if p.is_file():
            st_ = p.stat()
            os.utime(p, ns=(0, st_.st_mtime_ns))


def _read_files(root):
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.stat().st_atime_ns > 0
    )


def test_columns_reads_only_the_arrays_it_needs(st, storage_dir):
    st.make("0", "peaks")
    key = str(st.key_for("0", "peaks"))
    st = make_context(storage_dir)  # fresh caches
    _set_atimes_old(storage_dir)
    # the technique works: reading one file updates its atime (relatime: atime <= mtime)
    (storage_dir / key / "zarr.json").read_bytes()
    assert _read_files(storage_dir) == [f"{key}/zarr.json"]
    _set_atimes_old(storage_dir)
    arr = st.get_array("0", "peaks", columns=["area"])
    assert set(arr.dtype.names) == {"area", "time", "length", "dt"}
    read = _read_files(storage_dir)
    read_arrays = {p.split("/")[1] for p in read if p.count("/") >= 3}
    assert read_arrays == {"area", "time", "length", "dt"}, read
    assert not any("/data/" in p or "/area_per_channel/" in p for p in read)
    np.testing.assert_array_equal(arr["area"], np.ones(100, np.float32))


def test_time_range_on_a_regular_run_reads_only_chunks_inside(st, storage_dir):
    # chunks big enough that each logical chunk is its own zarr chunk (>= 1 MB a column)
    config = {"chunk_ns": 1_000_000, "recs_per_chunk": 130_000, "n_chunks": 5}
    st.set_config(config)
    st.make("0", "records")
    assert st.get_metadata("0", "records")["zarr_chunk_rows"] == 130_000
    _set_atimes_old(storage_dir)
    st = make_context(storage_dir)
    st.set_config(config)
    arr = st.get_array("0", "records", time_range=(2_000_000, 3_500_000))
    times, _ = expected_records(0, 5, 130_000, 1_000_000)
    want = times[(times >= 2_000_000) & (times + 1 <= 3_500_000)]
    np.testing.assert_array_equal(arr["time"], want)
    chunk_files = {p for p in _read_files(storage_dir) if "/c/" in p}
    assert {p.rsplit("/", 1)[1] for p in chunk_files} == {"2", "3"}, chunk_files


def test_same_lineage_stored_once_tracked_option_new_key_untracked_same(st, storage_dir):
    st.make("0", "peaks")
    key = st.key_for("0", "peaks")
    before = stored_files(storage_dir)
    st.make("0", "peaks")
    assert stored_files(storage_dir) == before
    st.set_config({"time_offset": 1000})  # untracked
    assert st.key_for("0", "peaks") == key
    assert st.is_stored("0", "peaks")
    st.set_config({"bonus_area": 1})  # tracked, of peaks only
    new = st.key_for("0", "peaks")
    assert new.lineage_hash != key.lineage_hash
    assert not st.is_stored("0", "peaks")
    assert st.is_stored("0", "records")  # the dependency is reused
    assert np.all(st.get_array("0", "peaks")["area"] == 2)
    st.set_config({"bonus_area": 0})
    assert st.is_stored("0", "peaks")


def test_lineage_hash_is_deterministic_across_contexts(tmp_path):
    a = make_context(tmp_path / "a")
    b = make_context(tmp_path / "b")
    b.set_config({"time_offset": 5})
    assert str(a.key_for("7", "peaks")) == str(b.key_for("7", "peaks"))
    b.set_config({"n_chunks": 3})
    assert a.key_for("7", "peaks").lineage_hash != b.key_for("7", "peaks").lineage_hash


def test_get_df_get_iter_and_dataset_agree(st):
    st.make("0", ["peaks", "peak_classification"])
    arr = st.get_array("0", ["peaks", "peak_classification"])
    assert set(arr.dtype.names) >= {"area", "data", "type"}
    np.testing.assert_array_equal(arr["type"], 1 + (arr["channel"] % 2))
    df = st.get_df("0", ["peaks", "peak_classification"])
    assert isinstance(df, pd.DataFrame)
    assert "data" not in df.columns and "type" in df.columns
    np.testing.assert_array_equal(df["time"].to_numpy(), arr["time"])
    chunks = list(st.get_iter("0", "peaks"))
    assert len(chunks) == 10
    assert [(c.start, c.end) for c in chunks] == [(i, i + 1) for i in range(10)]
    assert all(c.run_id == "0" and c.data_type == "peaks" for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.data["time"] for c in chunks]), arr["time"])
    ds = st.get_dataset("0", ["peaks", "peak_classification"], columns=["type"])
    assert set(ds.data_vars) == {"type", "time", "length", "dt"}
    np.testing.assert_array_equal(ds.type.values, arr["type"])


def test_make_several_runs_in_one_graph(st):
    st.make(["3", "4"], "peak_classification")
    for r in ["3", "4"]:
        for t in ["records", "peaks", "peak_classification"]:
            assert st.is_stored(r, t)


def test_run_documents_and_select_runs(st):
    import datetime

    st.write_run_metadata("0", {"start": 0, "end": 10, "mode": "kr83m", "tags": ["good"]})
    st.write_run_metadata(
        "1",
        {"start": datetime.datetime(2020, 1, 1), "end": datetime.datetime(2020, 1, 1, 0, 0, 5)},
    )
    doc = st.run_metadata("1")
    assert doc["start"] == 1577836800 * 10**9  # naive datetimes are UTC
    assert doc["livetime"] == 5.0
    table = st.select_runs()
    assert list(table["name"]) == ["0", "1"]
    assert table.loc[0, "mode"] == "kr83m" and table.loc[0, "tags"] == "good"
    assert str(table.loc[1, "start"].tz) == "UTC"
    assert list(st.select_runs(run_mode="kr83m")["name"]) == ["0"]
    assert list(st.select_runs(exclude_tags="good")["name"]) == ["1"]
    st.make("0", "peaks")
    avail = st.select_runs(available=("peaks",))
    assert list(avail["peaks_available"]) == [True, False]
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="'9'"):
        st.run_metadata("9")


def test_several_frontends_read_in_order_write_to_first_writable(tmp_path):
    first, second = tmp_path / "ro", tmp_path / "rw"
    seed = make_context(first)
    seed.make("0", "records")
    before = stored_files(first)
    st = dastrax.Context(
        storage=[
            dastrax.ZarrDirectory(str(first), readonly=True),
            dastrax.ZarrDirectory(str(second)),
        ],
        register=[Records, Peaks],
        progress=False,
    )
    assert st.is_stored("0", "records")
    st.make("0", "peaks")  # records read from the first, peaks written to the second
    assert stored_files(first) == before
    assert any(p.startswith(str(st.key_for("0", "peaks"))) for p in stored_files(second))
    assert not any(p.startswith(str(st.key_for("0", "records"))) for p in stored_files(second))


def test_fsspec_memory_storage():
    import uuid

    url = f"memory://dastrax-test-{uuid.uuid4().hex}"
    st = dastrax.Context(storage=url, register=[Records, Peaks], progress=False)
    st.make("0", "peaks")
    assert st.is_stored("0", "peaks")
    arr = st.get_array("0", "peaks", columns=["area"])
    assert len(arr) == 100
    st.write_run_metadata("0", {"start": 0, "end": 10})
    assert st.run_metadata("0")["end"] == 10


def test_unknown_data_type(st):
    with pytest.raises(dastrax.DataNotAvailable, match="'hits'.*register"):
        st.get_array("0", "hits")
    with pytest.raises(dastrax.DataNotAvailable, match="hits"):
        st.key_for("0", "hits")


@pytest.mark.parametrize("bad", ["", "a-b", "a/b", "..", "a..b", "a b", "_", "../x", 3, "-1"])
def test_bad_run_ids(st, storage_dir, bad):
    with pytest.raises(dastrax.InvalidRunName):
        st.get_array(bad, "records")
    with pytest.raises(dastrax.InvalidRunName):
        st.write_run_metadata(bad, {"start": 0, "end": 1})
    assert not storage_dir.exists() or not stored_files(storage_dir)


def test_write_run_metadata_refuses_superrun_ids(st, storage_dir):
    with pytest.raises(dastrax.InvalidRunName, match="define_run"):
        st.write_run_metadata("_x", {"start": 0, "end": 1})
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="superrun _x is not defined"):
        st.get_array("_x", "records")


class WrongDtype(dastrax.Plugin):
    provides = "wrong"
    depends_on = ("records",)
    dtype = [("time", np.int64), ("endtime", np.int64)]

    def compute(self, records, start, end):
        return np.zeros(len(records), [("time", np.int64)])


def test_plugin_returning_wrong_dtype(st, storage_dir):
    st.register(WrongDtype)
    st.make("5", "records")
    with pytest.raises(dastrax.PluginError, match=r"WrongDtype.*run '5', chunk \d+ \["):
        st.make("5", "wrong")
    assert not st.is_stored("5", "wrong")
    assert st.is_stored("5", "records")  # its input stays stored
    leftovers = [p for p in storage_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_unknown_config_key_warns_once(st):
    with pytest.warns(UnknownConfigWarning, match="bonus_aera.*Did you mean 'bonus_area'") as rec:
        st.set_config({"bonus_aera": 1})
    assert rec[0].filename == __file__  # the user's line, not dastrax's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st.key_for("0", "peaks")
        st.key_for("1", "records")


def test_unknown_context_option_is_refused(st):
    with pytest.raises(dastrax.ConfigError, match="write_superrun"):
        st.set_context_config({"write_superrun": True})


def test_per_run_defaults_resolution():
    from dastrax.core.plugin import per_run_default

    entries = [("10", "a"), ("20", "b")]
    assert per_run_default(entries, "5", "d") == "d"
    assert per_run_default(entries, "10", "d") == "a"
    assert per_run_default(entries, "19", "d") == "a"
    assert per_run_default(entries, "100", "d") == "b"  # integers, not strings
    assert per_run_default([("b", 1)], "a", 0) == 0
    assert per_run_default([("b", 1)], "c", 0) == 1


def test_get_array_on_the_processes_scheduler(storage_dir):
    st = make_context(storage_dir, scheduler="processes")
    st.make("0", "peaks")
    arr = st.get_array(["0"], "peaks")
    np.testing.assert_array_equal(arr["time"], expected_records()[0])
    assert list(np.unique(arr["run_id"])) == ["0"]


def test_structured_dtype_helpers_name_fields_and_refuse_plain_dtypes():
    from dastrax.core.chunks import field_dtype, field_names, fields_of, merge_columns

    dt = np.dtype([(("Start time", "time"), np.int64), ("w", np.float32, (3,))])
    assert field_names(dt) == ("time", "w")
    assert field_dtype(dt, "w") == np.dtype((np.float32, (3,)))
    assert fields_of(dt)["time"][2] == "Start time"  # the title, as numpy keeps it
    with pytest.raises(KeyError):
        field_dtype(dt, "area")
    for helper in (field_names, fields_of):
        with pytest.raises(TypeError, match="not a structured dtype: int64"):
            helper(np.dtype(np.int64))
    # merge_columns keeps titles and the first array's column of a shared name
    a = np.zeros(2, dt)
    b = np.zeros(2, [("time", np.int64), ("area", np.float32)])
    a["time"], b["time"], b["area"] = [1, 2], [7, 8], [0.5, 1.5]
    merged = merge_columns([a, b])
    assert field_names(merged.dtype) == ("time", "w", "area")
    assert merged["time"].tolist() == [1, 2] and merged["area"].tolist() == [0.5, 1.5]
    assert fields_of(merged.dtype)["time"][2] == "Start time"

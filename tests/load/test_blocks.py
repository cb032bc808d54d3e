"""Lazy loads of many subruns: dask blocks follow bytes (dask's ``array.chunk-size``), not
stored chunks; the ``subrun`` coordinate is known from metadata, so per-subrun reductions
are lazy; rows are the same whatever the blocks (SEMANTICS.md, "Blocks and per-subrun
reductions")."""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest

import dastrax
from dastrax.bench import setup as bench
from dastrax.load.plan import block_bounds, block_specs

N = 60  # tiny subruns
FIELDS = 7  # peaks' fields: time, length, dt, channel, area, area_per_channel, data


def _params(root, n=N):
    return {
        "storage": str(root),
        "subruns": n,
        "chunks": 2,
        "rows_per_chunk": 10,
        "plugin_options": {"waveform_length": 4, "n_channels": 2},
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    params = _params(root)
    bench.make_data(params)
    st = bench.context(params)
    return st, params


def _numpy(st, ids):
    return st.get_array(ids, "peaks")


def test_blocks_follow_bytes_not_stored_chunks(tiny):
    st, _ = tiny
    want = st.get_array(bench.SUPERRUN, "peaks")
    auto = st.get_dataset(bench.SUPERRUN, "peaks")
    stored = st.get_dataset(bench.SUPERRUN, "peaks", chunks="stored")
    by_rows = st.get_dataset(bench.SUPERRUN, "peaks", chunks=25)
    assert auto.time.data.chunks == ((N * 20,),)  # 1200 small rows: one block
    assert stored.time.data.chunks == ((10,) * (2 * N),)  # the first loops' layout
    # an int of rows: whole stored pieces merged while they fit (a subrun's two chunks)
    assert by_rows.time.data.chunks == ((20,) * N,)
    assert st.get_dataset(bench.SUPERRUN, "peaks", chunks=45).time.data.chunks[0][:2] == (40, 40)
    with dask.config.set({"array.chunk-size": "4kB"}):  # time+length+dt+...: 68 B a row
        small = st.get_dataset(bench.SUPERRUN, "peaks", columns=["area"])
    assert 1 < small.time.data.numblocks[0] < 2 * N
    for ds in (auto, stored, by_rows, small):
        for name in ds.data_vars:
            np.testing.assert_array_equal(ds[name].values, want[name])
        np.testing.assert_array_equal(ds.subrun.values, np.repeat(np.arange(N), 20))


def test_the_graph_grows_with_bytes_not_subruns(tmp_path, tiny):
    st, _ = tiny
    few = _params(tmp_path / "few", 6)
    bench.make_data(few)
    small = bench.context(few).get_dataset(bench.SUPERRUN, "peaks")
    big = st.get_dataset(bench.SUPERRUN, "peaks")
    # one block either way: a task per field and one block description
    assert len(big.__dask_graph__()) == len(small.__dask_graph__()) == FIELDS + 1
    assert len(big.area.sum().__dask_graph__()) == len(small.area.sum().__dask_graph__()) <= 8


def test_a_task_carries_its_block_not_the_superrun(tiny):
    st, _ = tiny
    res = st._resolver.resolve(bench.SUPERRUN, ["peaks"])
    pieces = res.pieces()
    specs = block_specs(pieces, block_bounds(pieces, 20))
    assert len(specs) == N  # 20 rows: one subrun a block (its 2 chunks read at once)
    assert all(len(s.parts) == 1 for s in specs)
    one = len(pickle.dumps(specs[0]))
    every = len(pickle.dumps(block_specs(pieces, block_bounds(pieces, None))))
    assert one * 20 < every
    # a block's reading handles carry no chunk table
    (groups, *_rest) = specs[0].parts[0]
    assert "chunks" not in groups["peaks"].meta


def test_groupby_subrun_is_lazy_and_exact(tiny, tmp_path):
    st, _ = tiny
    ds = st.get_dataset(bench.SUPERRUN, "peaks")
    assert ds.subrun.attrs["labels"] == [str(i) for i in range(N)]
    means = ds.channel.groupby("subrun").mean()  # labels known: nothing computed yet
    assert means.chunks is not None
    rows = st.get_array([str(i) for i in range(N)], "peaks")
    want = [rows["channel"][rows["run_id"] == str(i)].mean() for i in range(N)]
    np.testing.assert_allclose(means.values, want)
    assert list(means.subrun.values) == list(range(N))
    # one subrun's rows, int64 times exact (where() would make them float64)
    one = ds.sel(subrun=7)
    assert one.time.dtype == np.int64
    np.testing.assert_array_equal(one.time.values, rows["time"][rows["run_id"] == "7"])
    assert ds.groupby("subrun").sum().area.shape == (N,)


def test_the_persisted_copy_has_the_same_coordinate_from_metadata(tmp_path):
    params = _params(tmp_path, 12)
    bench.make_data(params)
    st = bench.context(params)
    unstored = st.get_dataset(bench.SUPERRUN, "peaks")
    st.persist_superrun(bench.SUPERRUN, "peaks")
    meta = st.get_metadata(bench.SUPERRUN, "peaks")
    assert meta["subrun_rows"] == list(range(0, 12 * 20, 20))
    stored = st.get_dataset(bench.SUPERRUN, "peaks")
    np.testing.assert_array_equal(stored.subrun.values, unstored.subrun.values)
    np.testing.assert_array_equal(
        stored.area.groupby("subrun").sum().values, unstored.area.groupby("subrun").sum().values
    )
    # a time range cutting into the stored copy: the coordinate follows the rows
    t0, t1 = int(unstored.time[30].values), int(unstored.time[130].values)
    cut = st.get_dataset(bench.SUPERRUN, "peaks", time_range=(t0, t1))
    ref = unstored.isel(peaks=slice(30, 130))
    np.testing.assert_array_equal(cut.subrun.values, ref.subrun.values)
    np.testing.assert_array_equal(cut.time.values, ref.time.values)
    # a selection read by row index from the stored copy: the coordinate follows too
    picked = st.get_dataset(bench.SUPERRUN, "peaks", selection="channel < 3")
    mask = unstored.channel.values < 3
    assert 0 < mask.sum() < len(mask)
    np.testing.assert_array_equal(picked.subrun.values, unstored.subrun.values[mask])
    np.testing.assert_array_equal(picked.time.values, unstored.time.values[mask])


def test_windows_and_selections_ride_on_the_blocks(tiny):
    st, _ = tiny
    rows = st.get_array([str(i) for i in range(N)], "peaks")
    st.define_run("_every_third", rows[::3])  # minimum bias: the windows of these rows
    for chunks in ("auto", 7, "stored"):
        ds = st.get_dataset("_every_third", "peaks", chunks=chunks)
        np.testing.assert_array_equal(ds.time.values, rows["time"][::3])
        np.testing.assert_array_equal(ds.subrun.values, rows["run_id"][::3].astype(int))
        picked = st.get_dataset(bench.SUPERRUN, "peaks", selection="channel < 3", chunks=chunks)
        np.testing.assert_array_equal(picked.time.values, rows["time"][rows["channel"] < 3])
    assert max(ds.time.data.chunks[0]) <= 10


def test_bad_chunks_are_refused(tiny):
    st, _ = tiny
    for bad in (0, -5, "blocks", 2.5, {"nope": 3}):
        with pytest.raises(dastrax.InvalidRequest, match="chunks="):
            st.get_dataset(bench.SUPERRUN, "peaks", chunks=bad)
    assert (
        st.get_dataset(bench.SUPERRUN, "peaks", chunks={"peaks": 30}).time.data.chunks[0][0] == 30
    )

"""The ``subrun`` coordinate kept as runs of rows (``SubrunIndex``): the same answers as
xarray's own ``PandasIndex`` over the same labels, one label a row, for every selection a
user makes; nothing a row is made at open."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import make_context, make_runs

from dastrax.load.plan import labelled
from dastrax.load.subrunindex import SubrunIndex, runs_of

LABELS = np.array([0, 0, 1, 3, 3, 3, 4, 7], np.int32)  # runs; 1 empty, 2, 5, 6 absent
LENGTHS = np.array([2, 3, 0, 4, 1, 2, 5, 3], np.int64)
SUBRUNS = [str(i) for i in range(8)]


def _pair():
    """The same rows labelled twice: as runs (SubrunIndex) and one label a row (pandas)."""
    n = int(LENGTHS.sum())
    data = {
        "time": xr.Variable(["peaks"], da.arange(n, chunks=4, dtype=np.int64) * 10**18 + 7),
        "area": xr.Variable(["peaks"], da.arange(n, chunks=5, dtype=np.float32)),
    }
    attrs = {"data_kind": "peaks", "run_id": "_s", "data_types": ["peaks"], "subruns": SUBRUNS}
    lazy = labelled(data, (LABELS, LENGTHS), SUBRUNS, dict(attrs))
    plain = labelled(data, np.repeat(LABELS, LENGTHS), SUBRUNS, dict(attrs))
    return lazy, plain


def test_runs_are_merged_and_empty_runs_dropped():
    labels, lengths = runs_of(LABELS, LENGTHS)
    assert labels.tolist() == [0, 3, 4, 7]  # 1 has no rows
    assert lengths.tolist() == [5, 7, 5, 3]
    assert np.array_equal(np.repeat(labels, lengths), np.repeat(LABELS, LENGTHS))


def test_the_lazy_index_is_used_and_the_plain_one_is_xarrays():
    lazy, plain = _pair()
    assert isinstance(lazy.xindexes["subrun"], SubrunIndex)
    assert isinstance(plain.xindexes["subrun"], xr.indexes.PandasIndex)
    assert lazy.subrun.dtype == plain.subrun.dtype == np.int32
    assert lazy.subrun.attrs == plain.subrun.attrs
    assert np.array_equal(lazy.subrun.values, plain.subrun.values)


@pytest.mark.parametrize(
    "label",
    [
        0,
        3,
        7,
        np.int64(4),
        3.0,
        slice(1, 4),
        slice(None, 3),
        slice(4, None),
        slice(2, 2),
        slice(5, 6),
        slice(0, 7, 2),
    ],
)
def test_sel_gives_what_a_pandas_index_gives(label):
    lazy, plain = _pair()
    got, want = lazy.sel(subrun=label), plain.sel(subrun=label)
    assert got.sizes == want.sizes
    for name in ("time", "area", "subrun"):
        assert np.array_equal(got[name].values, want[name].values), name
    assert got.time.dtype == np.int64  # exact times: no mask, no float


@pytest.mark.parametrize("labels", [[3, 0], [7], np.array([4, 0])])
def test_a_list_of_labels_gives_those_subruns_rows_in_that_order(labels):
    # (pandas refuses a list on a coordinate with repeated labels: InvalidIndexError)
    lazy, plain = _pair()
    got = lazy.sel(subrun=labels)
    want = np.concatenate([plain.area.values[plain.subrun.values == k] for k in labels])
    assert np.array_equal(got.area.values, want)
    assert np.array_equal(
        got.subrun.values, np.repeat(labels, [(plain.subrun == k).sum() for k in labels])
    )


@pytest.mark.parametrize("label", [1, 2, 9, "3", -1])
def test_missing_labels_fail_as_with_a_pandas_index(label):
    lazy, plain = _pair()
    with pytest.raises(KeyError) as want:
        plain.sel(subrun=label)
    with pytest.raises(KeyError) as got:
        lazy.sel(subrun=label)
    assert type(got.value) is type(want.value)


def test_a_list_with_missing_labels_names_them():
    lazy, _ = _pair()
    with pytest.raises(KeyError, match=r"\[1, 9\]"):
        lazy.sel(subrun=[0, 1, 9])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subrun": 2, "method": "nearest"},
        {"subrun": xr.DataArray([3, 4])},
        {"subrun": 3, "method": "pad"},
    ],
)
def test_other_selections_behave_as_on_a_pandas_index(kwargs):
    lazy, plain = _pair()
    try:
        want = plain.sel(**kwargs)
    except Exception as e:  # noqa: BLE001 - whatever xarray/pandas raise, the same here
        with pytest.raises(type(e)):
            lazy.sel(**kwargs)
    else:
        assert np.array_equal(lazy.sel(**kwargs).area.values, want.area.values)


@pytest.mark.parametrize(
    "rows", [slice(3, 12), slice(0, 0), slice(None), slice(15, None), slice(1, 18, 3), [4, 0, 9], 6]
)
def test_isel_keeps_labels_and_an_index(rows):
    lazy, plain = _pair()
    got, want = lazy.isel(peaks=rows), plain.isel(peaks=rows)
    assert np.array_equal(got.subrun.values, want.subrun.values)
    if isinstance(rows, slice) and rows.step is None:
        assert isinstance(got.xindexes["subrun"], SubrunIndex)
    if np.ndim(rows) != 0:  # a row stays selectable by its subrun
        first = int(want.subrun.values[0]) if want.sizes["peaks"] else None
        if first is not None:
            assert np.array_equal(
                got.sel(subrun=first).area.values, want.sel(subrun=first).area.values
            )


def test_groupby_reductions_equal_pandas_and_numpy():
    lazy, plain = _pair()
    got = lazy.area.groupby("subrun").mean().compute()
    want = plain.area.groupby("subrun").mean().compute()
    assert np.array_equal(got.subrun.values, want.subrun.values)
    assert np.allclose(got.values, want.values)
    codes, area = np.repeat(LABELS, LENGTHS), np.asarray(lazy.area.values)
    assert np.allclose(got.values, [area[codes == k].mean() for k in got.subrun.values])


def test_labels_out_of_order_keep_the_plain_index():
    data = {"area": xr.Variable(["peaks"], np.arange(6.0))}
    attrs = {"data_kind": "peaks", "subruns": ["a", "b"]}
    ds = labelled(data, (np.array([1, 0], np.int32), np.array([3, 3])), ["a", "b"], attrs)
    assert isinstance(ds.xindexes["subrun"], xr.indexes.PandasIndex)
    assert ds.subrun.values.tolist() == [1, 1, 1, 0, 0, 0]


def test_a_lazy_superrun_keeps_its_labels_in_runs_and_pickles(storage_dir):
    st = make_context(storage_dir)
    make_runs(st)
    st.define_run("_three", ["0", "1", "2"])
    ds = st.get_dataset("_three", "peaks")
    index = ds.xindexes["subrun"]
    assert isinstance(index, SubrunIndex)
    assert len(index.transform.labels) == 3  # runs, not rows
    back = pickle.loads(pickle.dumps(ds))
    assert back.xindexes["subrun"].equals(index)
    want = st.get_array("1", "peaks")
    one = ds.sel(subrun=1)
    assert np.array_equal(one.time.values, want["time"])
    assert one.time.dtype == np.int64
    st.persist_superrun("_three", "peaks")
    stored = st.get_dataset("_three", "peaks")
    assert isinstance(stored.xindexes["subrun"], SubrunIndex)
    assert np.array_equal(stored.subrun.values, ds.subrun.values)
    assert np.array_equal(stored.sel(subrun=2).time.values, st.get_array("2", "peaks")["time"])


def test_set_xindex_with_it_says_how_to_build_one():
    import dastrax

    _lazy, plain = _pair()
    with pytest.raises(dastrax.InvalidRequest, match="from_runs"):
        plain.drop_indexes("subrun").set_xindex("subrun", SubrunIndex)

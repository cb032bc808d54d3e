"""Minimum-bias superruns and selections through the Context: exact rows against numpy
for seeded random window sets and selections, lazily and eagerly, stored and not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_context
from dastrax.testutils import Peaks
from dastrax.testutils import Records as _Records

import dastrax
from dastrax.core.plugin import Option

RUNS = [str(i) for i in range(4)]
CHUNKS, PER_CHUNK, CHUNK_NS = 5, 40, 400  # rows 10 ns apart, length 1
SPACING = CHUNKS * CHUNK_NS + 1000


class Records(_Records):
    """Records with run i at i * SPACING, so all runs are made in one call."""

    run_spacing = Option(default=SPACING, type=int, track=False)

    def chunk_intervals(self, run_id):
        shift = int(run_id) * self.run_spacing
        return [(s + shift, e + shift) for s, e in super().chunk_intervals(run_id)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("minbias")
    st = dastrax.Context(
        storage=str(path),
        register=[Records, Peaks],
        config={"n_chunks": CHUNKS, "recs_per_chunk": PER_CHUNK, "chunk_ns": CHUNK_NS},
        progress=False,
    )
    st.make(RUNS, "peaks")
    for i, r in enumerate(RUNS):
        st.write_run_metadata(r, {"start": i * SPACING, "end": i * SPACING + CHUNKS * CHUNK_NS})
    full = st.get_array(RUNS, "peaks", columns=["area", "channel"])
    return st, full


def _reference(full: np.ndarray, windows: pd.DataFrame) -> np.ndarray:
    keep = np.zeros(len(full), bool)
    for run, s, e in windows[["run_id", "time", "endtime"]].itertuples(index=False):
        keep |= (full["run_id"] == run) & (full["time"] >= s) & (full["time"] + 1 <= e)
    return full[keep]


@pytest.mark.parametrize("seed", range(6))
def test_random_windows_give_exactly_the_rows_numpy_selects(data, seed):
    st, full = data
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    picked = full[rng.choice(len(full), n, replace=False)]
    # windows around rows, of random widths: some merge, some cut chunks, some hit chunk
    # edges exactly, some lie in gaps (no rows)
    before = rng.choice([0, 1, 5, 25, 400], n)
    after = rng.choice([1, 2, 11, 30, 400], n)
    run_start = picked["run_id"].astype(int) * SPACING
    windows = pd.DataFrame(
        {  # (inside their runs, as define_run requires)
            "time": np.maximum(picked["time"] - before, run_start),
            "endtime": np.minimum(picked["time"] + after, run_start + CHUNKS * CHUNK_NS),
            "run_id": picked["run_id"],
        }
    )
    name = f"_mb{seed}"
    st.define_run(name, windows)
    want = _reference(full, windows)
    got = st.get_array(name, "peaks", columns=["area", "channel"])
    assert len(got) == len(want)
    np.testing.assert_array_equal(got["time"], np.sort(want["time"]))
    ds = st.get_dataset(name, "peaks", columns=["channel"])
    np.testing.assert_array_equal(ds["time"].values, got["time"])
    np.testing.assert_array_equal(ds["channel"].values, got["channel"])
    subs = ds.attrs["subruns"]
    np.testing.assert_array_equal(np.asarray(subs)[ds["subrun"].values], _runs_of(got, full))
    st.persist_superrun(name, "peaks")
    stored = st.get_array(name, "peaks", columns=["area", "channel"])
    np.testing.assert_array_equal(stored["time"], got["time"])


def _runs_of(got, full):
    lookup = dict(zip(full["time"].tolist(), full["run_id"].tolist()))
    return [lookup[t] for t in got["time"].tolist()]


def test_adjacent_windows_and_windows_in_gaps(data):
    st, full = data
    t0 = int(full["time"][full["run_id"] == "1"][0])
    spec = {"1": [(t0, t0 + 15), (t0 + 15, t0 + 21), (t0 + 600, t0 + 601)]}
    st.define_run("_adjacent", spec)
    got = st.get_array("_adjacent", "peaks")
    # rows at t0, t0+10 (first window), t0+20 needs end <= 21: yes; t0+600 needs end 601
    assert got["time"].tolist() == [t0, t0 + 10, t0 + 20, t0 + 600]


def test_many_windows_one_subrun_read_per_chunk_touched(data):
    st, full = data
    rows = full[full["run_id"] == "2"]
    windows = pd.DataFrame(
        {"time": rows["time"][::2], "endtime": rows["time"][::2] + 1, "run_id": "2"}
    )
    doc = st.define_run("_every_other", windows)
    assert doc["livetime"] == pytest.approx(len(windows) * 1e-9)
    got = st.get_array("_every_other", "peaks")
    np.testing.assert_array_equal(got["time"], rows["time"][::2])
    # one piece (a dask block) per chunk touched, not per window
    ds = st.get_dataset("_every_other", "peaks", chunks="stored")
    assert len(ds["time"].data.chunks[0]) == CHUNKS


@pytest.mark.parametrize(
    "selection",
    ["channel < 3", "(channel > 30) & (area > 0)", ["channel >= 10", "channel < 12"], "area < 0"],
)
def test_selection_against_numpy(data, selection):
    st, full = data
    got = st.get_array(RUNS, "peaks", columns=["area"], selection=selection)
    assert "channel" not in got.dtype.names  # read for the selection, then dropped
    exprs = [selection] if isinstance(selection, str) else selection
    mask = np.ones(len(full), bool)
    for e in exprs:
        mask &= pd.eval(e, local_dict={n: full[n] for n in ("channel", "area")})
    np.testing.assert_array_equal(got["time"], full["time"][mask])
    lazy = st.get_dataset(RUNS, "peaks", selection=selection)
    np.testing.assert_array_equal(lazy["time"].values, full["time"][mask])
    df = st.get_df("0", "peaks", selection_str=selection)
    assert len(df) == int(mask[full["run_id"] == "0"].sum())


def test_selection_skips_chunks_by_their_stats(data):
    st, full = data
    # time is recorded per chunk: a selection on time reads only the chunk holding it
    t = int(full["time"][full["run_id"] == "3"][45])
    res = st._resolver.resolve("3", "peaks")
    res.selection = f"time == {t}"
    pieces = res.pieces()
    assert len(pieces) == 1 and pieces[0].n == 1


def test_unknown_selection_column_is_refused(data):
    st, _full = data
    with pytest.raises(dastrax.InvalidRequest, match="aera"):
        st.get_array("0", "peaks", selection="aera > 1")


def test_minimum_bias_workflow_in_one_line(data, tmp_path):
    st, full = data
    st.define_run("_mb_one", st.get_df(RUNS, "peaks", selection="channel == 7"))
    got = st.get_array("_mb_one", "peaks")
    assert (got["channel"] == 7).all() and len(got) == int((full["channel"] == 7).sum())


def test_make_context_fixture_still_works(tmp_path):
    st = make_context(tmp_path / "x")
    assert len(st.get_array("0", "peaks", selection="channel < 5")) == 50

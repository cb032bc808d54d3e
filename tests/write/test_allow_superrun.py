"""Plugins that allow superruns (strax 2's ``allow_superrun``; SEMANTICS.md): computed
once over the superrun's joined subruns; ``combining=True`` concatenates instead."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_rows, stored_files
from dastrax.testutils import (
    IntegralMinusMean,
    PeakClassification,
    Peaks,
    Records,
    SuperrunPeakClassification,
    SuperrunPeaks,
)

import dastrax
from dastrax.write import join as joined

RUNS = ("0", "1", "2")


def context(path, plugins, **kwargs) -> dastrax.Context:
    kwargs.setdefault("progress", False)
    return dastrax.Context(storage=str(path), register=[Records, *plugins], **kwargs)


def make_subruns(st, targets="peaks", runs=RUNS, spacing=20, spec=None):
    """Runs at ``i * spacing`` with ``targets`` made per run, and superrun ``_sr``."""
    for i, run_id in enumerate(runs):
        st.set_config({"time_offset": i * spacing})
        st.make(run_id, targets)
        end = int(dastrax.endtime(st.get_array(run_id, "records")).max())
        st.write_run_metadata(run_id, {"start": i * spacing, "end": end, "livetime": 1.5})
    st.set_config({"time_offset": 0})
    st.define_run("_sr", spec or list(runs))


def integral_reference(peaks: np.ndarray) -> np.ndarray:
    """Each row's waveform integral minus the mean over all of ``peaks`` (plain numpy)."""
    integral = peaks["data"].astype(np.float64).sum(axis=1)
    return integral - integral.mean()


@pytest.fixture
def per_row(tmp_path):
    """Stored subrun peaks; peak_classification allows superruns, peaks does not."""
    st = context(tmp_path / "data", [Peaks, SuperrunPeakClassification])
    make_subruns(st)
    return st


@pytest.fixture
def whole(tmp_path):
    st = context(tmp_path / "data", [Peaks, IntegralMinusMean])
    make_subruns(st, spec={"0": "all", "1": [(22, 27)], "2": "all"})
    return st


def test_per_row_plugin_over_the_join_equals_concatenation(per_row):
    st = per_row
    assert joined.plan(st._registry, ["peak_classification"]) == (
        ["peak_classification"],
        ["peaks"],
    )
    over = st.get_array("_sr", "peak_classification")
    concat = st.get_array("_sr", "peak_classification", combining=True)
    assert len(over) == 300
    assert_same_rows(over, concat)
    # the join did not make per-subrun peak_classification; the concatenation did
    assert st.is_stored("0", "peak_classification")
    keys = [k for f in st.storage for k in f.keys("_sr-")]
    assert keys == []  # nothing of the superrun is stored without saving


def test_whole_superrun_plugin_equals_numpy_over_the_joined_rows(whole):
    st = whole
    over = st.get_array("_sr", "integral_minus_mean")
    concat = st.get_array("_sr", "integral_minus_mean", combining=True)
    peaks = st.get_array("_sr", "peaks")  # the joined rows, concatenated
    assert len(over) == len(peaks) == 250
    np.testing.assert_array_equal(over["time"], peaks["time"])
    np.testing.assert_allclose(over["integral_minus_mean"], integral_reference(peaks), atol=1e-9)
    # run_metadata(): the superrun's document (three subruns)
    assert set(over["n_subruns"]) == {3}
    assert set(concat["n_subruns"]) == {0}
    # concatenation: each subrun's own mean subtracted, not the superrun's
    assert not np.allclose(concat["integral_minus_mean"], over["integral_minus_mean"])
    for run in RUNS:  # each subrun's rows: its own run's result, cut to the ranges
        own = st.get_array(run, "integral_minus_mean")
        mine = concat[np.isin(concat["time"], own["time"])]
        kept = own[np.isin(own["time"], mine["time"])]
        np.testing.assert_array_equal(mine["integral_minus_mean"], kept["integral_minus_mean"])


def test_iter_and_dataset_over_the_join(whole):
    st = whole
    want = integral_reference(st.get_array("_sr", "peaks"))
    chunks = list(st.get_iter("_sr", "integral_minus_mean"))
    assert all(c.run_id == "_sr" and len(c.subruns) == 1 for c in chunks)
    assert [next(iter(c.subruns)) for c in chunks] == ["0"] * 10 + ["1"] * 5 + ["2"] * 10
    got = np.concatenate([c.data for c in chunks])["integral_minus_mean"]
    np.testing.assert_allclose(got, want, atol=1e-9)
    ds = st.get_dataset("_sr", "integral_minus_mean")
    assert ds.attrs["subruns"] == list(RUNS)
    assert ds["integral_minus_mean"].chunks is not None  # lazy: dask-backed
    np.testing.assert_allclose(ds["integral_minus_mean"].values, want, atol=1e-9)
    assert list(np.unique(ds["subrun"].values)) == [0, 1, 2]
    part = st.get_array("_sr", "integral_minus_mean", time_range=(5, 45))
    keep = (part["time"] >= 5) & (dastrax.endtime(part) <= 45)
    assert keep.all() and len(part) > 0
    full = st.get_array("_sr", "integral_minus_mean")
    sel = full[(full["time"] >= 5) & (dastrax.endtime(full) <= 45)]
    assert_same_rows(part, sel)  # the superrun's mean, not the range's


def test_keys_differ_and_both_store_and_reload(whole, tmp_path):
    st = whole
    over = st.get_array("_sr", "integral_minus_mean")
    concat = st.get_array("_sr", "integral_minus_mean", combining=True)
    k_join = st.persist_superrun("_sr", "integral_minus_mean")
    k_concat = st.persist_superrun("_sr", "integral_minus_mean", combining=True)
    assert k_join[0] == st.key_for("_sr", "integral_minus_mean")
    assert k_join[0].lineage_hash != k_concat[0].lineage_hash
    assert st.is_stored("_sr", "integral_minus_mean")
    meta = st.get_metadata("_sr", "integral_minus_mean")
    assert meta["computed_over"] == "joined subruns"
    # rechunked to chunk_target_size_mb like every stored superrun: these few rows, one chunk
    assert [list(c["subruns"]) for c in meta["chunks"]] == [list(RUNS)]
    before = stored_files(tmp_path / "data")
    assert_same_rows(st.get_array("_sr", "integral_minus_mean"), over)
    assert_same_rows(st.get_array("_sr", "integral_minus_mean", combining=True), concat)
    ds = st.get_dataset("_sr", "integral_minus_mean")
    np.testing.assert_array_equal(ds["subrun"].values[[0, -1]], [0, 2])
    assert stored_files(tmp_path / "data") == before  # reloads made nothing


def test_strax_behaviour_computed_from_records_and_all_saved(tmp_path):
    """strax 2.2.3's test_loaders_and_savers: with Peaks and PeakClassification allowing
    superruns, a superrun's peak_classification is computed from the subruns' records
    even where their peaks are stored, and saving stores every allowing type on the way."""
    st = context(
        tmp_path / "data", [SuperrunPeaks, SuperrunPeakClassification], write_superruns=True
    )
    make_subruns(st, "peaks")
    assert all(st.is_stored(r, "peaks") for r in RUNS)
    assert joined.plan(st._registry, "peak_classification") == (
        ["peaks", "peak_classification"],
        ["records"],
    )
    # damage the subruns' stored peaks: reading them would fail
    for r in RUNS:
        group = st._storage.find(str(st.key_for(r, "peaks")))
        folder = tmp_path / "data" / group.key
        for f in folder.rglob("c/*"):
            if f.is_file():
                f.write_bytes(b"garbage")
    with pytest.raises(dastrax.errors.CorruptData):
        st.get_array("0", "peaks")
    rows = st.get_array("_sr", "peak_classification")
    assert len(rows) == 300
    np.testing.assert_array_equal(rows["type"], 1 + (np.tile(np.arange(10), 30) % 2))
    st.make("_sr", "peak_classification")  # write_superruns: the join is saved
    assert st.is_stored("_sr", "peak_classification")
    assert st.is_stored("_sr", "peaks")  # computed on the way: saved too
    assert not st.is_stored("0", "peak_classification")  # nothing made per subrun
    assert_same_rows(st.get_array("_sr", "peak_classification"), rows)
    # combining=True: the concatenation of stored subrun data; nothing is recomputed
    st2 = context(tmp_path / "data2", [SuperrunPeaks, SuperrunPeakClassification])
    make_subruns(st2, ["peaks", "peak_classification"])
    files = stored_files(tmp_path / "data2")
    concat = st2.get_array("_sr", "peak_classification", combining=True)
    assert stored_files(tmp_path / "data2") == files
    assert_same_rows(concat, rows)


def test_conflicts_are_refused_unless_combining(tmp_path):
    class Extension(PeakClassification):
        """Does not allow superruns, depends (through peaks) on an allowing plugin."""

        provides = "peak_extension"
        depends_on = ("peak_classification",)

        def compute(self, peaks, start, end):
            return peaks.copy()

    st = context(tmp_path / "data", [Peaks, SuperrunPeakClassification, Extension])
    make_subruns(st)
    assert st.check_superrun() == [("peak_extension", "peak_classification")]
    files = stored_files(tmp_path / "data")
    with pytest.raises(dastrax.errors.InvalidRequest, match="peak_extension.*peak_classific"):
        st.get_array("_sr", "peak_extension")
    with pytest.raises(dastrax.errors.InvalidRequest, match="peak_extension"):
        st.make("_sr", "peak_extension")
    assert stored_files(tmp_path / "data") == files
    assert len(st.get_array("_sr", "peak_extension", combining=True)) == 300
    # an allowing type of a superrun in a list of runs: one superrun at a time
    with pytest.raises(dastrax.errors.InvalidRequest, match="one superrun at a time"):
        st.get_array(["0", "_sr"], "peak_classification")


def test_plugin_failure_over_the_join_names_the_superrun(tmp_path):
    class Broken(SuperrunPeakClassification):
        def compute(self, peaks, start, end):
            raise RuntimeError("boom")

    st = context(tmp_path / "data", [Peaks, Broken], write_superruns=True)
    make_subruns(st)
    with pytest.raises(dastrax.errors.PluginError, match="_sr.*joined"):
        st.get_array("_sr", "peak_classification")
    files = stored_files(tmp_path / "data")
    with pytest.raises(dastrax.errors.PluginError):
        st.make("_sr", "peak_classification")
    assert stored_files(tmp_path / "data") == files


def test_same_rows_on_a_two_process_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        th = context(tmp_path / "th", [Peaks, IntegralMinusMean])
        cl = context(tmp_path / "cl", [Peaks, IntegralMinusMean], client=client)
        for st in (th, cl):
            make_subruns(st)
        want = th.get_array("_sr", "integral_minus_mean")
        got = cl.get_array("_sr", "integral_minus_mean")
        assert_same_rows(got, want)
        np.testing.assert_allclose(
            got["integral_minus_mean"],
            integral_reference(cl.get_array("_sr", "peaks")),
            atol=1e-9,
        )
        cl.persist_superrun("_sr", "integral_minus_mean")
        assert_same_rows(th.get_array("_sr", "integral_minus_mean"), want)
        assert_same_rows(cl.get_array("_sr", "integral_minus_mean"), want)

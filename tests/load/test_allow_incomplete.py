"""The context option ``allow_incomplete``: loads of a superrun skip the subruns whose
data is missing (nothing is made) with a warning naming them, and what the load returns
describes only the subruns it holds (``skipped_subruns``, ``livetime``; the run document
that plugins computing over the join see)."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

import dastrax
from dastrax.errors import DataNotAvailable
from dastrax.load import openindex
from dastrax.testing.plugins import IntegralMinusMean, Peaks, Records

#: subrun 0 cut to [2, 7) (5 ns); the others whole runs of livetime 1.5 s
SPEC = {"0": [(2, 7)], "1": "all", "2": "all", "3": "all"}
STORED = ("0", "2")  # peaks stored; of "1" and "3" only records
LIVETIME = 5e-9 + 3 * 1.5
LOADED_LIVETIME = 5e-9 + 1.5  # subruns "0" (cut) and "2"


def context(path, plugins=(Peaks,), **options) -> dastrax.Context:
    options.setdefault("progress", False)
    return dastrax.Context(
        storage=[dastrax.ZarrDirectory(str(path))], register=[Records, *plugins], **options
    )


@pytest.fixture
def data(tmp_path):
    """Runs 0-3 at 20 ns apart with records stored, peaks of runs 0 and 2, superrun
    ``_sr`` of all four and ``_gone`` of runs 1 and 3 (no peaks stored at all)."""
    path = tmp_path / "data"
    st = context(path)
    for i, run in enumerate(SPEC):
        st.set_config({"time_offset": 20 * i})
        st.make(run, "peaks" if run in STORED else "records")
        st.write_run_metadata(run, {"start": 20 * i, "end": 20 * i + 10, "livetime": 1.5})
    st.set_config({"time_offset": 0})
    st.define_run("_sr", SPEC)
    st.define_run("_gone", ["1", "3"])
    return path


def peaks_of(st, runs) -> np.ndarray:
    """The stored peaks of ``runs`` (regular runs), cut to ``SPEC``'s windows."""
    parts = []
    for run in runs:
        arr = st.get_array(run, "peaks", make=False)
        if SPEC[run] != "all":
            (lo, hi) = SPEC[run][0]
            arr = arr[(arr["time"] >= lo) & (dastrax.endtime(arr) <= hi)]
        parts.append(arr)
    return np.concatenate(parts)


def test_a_load_skips_missing_subruns_and_warns_naming_them(data):
    st = context(data, allow_incomplete=True)
    with pytest.warns(UserWarning) as caught:
        arr = st.get_array("_sr", "peaks")
    (warning,) = [w for w in caught if "allow_incomplete" in str(w.message)]
    message = str(warning.message)
    assert "'_sr'" in message and "peaks" in message
    assert "'1'" in message and "'3'" in message and "2 of its 4 subruns" in message
    assert "'0'" not in message and "'2'" not in message
    assert warning.filename == __file__  # points at the caller's line
    np.testing.assert_array_equal(arr, peaks_of(st, STORED))
    assert len(arr) == 50 + 100  # 10 rows a ns
    # nothing was made
    assert not st.is_stored("1", "peaks") and not st.is_stored("3", "peaks")


def test_the_dataset_says_what_it_holds(data):
    st = context(data, allow_incomplete=True)
    with pytest.warns(UserWarning, match="allow_incomplete"):
        ds = st.get_dataset("_sr", "peaks", columns=["area"])
    assert ds.attrs["skipped_subruns"] == ["1", "3"]
    assert ds.attrs["livetime"] == pytest.approx(LOADED_LIVETIME, rel=1e-12)
    assert ds.attrs["subruns"] == list(SPEC)  # row codes keep the superrun's numbering
    codes = ds.subrun.values
    assert sorted(set(codes.tolist())) == [0, 2]
    assert (codes == 0).sum() == 50 and (codes == 2).sum() == 100
    np.testing.assert_array_equal(ds.time.values, peaks_of(st, STORED)["time"])
    # the superrun's own document is its definition's, whatever a load skipped
    assert st.run_metadata("_sr")["livetime"] == pytest.approx(LIVETIME, rel=1e-12)


def test_make_false_skips_too_and_make_true_makes(data):
    st = context(data, allow_incomplete=True)
    with pytest.warns(UserWarning, match="allow_incomplete"):
        assert len(st.get_array("_sr", "peaks", make=False)) == 150
    assert not st.is_stored("1", "peaks")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit make=True makes: nothing skipped
        arr = st.get_array("_sr", "peaks", make=True)
    assert st.is_stored("1", "peaks") and st.is_stored("3", "peaks")
    assert len(arr) == 50 + 3 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # now complete: no warning, the full dataset
        ds = st.get_dataset("_sr", "peaks")
    assert "skipped_subruns" not in ds.attrs and "livetime" not in ds.attrs


def test_without_the_option_loads_make_the_missing_subruns(data):
    st = context(data)
    assert st.context_config["allow_incomplete"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arr = st.get_array("_sr", "peaks")
    assert len(arr) == 50 + 3 * 100
    assert st.is_stored("1", "peaks") and st.is_stored("3", "peaks")


def test_new_context_and_set_context_config_switch_it(data):
    st = context(data)
    incomplete = st.new_context(allow_incomplete=True)
    with pytest.warns(UserWarning, match="allow_incomplete"):
        assert len(incomplete.get_array("_sr", "peaks")) == 150
    assert not st.is_stored("1", "peaks")
    incomplete.set_context_config({"allow_incomplete": False})
    assert len(incomplete.get_array("_sr", "peaks")) == 350  # made now


def test_a_superrun_with_every_subrun_missing_raises(data):
    st = context(data, allow_incomplete=True)
    with pytest.raises(DataNotAvailable, match=r"_gone.*allow_incomplete"):
        st.get_array("_gone", "peaks")
    assert not st.is_stored("1", "peaks") and not st.is_stored("3", "peaks")


def test_a_run_asked_for_itself_is_made_as_usual(data):
    st = context(data, allow_incomplete=True)
    with pytest.warns(UserWarning, match="allow_incomplete") as caught:
        arr = st.get_array(["_sr", "1"], "peaks")
    message = next(str(w.message) for w in caught if "allow_incomplete" in str(w.message))
    assert "'3'" in message and "'1'" not in message  # "1" is made, so not skipped
    assert st.is_stored("1", "peaks") and not st.is_stored("3", "peaks")
    assert len(arr) == 50 + 100 + 100 + 100  # _sr: 0, 1, 2; then run 1 itself


def test_a_join_is_computed_over_the_subruns_held(tmp_path, data):
    """A plugin that allows superruns sees the superrun's document without the skipped
    subruns, and its whole-run summary covers only the peaks loaded."""
    st = context(data, plugins=(Peaks, IntegralMinusMean), allow_incomplete=True)
    with pytest.warns(UserWarning, match=r"'1'.*'3'"):
        arr = st.get_array("_sr", "integral_minus_mean")
    peaks = peaks_of(st, STORED)
    np.testing.assert_array_equal(arr["time"], peaks["time"])
    assert set(arr["n_subruns"].tolist()) == {2}
    integral = peaks["data"].sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(arr["integral_minus_mean"], integral - integral.mean())
    with pytest.warns(UserWarning, match="allow_incomplete"):
        ds = st.get_dataset("_sr", "integral_minus_mean")
    assert ds.attrs["skipped_subruns"] == ["1", "3"]
    assert ds.attrs["livetime"] == pytest.approx(LOADED_LIVETIME, rel=1e-12)
    assert not st.is_stored("1", "peaks")


@pytest.mark.parametrize("where", ["open index", "manifest"])
def test_a_load_that_skipped_subruns_is_never_indexed(data, tmp_path, monkeypatch, where):
    """An index (or manifest) of a superrun's load stands for the whole superrun: one
    that skipped subruns is not written; the complete load then is."""
    if where == "open index":
        folder = tmp_path / "index"
        monkeypatch.setenv(openindex.INDEX_ENV, str(folder))
        monkeypatch.setenv(openindex.MANIFEST_ENV, "0")
    else:
        folder = data / "runs" / "manifests"
        monkeypatch.setenv(openindex.INDEX_ENV, "0")
        monkeypatch.setenv(openindex.MANIFEST_ENV, "1")
    monkeypatch.setattr(openindex, "MIN_SOURCES", 1)  # (4 subruns are indexed too)

    def files() -> list[str]:
        return sorted(os.listdir(folder)) if folder.is_dir() else []

    def settle() -> None:  # the last write a minute ago: the storage's stamp is trusted
        past = time.time() - 60
        for path in (data, data / "runs"):
            os.utime(path, (past, past))

    settle()
    with pytest.warns(UserWarning, match="allow_incomplete"):
        assert len(context(data, allow_incomplete=True).get_array("_sr", "peaks")) == 150
    assert files() == []
    context(data).make(["1", "3"], "peaks")
    settle()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(context(data, allow_incomplete=True).get_array("_sr", "peaks")) == 350
    assert files() != []

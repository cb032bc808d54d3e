"""Regression tests for what a strax user's first week hit (issue 12, "Why"): each test
here failed before its fix. Tests marked ``xfail(strict=True)`` are bugs not fixed yet;
they start passing (and then fail as xfails) once fixed: remove the mark then.

Real parts only: zarr stores on disk, the ``dastrax`` command in a subprocess, the strax
2.2.3 fixture in tests/data.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax
from dastrax.errors import ConfigError, InvalidRequest
from dastrax.storage import DataDirectory, StraxDirectory, ZarrDirectory

ROOT = Path(__file__).resolve().parents[2]
STRAX = ROOT / "tests" / "data" / "strax-data" / "strax_data"
PLUGINS = [Records, Peaks, PeakClassification]


def context(path, **config) -> dastrax.Context:
    return dastrax.Context(
        storage=str(path), register=PLUGINS, config=config or None, progress=False
    )


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DASTRAX_CONFIG", "DASTRAX_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "dastrax.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def three_runs(st: dastrax.Context, docs_in_seconds: bool = False) -> None:
    """Runs 0, 1, 2 of peaks at 0, 20, 40 ns (10 ns each), with run documents: in ns, or
    (``docs_in_seconds``) as strax's tutorial writes them, datetimes of now + the rows'
    times taken as seconds."""
    now = datetime.datetime(2026, 1, 1)
    for i, run_id in enumerate("012"):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks")
        start, end = 20 * i, 20 * i + 10
        if docs_in_seconds:
            start = now + datetime.timedelta(seconds=start)
            end = now + datetime.timedelta(seconds=end)
        st.write_run_metadata(run_id, {"name": run_id, "start": start, "end": end})
    st.set_config({"time_offset": 0})


# -- strax's names ------------------------------------------------------------------
def test_data_directory_takes_strax_keywords_and_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(DataDirectory, "_warned", set())
    assert dastrax.DataDirectory is DataDirectory
    with pytest.warns(UserWarning, match="deep_scan") as first:
        d = dastrax.DataDirectory(tmp_path / "a", provide_run_metadata=True, deep_scan=True)
    assert len([w for w in first if "deep_scan" in str(w.message)]) == 1
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        dastrax.DataDirectory(tmp_path / "b", deep_scan=True)
    assert not [w for w in again if "deep_scan" in str(w.message)]
    assert isinstance(d, ZarrDirectory) and not d.readonly
    st = dastrax.Context(storage=[d], register=PLUGINS, progress=False)
    st.make("0", "peaks")
    assert st.is_stored("0", "peaks")
    assert any(p.name.startswith("0-peaks-") for p in (tmp_path / "a").iterdir())


def test_keep_columns_is_columns(tmp_path):
    st = context(tmp_path)
    kept = st.get_array("0", "peaks", keep_columns=["area"])
    assert "area" in kept.dtype.names and "data" not in kept.dtype.names
    same = st.get_array("0", "peaks", columns=["area"])
    assert kept.dtype == same.dtype
    np.testing.assert_array_equal(kept["area"], same["area"])
    df = st.get_df("0", "peaks", keep_columns=["channel"])
    assert "channel" in df and "area" not in df


@pytest.mark.parametrize(
    "strax_typo, dastrax_name",
    [("keepcolumns", "columns"), ("progressbar", "progress"), ("time_rang", "time_range")],
)
def test_an_unknown_keyword_names_the_dastrax_spelling(tmp_path, strax_typo, dastrax_name):
    st = context(tmp_path)
    before = listing(tmp_path)
    with pytest.raises(InvalidRequest, match=f"did you mean '{dastrax_name}'"):
        st.get_array("0", "peaks", **{strax_typo: None})
    assert listing(tmp_path) == before  # refused before anything was made


def test_strax_introspection_calls(tmp_path):
    st = context(tmp_path, bonus_area=42)
    config = st.show_config("peaks")
    assert isinstance(config, pd.DataFrame)
    row = config.set_index("option").loc["bonus_area"]
    assert row["current"] == 42 and row["default"] == 0
    fields = st.search_field("area*")
    assert isinstance(fields, pd.DataFrame)
    assert set(fields["field"]) == {"area", "area_per_channel"}
    info = st.data_info("peaks")
    assert isinstance(info, pd.DataFrame)
    comments = dict(zip(info["Field name"], info["Comment"]))
    assert comments["time"] == "Start time since unix epoch [ns]"
    lineage = st.lineage("0", "peaks")
    assert isinstance(lineage, dict) and lineage == st.key_for("0", "peaks").lineage
    assert lineage["peaks"][2]["bonus_area"] == 42


# -- plugin options -----------------------------------------------------------------
def test_int_option_takes_numpy_integers_and_refuses_strings_at_set_config(tmp_path):
    st = context(tmp_path)
    st.set_config({"n_chunks": np.int64(2)})
    assert len(st.get_array("0", "records")) == 20
    with pytest.raises(ConfigError, match="n_chunks.*int"):
        st.set_config({"n_chunks": "3"})  # refused here, not at the next load
    assert st.config["n_chunks"] == 2
    assert len(st.get_array("1", "records")) == 20


def test_a_misspelt_option_warns_once_with_did_you_mean_from_the_callers_line(tmp_path):
    st = context(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st.set_config({"bonus_aera": 1})
        st.set_config({"n_chunks": 3})  # the misspelt key is still there: no second warning
    ours = [w for w in caught if "bonus_aera" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "did you mean 'bonus_area'" in str(ours[0].message).lower()
    assert ours[0].filename == __file__  # the user's line, not dastrax/registry.py


# -- run documents ------------------------------------------------------------------
def test_a_run_document_without_name_is_listed(tmp_path):
    ZarrDirectory(tmp_path).write_run_metadata("77", {"start": 0, "end": 10})
    assert context(tmp_path).run_metadata("77")["name"] == "77"
    proc = cli("runs", "--storage", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "77" in proc.stdout and "KeyError" not in proc.stderr


def test_strax_run_documents_with_bson_dates(tmp_path):
    strax_dir = tmp_path / "strax_data"
    shutil.copytree(STRAX, strax_dir)
    st = dastrax.Context(
        storage=[ZarrDirectory(tmp_path / "dastrax"), StraxDirectory(strax_dir)], progress=False
    )
    doc = st.run_metadata("000000")
    assert doc["start"] == 1767225600000000000 and doc["end"] == 1767225601000000000
    table = st.select_runs()
    assert {"000000", "000001", "000002", "_kr_fixture"} <= set(table["name"])
    sr = st.define_run("_two", ["000000", "000001"])
    assert sr["start"] == 1767225600000000000 and sr["end"] == 1767225603000000000
    assert np.isclose(sr["livetime"], 2.0)
    assert len(st.get_array("_two", "peaks")) == 200


def test_runs_on_a_storage_that_does_not_exist_fails(tmp_path):
    missing = tmp_path / "nonexistent" / "dir"
    proc = cli("runs", "--storage", str(missing))
    assert proc.returncode != 0
    assert str(missing) in proc.stderr and "no runs" not in proc.stdout
    assert not missing.exists()


# -- xarray -------------------------------------------------------------------------
def test_dataset_variables_carry_field_titles_and_subrun_labels(tmp_path):
    st = context(tmp_path)
    three_runs(st)
    st.define_run("_sr", ["0", "1", "2"])
    ds = st.get_dataset("_sr", "peaks")
    assert ds.time.attrs["long_name"] == "Start time since unix epoch [ns]"
    assert ds.time.attrs["units"] == "ns"
    assert ds.area.attrs == {"long_name": "Integral across channels [PE]", "units": "PE"}
    assert list(ds.subrun.attrs["labels"]) == ["0", "1", "2"]
    # the README's groupby, the form that works on dask-backed coordinates
    means = ds.area.groupby(ds.subrun.compute()).mean().compute()
    assert means.sizes["subrun"] == 3 and np.allclose(means.values, 1.0)


# -- batch commands -----------------------------------------------------------------
@pytest.fixture
def other_options(tmp_path):
    """Runs 0 and 1 of peaks made with bonus_area=5, and superrun _big of them."""
    st = context(tmp_path, bonus_area=5)
    for i, run_id in enumerate("01"):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": 20 * i, "end": 20 * i + 10})
    st.define_run("_big", ["0", "1"])
    return tmp_path, str(st.key_for("0", "peaks"))


def test_info_lists_what_is_stored_under_other_options(other_options):
    path, stored_key = other_options
    proc = cli("info", "0", "peaks", "--storage", str(path))
    assert proc.returncode != 0
    assert stored_key in proc.stderr, proc.stderr  # names what is stored, not only "make it"
    assert "other options" in proc.stderr
    proc = cli("info", "0", "--storage", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "peaks" in [w.strip(",") for w in proc.stdout.split()]


def test_persist_without_make_refuses_and_names_stored_lineages(other_options):
    path, stored_key = other_options
    before = listing(path)
    proc = cli("persist", "_big", "-t", "peaks", "--storage", str(path))
    assert proc.returncode != 0
    assert stored_key in proc.stderr, proc.stderr
    assert "--make" in proc.stderr
    assert listing(path) == before  # nothing made, nothing persisted
    proc = cli("persist", "_big", "-t", "peaks", "--set", "bonus_area=5", "--storage", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "persisted _big: 200 rows" in proc.stdout


# -- the scheduler ------------------------------------------------------------------
def test_the_dashboard_address_is_printed_for_a_scheduler_address(capsys):
    distributed = pytest.importorskip("distributed")
    from dastrax.core.scheduling import Scheduler

    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as cluster:
        sched = Scheduler(cluster.scheduler_address)
        try:
            err = capsys.readouterr().err
            assert "dashboard at http://" in err, err
            assert sched.dashboard_link in err
        finally:
            sched.close()


# -- not fixed yet ------------------------------------------------------------------
def test_a_time_range_never_loses_rows_outside_the_run_documents(tmp_path):
    st = context(tmp_path)
    three_runs(st, docs_in_seconds=True)
    st.define_run("_superrun_test", ["0", "1", "2"])
    subruns = st.get_array(["0", "1", "2"], "peaks", time_range=(0, 50))
    assert len(subruns) == 300
    assert len(st.get_array("_superrun_test", "peaks", time_range=(0, 50))) == 300
    st.persist_superrun("_superrun_test", "peaks")
    assert len(st.get_array("_superrun_test", "peaks", time_range=(0, 50))) == 300


def test_rows_outside_the_run_documents_warn(tmp_path):
    st = context(tmp_path)
    three_runs(st, docs_in_seconds=True)
    with pytest.warns(UserWarning, match=r"outside|\[start, end\)") as rec:
        st.define_run("_superrun_test", ["0", "1", "2"])
    assert rec[0].filename == __file__  # the user's line, not a module of dastrax


def test_a_strax_stored_superrun_is_stored_for_the_context():
    st = dastrax.Context(storage=StraxDirectory(STRAX), progress=False)
    assert st.is_stored("_kr_fixture", "peaks")


def _strax_array(name: str) -> np.ndarray:
    return np.load(STRAX.parent / "expected" / f"{name}.npy")


def test_a_dastrax_superrun_of_strax_runs_equals_strax_superrun(tmp_path):
    """Issue 12: a dastrax superrun over the three strax-stored runs (plugins not
    registered: dtype and lineage from strax's metadata) gives strax's own _kr_fixture
    rows, field by field, dtype with titles; persisted into zarr storage, the same."""
    want = _strax_array("_kr_fixture-peaks")
    st = dastrax.Context(
        storage=[ZarrDirectory(tmp_path / "dastrax"), StraxDirectory(STRAX)], progress=False
    )
    st.define_run("_mine", ["000000", "000001", "000002"])
    got = st.get_array("_mine", "peaks")
    assert got.dtype == want.dtype
    for name in want.dtype.names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    st.persist_superrun("_mine", "peaks")
    assert st.is_stored("_mine", "peaks")
    again = st.get_array("_mine", "peaks")
    assert again.dtype == want.dtype
    for name in want.dtype.names:
        np.testing.assert_array_equal(again[name], want[name], err_msg=name)
    # and strax's own stored superrun, through the context
    theirs = st.get_array("_kr_fixture", "peaks")
    for name in want.dtype.names:
        np.testing.assert_array_equal(theirs[name], want[name], err_msg=name)


def test_imported_strax_data_reloads_from_dastrax_storage(tmp_path):
    """``dastrax import`` then a context on the dastrax storage alone: every run and type
    equals strax's get_array, and the imported superrun is found as stored."""
    dest = tmp_path / "imported"
    proc = cli("import", str(STRAX), "--storage", str(dest), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    st = dastrax.Context(storage=str(dest), progress=False)
    for run in ("000000", "000001", "000002"):
        for t in ("records", "peaks", "peak_classification"):
            want = _strax_array(f"{run}-{t}")
            got = st.get_array(run, t)
            assert got.dtype == want.dtype
            for name in want.dtype.names:
                np.testing.assert_array_equal(got[name], want[name], err_msg=f"{run} {t}")
    assert st.is_stored("_kr_fixture", "peaks")
    got = st.get_array("_kr_fixture", "peaks")
    np.testing.assert_array_equal(got["time"], _strax_array("_kr_fixture-peaks")["time"])

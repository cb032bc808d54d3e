"""Versioned and growing superruns (issue 14): on an IcechunkRepository every definition,
redefinition and extension is a version that loads as it was; extend_superrun adds
subruns; ZarrDirectory refuses version=."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import make_context
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

RUNS = ["0", "1", "2", "3"]


def _context(storage):
    return dastrax.Context(
        storage=[storage], register=[Records, Peaks, PeakClassification], progress=False
    )


def _make_runs(st, runs=RUNS):
    for i, r in enumerate(runs):
        st.set_config({"time_offset": 20 * i})
        st.make(r, "peaks")
        st.write_run_metadata(r, {"start": 20 * i, "end": 20 * i + 10})
    st.set_config({"time_offset": 0})


@pytest.fixture
def repo(tmp_path):
    st = _context(dastrax.IcechunkRepository(str(tmp_path / "repo")))
    _make_runs(st)
    return st


def test_versions_of_a_growing_superrun_load_as_they_were(repo):
    st = repo
    st.define_run("_sr", RUNS[:3])
    st.persist_superrun("_sr", "peaks")
    v1_rows = st.get_array("_sr", "peaks")
    assert len(v1_rows) == 300
    doc = st.extend_superrun("_sr", ["3"])
    assert list(doc["sub_run_spec"]) == RUNS
    assert doc["livetime"] == pytest.approx(4e-8)
    st.persist_superrun("_sr", "peaks")
    table = st.superrun_versions("_sr")
    assert table["version"].tolist() == [1, 2]
    assert table["subruns"].tolist() == [RUNS[:3], RUNS]
    assert table["stored"].tolist() == [["peaks"], ["peaks"]]
    assert table["livetime"].tolist() == pytest.approx([3e-8, 4e-8])
    # version 1 loads exactly the 3 runs' rows, version 2 (the current one) the 4 runs'
    v1 = st.get_array("_sr", "peaks", version=1)
    np.testing.assert_array_equal(v1["time"], v1_rows["time"])
    assert len(st.get_array("_sr@1", "peaks")) == 300
    v2 = st.get_array("_sr", "peaks")
    assert len(v2) == 400
    np.testing.assert_array_equal(st.get_array("_sr@2", "peaks")["time"], v2["time"])
    want = st.get_array(RUNS, "peaks")
    np.testing.assert_array_equal(v2["time"], want["time"])
    # version 1's stored chunks are unchanged: its snapshot still reads them
    ds = st.get_dataset("_sr", "peaks", version=1)
    assert ds.attrs["subruns"] == RUNS[:3]
    assert float(ds.area.sum().compute()) == 300.0


def test_a_redefinition_is_a_version_and_loads_unstored_too(repo):
    st = repo
    st.define_run("_x", {"0": [(0, 5)]})
    st.define_run("_x", {"1": [(20, 30)]}, overwrite=True)
    assert st.superrun_versions("_x")["version"].tolist() == [1, 2]
    assert st.get_array("_x@1", "peaks")["time"].max() < 5
    assert st.get_array("_x", "peaks")["time"].min() >= 20
    with pytest.raises(dastrax.InvalidRequest, match="version"):
        st.get_array("_x@3", "peaks")


def test_version_on_a_zarr_directory_names_icechunk(tmp_path):
    st = make_context(tmp_path / "data")
    _make_runs(st, RUNS[:2])
    st.define_run("_z", RUNS[:2])
    with pytest.raises(dastrax.InvalidRequest, match="IcechunkRepository"):
        st.get_array("_z", "peaks", version=1)
    with pytest.raises(dastrax.InvalidRequest, match="IcechunkRepository"):
        st.superrun_versions("_z")
    with pytest.raises(dastrax.InvalidRequest, match="name@N"):
        st.get_array("_z@x", "peaks")


def test_extend_refuses_subruns_already_there_and_overlaps(tmp_path):
    st = make_context(tmp_path / "data")
    _make_runs(st, RUNS[:3])
    st.define_run("_e", RUNS[:2])
    with pytest.raises(dastrax.SuperrunDefinitionError, match="already holds"):
        st.extend_superrun("_e", ["1"])
    doc = st.extend_superrun("_e", {"2": [(40, 45)]})
    assert doc["sub_run_spec"]["2"] == [[40, 45]]
    assert len(st.get_array("_e", "peaks")) == 250


def test_versions_and_extend_on_the_command_line(tmp_path, capsys):
    from dastrax.cli.main import main

    repo = tmp_path / "repo"
    st = _context(dastrax.IcechunkRepository(str(repo)))
    _make_runs(st, RUNS[:3])
    storage = ["--storage", f"icechunk://{repo}"]
    assert main(["define", "_c", "0", "1", *storage]) == 0
    assert main(["extend", "_c", "2", *storage]) == 0
    assert "3 subruns" in capsys.readouterr().out
    assert main(["versions", "_c", *storage]) == 0
    out = capsys.readouterr().out
    assert "0, 1, 2" in out and "0, 1" in out
    (tmp_path / "plain").mkdir()
    assert main(["versions", "_c", "--storage", str(tmp_path / "plain")]) == 1
    assert "superrun _c is not defined" in capsys.readouterr().err
    assert main(["versions", "_c", "--storage", str(tmp_path / "nowhere")]) == 1
    assert f"storage {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err


def _chunk_files(group_dir):
    return {
        str(p.relative_to(group_dir)): p.stat()
        for p in group_dir.rglob("*")
        if p.is_file() and "/c/" in str(p.relative_to(group_dir)).replace("\\", "/")
    }


def test_a_persisted_superrun_extended_appends_only_the_new_rows(tmp_path):
    """Issue 14 on a ZarrDirectory: define 3 runs, persist, extend by 1, persist: the
    chunk files of the old rows are the same files (bytes and mtime), only the new rows
    are written as new chunks, and the rows are the 4 runs' rows."""
    st = make_context(tmp_path / "data", chunk_target_size_mb=0.05)
    st.set_config({"n_chunks": 4, "recs_per_chunk": 100, "chunk_ns": 100})
    for i, r in enumerate(RUNS):
        st.set_config({"time_offset": 1000 * i})
        st.make(r, "peaks")
        st.write_run_metadata(r, {"start": 1000 * i, "end": 1000 * i + 400})
    st.set_config({"time_offset": 0})
    st.define_run("_grow", RUNS[:3])
    (old_key,) = st.persist_superrun("_grow", "peaks")
    old_dir = tmp_path / "data" / str(old_key)
    before = {k: (v.st_ino, v.st_mtime_ns, v.st_size) for k, v in _chunk_files(old_dir).items()}
    old_meta = st.get_metadata("_grow", "peaks")
    st.extend_superrun("_grow", ["3"])
    (new_key,) = st.persist_superrun("_grow", "peaks")
    assert new_key != old_key and not old_dir.exists()  # the old key is gone ...
    new_dir = tmp_path / "data" / str(new_key)
    after = {k: (v.st_ino, v.st_mtime_ns, v.st_size) for k, v in _chunk_files(new_dir).items()}
    zrows = old_meta["zarr_chunk_rows"]
    n_old = sum(c["n"] for c in old_meta["chunks"])
    kept = [
        k for k in before if k.split("/")[0] != "subrun" and int(k.split("/")[2]) < n_old // zrows
    ]
    assert kept, "no whole zarr chunk of old rows to keep"
    for k in kept:  # ... but its chunk files live on: the same files
        assert after[k] == before[k], k
    new_meta = st.get_metadata("_grow", "peaks")
    assert new_meta["chunks"][: len(old_meta["chunks"])] == [
        {k: v for k, v in c.items()} for c in old_meta["chunks"]
    ]
    assert new_meta["subruns"] == RUNS
    got = st.get_array("_grow", "peaks")
    want = st.get_array(RUNS, "peaks")
    np.testing.assert_array_equal(got["time"], want["time"])
    np.testing.assert_array_equal(got["data"], want["data"])
    ds = st.get_dataset("_grow", "peaks")
    np.testing.assert_array_equal(np.asarray(ds.attrs["subruns"])[ds.subrun.values], want["run_id"])


def test_zarr_chunk_rows_divide_the_rows_where_a_near_size_does():
    from dastrax.storage.grid import end_aligned_rows

    assert end_aligned_rows(23420, 200_000, 800) == 25_000  # the nearest divisor
    assert 200_000 % end_aligned_rows(23420, 200_000, 800) == 0
    assert end_aligned_rows(23420, 23420 * 3, 800) == 23420  # already dividing
    assert end_aligned_rows(23420, 10_007, 800) == 23420  # fewer rows than a chunk
    assert end_aligned_rows(23420, 200_003, 800) == 23420  # 200 003 is prime


def test_an_extension_keeps_every_file_of_the_old_copy(tmp_path):
    """The persisted grid divides the old copy's rows, so extending it rewrites no old
    zarr chunk — not even the last, nor the subrun column: every old chunk file is the
    same file in the new group, and only the new rows are new files."""
    from dastrax.bench import setup as bench

    params = {"storage": str(tmp_path / "data"), "subruns": 41, "chunks": 2, "rows_per_chunk": 50}
    st = bench.context(params)
    ids = [str(i) for i in range(41)]
    st.make(ids, bench.TARGET)
    cfg = bench.plugin_config(2, 50)
    for i, r in enumerate(ids):
        start = i * cfg["run_spacing"]
        st.write_run_metadata(r, {"start": start, "end": start + 2 * cfg["chunk_ns"]})
    st.define_run("_g", ids[:40])
    (old_key,) = st.persist_superrun("_g", bench.TARGET)
    old_meta = st.get_metadata("_g", bench.TARGET)
    assert old_meta["n_rows"] % old_meta["zarr_chunk_rows"] == 0
    old_dir = tmp_path / "data" / str(old_key)
    before = {k: (v.st_ino, v.st_mtime_ns, v.st_size) for k, v in _chunk_files(old_dir).items()}
    st.extend_superrun("_g", ["40"])
    (new_key,) = st.persist_superrun("_g", bench.TARGET)
    after = {
        k: (v.st_ino, v.st_mtime_ns, v.st_size)
        for k, v in _chunk_files(tmp_path / "data" / str(new_key)).items()
    }
    assert before and all(after[k] == before[k] for k in before)  # subrun column included
    assert len(after) > len(before)
    # the old copy's key went at once; its folder is removed by a thread, soon
    assert not old_dir.exists() and not st.storage[0].has(str(old_key))
    deadline = time.monotonic() + 30
    while any(p.name.startswith(".tmp") for p in (tmp_path / "data").iterdir()):
        assert time.monotonic() < deadline, "the old copy's folder was not removed"
        time.sleep(0.05)
    got = st.get_array("_g", bench.TARGET)
    want = st.get_array(ids, bench.TARGET)
    np.testing.assert_array_equal(got["data"], want["data"])
    ds = st.get_dataset("_g", bench.TARGET)
    np.testing.assert_array_equal(np.asarray(ds.attrs["subruns"])[ds.subrun.values], want["run_id"])

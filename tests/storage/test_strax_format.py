"""strax's own stored data (tests/data/strax-data, written by real strax 2.2.3): read through
StraxDirectory and imported into dastrax storage, compared exactly with strax's get_array.

The import tests write into a ZarrDirectory through the storage protocol.
"""

from __future__ import annotations

import bz2
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import time

import numcodecs
import numpy as np
import pytest

from dastrax.errors import CorruptData, DataNotAvailable, InvalidRequest, RunMetadataNotAvailable
from dastrax.storage import StraxDirectory, ZarrDirectory
from dastrax.storage.codecs import dtype_to_json
from dastrax.write.strax_import import import_strax

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
FIXTURE = os.path.join(HERE, "data", "strax-data")
STRAX = os.path.join(FIXTURE, "strax_data")
EXPECTED = os.path.join(FIXTURE, "expected")
with open(os.path.join(EXPECTED, "manifest.json")) as _f:
    MANIFEST = json.load(_f)
RUN_KEYS = [(r, t, k) for r, types in MANIFEST["runs"].items() for t, k in types.items()]
SR_KEY = "_kr_fixture-peaks-xia2iit6vb"
SR_FOLDER = "_kr_fixture_ep4mtylxfy-peaks-xia2iit6vb"
ALL_KEYS = sorted(
    [k for _r, _t, k in RUN_KEYS]
    + [f"{r}-lone_hits-cs4m5gvv7q" for r in MANIFEST["runs"]]
    + [SR_KEY]
)


def expected(name: str) -> np.ndarray:
    return np.load(os.path.join(EXPECTED, f"{name}.npy"))


def strax_md(folder: str) -> dict:
    prefix = folder.split("-", 1)[1]
    with open(os.path.join(STRAX, folder, f"{prefix}-metadata.json")) as f:
        return json.load(f)


def assert_exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.dtype.descr == want.dtype.descr  # titles included
    assert [got.dtype.fields[n][2:] for n in got.dtype.names] == [
        want.dtype.fields[n][2:] for n in want.dtype.names
    ]
    assert got.shape == want.shape
    for name in want.dtype.names:
        assert np.array_equal(got[name], want[name]), name
    assert got.tobytes() == want.tobytes()


@pytest.fixture
def strax_copy(tmp_path):
    """A writable copy of the strax directory."""
    dst = tmp_path / "strax_data"
    shutil.copytree(STRAX, dst)
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(root, n)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    return dst


# -- reading --------------------------------------------------------------------------
@pytest.mark.parametrize(("run_id", "data_type", "key"), RUN_KEYS)
def test_runs_read_exactly_as_strax(run_id, data_type, key):
    group = StraxDirectory(STRAX).find(key)
    assert group is not None
    want = expected(f"{run_id}-{data_type}")
    assert group.meta["n_rows"] == len(want)
    assert_exact(group.read_rows(0, len(want)), want)
    assert group.dtype == want.dtype
    for name in want.dtype.names:  # column by column, across chunk files
        assert np.array_equal(group.read(name, 0, len(want)), want[name])


def test_dtype_is_strax_stored_dtype():
    group = StraxDirectory(STRAX).find("000000-records-j3nd2fjbiq")
    text = strax_md("000000-records-j3nd2fjbiq")["dtype"]
    assert str(group.dtype.descr) == text
    assert group.dtype.fields["time"][2] == "Start time since unix epoch [ns]"
    assert group.meta["dtype"] == dtype_to_json(expected("000000-records").dtype)


def test_meta_document():
    d = StraxDirectory(STRAX)
    group = d.find("000000-records-j3nd2fjbiq")
    md = strax_md("000000-records-j3nd2fjbiq")
    meta = group.meta
    assert meta["run_id"] == "000000" and meta["data_type"] == "records"
    assert meta["data_kind"] == "records"
    assert meta["lineage"] == md["lineage"]
    assert meta["lineage_hash"] == "j3nd2fjbiq"
    assert meta["compressor"] == "blosc"
    assert meta["chunk_target_size_mb"] == 200
    assert [c["row_start"] for c in meta["chunks"]] == [0, 50]
    assert [c["n"] for c in meta["chunks"]] == [50, 50]
    for c, s in zip(meta["chunks"], md["chunks"]):
        for k in ("start", "end", "first_time", "last_endtime", "nbytes", "run_id", "subruns"):
            assert c[k] == s[k], k
    peaks = d.find("000000-peaks-xia2iit6vb").meta
    assert peaks["lineage"] == MANIFEST["lineages"]["peaks"]
    assert "subruns" not in peaks


def test_lone_hits_without_expected_file():
    group = StraxDirectory(STRAX).find("000001-lone_hits-cs4m5gvv7q")
    md = strax_md("000001-lone_hits-cs4m5gvv7q")
    rows = group.read_rows(0, group.meta["n_rows"])
    assert len(rows) == sum(c["n"] for c in md["chunks"]) == 100
    assert int(rows["time"][0]) == md["chunks"][0]["first_time"]
    assert int(rows["time"][-1]) == md["chunks"][-1]["last_time"]


def test_stored_superrun():
    d = StraxDirectory(STRAX)
    group = d.find(SR_KEY)
    want = expected("_kr_fixture-peaks")
    assert_exact(group.read_rows(0, len(want)), want)
    assert group.meta["run_id"] == "_kr_fixture"
    assert group.meta["subruns"] == MANIFEST["superrun"]["subruns"]
    assert group.meta["strax_folder"] == SR_FOLDER
    strax_chunks = strax_md(SR_FOLDER)["chunks"]
    assert [c["subruns"] for c in group.chunks] == [c["subruns"] for c in strax_chunks]
    assert group.fields[-1] == "subrun"
    sub = group.read("subrun", 0, len(want))
    assert sub.dtype == np.int32
    assert np.bincount(sub).tolist() == [100, 100, 100]
    for i, run_id in enumerate(group.meta["subruns"]):  # each subrun's rows are strax's
        assert_exact(group.read_rows(0, len(want))[sub == i], expected(f"{run_id}-peaks"))


def test_keys_find_data_list_runs():
    d = StraxDirectory(STRAX)
    assert d.keys() == ALL_KEYS
    assert d.keys("000001-peaks") == ["000001-peaks-xia2iit6vb"]
    assert d.keys("_kr") == [SR_KEY]
    assert [g.key for g in d.find_data("000002", "records")] == ["000002-records-j3nd2fjbiq"]
    assert [g.key for g in d.find_data("_kr_fixture", "peaks")] == [SR_KEY]
    assert d.find_data("000002", "rec") == []
    assert d.list_runs() == ["000000", "000001", "000002", "_kr_fixture"]
    assert d.find("000000-peaks-aaaaaaaaaa") is None
    assert d.find("nonsense") is None
    assert d.find(SR_FOLDER) is None  # strax's folder name is not the dastrax key
    assert d.has(SR_KEY)


def test_read_index_out_and_pickle():
    group = StraxDirectory(STRAX).find("000000-records-j3nd2fjbiq")
    want = expected("000000-records")
    again = pickle.loads(pickle.dumps(group))
    assert np.array_equal(again.read("area", 40, 60), want["area"][40:60])  # two chunk files
    assert np.array_equal(
        again.read("time", 10, 90, index=np.array([0, 79])), want["time"][[10, 89]]
    )
    out = np.zeros(5, want.dtype)
    again.read("data", 48, 53, out=out["data"])
    assert np.array_equal(out["data"], want["data"][48:53])
    assert again.read("channel", 7, 7).shape == (0,)
    with pytest.raises(InvalidRequest, match="no column 'nope'"):
        again.read("nope", 0, 1)
    with pytest.raises(InvalidRequest, match="outside"):
        again.read("time", 0, 101)


def test_several_lineages_refused_and_chosen(strax_copy):
    src = strax_copy / "000000-peaks-xia2iit6vb"
    dst = strax_copy / "000000-peaks-aaaaaaaaaa"
    shutil.copytree(src, dst)
    md_path = dst / "peaks-xia2iit6vb-metadata.json"
    md = json.loads(md_path.read_text())
    md["lineage_hash"] = "aaaaaaaaaa"
    md["lineage"]["peaks"][2]["bonus_area"] = 7
    (dst / "peaks-aaaaaaaaaa-metadata.json").write_text(json.dumps(md))
    md_path.unlink()

    d = StraxDirectory(strax_copy)
    assert sorted(g.meta["lineage_hash"] for g in d.find_data("000000", "peaks")) == [
        "aaaaaaaaaa",
        "xia2iit6vb",
    ]
    with pytest.raises(InvalidRequest) as e:
        d.choose("000000", "peaks")
    assert "aaaaaaaaaa" in str(e.value) and "xia2iit6vb" in str(e.value)
    assert "lineage=" in str(e.value)
    chosen = StraxDirectory(strax_copy, lineage={"peaks": "aaaaaaaaaa"}).choose("000000", "peaks")
    assert chosen.key == "000000-peaks-aaaaaaaaaa"
    assert chosen.meta["lineage"]["peaks"][2]["bonus_area"] == 7
    assert_exact(chosen.read_rows(0, 100), expected("000000-peaks"))  # the rows were copied
    assert d.choose("000000", "peaks", registered_hash="xia2iit6vb").key == (
        "000000-peaks-xia2iit6vb"
    )
    with pytest.raises(DataNotAvailable, match="stored lineages: aaaaaaaaaa, xia2iit6vb"):
        StraxDirectory(strax_copy, lineage={"peaks": "bbbbbbbbbb"}).choose("000000", "peaks")
    with pytest.raises(DataNotAvailable, match="registered plugin's lineage cccccccccc"):
        d.choose("000000", "peaks", registered_hash="cccccccccc")
    # one lineage stored: chosen without asking
    assert d.choose("000001", "peaks").key == "000001-peaks-xia2iit6vb"
    with pytest.raises(DataNotAvailable, match="records_x of 000001 is not stored"):
        d.choose("000001", "records_x")


@pytest.mark.parametrize("bad", [{"peaks": "short"}, {"peaks": 3}, {3: "xia2iit6vb"}])
def test_lineage_argument_checked(bad):
    with pytest.raises(InvalidRequest, match="lineage="):
        StraxDirectory(STRAX, lineage=bad)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "swapped"])
def test_damaged_chunk_file(strax_copy, damage):
    folder = strax_copy / "000000-records-j3nd2fjbiq"
    path = folder / "records-j3nd2fjbiq-000001"
    if damage == "garbage":
        path.write_bytes(os.urandom(path.stat().st_size))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "missing":
        path.unlink()
    else:  # a valid blosc buffer of other rows: caught by the chunk's times
        shutil.copy(folder / "records-j3nd2fjbiq-000000", path)
    group = StraxDirectory(strax_copy).find("000000-records-j3nd2fjbiq")
    assert np.array_equal(group.read("time", 0, 50), expected("000000-records")["time"][:50])
    with pytest.raises(CorruptData, match=str(path)):
        group.read("time", 0, 100)


def test_damaged_metadata(strax_copy):
    path = strax_copy / "000000-peaks-xia2iit6vb" / "peaks-xia2iit6vb-metadata.json"
    path.write_text('{"chunks": [')
    with pytest.raises(CorruptData, match=str(path)):
        StraxDirectory(strax_copy).find("000000-peaks-xia2iit6vb")


def test_incomplete_strax_data_is_not_stored(strax_copy):
    shutil.copytree(
        strax_copy / "000000-peaks-xia2iit6vb", strax_copy / "000002-peaks-dddddddddd_temp"
    )
    path = strax_copy / "000001-peaks-xia2iit6vb" / "peaks-xia2iit6vb-metadata.json"
    md = json.loads(path.read_text())
    md["exception"] = "Traceback: it crashed"
    path.write_text(json.dumps(md))
    d = StraxDirectory(strax_copy)
    assert d.find("000001-peaks-xia2iit6vb") is None
    stored = d.keys()
    assert "000001-peaks-xia2iit6vb" not in stored
    assert not any("dddddddddd" in k for k in stored)


@pytest.mark.parametrize("compressor", ["bz2", "zstd"])
def test_other_strax_compressors(strax_copy, compressor):
    """strax's bz2 is ``bz2.compress`` of the rows; its zstd a standard zstd frame."""
    folder = strax_copy / "000000-records-j3nd2fjbiq"
    md_path = folder / "records-j3nd2fjbiq-metadata.json"
    md = json.loads(md_path.read_text())
    want = expected("000000-records")
    for c in md["chunks"]:
        rows = want[c["chunk_i"] * 50 : (c["chunk_i"] + 1) * 50].tobytes()
        packed = bz2.compress(rows) if compressor == "bz2" else numcodecs.Zstd(3).encode(rows)
        (folder / c["filename"]).write_bytes(packed)
    md["compressor"] = compressor
    md_path.write_text(json.dumps(md))
    group = StraxDirectory(strax_copy).find("000000-records-j3nd2fjbiq")
    assert group.meta["compressor"] == compressor
    assert_exact(group.read_rows(0, 100), want)


def test_run_documents(strax_copy):
    d = StraxDirectory(strax_copy)
    with open(os.path.join(STRAX, "000000-metadata.json")) as f:
        assert d.run_metadata("000000") == json.load(f)
    assert d.run_metadata("000000")["start"] == {"$date": "2026-01-01T00:00:00Z"}
    assert d.run_metadata("_kr_fixture")["sub_run_spec"] == dict.fromkeys(
        ["000000", "000001", "000002"], "all"
    )
    doc = json.loads((strax_copy / "000001-metadata.json").read_text())
    del doc["name"]
    (strax_copy / "000001-metadata.json").write_text(json.dumps(doc))
    assert d.run_metadata("000001")["name"] == "000001"
    (strax_copy / "000002-metadata.json").write_text("{not json")
    with pytest.raises(CorruptData, match="000002-metadata.json"):
        d.run_metadata("000002")
    (strax_copy / "000003-metadata.json").write_text("[1, 2]")
    with pytest.raises(CorruptData, match="000003-metadata.json"):
        d.run_metadata("000003")
    with pytest.raises(RunMetadataNotAvailable, match="'999'"):
        d.run_metadata("999")
    assert d.list_runs() == ["000000", "000001", "000002", "000003", "_kr_fixture"]


def test_read_only():
    d = StraxDirectory(STRAX)
    assert d.readonly
    for call in (
        lambda: d.writer("0-peaks-xia2iit6vb", np.dtype([("time", "<i8")])),
        lambda: d.delete("000000-peaks-xia2iit6vb"),
        lambda: d.write_run_metadata("0", {"start": 0, "end": 1}),
        lambda: d.create_run_metadata("0", {"start": 0, "end": 1}),
        lambda: d.delete_run_metadata("000000"),
        lambda: d.write_run_attachment("0", "w", np.zeros(1)),
        d.check_writable,
    ):
        with pytest.raises(InvalidRequest, match="read-only"):
            call()
    assert os.path.exists(os.path.join(STRAX, "000000-metadata.json"))


def test_missing_directory(tmp_path):
    d = StraxDirectory(tmp_path / "nope")
    with pytest.raises(DataNotAvailable, match=str(tmp_path / "nope")):
        d.check_exists()
    StraxDirectory(STRAX).check_exists()
    assert d.keys() == [] and d.list_runs() == []


# -- import ---------------------------------------------------------------------------
def assert_imported(dest) -> None:
    """``dest`` holds everything of the fixture, exactly strax's."""
    assert dest.keys() == ALL_KEYS
    src = StraxDirectory(STRAX)
    for run_id, data_type, key in RUN_KEYS:
        group = dest.find(key)
        assert_exact(group.read_rows(0, group.meta["n_rows"]), expected(f"{run_id}-{data_type}"))
        assert group.meta["lineage"] == src.find(key).meta["lineage"]
    sr = dest.find(SR_KEY)
    assert_exact(sr.read_rows(0, 300), expected("_kr_fixture-peaks"))
    assert sr.meta["subruns"] == ["000000", "000001", "000002"]
    assert [c["subruns"] for c in sr.chunks] == [
        c["subruns"] for c in strax_md(SR_FOLDER)["chunks"]
    ]
    assert np.bincount(sr.read("subrun", 0, 300)).tolist() == [100, 100, 100]
    for run_id in src.list_runs():
        assert dest.run_metadata(run_id) == src.run_metadata(run_id)


def test_import_and_reload(tmp_path):
    dest = ZarrDirectory(tmp_path / "dastrax")
    report = import_strax(StraxDirectory(STRAX), dest)
    assert report.ok, report.summary()
    assert len(report.converted) == len(ALL_KEYS) + 4 and not report.skipped
    assert_imported(ZarrDirectory(tmp_path / "dastrax"))  # a fresh frontend: from disk
    again = import_strax(StraxDirectory(STRAX), ZarrDirectory(tmp_path / "dastrax"))
    assert not again.converted and not again.failed
    assert len(again.skipped) == len(ALL_KEYS) + 4
    assert "converted 0, skipped 17" in again.summary()


def test_import_some_runs(tmp_path):
    dest = ZarrDirectory(tmp_path / "dastrax")
    with pytest.raises(InvalidRequest, match="'7'"):
        import_strax(StraxDirectory(STRAX), dest, runs=["000001", "7"])
    assert dest.keys() == [] and dest.list_runs() == []
    report = import_strax(StraxDirectory(STRAX), dest, runs=["000001"])
    assert report.ok
    assert dest.keys() == [k for k in ALL_KEYS if k.startswith("000001-")]
    assert dest.list_runs() == ["000001"]


def test_import_reports_what_it_cannot_convert(tmp_path, strax_copy, capsys):
    bad = strax_copy / "000002-peaks-xia2iit6vb" / "peaks-xia2iit6vb-000000"
    bad.write_bytes(b"\x00" * 40)
    dest = ZarrDirectory(tmp_path / "dastrax")
    dest.write_run_metadata("000001", {"name": "000001", "start": 0, "end": 1})
    report = import_strax(StraxDirectory(strax_copy), dest, progress=True)
    failed = {i.name: i.reason for i in report.failed}
    assert set(failed) == {"000002-peaks-xia2iit6vb", "000001"}
    assert str(bad) in failed["000002-peaks-xia2iit6vb"]
    assert "different run document" in failed["000001"]
    stored = dest.keys()
    assert "000002-peaks-xia2iit6vb" not in stored
    assert len(stored) == len(ALL_KEYS) - 1
    assert dest.run_metadata("000001") == {"name": "000001", "start": 0, "end": 1}
    err = capsys.readouterr().err
    assert "FAILED data 000002-peaks-xia2iit6vb" in err and "[17/17]" in err


def test_import_refuses_bad_arguments(tmp_path):
    with pytest.raises(InvalidRequest, match="StraxDirectory"):
        import_strax(STRAX, ZarrDirectory(tmp_path / "a"))
    with pytest.raises(InvalidRequest, match="storage frontend"):
        import_strax(StraxDirectory(STRAX), str(tmp_path / "a"))
    with pytest.raises(InvalidRequest, match="read-only"):
        import_strax(StraxDirectory(STRAX), ZarrDirectory(tmp_path / "a", readonly=True))
    with pytest.raises(DataNotAvailable, match="does not exist"):
        import_strax(StraxDirectory(tmp_path / "nope"), ZarrDirectory(tmp_path / "a"))
    assert not os.path.exists(tmp_path / "a")


def test_import_killed_then_rerun(tmp_path, strax_copy):
    """SIGKILL mid-import (while a group is being written), rerun: the same result."""
    # the second chunk file of 000001's records becomes a named pipe: reading it blocks
    # until this test opens the pipe, i.e. the child is in the middle of that group
    chunk = strax_copy / "000001-records-j3nd2fjbiq" / "records-j3nd2fjbiq-000001"
    saved = chunk.read_bytes()
    chunk.unlink()
    os.mkfifo(chunk)
    dest = tmp_path / "dastrax"
    script = os.path.join(HERE, "_crash_scripts", "strax_import.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    child = subprocess.Popen(
        [sys.executable, script, str(strax_copy), str(dest)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
        while True:
            try:
                fd = os.open(chunk, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:  # ENXIO: nobody reads the pipe yet
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        os.close(fd)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    partial = ZarrDirectory(dest)
    done = partial.keys()
    assert "000001-records-j3nd2fjbiq" not in done
    assert "000001-peaks-xia2iit6vb" in done and "000002-peaks-xia2iit6vb" not in done

    chunk.unlink()
    chunk.write_bytes(saved)
    report = import_strax(StraxDirectory(strax_copy), ZarrDirectory(dest))
    assert report.ok, report.summary()
    assert {i.name for i in report.skipped} == {*done, "000000", "000001", "000002", "_kr_fixture"}
    assert {i.name for i in report.converted} == set(ALL_KEYS) - set(done)
    assert_imported(ZarrDirectory(dest))
    assert not ZarrDirectory(dest).temporary_paths()

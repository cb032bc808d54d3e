"""IcechunkRepository through the storage protocol: a local repository and the S3 server."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from dastrax.errors import (
    CorruptData,
    DataNotAvailable,
    InvalidRequest,
    RunMetadataNotAvailable,
    WriteAborted,
)
from dastrax.storage import IcechunkRepository

DTYPE = np.dtype(
    [(("start time", "time"), np.int64), ("length", np.int32), ("dt", np.int16), ("area", "f4")]
)
KEY = "0-peaks-abc123"
RACE = Path(__file__).parents[1] / "_icechunk_scripts" / "race.py"


def rows(n: int, t0: int = 0) -> np.ndarray:
    data = np.zeros(n, DTYPE)
    data["time"] = t0 + 2 * np.arange(n)
    data["length"] = 1
    data["dt"] = 1
    data["area"] = np.arange(n) / 3
    return data


def write_group(repo, key=KEY, n_chunks=3, per_chunk=7, run_id="0"):
    """Append ``n_chunks`` chunks through pickled states (as dask tasks do) and commit."""
    writer = repo.writer(key, DTYPE, data_kind="peaks")
    parts = []
    for i in range(n_chunks):
        data = rows(per_chunk, 100 * i)
        parts.append(data)
        writer = pickle.loads(pickle.dumps(writer.append(data, 100 * i, 100 * i + 100)))
    meta = writer.commit({"run_id": run_id, "data_type": "peaks", "data_kind": "peaks"})
    return meta, np.concatenate(parts)


@pytest.fixture(params=["local", "s3"])
def repo(request, tmp_path):
    if request.param == "local":
        return IcechunkRepository(str(tmp_path / "repo.icechunk"))
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return IcechunkRepository(f"{bucket}/repo", storage_options=server.storage_options)


def test_appended_group_reads_back(repo):
    meta, expected = write_group(repo)
    assert meta["n_rows"] == 21
    assert [c["row_start"] for c in meta["chunks"]] == [0, 7, 14]
    assert [c["last_endtime"] for c in meta["chunks"]] == [13, 113, 213]
    group = pickle.loads(pickle.dumps(repo.find(KEY)))
    assert group.meta == meta
    assert group.dtype == DTYPE
    np.testing.assert_array_equal(group.read_rows(0, 21), expected)
    np.testing.assert_array_equal(group.read("area", 5, 12), expected["area"][5:12])
    index = np.array([0, 3, 4])
    np.testing.assert_array_equal(group.read("time", 7, 14, index), expected["time"][7:14][index])
    out = np.zeros(4, DTYPE)
    group.read("length", 2, 6, out=out["length"])
    np.testing.assert_array_equal(out["length"], 1)
    assert repo.keys() == [KEY]
    assert repo.keys("0-peaks-") == [KEY] and repo.keys("1-") == []
    assert [g.key for g in repo.find_data("0", "peaks")] == [KEY]
    with pytest.raises(DataNotAvailable, match="no column 'nope'"):
        group.read("nope", 0, 1)


def test_group_layout_is_zarr_with_dimension_names_and_crc32c(tmp_path):
    import zarr

    repo = IcechunkRepository(str(tmp_path / "r"))
    write_group(repo)
    session = repo._repo().readonly_session(branch="main")
    arr = zarr.open_array(session.store, path=f"{KEY}/area", mode="r")
    assert arr.metadata.dimension_names == ("peaks",)
    assert type(arr.metadata.codecs[-1]).__name__ == "Crc32cCodec"
    assert zarr.open_group(session.store, path=KEY, mode="r").attrs["dastrax"]["n_rows"] == 21


def test_positional_writes_from_threads(repo):
    n = 50
    writer = repo.writer("_sr-peaks-pos", DTYPE, data_kind="peaks")
    writer = writer.create_arrays(10, total_rows=n, extra={"subrun": np.int32}, rows=10)
    assert writer.chunk_rows == 10
    expected = rows(n)

    def write(z0):
        for name in DTYPE.names:
            writer.array(name)[z0 : z0 + 10] = expected[name][z0 : z0 + 10]
        writer.array("subrun")[z0 : z0 + 10] = z0 // 20

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(0, n, 10)))
    meta = writer.with_rows(n).commit(
        {"run_id": "_sr", "data_type": "peaks", "subruns": ["0", "1", "2"], "chunks": []}
    )
    group = repo.find("_sr-peaks-pos")
    assert meta["n_rows"] == n and group.fields[-1] == "subrun"
    np.testing.assert_array_equal(group.read_rows(0, n), expected)
    np.testing.assert_array_equal(group.read("subrun", 0, n), np.arange(n) // 20)


def test_positional_write_in_another_process_is_refused(tmp_path):
    repo = IcechunkRepository(str(tmp_path / "r"))
    writer = repo.writer("_sr-peaks-pos", DTYPE).create_arrays(10, total_rows=10)
    code = (
        "import pickle, sys, numpy as np\n"
        "w = pickle.loads(sys.stdin.buffer.read())\n"
        "from dastrax.errors import DastraxError\n"
        "try:\n"
        "    w.array('area')[0:10] = np.zeros(10, 'f4')\n"
        "except DastraxError as e:\n"
        "    print('refused:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(writer), capture_output=True, check=True
    )
    assert b"refused:" in out.stdout and b"_sr-peaks-pos" in out.stdout
    writer.abort()
    assert repo.keys() == []


def test_uncommitted_and_aborted_groups_are_invisible(repo):
    writer = repo.writer(KEY, DTYPE).append(rows(5), 0, 10)
    writer = writer.append(rows(10**5, 100), 100, 10**6)  # a whole zarr chunk is written
    assert repo.keys() == [] and repo.find(KEY) is None
    writer.abort()
    assert repo.keys() == []


def test_delete_is_a_commit_and_old_handles_keep_reading(repo):
    _meta, expected = write_group(repo)
    group = repo.find(KEY)
    repo.delete(KEY)
    repo.delete(KEY)  # nothing stored: nothing to do
    assert repo.keys() == [] and repo.find(KEY) is None
    np.testing.assert_array_equal(group.read("time", 0, 21), expected["time"])
    messages = [s.message for s in repo._repo().ancestry(branch="main")]
    assert messages[:2] == [f"dastrax: delete {KEY}", f"dastrax: commit {KEY} (run 0, peaks)"]


def test_same_key_twice_keeps_the_first(repo):
    first, _ = write_group(repo)
    second, _ = write_group(repo, per_chunk=3)
    assert second == first
    assert repo.find(KEY).meta["n_rows"] == 21


def test_run_documents(repo):
    with pytest.raises(RunMetadataNotAvailable, match="'_sr'"):
        repo.run_metadata("_sr")
    repo.write_run_metadata("_sr", {"start": 0, "end": 10, "sub_run_spec": {"0": "all"}})
    assert repo.run_metadata("_sr")["sub_run_spec"] == {"0": "all"}
    assert repo.create_run_metadata("_sr", {"start": 5}) is False
    assert repo.create_run_metadata("1", {"start": 5}) is True
    assert repo.run_metadata("_sr")["start"] == 0
    assert repo.list_runs() == ["1", "_sr"]
    windows = np.arange(12, dtype=np.int64).reshape(6, 2)
    repo.write_run_attachment("_sr", "windows", windows)
    np.testing.assert_array_equal(repo.run_attachment("_sr", "windows"), windows)
    with pytest.raises(RunMetadataNotAvailable, match="no attachment 'other'"):
        repo.run_attachment("_sr", "other")
    with pytest.raises(InvalidRequest, match="attachment name"):
        repo.write_run_attachment("_sr", "a/b", windows)
    with pytest.raises(InvalidRequest, match="not JSON"):
        repo.write_run_metadata("2", {"start": object()})
    repo.delete_run_metadata("_sr")
    assert repo.list_runs() == ["1"]
    with pytest.raises(RunMetadataNotAvailable):
        repo.run_attachment("_sr", "windows")
    messages = [s.message for s in repo._repo().ancestry(branch="main")]
    assert "dastrax: attach windows to run _sr" in messages
    assert "dastrax: define _sr" in messages and "dastrax: define 1" in messages
    assert "dastrax: define 2" not in messages  # refused: nothing written


def test_run_documents_from_another_frontend_are_visible_at_once(repo):
    other = pickle.loads(pickle.dumps(repo))
    assert repo.list_runs() == []
    other.write_run_metadata("9", {"start": 1})
    assert repo.list_runs() == ["9"] and repo.run_metadata("9") == {"start": 1}


def test_versions(repo):
    repo.write_run_metadata("_sr", {"sub_run_spec": {"0": "all", "1": "all"}})
    write_group(repo, key="_sr-peaks-v1", run_id="_sr")
    repo.write_run_metadata("other", {"start": 0})
    repo.write_run_metadata("_sr", {"sub_run_spec": {"0": "all", "1": "all", "2": "all"}})
    write_group(repo, key="_sr-peaks-v2", run_id="_sr")
    versions = repo.superrun_versions("_sr")
    assert [v["version"] for v in versions] == [1, 2]
    assert len(versions[1]["doc"]["sub_run_spec"]) == 3
    assert versions[0]["time"] < versions[1]["time"]
    assert versions[1]["message"] == "dastrax: redefine _sr"
    v1, v2 = repo.at_version("_sr", 1), repo.at_version("_sr", 2)
    assert len(v1.run_metadata("_sr")["sub_run_spec"]) == 2
    assert v1.keys() == ["_sr-peaks-v1"] and v1.list_runs() == ["_sr", "other"]
    assert v2.keys() == ["_sr-peaks-v1", "_sr-peaks-v2"]
    assert v1.readonly and pickle.loads(pickle.dumps(v1)).keys() == ["_sr-peaks-v1"]
    with pytest.raises(InvalidRequest, match="read-only"):
        v1.write_run_metadata("_sr", {})
    with pytest.raises(InvalidRequest, match="versions: 1..2"):
        repo.at_version("_sr", 3)
    with pytest.raises(InvalidRequest, match="versions: none"):
        repo.at_version("nothing", 1)
    # old versions stay: a redefinition after a delete is version 3, version 1 unchanged
    repo.delete("_sr-peaks-v1")
    repo.write_run_metadata("_sr", {"sub_run_spec": {"5": "all"}})
    assert [v["version"] for v in repo.superrun_versions("_sr")] == [1, 2, 3]
    assert repo.at_version("_sr", 1).find("_sr-peaks-v1").meta["n_rows"] == 21


def test_readonly_refuses_and_writes_nothing(tmp_path):
    path = tmp_path / "r"
    ro = IcechunkRepository(str(path), readonly=True)
    for call in (
        lambda: ro.writer(KEY, DTYPE),
        lambda: ro.write_run_metadata("0", {}),
        lambda: ro.create_run_metadata("0", {}),
        lambda: ro.delete(KEY),
        lambda: ro.delete_run_metadata("0"),
        lambda: ro.write_run_attachment("0", "a", np.zeros(1)),
    ):
        with pytest.raises(InvalidRequest, match="read-only"):
            call()
    assert not path.exists()
    assert ro.keys() == [] and ro.find(KEY) is None and ro.list_runs() == []
    with pytest.raises(DataNotAvailable, match="no icechunk repository at .*r"):
        ro.check_exists()
    write_group(IcechunkRepository(str(path)))
    assert ro.keys() == [KEY]
    with pytest.raises(InvalidRequest, match="read-only"):
        ro.delete(KEY)
    assert ro.keys() == [KEY]


def test_damaged_chunks_raise_corrupt_data(tmp_path):
    path = tmp_path / "r"
    repo = IcechunkRepository(str(path))
    write_group(repo, per_chunk=1000)
    chunk_files = [p for p in (path / "chunks").rglob("*") if p.is_file()]
    assert chunk_files
    for p in chunk_files:
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
    group = IcechunkRepository(str(path)).find(KEY)
    with pytest.raises(CorruptData, match=f"{KEY}/time rows 0:3000"):
        group.read("time", 0, 3000)
    for p in chunk_files:
        p.unlink()
    with pytest.raises(CorruptData, match="damaged or missing"):
        IcechunkRepository(str(path)).find(KEY).read("area", 0, 3000)


def test_bad_locations_and_options(tmp_path, s3_server):
    with pytest.raises(InvalidRequest, match="only local paths and s3://"):
        IcechunkRepository("gs://bucket/x")
    with pytest.raises(InvalidRequest, match="names no bucket"):
        IcechunkRepository("s3://")
    with pytest.raises(InvalidRequest, match="not understood"):
        IcechunkRepository("s3://b/x", storage_options={"colour": "red"})
    with pytest.raises(InvalidRequest, match="apply to s3:// URLs only"):
        IcechunkRepository(str(tmp_path), storage_options={"key": "k"})
    missing = IcechunkRepository(
        "s3://no-such-bucket-dastrax/x", storage_options=s3_server.storage_options
    )
    with pytest.raises(DataNotAvailable, match="s3://no-such-bucket-dastrax/x"):
        missing.write_run_metadata("0", {})


def test_s3_needs_only_storage_options(s3_server, s3_bucket, monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    url = f"{s3_bucket}/opts"
    repo = IcechunkRepository(url, storage_options=s3_server.storage_options)
    write_group(repo)
    code = (
        "import json, sys\n"
        "from dastrax.storage import IcechunkRepository\n"
        "r = IcechunkRepository(sys.argv[1], storage_options=json.loads(sys.argv[2]))\n"
        f"print(r.find({KEY!r}).read('time', 0, 21).sum())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run(
        [sys.executable, "-c", code, url, json.dumps(s3_server.storage_options)],
        capture_output=True,
        check=True,
        env=env,
        text=True,
    )
    assert int(out.stdout) == int(repo.find(KEY).read("time", 0, 21).sum())


def _race(tmp_path, url, options, mode, rounds=10):
    sync = tmp_path / f"sync-{mode}"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(RACE),
                url,
                json.dumps(options),
                str(sync),
                name,
                str(rounds),
                mode,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        for name in ("a", "b")
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(out.split())
    return results


def test_two_processes_commit_the_same_key_at_once(s3_server, s3_bucket, tmp_path):
    url = f"{s3_bucket}/race"
    options = s3_server.storage_options
    results = _race(tmp_path, url, options, "key")
    for lines in results:
        assert len(lines) == 10 and set(lines) <= {"ok", "conflict"}
    repo = IcechunkRepository(url, storage_options=options)
    assert repo.keys() == sorted(f"r{i}-peaks-race" for i in range(10))
    for i in range(10):
        group = repo.find(f"r{i}-peaks-race")
        assert group.meta["n_rows"] == 100 and len(group.chunks) == 2
        np.testing.assert_array_equal(group.read("time", 0, 100), np.arange(100) + 1000 * i)
        np.testing.assert_array_equal(group.read("value", 0, 100), float(i))


def test_two_processes_writing_at_once_lose_no_commit(s3_server, s3_bucket, tmp_path):
    url = f"{s3_bucket}/race-runs"
    options = s3_server.storage_options
    results = _race(tmp_path, url, options, "runs")
    repo = IcechunkRepository(url, storage_options=options)
    written = {
        f"{n}-{i}" for n, lines in zip("ab", results) for i, r in enumerate(lines) if r == "ok"
    }
    assert len(written) >= 10
    assert set(repo.list_runs()) == written
    for run_id in written:
        assert repo.run_metadata(run_id)["by"] == run_id[0]


def test_two_processes_persist_the_same_superrun_at_once(s3_server, s3_bucket, tmp_path):
    """Issue 14: two processes persist the same superrun into one IcechunkRepository on
    the S3 server at the same instant, 10 rounds: each round leaves one valid group with
    the rows of the subruns, and each process reports success or WriteConflict."""
    from dastrax.testutils import Peaks, Records

    import dastrax

    url = f"{s3_bucket}/persist-race"
    options = s3_server.storage_options
    st = dastrax.Context(
        storage=IcechunkRepository(url, storage_options=options),
        register=[Records, Peaks],
        progress=False,
    )
    for i, r in enumerate(["0", "1", "2"]):
        st.set_config({"time_offset": 20 * i})
        st.make(r, "peaks")
        st.write_run_metadata(r, {"start": 20 * i, "end": 20 * i + 10})
    st.set_config({"time_offset": 0})
    for i in range(10):
        st.define_run(f"_sr{i}", ["0", "1", "2"][: 1 + i % 3])
    sync = tmp_path / "sync"
    sync.mkdir()
    script = Path(__file__).parents[1] / "_icechunk_scripts" / "persist_race.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, json.dumps(options), str(sync), n, "10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in "ab"
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        lines = out.split()
        assert len(lines) == 10 and set(lines) <= {"ok", "conflict"}, out
    fresh = dastrax.Context(
        storage=IcechunkRepository(url, storage_options=options),
        register=[Records, Peaks],
        progress=False,
    )
    for i in range(10):
        runs = ["0", "1", "2"][: 1 + i % 3]
        key = str(fresh.key_for(f"_sr{i}", "peaks"))
        assert [k for k in fresh.storage[0].keys(f"_sr{i}-")] == [key]
        got = fresh.get_array(f"_sr{i}", "peaks")
        want = fresh.get_array(runs, "peaks")
        np.testing.assert_array_equal(got["time"], want["time"])
        assert fresh.get_metadata(f"_sr{i}", "peaks")["subruns"] == runs


def test_tag_pins_a_version(repo):
    repo.write_run_metadata("_sr", {"start": 0})
    write_group(repo, key="_sr-peaks-v1", run_id="_sr")
    repo.write_run_metadata("_sr", {"start": 1})
    repo.tag("_sr", 1, "paper")
    pinned = repo._repo().lookup_tag("paper")
    assert pinned == repo.at_version("_sr", 1).snapshot_id
    assert IcechunkRepository(
        repo.url, storage_options=repo.storage_options or None, snapshot_id=pinned
    ).run_metadata("_sr") == {"start": 0}
    with pytest.raises(InvalidRequest, match="cannot tag _sr@2 as 'paper'"):
        repo.tag("_sr", 2, "paper")  # the name is taken
    with pytest.raises(InvalidRequest, match="versions: 1..2"):
        repo.tag("_sr", 3, "later")
    with pytest.raises(InvalidRequest, match="read-only"):
        repo.at_version("_sr", 2).tag("_sr", 2, "other")


def test_a_zero_dimensional_attachment_round_trips(repo):
    repo.write_run_metadata("_sr", {"start": 0})
    repo.write_run_attachment("_sr", "livetime", np.asarray(2.5))
    value = repo.run_attachment("_sr", "livetime")
    assert isinstance(value, np.ndarray) and value.shape == () and value == 2.5


def test_a_run_document_that_is_not_an_object_is_corrupt_data(tmp_path):
    import zarr

    repo = IcechunkRepository(str(tmp_path / "repo.icechunk"))
    repo.write_run_metadata("_sr", {"start": 0})
    session = repo._repo().writable_session("main")
    zarr.open_group(session.store, path="runs/_sr", mode="a").attrs["run"] = [1, 2]
    session.commit("damage")
    with pytest.raises(CorruptData, match="run document runs/_sr in .* is not a JSON object"):
        repo.run_metadata("_sr")


def test_importing_sets_no_warning_or_log_filter_and_opening_restores_the_log_filter(tmp_path):
    """Importing dastrax leaves the warning filters and icechunk's log filter alone;
    opening a repository quiets icechunk's warning about local disks, for the open only."""
    code = (
        "import sys, warnings\n"
        "before = list(warnings.filters)\n"
        "import dastrax, dastrax.storage, dastrax.storage.icechunk, icechunk\n"
        "assert not [f for f in warnings.filters if f not in before and f[1] is not None\n"
        "            and 'onsolidated' in f[1].pattern], warnings.filters\n"
        "def mark(s): print(s, file=sys.stderr, flush=True)\n"
        "mark('IMPORTED'); icechunk.local_filesystem_storage(sys.argv[1] + '/a')\n"
        "mark('OPENING'); repo = dastrax.IcechunkRepository(sys.argv[1] + '/b')\n"
        "repo.write_run_metadata('0', {})\n"
        "mark('OPENED'); icechunk.local_filesystem_storage(sys.argv[1] + '/c')\n"
        "mark('END')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ICECHUNK_LOG"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    err = out.stderr
    marks = [err.index(m) for m in ("IMPORTED", "OPENING", "OPENED", "END")]
    assert marks == sorted(marks)
    # icechunk's own warning, before dastrax opens a repository and after: shown
    assert "not safe for concurrent commits" in err[marks[0] : marks[1]]
    assert "not safe for concurrent commits" in err[marks[2] : marks[3]]
    # while it opens one: quiet
    assert "WARN" not in err[marks[1] : marks[2]]


def test_a_write_after_its_abort_raises_write_aborted(repo):
    writer = repo.writer(KEY, DTYPE, data_kind="peaks").append(rows(5), 0, 10)
    positional = repo.writer("0-records-abc123", DTYPE).create_arrays(4, 8)
    positional.array("time")[0:4] = np.arange(4)
    for w in (writer, positional):
        w.abort()
        w.abort()  # twice: nothing more
    with pytest.raises(WriteAborted, match=f"{KEY} into .* was aborted"):
        writer.append(rows(5, 100), 10, 20)
    with pytest.raises(WriteAborted, match=f"{KEY} into .* was aborted"):
        writer.commit({"run_id": "0", "data_type": "peaks", "data_kind": "peaks"})
    with pytest.raises(WriteAborted, match="0-records-abc123 into .* was aborted"):
        positional.array("time")[4:8] = np.arange(4)
    with pytest.raises(WriteAborted):  # one writer of a batch aborted: nothing committed
        repo.commit_all([repo.writer("0-a-abc", DTYPE).prepare({}), writer.prepare({})])
    assert repo.keys() == []
    # a pickled copy (a task's state) is the same writer
    with pytest.raises(WriteAborted):
        pickle.loads(pickle.dumps(writer)).commit({})


@pytest.mark.parametrize("where", ["local", "s3"])
def test_writing_and_reading_logs_nothing(where, tmp_path, s3_server, s3_bucket):
    """icechunk's log filter is quiet only while a repository is opened: nothing else of
    a write and a read (forks pickled between appends, a commit, run documents and their
    versions, a delete) makes icechunk log at its default level."""
    url, options = str(tmp_path / "repo.icechunk"), {}
    if where == "s3":
        url, options = f"{s3_bucket}/quiet", s3_server.storage_options
    code = (
        "import json, pickle, sys\n"
        "import numpy as np\n"
        "from dastrax.storage import IcechunkRepository\n"
        "r = IcechunkRepository(sys.argv[1], storage_options=json.loads(sys.argv[2]) or None)\n"
        "dt = np.dtype([('time', 'i8'), ('length', 'i4'), ('dt', 'i2')])\n"
        "w = r.writer('0-p-abc', dt)\n"
        "for i in range(3):\n"
        "    d = np.zeros(10**5, dt); d['time'] = 10**6 * i + np.arange(10**5)\n"
        "    w = pickle.loads(pickle.dumps(w.append(d, 10**6 * i, 10**6 * (i + 1))))\n"
        "w.commit({'run_id': '0', 'data_type': 'p', 'data_kind': 'p'})\n"
        "r.write_run_metadata('_sr', {'a': 1}); r.write_run_metadata('_sr', {'a': 2})\n"
        "assert r.at_version('_sr', 1).run_metadata('_sr') == {'a': 1}\n"
        "assert r.find('0-p-abc').read('time', 0, 3 * 10**5)[-1] == 2 * 10**6 + 10**5 - 1\n"
        "r.delete('0-p-abc'); assert r.keys() == []\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ICECHUNK_LOG"}
    out = subprocess.run(
        [sys.executable, "-c", code, url, json.dumps(options)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "WARN" not in out.stderr and "ERROR" not in out.stderr, out.stderr

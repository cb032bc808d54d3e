"""Killed writers never leave data that is reported as stored; a rerun succeeds and sweeps
what they left.

Each test starts a real writer process (``_crash_scripts/writer.py``) that makes or
persists tens of MB of ``Peaks`` (about 1.2 kB a row) in a real zarr directory, holds it at
a chosen point of the write, and kills it there with SIGKILL. A failing plugin, a failing
disk write and the sweep rules are tested here too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _crash_scripts import helpers
from _crash_scripts.helpers import (
    TARGETS,
    assert_no_temporaries,
    assert_rows,
    chunk_files,
    kill,
    start_writer,
    wait_for,
)
from conftest import make_context

import dastrax
from dastrax.storage.zarr.writer import ZarrGroupWriter as Appender

#: 24 chunks of 500 rows: 12 000 peaks (about 15 MB) a run; a zarr chunk holds 1250 rows
CONFIG = {"n_chunks": 24, "recs_per_chunk": 500, "chunk_ns": 1000}
SPAN = 24_000


def context(path, run_id="0"):
    return helpers.context(path, CONFIG, run_id)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Runs 0 and 1, their run documents and the superrun ``_sr`` (helpers.seed)."""
    root = tmp_path_factory.mktemp("seeded") / "data"
    return root, helpers.seed(root, CONFIG)


def writer_args(storage, tmp_path, action, pause, **kwargs):
    return {
        "storage": str(storage),
        "action": action,
        "pause": pause,
        "signal": str(tmp_path / "paused"),
        "config": CONFIG,
        **kwargs,
    }


def kill_at(args, tmp_path, then=None):
    """Run the writer until its pause point (and until ``then()`` is true), then SIGKILL it."""
    proc = start_writer(args)
    try:
        wait_for(lambda: (tmp_path / "paused").exists(), proc, f"pause at {args['pause']}")
        if then is not None:
            wait_for(then, proc, f"{then.__doc__} at {args['pause']}")
    finally:
        kill(proc)


# --------------------------------------------------------------------------------------
# make: subrun data
# --------------------------------------------------------------------------------------
MAKE_POINTS = {
    # Peaks blocks in chunk 12 of 24: chunks 0-11 of records and peaks are streamed
    "during-chunk-writes": {"at": "compute", "plugin": "Peaks", "start": 12_000},
    "at-rename": {"at": "rename"},  # complete groups, metadata and all, not renamed yet
    # one type has every row written, the other is being committed: a make's groups are
    # committed together, so neither is stored
    "between-commits": {"at": "commit", "nth": 2},
    # one type renamed into place, the other (complete, flushed) not yet
    "between-renames": {"at": "publish", "nth": 2},
}


@pytest.mark.parametrize("point", list(MAKE_POINTS))
def test_make_killed(point, seeded, tmp_path):
    _, rows = seeded
    storage = tmp_path / "data"
    st = context(storage)
    keys = {t: st.key_for("0", t) for t in ["records", "peaks"]}

    def streamed():
        """chunk files of both types in temporary groups"""
        return len(chunk_files(storage, "data")) >= 3 and chunk_files(storage, "channel")

    def one_committed():
        """one type committed"""
        return any((storage / str(k) / "zarr.json").exists() for k in keys.values())

    then = {"during-chunk-writes": streamed, "between-renames": one_committed}.get(point)
    args = writer_args(storage, tmp_path, "make", MAKE_POINTS[point], run_id="0", targets="peaks")
    kill_at(args, tmp_path, then)

    frontend = st.storage[0]
    left = frontend.temporary_paths()
    assert left, "the writer was killed before it wrote anything"
    if point == "at-rename":  # a complete group, metadata and all, only not renamed yet
        docs = [json.loads(p.read_text()) for p in storage.glob(".tmp-*/group/zarr.json")]
        assert any("chunks" in d["attributes"].get("dastrax", {}) for d in docs)
    stored = {t: st.is_stored("0", t) for t in keys}
    assert sum(stored.values()) == (1 if point == "between-renames" else 0)
    for t, key in keys.items():
        if stored[t]:  # committed before the kill: complete and right
            assert_rows(st.get_array("0", t), rows["0", t])
        else:  # nothing under the key, nothing listed
            assert not (storage / str(key)).exists()
            assert str(key) not in list(frontend.keys())
            with pytest.raises(dastrax.DataNotAvailable, match=str(key)):
                st.get_metadata("0", t)

    st.make("0", "peaks")  # the rerun
    for t in keys:
        assert st.is_stored("0", t)
        assert_rows(st.get_array("0", t), rows["0", t])
    assert_no_temporaries(storage)


# --------------------------------------------------------------------------------------
# persist_superrun
# --------------------------------------------------------------------------------------
PERSIST_POINTS = {
    # the persist has read 20 of the 48 stored blocks of 'data' and is writing them
    "during-chunk-writes": ({"at": "read", "column": "data", "after": 20}, ["peaks"]),
    "at-rename": ({"at": "rename"}, ["peaks"]),
    # peaks staged, peak_classification being committed: nothing stored (one batch)
    "between-targets": ({"at": "commit", "nth": 2}, TARGETS),
    # peaks renamed into place, peak_classification (complete, flushed) not yet
    "between-renames": ({"at": "publish", "nth": 2}, TARGETS),
}


@pytest.mark.parametrize("point", list(PERSIST_POINTS))
def test_persist_killed(point, seeded, tmp_path):
    source, rows = seeded
    storage = tmp_path / "data"
    shutil.copytree(source, storage)
    pause, targets = PERSIST_POINTS[point]

    def streamed():
        """chunk files of the persisted superrun"""
        return chunk_files(storage, "data")

    args = writer_args(
        storage, tmp_path, "persist", pause, name="_sr", targets=targets, chunk_target_size_mb=3
    )
    kill_at(args, tmp_path, streamed if point == "during-chunk-writes" else None)

    st = context(storage)
    frontend = st.storage[0]
    assert frontend.temporary_paths(), "the writer was killed before it wrote anything"
    stored = {t: st.is_stored("_sr", t) for t in targets}
    assert stored == {t: point == "between-renames" and t == "peaks" for t in targets}
    for t in targets:
        key = st.key_for("_sr", t)
        if stored[t]:
            meta = st.get_metadata("_sr", t)
            assert sum(c["n"] for c in meta["chunks"]) == 24_000
            assert_rows(st.get_array("_sr", t), rows["_sr", t])
        else:
            assert not (storage / str(key)).exists()

    keys = st.persist_superrun("_sr", targets, chunk_target_size_mb=3)  # the rerun
    for t, key in zip(targets, keys):
        assert st.is_stored("_sr", t)
        assert (storage / str(key) / "zarr.json").exists()
        assert_rows(st.get_array("_sr", t), rows["_sr", t])
    assert_no_temporaries(storage)


# --------------------------------------------------------------------------------------
# run documents
# --------------------------------------------------------------------------------------
def test_run_document_writes_killed(seeded, tmp_path):
    source, _ = seeded
    storage = tmp_path / "data"
    shutil.copytree(source, storage)
    runs = str(storage / "runs") + "/"
    pause = {"at": "replace", "contains": runs}

    # a new superrun: killed before its document is in place (created exclusively, by a
    # hard link), it is not defined
    args = writer_args(
        storage, tmp_path, "define_run", {**pause, "at": "link"}, name="_new", data=["0"]
    )
    kill_at(args, tmp_path)
    st = context(storage)
    assert "_new" not in st.list_runs()
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="_new"):
        st.run_metadata("_new")
    assert st.storage[0].temporary_paths()

    # a rewritten run document: killed mid-write, the old one is intact
    (tmp_path / "paused").unlink()
    old = st.run_metadata("1")
    args = writer_args(
        storage,
        tmp_path,
        "write_run_metadata",
        pause,
        run_id="1",
        doc={"start": 100_000, "end": 100_000 + SPAN, "comments": ["rewritten"]},
    )
    kill_at(args, tmp_path)
    st = context(storage)
    assert st.run_metadata("1") == old
    # the second writer swept what the first left (its process is gone); its own is left
    left = st.storage[0].temporary_paths()
    assert len(left) == 1 and os.path.basename(left[0]).startswith("1.json.tmp-"), left

    st.define_run("_new", ["0"])  # the reruns
    st.write_run_metadata("1", {"start": 100_000, "end": 100_000 + SPAN, "comments": ["rew"]})
    assert st.run_metadata("_new")["sub_run_spec"] == {"0": "all"}
    assert st.run_metadata("1")["comments"] == ["rew"]
    assert_no_temporaries(storage)


# --------------------------------------------------------------------------------------
# failures inside the writing process
# --------------------------------------------------------------------------------------
class Failing(dastrax.Plugin):
    """Like Peaks (one row per record), but raises in the chunk starting at ``fail_at`` —
    once an append of an earlier chunk is under way, so that it is still writing when
    the make is aborted."""

    provides = "failing"
    depends_on = ("records",)
    dtype = [("time", np.int64), ("length", np.int32), ("dt", np.int16), ("x", np.float64)]
    fail_at = dastrax.Option(default=2, track=False)
    in_flight = threading.Event()

    def compute(self, records, start, end):
        if start == self.fail_at:
            self.in_flight.wait(10)
            raise ValueError("detector on fire")
        out = np.zeros(len(records), self.dtype)
        for name in ("time", "length", "dt"):
            out[name] = records[name]
        return out


def test_plugin_error_stores_nothing_of_its_type(storage_dir, monkeypatch):
    st = make_context(storage_dir, scheduler="threads")
    st.register(Failing)
    st.set_config({"recs_per_chunk": 2000})
    st.make("7", "records")
    records_before = st.get_array("7", "records")

    # appends take a while, so that one is still running when the failure aborts the make
    running = []
    original = Appender.append

    def slow_append(self, *args, **kwargs):
        running.append(1)
        Failing.in_flight.set()
        try:
            time.sleep(0.3)
            return original(self, *args, **kwargs)
        finally:
            running.pop()

    monkeypatch.setattr(Appender, "append", slow_append)
    Failing.in_flight.clear()
    with pytest.raises(dastrax.PluginError, match=r"Failing failed on run '7', chunk 2 \[2, 3\)"):
        st.make("7", "failing")
    wait_for(lambda: not running, what="the appends under way to end")
    monkeypatch.undo()

    assert not st.is_stored("7", "failing")
    assert not (storage_dir / str(st.key_for("7", "failing"))).exists()
    assert st.is_stored("7", "records")  # its input stays stored, unchanged
    assert_rows(st.get_array("7", "records"), records_before)
    assert_no_temporaries(storage_dir)  # even what the late append wrote is gone


def test_late_writes_after_an_abort_leave_nothing(storage_dir):
    frontend = dastrax.ZarrDirectory(str(storage_dir))
    rows = np.dtype([("time", np.int64), ("length", np.int32), ("dt", np.int16), ("w", "f4", 300)])
    data = np.zeros(3000, rows)
    data["time"] = np.arange(3000)
    data["length"] = data["dt"] = 1
    app = frontend.writer("9-peaks-aaaaaaaaaa", rows, None, "peaks")
    state = app.append(data[:1000], 0, 1000)
    app.abort()
    assert frontend.temporary_paths() == []
    # a task of the aborted graph still running: its write is undone, and it stops
    with pytest.raises(dastrax.DastraxError, match="9-peaks-aaaaaaaaaa.*aborted"):
        state.append(data[1000:], 1000, 3000)
    with pytest.raises(dastrax.DastraxError, match="aborted"):
        state.commit({"run_id": "9"})
    assert frontend.temporary_paths() == []
    assert not frontend.has("9-peaks-aaaaaaaaaa")
    # an abort after the commit changes nothing
    app = frontend.writer("9-peaks-aaaaaaaaaa", rows, None, "peaks")
    app.append(data, 0, 3000).commit({"run_id": "9"})
    app.abort()
    assert frontend.has("9-peaks-aaaaaaaaaa") and frontend.temporary_paths() == []


@pytest.mark.parametrize("action", ["make", "persist"])
def test_failing_disk_writes_fail_cleanly(action, seeded, tmp_path):
    """A write the filesystem refuses (here: files over a size limit, EFBIG, the way a
    full disk refuses with ENOSPC) fails the make or persist with that OSError; nothing is
    stored, nothing is left, stored inputs are unchanged."""
    source, rows = seeded
    storage = tmp_path / "data"
    if action == "persist":
        shutil.copytree(source, storage)
    args = {
        "storage": str(storage),
        "action": action,
        "run_id": "0",
        "targets": "peaks",
        "name": "_sr",
        "chunk_target_size_mb": 3,
        "config": CONFIG,
        "file_size_limit": 200_000,
    }
    proc = start_writer(args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "OSError: [Errno 27] File too large" in err
    st = context(storage)
    run_id = "0" if action == "make" else "_sr"
    assert not st.is_stored(run_id, "peaks")
    assert not (storage / str(st.key_for(run_id, "peaks"))).exists()
    assert_no_temporaries(storage)
    if action == "persist":
        assert_rows(st.get_array("0", "peaks"), rows["0", "peaks"])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_what_dead_writers_left(storage_dir):
    frontend = dastrax.ZarrDirectory(str(storage_dir))
    storage_dir.mkdir(exist_ok=True)
    (storage_dir / "runs").mkdir()
    host, dead = socket.gethostname(), _dead_pid()

    def folder(name, token=None, age=None, **info):
        path = storage_dir / name
        (path / "group").mkdir(parents=True)
        if token:
            (path / token).write_text(json.dumps(info))
        if age:
            for p in path.iterdir():
                os.utime(p, (time.time() - age, time.time() - age))
            os.utime(path, (time.time() - age, time.time() - age))
        return str(path)

    swept = [
        folder(".tmp-k-1", "dastrax-writer.json", host=host, pid=dead),
        folder(".tmp-k-2", "dastrax-commit.json", host=host, pid=dead),  # killed in commit
        folder(".tmp-k-3-4.trash"),  # killed while deleting
        folder(".tmp-k-5", age=3600),  # no writer file, an hour old
        folder(".tmp-k-6", "dastrax-writer.json", host="elsewhere", pid=1, age=7 * 3600),
    ]
    kept = [
        folder(".tmp-k-7", "dastrax-writer.json", host=host, pid=os.getpid()),  # alive
        folder(".tmp-k-8"),  # no writer file yet: just created
        folder(".tmp-k-9", "dastrax-writer.json", host="elsewhere", pid=1),  # not stale
        # started 7 hours ago elsewhere, but its writer file was touched by a write just now
        folder(".tmp-k-10", "dastrax-writer.json", host="elsewhere", pid=1, age=7 * 3600),
        folder(".tmp-other-1", "dastrax-writer.json", host=host, pid=dead),  # other key
    ]
    run_docs = storage_dir / "runs"
    dead_doc = run_docs / f"0.json.tmp-{dead}-{'0' * 32}-{host}"
    live_doc = run_docs / f"1.json.tmp-{os.getpid()}-{'1' * 32}-{host}"
    for p in (dead_doc, live_doc):
        p.write_text("{")
    os.utime(storage_dir / ".tmp-k-10" / "dastrax-writer.json")
    assert len(frontend.temporary_paths()) == 12

    assert sorted(frontend.sweep("k")) == sorted(swept)
    assert frontend.temporary_paths() == sorted(kept + [str(dead_doc), str(live_doc)])
    assert frontend.list_runs() == []
    assert sorted(frontend.sweep()) == sorted([kept[-1], str(dead_doc)])
    assert frontend.temporary_paths() == sorted(kept[:-1] + [str(live_doc)])
    with pytest.raises(dastrax.InvalidRequest, match="read-only"):
        dastrax.ZarrDirectory(str(storage_dir), readonly=True).sweep()


def test_object_store_commit_is_the_metadata_written_last():
    """On an fsspec URL there is no rename: the group is written in place and its metadata
    document, holding the chunk table, is written last. What an interrupted writer leaves
    (everything but that document) is never reported as stored, and is replaced."""
    import uuid

    url = f"memory://dastrax-crash-{uuid.uuid4().hex}"
    st = make_context(url)
    st.set_config({"recs_per_chunk": 2000})
    frontend = st.storage[0]
    assert not frontend.local
    st.make("0", "records")
    key = str(st.key_for("0", "peaks"))
    # a writer that stopped before its commit, as a killed one does
    app = frontend.writer(key, st._registry.plugin("peaks", "0").dtype, None, "peaks")
    chunks = list(st.get_iter("0", "records"))
    state = app
    for c in chunks[:6]:
        state = state.append(np.zeros(len(c.data), state.np_dtype), c.start, c.end)
    assert frontend.fs.exists(frontend._p(key, "zarr.json"))  # the group is there...
    assert not frontend.has(key) and not st.is_stored("0", "peaks")  # ...but not stored
    assert key not in list(frontend.keys())
    with pytest.raises(dastrax.DataNotAvailable, match=key):
        st.get_metadata("0", "peaks")
    arr = st.get_array("0", "peaks")  # made again, over what was left
    assert st.is_stored("0", "peaks") and len(arr) == 20_000
    np.testing.assert_array_equal(arr["time"], st.get_array("0", "records")["time"])
    assert np.all(arr["area"] == 1)
    # a failing make removes what it wrote
    st.register(Failing)
    Failing.in_flight.set()
    with pytest.raises(dastrax.PluginError, match="Failing"):
        st.make("0", "failing")
    assert not frontend.fs.exists(frontend._p(str(st.key_for("0", "failing"))))

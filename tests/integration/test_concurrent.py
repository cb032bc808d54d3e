"""Two writers of the same data at once: both finish, the stored result is valid.

Each writer is a real process (``_crash_scripts/writer.py``). To make them really
overlap, both are held at the rename that commits their complete copy until the test has
seen both there; then both are let go: one rename wins, the other discards its copy.
"""

from __future__ import annotations

import shutil

import pytest
from _crash_scripts import helpers
from _crash_scripts.helpers import (
    assert_no_temporaries,
    assert_rows,
    finish,
    kill,
    start_writer,
    wait_for,
)

import dastrax

#: 8 chunks of 500 rows: 4000 peaks (about 5 MB) a run
CONFIG = {"n_chunks": 8, "recs_per_chunk": 500, "chunk_ns": 1000}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeded") / "data"
    return root, helpers.seed(root, CONFIG)


def run_together(tmp_path, args: dict, n: int = 2) -> list[str]:
    """Start ``n`` writers with ``args``, hold each at the rename of its first complete
    group until all are there, let them go together; return their outputs."""
    go = tmp_path / "go"
    procs = []
    try:
        for i in range(n):
            signal = tmp_path / f"paused-{i}"
            procs.append(
                (
                    start_writer(
                        dict(args, pause={"at": "rename"}, signal=str(signal), go=str(go))
                    ),
                    signal,
                )
            )
        for proc, signal in procs:
            wait_for(signal.exists, proc, "the rename")
        go.touch()
        return [finish(proc) for proc, _ in procs]
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                kill(proc)


def test_two_processes_persist_the_same_superrun(seeded, tmp_path):
    source, rows = seeded
    storage = tmp_path / "data"
    shutil.copytree(source, storage)
    args = {
        "storage": str(storage),
        "action": "persist",
        "name": "_sr",
        "targets": helpers.TARGETS,
        "chunk_target_size_mb": 1,
        "config": CONFIG,
    }
    run_together(tmp_path, args)

    st = helpers.context(storage, CONFIG)
    for t in helpers.TARGETS:
        key = str(st.key_for("_sr", t))
        assert [p.name for p in storage.iterdir() if key in p.name] == [key]  # one copy
        meta = st.get_metadata("_sr", t)
        assert sum(c["n"] for c in meta["chunks"]) == len(rows["_sr", t]) == 8000
        assert len(meta["chunks"]) > 1
        assert_rows(st.get_array("_sr", t), rows["_sr", t])
    assert_no_temporaries(storage)


def test_two_processes_make_the_same_run(seeded, tmp_path):
    _, rows = seeded
    storage = tmp_path / "data"
    args = {
        "storage": str(storage),
        "action": "make",
        "run_id": "0",
        "targets": "peak_classification",
        "config": CONFIG,
    }
    run_together(tmp_path, args)

    st = helpers.context(storage, CONFIG)
    for t in ["records", *helpers.TARGETS]:
        assert st.is_stored("0", t)
        assert_rows(st.get_array("0", t), rows["0", t])
    assert sorted(p.name for p in storage.iterdir() if p.is_dir()) == sorted(
        [str(st.key_for("0", t)) for t in ["records", *helpers.TARGETS]]
    )
    assert_no_temporaries(storage)


def test_a_live_writers_folder_is_never_swept(seeded, tmp_path):
    """A writer held mid-write keeps its temporary folder while another process makes and
    commits the same data; once it is killed, the next writer sweeps its folder."""
    _, rows = seeded
    storage = tmp_path / "data"
    args = {
        "storage": str(storage),
        "action": "make",
        "run_id": "0",
        "targets": "records",
        "config": CONFIG,
        "pause": {"at": "compute", "plugin": "Records", "start": 4000},
        "signal": str(tmp_path / "paused"),
    }
    proc = start_writer(args)
    try:
        wait_for((tmp_path / "paused").exists, proc, "the pause")
        frontend = dastrax.ZarrDirectory(str(storage))
        (theirs,) = frontend.temporary_paths()

        st = helpers.context(storage, CONFIG)
        st.make("0", "records")  # sweeps (only dead writers' folders) and commits
        assert st.is_stored("0", "records")
        assert_rows(st.get_array("0", "records"), rows["0", "records"])
        assert frontend.temporary_paths() == [theirs]
        assert frontend.sweep() == []
        assert proc.poll() is None
    finally:
        kill(proc)
    st = helpers.context(storage, CONFIG)
    st.make("0", "peaks")  # the next writer
    assert_no_temporaries(storage)
    assert_rows(st.get_array("0", "records"), rows["0", "records"])


@pytest.mark.parametrize("round_", range(6))
def test_two_processes_define_the_same_new_superrun_differently(seeded, tmp_path, round_):
    """Issue 13: both held at the exclusive create of the new superrun's document, then
    let go together: exactly one definition wins, the other raises
    SuperrunDefinitionError, and the stored document is the winner's."""
    source, _rows = seeded
    storage = tmp_path / "data"
    shutil.copytree(source, storage)
    go = tmp_path / "go"
    specs = [["0"], ["1"]]
    procs = []
    try:
        for i, spec in enumerate(specs):
            signal = tmp_path / f"paused-{i}"
            args = {
                "storage": str(storage),
                "action": "define_run",
                "name": "_race",
                "data": spec,
                "config": CONFIG,
                "pause": {"at": "link", "contains": "/runs/"},
                "signal": str(signal),
                "go": str(go),
            }
            procs.append((start_writer(args), signal))
        for proc, signal in procs:
            wait_for(signal.exists, proc, "the exclusive create")
        go.touch()
        results = [proc.communicate(timeout=120) for proc, _ in procs]
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                kill(proc)
    won = [i for i, (out, _err) in enumerate(results) if "done" in out]
    lost = [i for i, (_out, err) in enumerate(results) if "SuperrunDefinitionError" in err]
    assert len(won) == 1 and len(lost) == 1, results
    st = helpers.context(storage, CONFIG)
    assert list(st.run_metadata("_race")["sub_run_spec"]) == specs[won[0]]
    assert_no_temporaries(storage)


def test_a_group_deleted_while_read_is_not_reported_damaged(seeded, tmp_path):
    """Issue 13: a group that disappears under a reader (another process redefined the
    superrun with overwrite=True) raises DataNotAvailable ("load again"), not
    CorruptData's "delete the store" advice."""
    source, _rows = seeded
    storage = tmp_path / "data"
    shutil.copytree(source, storage)
    st = helpers.context(storage, CONFIG)
    st.persist_superrun("_sr", helpers.TARGETS[0])
    group = st._storage.find(str(st.key_for("_sr", helpers.TARGETS[0])))
    other = helpers.context(storage, CONFIG)
    other.define_run("_sr", ["0"], overwrite=True)  # deletes the stored superrun
    for field in ("time", "data"):
        with pytest.raises(dastrax.DataNotAvailable, match="deleted .* while being read"):
            group.read(field, 0, 10)

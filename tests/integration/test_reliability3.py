"""Reliability, round three (issue 22): a commit whose metadata write fails reports
nothing stored; object-store errors as dastrax errors naming the URL; run documents
written by another process seen by a long-lived context; one icechunk commit per make;
a bad ``selection``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import make_context
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

TINY = {"n_chunks": 3, "recs_per_chunk": 2, "chunk_ns": 1000, "n_channels": 2}
TINY |= {"waveform_length": 2}


def _s3_context(url, s3_server, **kwargs):
    return dastrax.Context(
        storage=[dastrax.ZarrDirectory(url, storage_options=s3_server.storage_options)],
        register=[Records, Peaks, PeakClassification],
        progress=False,
        **kwargs,
    )


# -- S3 -----------------------------------------------------------------------------------
def test_missing_bucket_is_a_dastrax_error_naming_the_url(s3_server):
    url = f"s3://dastrax-no-such-bucket-{uuid.uuid4().hex[:8]}/data"
    st = _s3_context(url, s3_server)
    with pytest.raises(dastrax.DastraxError, match=url.split("/")[2]) as info:
        st.select_runs()
    assert "does not exist" in str(info.value)
    with pytest.raises(dastrax.DastraxError, match=url.split("/")[2]) as info:
        st.get_array("0", "peaks")
    assert "does not exist" in str(info.value)
    with pytest.raises(dastrax.DastraxError, match=url.split("/")[2]):
        st.make("0", "records")


def test_a_run_document_written_elsewhere_is_seen(s3_server, s3_bucket):
    url = f"{s3_bucket}/data"
    st = _s3_context(url, s3_server)
    st.write_run_metadata("0", {"start": 0, "end": 10})
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="'1'"):
        st.run_metadata("1")
    assert list(st.select_runs()["name"]) == ["0"]
    other = _s3_context(url, s3_server)  # another process's view: its own filesystem object
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.pipe(f"{url[5:]}/runs/1.json", json.dumps({"start": 20, "end": 30}).encode())
    del other
    assert st.run_metadata("1")["end"] == 30  # no remembered miss
    assert sorted(st.select_runs()["name"]) == ["0", "1"]
    fs.rm(f"{url[5:]}/runs/1.json")
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="'1'"):
        st.run_metadata("1")


# -- selection ------------------------------------------------------------------------------
@pytest.mark.parametrize("selection", [42, 4.5, {"area": 1}, b"area > 1", object()])
def test_bad_selection_type_is_invalid_request(storage_dir, selection):
    st = make_context(storage_dir)
    st.set_config(TINY)
    st.make("0", "peaks")
    with pytest.raises(dastrax.InvalidRequest, match="selection"):
        st.get_array("0", "peaks", selection=selection)


# -- icechunk: one transaction per make ---------------------------------------------------
def test_icechunk_make_is_one_commit_naming_what_it_wrote(tmp_path):
    repo = dastrax.IcechunkRepository(str(tmp_path / "repo.icechunk"))
    st = dastrax.Context(
        storage=[repo], register=[Records, Peaks, PeakClassification], progress=False
    )
    st.set_config(TINY)
    st.write_run_metadata("0", {"start": 0, "end": 3000})

    def history():
        return [s.message for s in repo._repo().ancestry(branch="main")]

    before = history()
    st.make("0", ["records", "peaks"])
    made = history()[: len(history()) - len(before)]
    keys = [str(st.key_for("0", t)) for t in ("records", "peaks")]
    assert len(made) == 1, made
    assert all(k in made[0] for k in keys) and made[0].startswith("dastrax: commit ")
    assert all(st.is_stored("0", t) for t in ("records", "peaks"))
    # a persist of several targets: one commit too
    st.define_run("_s", ["0"])
    before = history()
    st.persist_superrun("_s", ["peaks", "peak_classification"])
    made = history()[: len(history()) - len(before)]
    assert len(made) == 2, made  # peak_classification of run 0 made, then the persist
    assert all(str(st.key_for("_s", t)) in made[0] for t in ("peaks", "peak_classification"))
    np.testing.assert_array_equal(
        st.get_array("_s", "peaks")["time"], st.get_array("0", "peaks")["time"]
    )


# -- a commit whose metadata write fails --------------------------------------------------
def _writer(args: dict) -> subprocess.CompletedProcess:
    script = Path(__file__).parents[1] / "_crash_scripts" / "writer.py"
    return subprocess.run(
        [sys.executable, str(script), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])),
    )


def test_a_persist_whose_metadata_write_fails_stores_nothing(tmp_path):
    """Files over 6 kB fail (RLIMIT_FSIZE, as a full disk): the tiny rows' chunk files
    fit, the persisted superrun's metadata document (its chunk table) does not."""
    storage = tmp_path / "data"
    st = make_context(storage)
    st.set_config(TINY)
    for run_id, offset in (("0", 0), ("1", 10_000)):
        st.set_config({"time_offset": offset})
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": offset, "end": offset + 3000})
    st.set_config({"time_offset": 0})
    st.define_run("_sr", ["0", "1"])

    def listing():  # (zarr may add the root group's own document: not dastrax's)
        root_doc = storage / "zarr.json"
        return [str(p.relative_to(storage)) for p in sorted(storage.rglob("*")) if p != root_doc]

    before = listing()
    args = {
        "storage": str(storage),
        "action": "persist",
        "name": "_sr",
        "targets": ["peaks"],
        "chunk_target_size_mb": 0.0002,
        "config": TINY,
        "file_size_limit": 6000,
    }
    proc = _writer(args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "File too large" in proc.stderr
    assert not st.is_stored("_sr", "peaks")
    assert listing() == before
    # the same persist without the limit: stored, and its document is bigger than 6 kB
    st.persist_superrun("_sr", "peaks", chunk_target_size_mb=0.0002)
    assert (storage / str(st.key_for("_sr", "peaks")) / "zarr.json").stat().st_size > 6000


# -- a writer killed before its writer file was complete ------------------------------------
def test_a_folder_whose_writer_died_before_its_writer_file_is_swept(tmp_path):
    """The folder's name carries its writer's pid and host: a writer killed between
    creating the folder and completing its writer file (empty, or not there) is known to
    be gone, and the next writer of the key sweeps the folder (not after 10 minutes)."""
    import socket

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(proc.stdout)
    storage = tmp_path / "data"
    frontend = dastrax.ZarrDirectory(str(storage))
    key = "0-peaks-aaaaaaaaaa"
    host = socket.gethostname()
    empty = storage / f".tmp-{key}-{'a' * 32}.{dead}@{host}"
    bare = storage / f".tmp-{key}-{'b' * 32}.{dead}@{host}"
    alive = storage / f".tmp-{key}-{'c' * 32}.{os.getpid()}@{host}"
    for folder in (empty, bare, alive):
        (folder / "group").mkdir(parents=True)
    (empty / "dastrax-writer.json").write_text("")  # killed mid-write
    assert sorted(frontend.sweep(key)) == sorted([str(empty), str(bare)])
    assert frontend.temporary_paths() == [str(alive)]
    writer = frontend.writer(key, np.dtype([("time", np.int64)]))
    assert f".{os.getpid()}@{host}" in writer.folder
    writer.abort()

"""``persist --overwrite`` / ``persist_superrun(..., overwrite=True)``: a bad request leaves
the stored superrun in place byte for byte; a good one replaces it (a new chunk size), and
readers meanwhile see the old or the new complete group.

Object stores (``s3``) replace non-atomically: the old group is removed when the new one
starts (there is no rename), so readers during an overwrite are tested on the local
directory and icechunk (one commit) only.
"""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax
from dastrax.cli.main import main
from dastrax.errors import DastraxError, InvalidRequest
from dastrax.storage import IcechunkRepository

PLUGINS = [Records, Peaks, PeakClassification]
#: 2 chunks of 50 rows a run (few stored chunks: each read is a request on S3)
CONFIG = {"n_chunks": 2, "recs_per_chunk": 50, "chunk_ns": 5}


class Place:
    """A storage location (local directory, icechunk repository or S3 prefix) and its
    bytes."""

    def __init__(self, kind, url, options=None, config=True):
        self.kind, self.url, self.options = kind, url, options
        self.config = CONFIG if config else {}

    def frontend(self):
        if self.kind == "icechunk":
            return IcechunkRepository(self.url)
        return dastrax.ZarrDirectory(self.url, storage_options=self.options)

    def context(self) -> dastrax.Context:
        st = dastrax.Context(storage=[self.frontend()], register=PLUGINS, progress=False)
        st.set_config(self.config)
        return st

    def snapshot(self) -> dict[str, bytes]:
        import fsspec

        if self.kind == "s3":
            import s3fs

            fs, root = s3fs.S3FileSystem(skip_instance_cache=True, **self.options), self.url[5:]
        else:
            fs, root = fsspec.filesystem("file"), self.url
        fs.invalidate_cache()
        return {p: fs.cat_file(p) for p in sorted(fs.find(root))}


@pytest.fixture(params=["local", "icechunk", "s3"])
def place(request, tmp_path) -> Place:
    if request.param == "local":
        return Place("local", str(tmp_path / "data"))
    if request.param == "icechunk":
        return Place("icechunk", str(tmp_path / "repo.icechunk"))
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return Place("s3", f"{bucket}/dastrax", server.storage_options)


def seed(place: Place, chunk_mb: float = 200) -> dastrax.Context:
    """Runs 0 and 1 (records, peaks), the superrun ``_x`` of both, its peaks persisted."""
    st = place.context()
    for i, run_id in enumerate(["0", "1"]):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": 20 * i, "end": 20 * i + 10})
    st.set_config({"time_offset": 0})
    st.define_run("_x", ["0", "1"])
    st.persist_superrun("_x", "peaks", chunk_target_size_mb=chunk_mb)
    assert st.is_stored("_x", "peaks")
    return st


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype.names == b.dtype.names and len(a) == len(b)
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_cli_overwrite_with_mixed_kinds_leaves_the_stored_superrun(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DASTRAX_CONFIG", raising=False)
    place = Place("local", str(tmp_path / "data"), config=False)  # the CLI's plugin options
    st = seed(place)
    key = str(st.key_for("_x", "peaks"))
    before = place.snapshot()
    assert any(f"/{key}/" in p for p in before)
    code = main(
        ["persist", "_x", "-t", "peaks", "-t", "records", "--overwrite", "--storage", place.url]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "dastrax: error:" in err and "records" in err and "peaks" in err, err
    assert place.snapshot() == before  # byte for byte, and no file added or removed
    again = place.context()
    assert again.is_stored("_x", "peaks")
    assert len(again.get_array("_x", "peaks")) == 200


MIXED = {"targets": ["peaks", "records"]}  # two data kinds
BAD = {
    "mixed-kinds": MIXED,
    "negative-size": {"targets": ["peaks"], "chunk_target_size_mb": -1},
    "unknown-type": {"targets": ["peaks", "no_such_type"]},
}


@pytest.mark.parametrize(
    ("place", "bad"),
    [("local", b) for b in BAD.values()] + [("icechunk", MIXED), ("s3", MIXED)],
    ids=[f"local-{b}" for b in BAD] + ["icechunk-mixed-kinds", "s3-mixed-kinds"],
    indirect=["place"],
)
def test_library_overwrite_with_a_bad_request_changes_nothing(place, bad):
    st = seed(place)
    before = place.snapshot()
    with pytest.raises(DastraxError) as info:
        st.persist_superrun("_x", overwrite=True, **bad)
    assert not isinstance(info.value, dastrax.CorruptData)
    if "chunk_target_size_mb" in bad or "records" in bad["targets"]:
        assert isinstance(info.value, InvalidRequest)
    assert place.snapshot() == before
    assert place.context().is_stored("_x", "peaks")


def test_overwrite_with_a_good_request_replaces_the_stored_copy(place):
    st = seed(place)
    key = str(st.key_for("_x", "peaks"))
    old = st.get_metadata("_x", "peaks")
    want = st.get_array("_x", "peaks")
    assert len(old["chunks"]) == 1
    st.persist_superrun("_x", "peaks", chunk_target_size_mb=0.03, overwrite=True)
    other = place.context()
    new = other.get_metadata("_x", "peaks")
    assert len(new["chunks"]) > 1 and new["chunk_target_size_mb"] == 0.03
    assert sum(c["n"] for c in new["chunks"]) == 200
    assert_same(other.get_array("_x", "peaks"), want)
    assert place.frontend().keys("_x-") == [key]
    if place.kind == "local":
        assert dastrax.ZarrDirectory(place.url).temporary_paths() == []


@pytest.mark.parametrize("kind", ["local", "icechunk"])
def test_readers_during_an_overwrite_see_the_old_or_the_new_group(kind, tmp_path):
    place = Place(kind, str(tmp_path / ("data" if kind == "local" else "repo.icechunk")))
    st = seed(place)
    want = st.get_array("_x", "peaks")
    old_chunks = len(st.get_metadata("_x", "peaks")["chunks"])
    seen, errors = set(), []
    done = threading.Event()

    def read():
        reader = place.context()
        while not done.is_set() or not seen:
            try:
                n = len(reader.get_metadata("_x", "peaks")["chunks"])
                assert_same(reader.get_array("_x", "peaks"), want)
                seen.add(n)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    committed = {old_chunks}
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for size in (0.03, 0.05, 200, 0.02):
            writer = place.context()
            writer.persist_superrun("_x", "peaks", chunk_target_size_mb=size, overwrite=True)
            committed.add(len(writer.get_metadata("_x", "peaks")["chunks"]))
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert seen and seen <= committed  # only complete groups, each as committed
    assert len(committed) > 2
    final = place.context()
    assert len(final.get_metadata("_x", "peaks")["chunks"]) > 5
    assert_same(final.get_array("_x", "peaks"), want)


def test_overwrite_of_a_superrun_never_persisted_just_persists(tmp_path):
    place = Place("local", str(tmp_path / f"d{uuid.uuid4().hex[:4]}"))
    st = seed(place)
    st.define_run("_y", ["1"])
    st.persist_superrun("_y", "peaks", overwrite=True)
    assert place.context().is_stored("_y", "peaks")

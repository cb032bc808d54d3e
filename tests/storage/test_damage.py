"""Damaged stores raise CorruptData naming the file — never wrong rows or fill values.

Real zarr stores on disk, damaged by hand: chunk files overwritten with garbage,
truncated, emptied or deleted; metadata documents truncated.
"""

from __future__ import annotations

import pickle
import re
import shutil

import numpy as np
import pytest
from conftest import make_context, stored_files

import dastrax
from dastrax.storage.zarr import group as zarr_group

#: 6 chunks of 1000 peaks; a zarr chunk holds 1250 rows, so each column has 5 chunk files
CONFIG = {"n_chunks": 6, "recs_per_chunk": 1000, "chunk_ns": 1000}


def context(path, **config):
    st = make_context(path)
    st.set_config({**CONFIG, **config})
    return st


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Run 0 (records, peaks), run 1, the superrun _sr of both, persisted as _srp too."""
    root = tmp_path_factory.mktemp("pristine") / "data"
    for run_id, offset in [("0", 0), ("1", 10_000)]:
        st = context(root, time_offset=offset)
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": offset, "end": offset + 6000})
    st.define_run("_sr", ["0", "1"])
    st.define_run("_srp", ["0", "1"])
    st.persist_superrun("_srp", "peaks", chunk_target_size_mb=2)
    return root


@pytest.fixture
def store(pristine, tmp_path):
    """A fresh copy of the pristine store, to damage."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    return root


def damage(path, how: str) -> None:
    size = path.stat().st_size
    if how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(size))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: size // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "missing":
        path.unlink()
    else:
        raise ValueError(how)


# zarr chunk 2 (rows 2500-3749) of a 1-D and of a 2-D column
CHUNK_FILES = {"area": "area/c/2", "data": "data/c/2/0"}


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "missing"])
@pytest.mark.parametrize("column", list(CHUNK_FILES))
def test_damaged_chunk_file_raises_corrupt_data_naming_it(store, column, how):
    st = context(store)
    key = str(st.key_for("0", "peaks"))
    path = store / key / CHUNK_FILES[column]
    damage(path, how)
    match = f"{'missing' if how == 'missing' else 'damaged'} chunk file {path}"
    with pytest.raises(dastrax.CorruptData, match=match):
        st.get_array("0", "peaks")
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        st.get_array("0", "peaks", columns=[column])
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        list(st.get_iter("0", "peaks"))
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        st.get_dataset("0", "peaks")[column].compute()
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        st.get_array("_sr", "peaks")  # through the superrun made of it
    # rows outside the damaged chunk file, and the other columns, still load right
    arr = st.get_array("0", "peaks", columns=["channel"])
    assert np.array_equal(arr["channel"], np.tile(np.arange(1000), 6).astype(np.int16))
    part = st.get_array("0", "peaks", time_range=(0, 2000))
    assert len(part) == 2000 and np.all(part["area"] == 1)


def test_dataset_opens_from_metadata_alone(store):
    """Every chunk file of the runs damaged: opening works, computing names a file."""
    st = context(store)
    for run_id in ["0", "1"]:
        key = str(st.key_for(run_id, "peaks"))
        for f in (store / key).glob("*/c/**/*"):
            if f.is_file():
                damage(f, "garbage")
    for run_id in ["0", "_sr"]:
        ds = st.get_dataset(run_id, "peaks", chunks="stored")
        n = 6000 if run_id == "0" else 12_000
        assert ds.sizes == {"peaks": n, "area_per_channel_dim1": 100, "data_dim1": 200}
        assert ds.area.data.numblocks == ((6,) if run_id == "0" else (12,))
        for name in ["time", "area", "data"]:
            file = rf"{re.escape(str(store))}/[01]-peaks-\w+/{name}/c/\d"
            with pytest.raises(dastrax.CorruptData, match=file):
                ds[name].compute()


def test_damaged_persisted_superrun_is_not_silently_replaced(store):
    st = context(store)
    key = str(st.key_for("_srp", "peaks"))
    assert st.is_stored("_srp", "peaks") and st.get_metadata("_srp", "peaks")["chunks"]
    path = store / key / "data" / "c" / "3" / "0"
    damage(path, "garbage")
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        st.get_array("_srp", "peaks")
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        st.get_dataset("_srp", "peaks").data.compute()
    assert len(st.get_array("_srp", "peaks", columns=["area"])) == 12_000


def test_truncated_group_metadata(store):
    st = context(store)
    key = str(st.key_for("0", "peaks"))
    doc = store / key / "zarr.json"
    doc.write_text(doc.read_text()[:-200])
    before = stored_files(store)
    for call in [
        lambda: st.get_array("0", "peaks"),
        lambda: st.get_dataset("0", "peaks"),
        lambda: st.get_metadata("0", "peaks"),
        lambda: st.make("0", "peaks"),  # never made again on top of the damage
        lambda: st.get_array("_sr", "peaks"),
    ]:
        with pytest.raises(dastrax.CorruptData, match=f"{doc}.*delete {store}/{key}"):
            call()
    assert stored_files(store) == before
    shutil.rmtree(store / key)  # what the message says to do
    st = context(store)
    st.make("0", "peaks")
    assert len(st.get_array("0", "peaks")) == 6000


def test_truncated_array_metadata(store, monkeypatch):
    st = context(store)
    key = str(st.key_for("0", "peaks"))
    doc = store / key / "area" / "zarr.json"
    want = st.get_array("0", "peaks")
    doc.write_text(doc.read_text()[:40])
    # the local reader takes the array's layout from the group's document (not one file
    # per column and group) and checks every chunk's checksum: the rows stay right
    np.testing.assert_array_equal(st.get_array("0", "peaks"), want)
    # reading through zarr (object stores; DASTRAX_FASTREAD=0) reports the document
    monkeypatch.setattr(zarr_group, "FASTREAD", False)
    with pytest.raises(dastrax.CorruptData, match=f"{store}/{key}/area"):
        st.get_array("0", "peaks")
    assert len(st.get_array("0", "peaks", columns=["channel"])) == 6000


def test_damaged_input_fails_the_make_and_stores_nothing(store):
    st = context(store)
    st.register(_Sum)
    path = store / str(st.key_for("0", "records")) / "channel" / "c" / "0"
    damage(path, "garbage")
    with pytest.raises(dastrax.CorruptData, match=str(path)):
        st.make("0", "channel_sum")
    assert not st.is_stored("0", "channel_sum")
    assert dastrax.ZarrDirectory(str(store)).temporary_paths() == []


def test_damaged_run_document(store):
    doc = store / "runs" / "1.json"
    doc.write_text(doc.read_text()[:10])
    st = context(store)
    with pytest.raises(dastrax.CorruptData, match=str(doc)):
        st.run_metadata("1")
    with pytest.raises(dastrax.CorruptData, match=str(doc)):
        st.define_run("_sr_again", ["1"])
    # a superrun of regular runs opens from its own document (ordered and checked when it
    # was defined): its subruns' documents are not read, so the load is unaffected
    assert len(st.get_array("_sr", "peaks")) == len(st.get_array(["0", "1"], "peaks"))


def test_corrupt_data_crosses_process_boundaries():
    """Raised in a worker process, CorruptData reaches the client intact (pickled)."""
    err = dastrax.CorruptData("damaged chunk file /x/0-peaks-abc/area/c/2: checksum")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is dastrax.CorruptData and str(back) == str(err)


class _Sum(dastrax.Plugin):
    provides = "channel_sum"
    depends_on = ("records",)
    dtype = [("time", np.int64), ("endtime", np.int64), ("sum", np.int64)]

    def compute(self, records, start, end):
        out = np.zeros(1, self.dtype)
        out["time"], out["endtime"] = start, end
        out["sum"] = records["channel"].sum()
        return out

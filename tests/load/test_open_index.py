"""The open index (dastrax.load.openindex): a big superrun opened from one index file gives
exactly what resolving it afresh gives; every change of the storage (a run document, a
commit, a delete, a redefinition) makes it resolve afresh; a stamp too young to trust, a
damaged index file or per-run lineages never give a wrong load."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest
import xarray as xr

from dastrax.bench import setup as bench
from dastrax.errors import DataNotAvailable
from dastrax.load import openindex
from dastrax.storage import ZarrDirectory
from dastrax.storage.zarr.memory import MemoryDirectory

N = 120  # above openindex.MIN_SOURCES


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("oi") / "data"
    params = {"storage": str(root), "subruns": N, "chunks": 2, "rows_per_chunk": 5}
    bench.make_data(params)
    return params


@pytest.fixture
def index_dir(tmp_path, monkeypatch):
    folder = tmp_path / "index"
    monkeypatch.setenv(openindex.INDEX_ENV, str(folder))
    monkeypatch.setenv(openindex.MANIFEST_ENV, "0")  # (manifests: test_manifest.py)
    return folder


def _settle(root) -> None:
    """Date the storage's folders back, as if the last write were a minute ago."""
    past = time.time() - 60
    for path in (root, os.path.join(root, "runs")):
        os.utime(path, (past, past))


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _resolved(st, **kwargs):
    return st._resolver.resolve(bench.SUPERRUN, [bench.TARGET], **kwargs)


def test_an_indexed_open_gives_what_a_fresh_resolve_gives(made, index_dir, monkeypatch):
    _settle(made["storage"])
    first = bench.context(made)
    built = _resolved(first)
    assert len(_files(index_dir)) == 1 and built.base_pieces is not None
    res = _resolved(bench.context(made))  # a new context: nothing in memory
    handles = [g for s in res.sources for _t, g in s.groups]
    assert len(handles) == N and all(h._meta is None for h in handles[1:])  # nothing read
    assert [p.n for p in res.pieces()] == [p.n for p in built.pieces()]
    st = bench.context(made)
    arr = st.get_array(bench.SUPERRUN, bench.TARGET)
    ds = st.get_dataset(bench.SUPERRUN, bench.TARGET).compute()
    sel = st.get_array(bench.SUPERRUN, bench.TARGET, selection="channel > 1")
    monkeypatch.setenv(openindex.INDEX_ENV, "0")
    fresh = bench.context(made)
    np.testing.assert_array_equal(arr, fresh.get_array(bench.SUPERRUN, bench.TARGET))
    xr.testing.assert_identical(ds, fresh.get_dataset(bench.SUPERRUN, bench.TARGET).compute())
    expected = fresh.get_array(bench.SUPERRUN, bench.TARGET, selection="channel > 1")
    assert 0 < len(sel) < len(arr)
    np.testing.assert_array_equal(sel, expected)


def test_every_change_of_the_storage_resolves_afresh(tmp_path, index_dir):
    params = {"storage": str(tmp_path / "data"), "subruns": N, "chunks": 2, "rows_per_chunk": 5}
    bench.make_data(params)
    root = params["storage"]
    _settle(root)
    assert len(_resolved(bench.context(params)).subruns) == N
    # a new subrun: its data, its document, the superrun redefined with it
    st = bench.context(params)
    extra = str(N)
    st.make(extra, bench.TARGET)
    cfg = bench.plugin_config(2, 5)
    start = N * cfg["run_spacing"]
    st.write_run_metadata(extra, {"start": start, "end": start + 2 * cfg["chunk_ns"]})
    st.extend_superrun(bench.SUPERRUN, [extra])
    _settle(root)
    res = _resolved(bench.context(params))
    assert res.base_pieces is not None and len(res.subruns) == N + 1
    assert res.subruns[-1] == extra
    # a subrun's data deleted: the open no longer finds it stored (and makes it again)
    key = str(st.key_for(extra, bench.TARGET))
    st.storage[0].delete(key)
    _settle(root)
    st = bench.context(params)
    arr = st.get_array(bench.SUPERRUN, bench.TARGET)
    assert st.storage[0].has(key) and len(arr) == (N + 1) * 10
    # the superrun redefined smaller
    st.define_run(bench.SUPERRUN, [str(i) for i in range(N - 5)], overwrite=True)
    _settle(root)
    assert len(_resolved(bench.context(params)).subruns) == N - 5


def test_a_young_stamp_is_not_trusted(tmp_path, index_dir):
    params = {"storage": str(tmp_path / "data"), "subruns": N, "chunks": 2, "rows_per_chunk": 5}
    bench.make_data(params)  # just written: the stamp may move within this clock tick
    st = bench.context(params)
    _resolved(st)
    assert _files(index_dir) == []
    assert not openindex.stamp_is_settled(time.time() - openindex.RACY_SECONDS / 2)
    _settle(params["storage"])
    _resolved(st)
    assert len(_files(index_dir)) == 1


def test_a_damaged_index_file_is_a_miss_and_is_rewritten(made, index_dir):
    _settle(made["storage"])
    _resolved(bench.context(made))
    (name,) = _files(index_dir)
    path = index_dir / name
    path.write_bytes(b"not an index")
    res = _resolved(bench.context(made))
    assert len(res.subruns) == N
    assert all(g._meta is not None for s in res.sources[:3] for _t, g in s.groups)
    assert path.read_bytes()[:2] == b"PK"  # an npz (zip) again
    storage = bench.context(made).storage
    assert openindex.load(str(index_dir), name[: -len(".npz")], storage, ("other",)) is None


def test_nothing_is_indexed_where_it_does_not_apply(made, index_dir, monkeypatch):
    _settle(made["storage"])
    st = bench.context(made)
    st._resolver.resolve(bench.SUPERRUN, [bench.TARGET], time_range=(0, 10**12))
    st._resolver.resolve([bench.SUPERRUN], [bench.TARGET])  # a list: persist's way in
    st._resolver.resolve("0", [bench.TARGET])
    assert _files(index_dir) == []
    monkeypatch.setenv(openindex.INDEX_ENV, "off")
    _resolved(st)
    assert _files(index_dir) == []


def test_index_files_are_evicted_beyond_the_limit(made, index_dir, monkeypatch):
    monkeypatch.setattr(openindex, "MAX_FILES", 2)
    _settle(made["storage"])
    st = bench.context(made)
    for check_lineage in (True, False):
        st._resolver.resolve(bench.SUPERRUN, [bench.TARGET], check_lineage=check_lineage)
    st._resolver.resolve(bench.SUPERRUN, [bench.TARGET], stored=False)
    assert 1 <= len(_files(index_dir)) <= 2


def test_lazy_handles_read_their_metadata_once_and_check_it(made):
    d = ZarrDirectory(made["storage"])
    key = next(k for k in d.keys("0-") if f"-{bench.TARGET}-" in k)
    n_rows = d.metadata(key)["n_rows"]
    handle = d.handle(key, n_rows)
    assert handle._meta is None
    moved = pickle.loads(pickle.dumps(handle))  # travels to a worker unread
    assert moved._meta is None and moved.meta == d.metadata(key)
    expected = d.find(key).read("time", 0, n_rows)
    np.testing.assert_array_equal(moved.read("time", 0, n_rows), expected)
    wrong = d.handle(key, n_rows + 1)
    with pytest.raises(DataNotAvailable, match="open it again"):
        _ = wrong.meta
    mem = MemoryDirectory("memory://oi-handles")
    with pytest.raises(DataNotAvailable, match="changed"):
        mem.handle("0-peaks-x", 3)  # the protocol's default: read now, checked


def test_the_change_stamp_moves_with_every_kind_of_write(tmp_path):
    d = ZarrDirectory(str(tmp_path / "data"))
    d.write_run_metadata("0", {"start": 0, "end": 10})
    stamps = [d.change_stamp()]
    time.sleep(0.02)
    d.write_run_metadata("1", {"start": 10, "end": 20})
    stamps.append(d.change_stamp())
    params = {"storage": str(tmp_path / "data"), "subruns": 1, "chunks": 2, "rows_per_chunk": 5}
    st = bench.context(params)
    time.sleep(0.02)
    st.make("0", bench.TARGET)
    stamps.append(d.change_stamp())
    time.sleep(0.02)
    d.delete(str(st.key_for("0", bench.TARGET)))
    stamps.append(d.change_stamp())
    tokens = [s[0] for s in stamps]
    assert len(set(tokens)) == len(tokens)
    assert all(abs(s[1] - time.time()) < 60 for s in stamps)
    assert ZarrDirectory("memory://oi-stamp").change_stamp() is None


def test_an_indexed_superrun_loads_on_a_cluster_and_persists(made, index_dir):
    import distributed

    _settle(made["storage"])
    threads = bench.context(made)
    expected = threads.get_array(bench.SUPERRUN, bench.TARGET)  # (writes the index)
    assert len(_files(index_dir)) == 1
    with (
        distributed.LocalCluster(
            n_workers=1, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        st = bench.context({**made, "context_config": {"client": client}})
        handles = [g for s in _resolved(st).sources for _t, g in s.groups]
        assert all(h._meta is None for h in handles[1:])  # from the index
        ds = st.get_dataset(bench.SUPERRUN, bench.TARGET)
        # the handles travel to the worker process unread, and read there
        area = client.compute(ds["area"].data).result()
        np.testing.assert_array_equal(area, expected["area"])
        np.testing.assert_array_equal(st.get_array(bench.SUPERRUN, bench.TARGET), expected)
    # persisted: the directory changed, so the next open finds the stored copy
    threads.persist_superrun(bench.SUPERRUN, bench.TARGET)
    _settle(made["storage"])
    res = _resolved(bench.context(made))
    assert len(res.sources) == 1 and res.sources[0].stored
    key = str(threads.key_for(bench.SUPERRUN, bench.TARGET))
    threads.storage[0].delete(key)  # (the module's other tests load it unstored)


def test_the_lineage_and_document_memos_are_per_thread(tmp_path):
    """One thread's resolution (a snapshot of run documents and lineages) does not leak
    into another thread that changed the config meanwhile."""
    import threading

    from dastrax.testutils import Peaks, Records

    import dastrax

    st = dastrax.Context(storage=str(tmp_path / "d"), register=[Records, Peaks], progress=False)
    res = st._resolver
    with res.snapshot():
        mine = res.regular_key("0", "peaks")
        seen = {}

        def other():
            st.set_config({"n_chunks": 7})
            seen["key"] = res.regular_key("0", "peaks")
            seen["memo"] = res.catalog._snapshot

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert res.regular_key("0", "peaks") == mine  # this operation's lineage, kept
    assert seen["key"] != mine and seen["memo"] is None
    assert res.regular_key("0", "peaks") == seen["key"]  # after it: the config as it is

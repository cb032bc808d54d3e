"""The storage conformance suite: :class:`FrontendTests`, a pytest test class that checks a
:class:`~dastrax.storage.StorageFrontend` through its public protocol only."""

from __future__ import annotations

import copy
import pickle
import time
import uuid

import numpy as np
import pytest

from dastrax.core.chunks import field_names
from dastrax.core.lineage import DataKey
from dastrax.errors import CorruptData, DataNotAvailable, InvalidRequest, RunMetadataNotAvailable
from dastrax.storage.abc import (
    GroupWriter,
    StorageFrontend,
    StoredGroup,
    SupportsChunkCopy,
    SupportsVersions,
)

__all__ = ["DTYPE", "FrontendTests", "reference_rows"]

#: the rows of the groups the suite writes: field titles, several widths, a column of
#: more than one dimension
DTYPE = np.dtype(
    [
        (("Start time since unix epoch [ns]", "time"), np.int64),
        (("Length of the interval in samples", "length"), np.int32),
        (("Width of one sample [ns]", "dt"), np.int16),
        ("channel", np.int16),
        (("Integral [PE]", "area"), np.float32),
        (("Waveform [PE/sample]", "data"), np.float32, (4,)),
    ]
)

#: keys in the metadata document of every stored group (see :mod:`dastrax.storage.abc`)
META_KEYS = ("run_id", "data_type", "data_kind", "dtype", "n_rows", "chunks")
#: keys of every entry of a group's chunk table
CHUNK_KEYS = ("chunk_i", "start", "end", "row_start", "n")

#: the reference groups written to each frontend object, by its id (kept with it, so
#: that the id is not reused): written once where a frontend fixture is shared
_WRITTEN: dict[int, tuple[object, dict]] = {}


def reference_rows(n: int, t0: int = 0, seed: int = 0) -> np.ndarray:
    """``n`` rows of :data:`DTYPE` from time ``t0`` on, one every 2 ns, each 1 ns long:
    deterministic values that differ from row to row in every column."""
    rng = np.random.default_rng(seed)
    rows = np.zeros(n, DTYPE)
    rows["time"] = t0 + 2 * np.arange(n)
    rows["length"] = 1
    rows["dt"] = 1
    rows["channel"] = np.arange(n) % 7
    rows["area"] = rng.standard_normal(n).astype(np.float32)
    rows["data"] = rng.integers(0, 100, (n, 4)).astype(np.float32)
    return rows


def _key_parts(key: str) -> tuple[str, str, str]:
    """``(run_id, data_type, lineage_hash)`` of a stored name."""
    k = DataKey.parse(key)
    return k.run_id, k.data_type, k.lineage_hash


class FrontendTests:
    """The conformance suite of a storage frontend: subclass it in a test module.

    Every test goes through the public protocol of :class:`~dastrax.storage.StorageFrontend`,
    :class:`~dastrax.storage.StoredGroup` and :class:`~dastrax.storage.GroupWriter`: find
    a key, read its metadata and its columns (ranges, indices, into strided outputs), list
    keys, open a writer, append chunks or write blocks by position, commit, abort,
    overwrite, delete; run documents and their attachments; handles of an open index;
    change stamps. What a frontend lacks is skipped, by capability:

    - writes, where the frontend is read-only (:attr:`StorageFrontend.readonly`);
    - versions, where it is not :class:`~dastrax.storage.SupportsVersions`;
    - chunk copies, where its writers are not :class:`~dastrax.storage.SupportsChunkCopy`;
    - change stamps, where :meth:`~dastrax.storage.StorageFrontend.change_stamp` is None.

    A subclass provides the fixture ``frontend`` (an empty location of the frontend under
    test, or for a read-only frontend the location holding its data) and overrides the
    hooks it can serve. The tests write keys of their own, so where making a location is
    slow (an object store) the fixture may return one frontend for every test (one made by
    a module-scoped fixture): the reference groups are then written once:

    - fixture ``stored``: ``{key: rows}``, the groups stored in ``frontend`` with their
      expected rows (a structured array; the stored dtype must equal its dtype). By
      default the suite writes them itself (:meth:`write_reference`); a read-only
      frontend returns what is there;
    - fixture ``run_documents``: ``{run_id: doc}``, run documents stored (each stored one
      must hold at least the items of ``doc``); by default written;
    - :meth:`reopen`: a new frontend object on the same location (default: a pickle round
      trip);
    - :meth:`readonly_view`: a read-only frontend on the same location;
    - :meth:`missing`: a frontend on a location that does not exist, or None (skips);
    - :meth:`damage`: a back door that damages the stored bytes of one column of a key
      (default: skips the test of damaged data).

    Class attributes: :attr:`copies_chunks` (the frontend's writers do copy chunk files of
    its own groups, not merely may) and :attr:`lineage_hash` (of the keys written).

    Examples
    --------
    A test module of a frontend on a local directory (``tests/test_my_frontend.py``)::

        import numpy as np
        import pytest

        from dastrax.testing import FrontendTests
        from my_package import MyFrontend


        class TestMyFrontend(FrontendTests):
            copies_chunks = False

            @pytest.fixture
            def frontend(self, tmp_path):
                return MyFrontend(tmp_path / "data")

            def missing(self, frontend, tmp_path):
                return MyFrontend(tmp_path / "not-there")

            def damage(self, frontend, key, field):
                for path in (frontend.root / key / field).rglob("*.chunk"):
                    path.write_bytes(b"garbage")


        class TestMyFrontendReadOnly(FrontendTests):
            @pytest.fixture
            def frontend(self):
                return MyFrontend("/data/fixture", readonly=True)

            @pytest.fixture
            def stored(self):
                return {"0-peaks-abcdefghij": np.load("/data/expected/0-peaks.npy")}

            @pytest.fixture
            def run_documents(self):
                return {"0": {"mode": "kr83m"}}

    ``pytest`` then runs every test of the suite for each class (the write tests of the
    read-only one check that writes are refused, the others skip).
    """

    #: whether this frontend's writers copy chunk files of its own groups (then the chunk
    #: copy test requires every copy to succeed; otherwise a copy may decline)
    copies_chunks: bool = False
    #: the lineage hash of the keys the suite writes
    lineage_hash: str = "conform000"

    # -- hooks ------------------------------------------------------------------------
    @pytest.fixture
    def frontend(self) -> StorageFrontend:
        """A fresh, empty location of the frontend under test (override)."""
        pytest.fail(f"{type(self).__name__} must define the fixture 'frontend'")

    @pytest.fixture
    def stored(self, frontend) -> dict[str, np.ndarray]:
        """``{key: expected rows}`` of the groups stored in ``frontend``."""
        if frontend.readonly:
            pytest.fail(
                f"{type(self).__name__}: a read-only frontend must define the fixture "
                "'stored' ({key: expected rows} of the groups it holds)"
            )
        hit = _WRITTEN.get(id(frontend))
        if hit is None or hit[0] is not frontend:
            hit = _WRITTEN[id(frontend)] = (frontend, self.write_reference(frontend))
        return hit[1]

    @pytest.fixture
    def run_documents(self, frontend) -> dict[str, dict]:
        """``{run_id: doc}`` of run documents stored in ``frontend``."""
        if frontend.readonly:
            pytest.fail(
                f"{type(self).__name__}: a read-only frontend must define the fixture "
                "'run_documents' ({run_id: items of its stored document})"
            )
        docs = {
            "7": {"start": 100, "end": 200, "mode": "kr83m", "tags": [{"name": "good"}]},
            "8": {"start": 300, "end": 450, "mode": "background", "nested": {"a": [1, 2]}},
        }
        for run_id, doc in docs.items():
            frontend.write_run_metadata(run_id, doc)
        return docs

    def reopen(self, frontend: StorageFrontend) -> StorageFrontend:
        """A new frontend object on the same location (what another process opens)."""
        return pickle.loads(pickle.dumps(frontend))

    def readonly_view(self, frontend: StorageFrontend) -> StorageFrontend:
        """A read-only frontend on the same location."""
        view = copy.copy(frontend)
        view.readonly = True
        return view

    def missing(self, frontend: StorageFrontend, tmp_path) -> StorageFrontend | None:
        """A frontend (of the kind of ``frontend``) on a location that does not exist
        (None: not tested)."""
        return None

    def damage(self, frontend: StorageFrontend, key: str, field: str) -> None:
        """Damage the stored bytes of column ``field`` of ``key`` (a back door)."""
        pytest.skip(f"{type(self).__name__} has no back door to damage stored bytes")

    # -- helpers ----------------------------------------------------------------------
    def key(self, run_id: str, data_type: str = "peaks") -> str:
        """The storage key of ``data_type`` of ``run_id`` written by the suite."""
        return f"{run_id}-{data_type}-{self.lineage_hash}"

    @staticmethod
    def require_writes(frontend: StorageFrontend) -> None:
        """Skip the test if ``frontend`` is read-only."""
        if frontend.readonly:
            pytest.skip(f"{frontend!r} is read-only")

    @staticmethod
    def meta_of(key: str, **items) -> dict:
        """The metadata a caller commits for ``key`` (run, data type, lineage)."""
        run_id, data_type, lineage_hash = _key_parts(key)
        return {
            "run_id": run_id,
            "data_type": data_type,
            "data_kind": data_type,
            "lineage": {},
            "lineage_hash": lineage_hash,
            "chunk_target_size_mb": 200,
            **items,
        }

    def write_appended(
        self, frontend: StorageFrontend, key: str, parts, overwrite: bool = False
    ) -> dict:
        """Write ``parts`` (arrays, one logical chunk each, 10 ns apart) by appending, the
        writer's state pickled between appends (as dask tasks pass it); the committed
        metadata."""
        writer = frontend.writer(key, DTYPE, data_kind="peaks", overwrite=overwrite)
        for i, part in enumerate(parts):
            writer = pickle.loads(pickle.dumps(writer.append(part, 10_000 * i, 10_000 * (i + 1))))
        return writer.commit(self.meta_of(key))

    def write_by_position(
        self,
        frontend: StorageFrontend,
        key: str,
        rows: np.ndarray,
        subrun: np.ndarray,
        chunk_rows: int | None = None,
        copy_from: StoredGroup | None = None,
    ) -> tuple[dict, GroupWriter]:
        """Write ``rows`` and a ``subrun`` column (a superrun's) by position, one block a
        zarr chunk (or copied from ``copy_from`` where its writer can); the committed
        metadata and the writer (after its commit)."""
        n = len(rows)
        writer = frontend.writer(key, DTYPE, data_kind="peaks")
        writer = writer.create_arrays(
            16,
            total_rows=n,
            extra={"subrun": np.int32},
            attributes={"coordinates": "subrun"},
            rows=chunk_rows,
        )
        assert writer.chunk_rows > 0, "create_arrays told no zarr chunk rows"
        step = writer.chunk_rows
        # (a writer without the capability copies nothing: it writes every block)
        copier = writer if isinstance(writer, SupportsChunkCopy) else None
        for i, lo in enumerate(range(0, n, step)):
            hi = min(n, lo + step)
            block = {}
            for name in (*field_names(DTYPE), "subrun"):
                copied = (
                    copy_from is not None
                    and copier is not None
                    and copier.copy_chunk_from(copy_from, name, i, i)
                )
                if copy_from is not None and self.copies_chunks:
                    assert copied, f"copy_chunk_from declined chunk {i} of {name}"
                if not copied:
                    block[name] = subrun[lo:hi] if name == "subrun" else rows[name][lo:hi]
            writer.write_block(lo, hi, block)
        half, times = n // 2, rows["time"]
        edges = [int(times[0]), int(times[half]), int(times[-1]) + 1]
        chunks = [
            {"chunk_i": 0, "start": edges[0], "end": edges[1], "row_start": 0, "n": half},
            {"chunk_i": 1, "start": edges[1], "end": edges[2], "row_start": half, "n": n - half},
        ]
        meta = writer.with_rows(n).commit(self.meta_of(key, chunks=chunks, subruns=["0", "1"]))
        return meta, writer

    def write_reference(self, frontend: StorageFrontend) -> dict[str, np.ndarray]:
        """Write the suite's reference groups (one appended, in chunks of 30, 0 and 45
        rows; one a superrun written by position); ``{key: rows}``."""
        appended = [reference_rows(30, 0, 1), reference_rows(0), reference_rows(45, 20_000, 2)]
        by_position = reference_rows(50, 0, 3)
        subrun = (np.arange(50) >= 25).astype(np.int32)
        self.write_appended(frontend, self.key("0"), appended)
        self.write_by_position(frontend, self.key("_sr"), by_position, subrun)
        return {self.key("0"): np.concatenate(appended), self.key("_sr"): by_position}

    # -- the frontend -----------------------------------------------------------------
    def test_is_a_storage_frontend(self, frontend, stored):
        assert isinstance(frontend, StorageFrontend)
        assert isinstance(frontend.url, str) and frontend.url
        assert isinstance(frontend.readonly, bool)
        assert frontend.url in repr(frontend) or type(frontend).__name__ in repr(frontend)
        frontend.check_exists()
        again = self.reopen(frontend)
        assert again.url == frontend.url
        assert again.keys() == frontend.keys()

    def test_a_missing_location_is_named(self, frontend, tmp_path):
        absent = self.missing(frontend, tmp_path)
        if absent is None:
            pytest.skip(f"{type(self).__name__} names no missing location")
        with pytest.raises(DataNotAvailable) as info:
            absent.check_exists()
        assert str(info.value)
        assert absent.keys() == []

    # -- reading ----------------------------------------------------------------------
    def test_find_gives_the_group_and_its_metadata(self, frontend, stored):
        for key, rows in stored.items():
            group = frontend.find(key)
            assert isinstance(group, StoredGroup), key
            assert group.key == key
            assert frontend.has(key)
            meta = frontend.metadata(key)
            assert meta == group.meta
            for item in META_KEYS:
                assert item in meta, f"{key}: no {item!r} in its metadata"
            run_id, data_type, lineage_hash = _key_parts(key)
            assert meta["run_id"] == run_id and meta["data_type"] == data_type
            assert group.dtype == rows.dtype, key
            assert set(rows.dtype.names) <= set(group.fields)
            if meta.get("subruns") is not None:
                assert "subrun" in group.fields
            assert meta["n_rows"] == len(rows)
            table = group.chunks
            assert [c["chunk_i"] for c in table] == list(range(len(table)))
            row = 0
            for c in table:
                for item in CHUNK_KEYS:
                    assert item in c, f"{key}: chunk {c.get('chunk_i')} has no {item!r}"
                assert c["row_start"] == row and c["start"] <= c["end"]
                row += c["n"]
            assert row == len(rows)
            for a, b in zip(table, table[1:]):
                assert a["end"] <= b["start"]

    def test_a_key_not_stored_is_not_found(self, frontend, stored):
        absent = "nothere-peaks-0000000000"
        assert frontend.find(absent) is None
        assert not frontend.has(absent)
        with pytest.raises(DataNotAvailable):
            frontend.metadata(absent)
        assert frontend.keys("nothere-") == []
        assert frontend.find_data("nothere", "peaks") == []

    def test_keys_and_find_data(self, frontend, stored):
        keys = frontend.keys()
        assert keys == sorted(keys)
        assert set(stored) <= set(keys)
        for key in stored:
            run_id, data_type, _h = _key_parts(key)
            assert key in frontend.keys(f"{run_id}-")
            assert key in frontend.keys(f"{run_id}-{data_type}-")
            assert all(k.startswith(f"{run_id}-{data_type}-") for k in frontend.keys(key[:-3]))
            found = frontend.find_data(run_id, data_type)
            assert key in [g.key for g in found]
            assert all(isinstance(g, StoredGroup) for g in found)

    def test_read_columns(self, frontend, stored):
        for key, rows in stored.items():
            group = frontend.find(key)
            n = len(rows)
            lo, hi = n // 5, n - n // 3
            index = np.arange(0, hi - lo, 3)
            for name in rows.dtype.names:
                np.testing.assert_array_equal(group.read(name, 0, n), rows[name], err_msg=name)
                np.testing.assert_array_equal(
                    group.read(name, lo, hi, index), rows[name][lo:hi][index], err_msg=name
                )
            name = rows.dtype.names[-1]
            empty = group.read(name, lo, lo)
            assert len(empty) == 0 and empty.shape[1:] == rows[name].shape[1:]
            out = np.zeros(hi - lo, rows.dtype)  # a field of it: a strided output
            assert group.read(name, lo, hi, out=out[name]) is not None
            np.testing.assert_array_equal(out[name], rows[name][lo:hi])
            # (a read into each field of one structured array)
            np.testing.assert_array_equal(group.read_rows(lo, hi), rows[lo:hi])
            names = list(rows.dtype.names[:2])
            part = group.read_rows(lo, hi, names=names, index=index)
            assert part.dtype.names == tuple(names)
            np.testing.assert_array_equal(part[names[1]], rows[names[1]][lo:hi][index])

    def test_groups_are_picklable(self, frontend, stored):
        for key, rows in stored.items():
            group = pickle.loads(pickle.dumps(frontend.find(key)))
            assert group.key == key
            name = rows.dtype.names[-1]
            np.testing.assert_array_equal(group.read(name, 0, len(rows)), rows[name])

    def test_handles_of_an_open_index(self, frontend, stored):
        for key, rows in stored.items():
            handle = pickle.loads(pickle.dumps(frontend.handle(key, len(rows))))
            assert handle.key == key
            np.testing.assert_array_equal(handle.read("time", 0, len(rows)), rows["time"])
            with pytest.raises(DataNotAvailable):
                stale = frontend.handle(key, len(rows) + 1)
                stale.meta  # noqa: B018 (frontends may check when it is first needed)

    def test_run_documents_read(self, frontend, run_documents):
        runs = frontend.list_runs()
        assert runs == sorted(runs)
        assert set(run_documents) <= set(runs)
        for run_id, doc in run_documents.items():
            stored = frontend.run_metadata(run_id)
            assert stored.get("name", run_id) == run_id
            for item, value in doc.items():
                assert stored[item] == value, (run_id, item)
        with pytest.raises(RunMetadataNotAvailable):
            frontend.run_metadata("nothere")
        with pytest.raises(RunMetadataNotAvailable):
            frontend.run_attachment(sorted(run_documents)[0], "nothere")

    def test_damaged_bytes_are_corrupt_data_naming_the_key(self, frontend, stored):
        if frontend.readonly:
            key, rows = max(stored.items(), key=lambda item: len(item[1]))
        else:  # a group of its own (the reference groups may be shared)
            key, rows = self.key("_bad"), reference_rows(40, 0, 11)
            self.write_appended(frontend, key, [rows])
        self.damage(frontend, key, "data")
        group = self.reopen(frontend).find(key)
        with pytest.raises(CorruptData) as info:
            group.read("data", 0, len(rows))
        assert key in str(info.value)

    # -- writing ----------------------------------------------------------------------
    def test_append_commit_and_reopen(self, frontend):
        self.require_writes(frontend)
        key = self.key("1")
        parts = [reference_rows(20, 0, 4), reference_rows(0), reference_rows(33, 20_000, 5)]
        meta = self.write_appended(frontend, key, parts)
        rows = np.concatenate(parts)
        assert meta["n_rows"] == 53
        assert [c["n"] for c in meta["chunks"]] == [20, 0, 33]
        assert [c["row_start"] for c in meta["chunks"]] == [0, 20, 20]
        assert [(c["start"], c["end"]) for c in meta["chunks"]] == [
            (0, 10_000),
            (10_000, 20_000),
            (20_000, 30_000),
        ]
        other = self.reopen(frontend)
        assert key in list(other.keys())
        group = other.find(key)
        assert group.meta["n_rows"] == 53 and group.dtype == DTYPE
        np.testing.assert_array_equal(group.read_rows(0, 53), rows)

    def test_an_uncommitted_or_aborted_write_is_invisible(self, frontend):
        self.require_writes(frontend)
        key = self.key("2")
        writer = frontend.writer(key, DTYPE, data_kind="peaks")
        writer = writer.append(reference_rows(40), 0, 100)
        assert frontend.find(key) is None and key not in list(frontend.keys())
        assert self.reopen(frontend).find(key) is None
        writer.abort()
        writer.abort()  # twice: nothing more
        assert frontend.find(key) is None and key not in list(frontend.keys())
        rows = reference_rows(10, 0, 6)
        self.write_appended(frontend, key, [rows])  # the key can be written afterwards
        np.testing.assert_array_equal(self.reopen(frontend).find(key).read_rows(0, 10), rows)

    def test_an_empty_group(self, frontend):
        self.require_writes(frontend)
        key = self.key("3")
        meta = self.write_appended(frontend, key, [reference_rows(0)])
        assert meta["n_rows"] == 0 and [c["n"] for c in meta["chunks"]] == [0]
        group = self.reopen(frontend).find(key)
        assert group.meta["n_rows"] == 0
        assert group.read("data", 0, 0).shape == (0, 4)

    def test_write_by_position_with_a_subrun_column(self, frontend):
        self.require_writes(frontend)
        key = self.key("_pos")
        rows = reference_rows(40, 0, 7)
        subrun = np.repeat(np.arange(2, dtype=np.int32), 20)
        meta, _writer = self.write_by_position(frontend, key, rows, subrun, chunk_rows=16)
        assert meta["n_rows"] == 40 and meta["subruns"] == ["0", "1"]
        group = self.reopen(frontend).find(key)
        assert group.fields == (*DTYPE.names, "subrun")
        np.testing.assert_array_equal(group.read("subrun", 0, 40), subrun)
        np.testing.assert_array_equal(group.read_rows(0, 40), rows)
        np.testing.assert_array_equal(group.read("data", 15, 33), rows["data"][15:33])

    def test_overwrite_replaces_and_a_second_commit_keeps_the_first(self, frontend):
        self.require_writes(frontend)
        key = self.key("4")
        first, second = reference_rows(12, 0, 8), reference_rows(12, 0, 8)
        a = frontend.writer(key, DTYPE, data_kind="peaks").append(first, 0, 100)
        b = frontend.writer(key, DTYPE, data_kind="peaks").append(second, 0, 100)
        meta_a = a.commit(self.meta_of(key))
        meta_b = b.commit(self.meta_of(key))  # same key, same lineage: the first stays
        assert meta_a["n_rows"] == meta_b["n_rows"] == 12
        assert frontend.keys(f"{key}") == [key]
        np.testing.assert_array_equal(frontend.find(key).read_rows(0, 12), first)
        newer = reference_rows(17, 0, 9)
        self.write_appended(frontend, key, [newer], overwrite=True)
        for f in (frontend, self.reopen(frontend)):
            group = f.find(key)
            assert group.meta["n_rows"] == 17
            np.testing.assert_array_equal(group.read_rows(0, 17), newer)

    def test_delete_and_discard(self, frontend):
        self.require_writes(frontend)
        keys = [self.key("5"), self.key("6")]
        for key in keys:
            self.write_appended(frontend, key, [reference_rows(5)])
        frontend.delete(keys[0])
        frontend.discard(keys[1])
        for f in (frontend, self.reopen(frontend)):
            for key in keys:
                assert f.find(key) is None and not f.has(key)
                assert key not in list(f.keys())
        frontend.delete(keys[0])  # nothing stored: nothing to do
        self.write_appended(frontend, keys[0], [reference_rows(3)])
        assert frontend.find(keys[0]).meta["n_rows"] == 3

    def test_run_documents_written(self, frontend):
        self.require_writes(frontend)
        doc = {"start": 0, "end": 10, "mode": "kr83m", "tags": [{"name": "a"}], "n": 1.5}
        frontend.write_run_metadata("12", doc)
        frontend.write_run_metadata("11", {"start": 5, "end": 6})
        assert {"11", "12"} <= set(frontend.list_runs())
        other = self.reopen(frontend)
        got = other.run_metadata("12")
        assert {k: got[k] for k in doc} == doc and got.get("name", "12") == "12"
        frontend.write_run_metadata("12", {**doc, "end": 20})
        assert other.run_metadata("12")["end"] == 20  # replaced, seen at once
        assert frontend.create_run_metadata("13", {"start": 0, "end": 1}) is True
        assert frontend.create_run_metadata("13", {"start": 0, "end": 2}) is False
        assert other.run_metadata("13")["end"] == 1
        windows = np.arange(12, dtype=np.int64).reshape(6, 2)
        frontend.write_run_attachment("12", "windows", windows)
        frontend.write_run_attachment("12", "w.f", np.linspace(0, 1, 5))
        np.testing.assert_array_equal(other.run_attachment("12", "windows"), windows)
        np.testing.assert_array_equal(other.run_attachment("12", "w.f"), np.linspace(0, 1, 5))
        frontend.delete_run_metadata("12")
        with pytest.raises(RunMetadataNotAvailable):
            other.run_metadata("12")
        with pytest.raises(RunMetadataNotAvailable):
            other.run_attachment("12", "windows")
        assert "12" not in other.list_runs() and "11" in other.list_runs()
        frontend.delete_run_metadata("12")  # nothing stored: nothing to do
        with pytest.raises(InvalidRequest):
            frontend.write_run_metadata("14", {"start": object()})

    def test_a_read_only_frontend_refuses_every_write(self, frontend, stored):
        view = self.readonly_view(frontend)
        assert view.readonly
        key = next(iter(stored))
        before = view.keys()
        refused = {
            "writer": lambda: view.writer(self.key("9"), DTYPE),
            "delete": lambda: view.delete(key),
            "write_run_metadata": lambda: view.write_run_metadata("9", {"start": 0, "end": 1}),
            "create_run_metadata": lambda: view.create_run_metadata("9", {"start": 0}),
            "write_run_attachment": lambda: view.write_run_attachment("9", "w", np.zeros(2)),
            "delete_run_metadata": lambda: view.delete_run_metadata("9"),
            "check_writable": view.check_writable,
        }
        for what, call in refused.items():
            with pytest.raises(InvalidRequest):
                call()
                pytest.fail(f"{what} was not refused")
        assert view.keys() == before and frontend.find(key) is not None
        assert "9" not in view.list_runs()

    # -- optional capabilities ----------------------------------------------------------
    def test_change_stamps(self, frontend):
        self.require_writes(frontend)
        if frontend.change_stamp() is None:
            pytest.skip(f"{frontend!r} keeps no change stamp")

        def changed(before, since: float) -> bool:
            after = frontend.change_stamp()
            assert after is not None
            # a change within the filesystem's time resolution may keep the token; its
            # time then says so (a consumer does not trust a stamp that recent)
            return after[0] != before[0] or after[1] >= since - 2

        key = self.key("20")
        for change in (
            lambda: self.write_appended(frontend, key, [reference_rows(4)]),
            lambda: frontend.write_run_metadata("20", {"start": 0, "end": 1}),
            lambda: self.write_appended(frontend, key, [reference_rows(5)], overwrite=True),
            lambda: frontend.delete(key),
            lambda: frontend.delete_run_metadata("20"),
        ):
            before, since = frontend.change_stamp(), time.time()
            change()
            assert changed(before, since)
        assert frontend.change_stamp() == frontend.change_stamp()

    def test_versions(self, frontend):
        self.require_writes(frontend)
        if not isinstance(frontend, SupportsVersions):
            pytest.skip(f"{type(frontend).__name__} keeps no versions")
        name = f"_v{uuid.uuid4().hex[:6]}"
        frontend.write_run_metadata(name, {"start": 0, "end": 10, "v": 1})
        self.write_appended(frontend, self.key(name), [reference_rows(6)])
        frontend.write_run_metadata(name, {"start": 0, "end": 20, "v": 2})
        frontend.delete(self.key(name))
        versions = frontend.superrun_versions(name)
        assert [v["version"] for v in versions] == [1, 2]
        assert [v["doc"]["v"] for v in versions] == [1, 2]
        first = frontend.at_version(name, 1)
        assert first.readonly and first.run_metadata(name)["v"] == 1
        assert first.find(self.key(name)).meta["n_rows"] == 6  # what was stored then
        with pytest.raises(InvalidRequest):
            first.write_run_metadata(name, {"start": 0, "end": 1})
        assert frontend.at_version(name, 2).find(self.key(name)) is None
        with pytest.raises(InvalidRequest):
            frontend.at_version(name, 3)

    def test_chunk_copy(self, frontend):
        self.require_writes(frontend)
        rows = reference_rows(32, 0, 10)
        subrun = np.zeros(32, np.int32)
        _meta, src_writer = self.write_by_position(
            frontend, self.key("_src"), rows, subrun, chunk_rows=16
        )
        if not isinstance(src_writer, SupportsChunkCopy):
            pytest.skip(f"{type(src_writer).__name__} copies no chunk files")
        source = frontend.find(self.key("_src"))
        meta, _writer = self.write_by_position(
            frontend, self.key("_dst"), rows, subrun, chunk_rows=16, copy_from=source
        )
        group = self.reopen(frontend).find(self.key("_dst"))
        np.testing.assert_array_equal(group.read_rows(0, 32), rows)
        np.testing.assert_array_equal(group.read("subrun", 0, 32), subrun)
        # other zarr chunk rows: a copy declines, writing nothing
        other = frontend.writer(self.key("_odd"), DTYPE, data_kind="peaks")
        other = other.create_arrays(16, total_rows=32, extra={"subrun": np.int32}, rows=8)
        assert other.copy_chunk_from(source, "time", 0, 0) is False
        other.abort()

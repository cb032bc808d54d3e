"""The storage protocol: what the rest of dastrax needs of a place that stores data.

Three abstract classes, like zarr-python's ``abc/store.py``:

- :class:`StorageFrontend`: a storage location. Find a key (a :class:`StoredGroup`),
  list keys, open a :class:`GroupWriter` for a key, delete a key; read, write and list
  run documents.
- :class:`StoredGroup`: a *picklable handle* of one complete, committed group (one
  ``(run_id, data_type, lineage hash)``): its metadata document, and ``read(field, lo,
  hi, index, out)`` of its rows. Handles travel to dask workers and read there.
- :class:`GroupWriter`: the immutable, picklable state of a group being written.
  ``append`` returns a new state, so a chain of dask tasks streams chunks in time order
  on any scheduler; ``commit`` makes the group visible under its key only once it is
  complete; ``abort`` removes what was written.

Nothing outside ``dastrax/storage/`` imports zarr or fsspec or builds a path: loader,
persist, processing and the resolver see only these classes.

Optional capabilities are declared as :class:`typing.Protocol` classes, checked with
``isinstance`` (as zarr-python's ``SupportsGetSync``): :class:`SupportsVersions` (a
frontend that keeps every version of a run document), :class:`SupportsRunDocumentPath`
(a frontend whose run documents are files it can name) and :class:`SupportsChunkCopy` (a
writer that copies compressed zarr chunk files of another group as they are).

The metadata document of a group (``StoredGroup.meta``) is a dict with at least
``run_id, data_type, data_kind, dtype`` (see :func:`dastrax.storage.codecs.dtype_to_json`),
``lineage, lineage_hash, compressor, chunk_target_size_mb, n_rows`` and ``chunks``: the
logical chunks, each ``chunk_i, start, end, row_start, n, first_time, last_endtime,
nbytes, run_id, subruns``; stored superruns add ``subruns`` (the flattened subrun ids)
and a ``subrun`` column.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dastrax.core.chunks import field_names, fields_of
from dastrax.errors import DataNotAvailable, InvalidRequest
from dastrax.storage.codecs import dtype_from_json

__all__ = [
    "GroupWriter",
    "StorageFrontend",
    "StoredGroup",
    "SupportsChunkCopy",
    "SupportsRunDocumentPath",
    "SupportsVersions",
]


class StoredGroup(abc.ABC):
    """A complete, committed group of one stored key; picklable, readable anywhere."""

    #: the key, ``run_id-data_type-lineage_hash``
    key: str
    #: the metadata document (see the module docstring)
    meta: dict[str, Any]
    #: where it is stored, for messages
    url: str
    #: appended to the message when several lineages of an unregistered data type are
    #: stored: how else this frontend lets a user choose one (e.g. ``", or choose ..."``)
    choose_hint: str = ""

    @property
    def dtype(self) -> np.dtype:
        """The structured dtype of its rows (field titles included)."""
        return dtype_from_json(self.meta["dtype"])

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """The logical chunk table."""
        table: list[dict[str, Any]] = self.meta["chunks"]
        return table

    @property
    def fields(self) -> tuple[str, ...]:
        """The stored columns: the dtype's fields, plus ``subrun`` for stored superruns."""
        names = field_names(self.dtype)
        return (*names, "subrun") if self.meta.get("subruns") is not None else names

    @abc.abstractmethod
    def read(
        self,
        field: str,
        lo: int,
        hi: int,
        index: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``[lo, hi)`` of column ``field`` (then ``[index]``, if given).

        ``out``, if given, is filled and returned (any strides: e.g. a field of a
        structured array). Damaged or missing bytes raise
        :class:`~dastrax.errors.CorruptData` naming the file; a group deleted while
        being read raises :class:`~dastrax.errors.DataNotAvailable`.
        """

    def for_reading(self) -> StoredGroup:
        """A handle for reading rows only (what travels with a load's tasks): frontends
        may drop what reading does not need, e.g. the chunk table; by default itself."""
        return self

    def read_rows(
        self,
        lo: int,
        hi: int,
        names: Collection[str] | None = None,
        index: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``[lo, hi)`` (then ``[index]``) as one structured array of ``names``."""
        dtype = self.dtype
        if names is not None:
            dtype = _sub_dtype(dtype, names)
        n = (hi - lo) if index is None else len(index)
        out = np.empty(n, dtype)
        for name in field_names(dtype):
            self.read(name, lo, hi, index, out=out[name])
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} in {self.url}>"


def _sub_dtype(dtype: np.dtype, names: Collection[str]) -> np.dtype:
    fields: list[tuple[str | tuple[Any, str], np.dtype]] = []
    for name in field_names(dtype):
        if name in names:
            sub, _off, *title = fields_of(dtype)[name]
            fields.append(((title[0], name) if title else name, sub))
    return np.dtype(fields)


@dataclass(frozen=True)
class PendingCommit:
    """A group's commit, prepared (:meth:`GroupWriter.prepare`), for
    :meth:`StorageFrontend.commit_all`: the writer and the metadata to commit."""

    writer: GroupWriter
    meta: dict[str, Any]


class GroupWriter(abc.ABC):
    """The state of a group being written; immutable and picklable.

    Two ways of writing, both ending in :meth:`commit`:

    - streaming: ``append(chunk)`` in time order, each returning the new state (zarr
      chunks flushed whenever whole ones are there);
    - by position: :meth:`create_arrays` with the total row count, then writes of row
      ranges through :meth:`array` (``target[lo:hi] = values``), each zarr chunk written
      by exactly one task (:attr:`chunk_rows` tells its size), then :meth:`commit` with
      the chunk table.
    """

    key: str
    #: rows per zarr chunk of every column (0 until known)
    chunk_rows: int

    @abc.abstractmethod
    def append(
        self,
        data: np.ndarray,
        start: int,
        end: int,
        subruns: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> GroupWriter:
        """Add one logical chunk ``[start, end)`` holding ``data``; the new state."""

    @abc.abstractmethod
    def create_arrays(
        self,
        base_rows: int,
        total_rows: int = 0,
        extra: dict[str, Any] | None = None,
        attributes: dict[str, Any] | None = None,
        rows: int | None = None,
    ) -> GroupWriter:
        """Create the columns (plus ``extra`` ``{name: dtype}``) for writes by position.

        Idempotent: a task that reruns (its worker died) finds them and goes on.
        """

    @abc.abstractmethod
    def array(self, name: str) -> Any:
        """Column ``name`` as a write target: ``target[lo:hi] = values``."""

    def write_block(self, lo: int, hi: int, columns: dict[str, np.ndarray]) -> None:
        """Rows ``[lo, hi)`` of several columns (``{name: values}``); writers may write
        them concurrently. The default writes one column after the other."""
        for name, values in columns.items():
            self.array(name)[lo:hi] = values

    @abc.abstractmethod
    def commit(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Write what is left and the metadata, then make the group visible under its
        key. Returns the committed metadata document. If another writer committed the
        same key first, this copy is discarded (same lineage, same data)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Remove what this writer wrote (unless its commit already took over)."""

    def prepare(self, meta: dict[str, Any]) -> PendingCommit:
        """The part of :meth:`commit` that may run apart from the others of its batch
        (in parallel, on any worker): what :meth:`StorageFrontend.commit_all` then makes
        visible together. The default does nothing yet."""
        return PendingCommit(self, meta)

    def with_rows(self, n: int) -> GroupWriter:
        """This state, told that ``n`` rows were written by position."""
        return self


class StorageFrontend(abc.ABC):
    """A storage location: stored groups by key, and run documents.

    Subclasses set :attr:`url`, :attr:`readonly` and :attr:`provide_run_metadata`, and
    implement the abstract methods. Frontends are found by URL scheme
    (:func:`dastrax.storage.frontend_for`); third parties register theirs in the entry
    point group ``dastrax.storage``.
    """

    url: str
    readonly: bool = False
    provide_run_metadata: bool = True

    # -- stored data ------------------------------------------------------------------
    @abc.abstractmethod
    def find(self, key: str) -> StoredGroup | None:
        """The complete, committed group stored under ``key``, or None.

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.

        Returns
        -------
        StoredGroup or None
            A picklable handle: ``.meta`` (the metadata document) and ``.read(...)``.

        Raises
        ------
        CorruptData
            A group whose metadata document is damaged.
        DataNotAvailable
            An object store that cannot be reached (frontends name the URL).

        Examples
        --------
        >>> group = d.find(key)
        >>> group.meta["data_type"], sum(c["n"] for c in group.chunks)
        ('peaks', 100)
        >>> d.find("0-peaks-aaaaaaaaaa") is None
        True
        """

    def has(self, key: str) -> bool:
        """Whether complete, committed data is stored under ``key``.

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.

        Returns
        -------
        bool

        Raises
        ------
        CorruptData
            A group whose metadata document is damaged.

        Examples
        --------
        >>> d.has(key), d.has("0-peaks-aaaaaaaaaa")
        (True, False)
        """
        return self.find(key) is not None

    def metadata(self, key: str) -> dict[str, Any]:
        """The metadata document of ``key`` (see the module docstring).

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.

        Returns
        -------
        dict

        Raises
        ------
        DataNotAvailable
            Nothing is stored under ``key``.

        Examples
        --------
        >>> d.metadata(key)["data_kind"]
        'peaks'
        """
        group = self.find(key)
        if group is None:
            raise DataNotAvailable(f"{key} is not stored in {self.url}")
        return group.meta

    @abc.abstractmethod
    def keys(self, prefix: str = "") -> list[str]:
        """Stored (committed) keys starting with ``prefix``, sorted; temporary folders and run
        documents are never listed.

        Parameters
        ----------
        prefix : str, optional
            E.g. ``"0-"`` (a run's data) or ``"0-peaks-"`` (one type of it).

        Returns
        -------
        list of str

        Raises
        ------
        DataNotAvailable
            An object store that cannot be reached.

        Examples
        --------
        >>> [k.split("-")[1] for k in d.keys("0-")]
        ['peaks', 'records']
        """

    def handle(self, key: str, n_rows: int, hint: dict[str, Any] | None = None) -> StoredGroup:
        """A handle of the committed group ``key``, which an open index recorded with
        ``n_rows`` rows; frontends may read its metadata only when it is first needed
        (then a group that no longer holds ``n_rows`` rows raises
        :class:`~dastrax.errors.DataNotAvailable`), and read rows with what ``hint``
        (the keys of the metadata that reading needs) tells. The default reads it now.

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.
        n_rows : int
            The rows the group held when it was indexed.
        hint : dict, optional
            The keys of the metadata that reading needs, as recorded with the index.

        Returns
        -------
        StoredGroup

        Raises
        ------
        DataNotAvailable
            The group is gone or changed since it was indexed.

        Examples
        --------
        >>> d.handle(key, 100).key == key
        True
        """
        group = self.find(key)
        if group is None or group.meta.get("n_rows") != n_rows:
            raise DataNotAvailable(f"{key} changed in {self.url} since it was indexed")
        return group

    def change_stamp(self) -> tuple[tuple[Any, ...], float] | None:
        """What tells whether anything here changed, cheaply.

        ``token`` changes whenever a group or a run document is added, replaced or removed,
        and ``newest`` is the time (seconds since the epoch) of the latest such change.
        Frontends that cannot tell without listing everything return None (then no open
        index is kept for superruns over them).

        Returns
        -------
        tuple of (tuple, float), or None

        Raises
        ------
        DataNotAvailable
            An object store that cannot be reached.

        Examples
        --------
        >>> d.change_stamp() is None  # memory://, like object stores, cannot tell cheaply
        True
        """
        return None

    def signatures(self, keys: list[str], *, as_read: bool = False) -> list[Any] | None:
        """Per key, what identifies the committed group's metadata document now (locally: its
        inode, modification time and size), or None for a key not stored; with ``as_read``,
        the signature of the document this frontend last read for the key. None (the
        default) where a frontend cannot tell cheaply: then no manifest of a superrun's load
        is kept over it (see :mod:`dastrax.load.openindex`).

        Parameters
        ----------
        keys : list of str
            Stored keys.
        as_read : bool, default False
            The signatures of the documents as last read here, not as they are now.

        Returns
        -------
        list or None

        Raises
        ------
        DataNotAvailable
            An object store that cannot be reached.

        Examples
        --------
        >>> d.signatures([key]) is None  # memory://, like object stores, cannot tell cheaply
        True
        """
        return None

    def run_signature(self, run_id: str) -> list[Any] | None:
        """What identifies ``run_id``'s run document now, or None (no document, or a frontend
        that cannot tell).

        Parameters
        ----------
        run_id : str
            A run or superrun id.

        Returns
        -------
        list or None

        Raises
        ------
        DataNotAvailable
            An object store that cannot be reached.

        Examples
        --------
        >>> d.run_signature("0") is None
        True
        """
        return None

    def manifest_folder(self) -> str | None:
        """Where manifests of superrun loads are kept with the data (a local folder of a
        writable frontend that has :meth:`signatures`), or None.

        Returns
        -------
        str or None

        Raises
        ------
        InvalidRequest
            Never for the built-in frontends; a frontend may refuse to name one.

        Examples
        --------
        >>> d.manifest_folder() is None
        True
        """
        return None

    def find_data(self, run_id: str, data_type: str) -> list[StoredGroup]:
        """Every stored group of ``data_type`` of ``run_id``, whatever its lineage.

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        data_type : str
            The data type.

        Returns
        -------
        list of StoredGroup

        Raises
        ------
        CorruptData
            A group whose metadata document is damaged.

        Examples
        --------
        >>> [g.key == key for g in d.find_data("0", "peaks")]
        [True]
        """
        out: list[StoredGroup] = []
        for key in self.keys(f"{run_id}-{data_type}-"):
            if key.count("-") == 2:
                group = self.find(key)
                if group is not None:
                    out.append(group)
        return out

    @abc.abstractmethod
    def writer(
        self,
        key: str,
        dtype: np.dtype,
        compressor: dict[str, Any] | None = None,
        data_kind: str = "rows",
        overwrite: bool = False,
    ) -> GroupWriter:
        """Start writing ``key``: a :class:`GroupWriter`, whose ``commit`` makes it visible.

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.
        dtype : numpy.dtype
            The rows' structured dtype (field titles kept).
        compressor : dict, optional
            The codec (``dastrax.storage.normalize_compressor``); default Blosc lz4.
        data_kind : str, default "rows"
            The row dimension's name.
        overwrite : bool, default False
            The commit replaces what is stored under ``key`` (never leaving it
            half-written).

        Returns
        -------
        GroupWriter

        Raises
        ------
        InvalidRequest
            The frontend is read-only.
        WriteConflict
            Another writer holds ``key``.

        Examples
        --------
        >>> import numpy as np
        >>> dtype = np.dtype([("time", np.int64), ("endtime", np.int64)])
        >>> w = d.writer("9-rows-aaaaaaaaaa", dtype)
        >>> w = w.append(np.array([(1, 2), (3, 4)], dtype), 0, 10)
        >>> meta = w.commit({"run_id": "9", "data_type": "rows", "lineage": {},
        ...                  "lineage_hash": "aaaaaaaaaa"})
        >>> d.has("9-rows-aaaaaaaaaa")
        True
        """

    def writers(self, specs: Sequence[dict[str, Any]]) -> list[GroupWriter]:
        """Start writing several keys at once (e.g. every group of one ``make``): one
        :meth:`writer` per spec, a dict of its keyword arguments (``key``, ``dtype``,
        ``compressor``, ``data_kind``, ``overwrite``).

        Frontends share the work of many writers where they can (a
        :class:`~dastrax.storage.ZarrDirectory` lists its directory once for all of them,
        not once a key). If one cannot be started, those already started are aborted.

        Parameters
        ----------
        specs : sequence of dict
            The keyword arguments of :meth:`writer`, one dict per group.

        Returns
        -------
        list of GroupWriter
            The writers, in the order of ``specs``.

        Raises
        ------
        InvalidRequest
            The frontend is read-only, or a spec is not a valid writer request.

        Examples
        --------
        >>> import tempfile, numpy as np, dastrax
        >>> d = dastrax.ZarrDirectory(tempfile.mkdtemp())
        >>> specs = [{"key": f"{i}-t-h", "dtype": np.dtype([("time", "i8")])} for i in "ab"]
        >>> [w.key for w in d.writers(specs)]
        ['a-t-h', 'b-t-h']
        """
        return start_all(specs, self.writer)

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete what is stored under ``key`` (nothing if nothing is).

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.

        Returns
        -------
        None

        Raises
        ------
        InvalidRequest
            The frontend is read-only.

        Examples
        --------
        >>> d.delete("9-rows-aaaaaaaaaa")
        >>> d.has("9-rows-aaaaaaaaaa")
        False
        """

    def discard(self, key: str) -> None:
        """Delete what is stored under ``key`` that nothing needs any more (e.g. the old copy
        of an extended superrun, once the new one is committed): the key is gone when this
        returns; frontends may remove the bytes in the background.

        Parameters
        ----------
        key : str
            ``run_id-data_type-lineage_hash``.

        Returns
        -------
        None

        Raises
        ------
        InvalidRequest
            The frontend is read-only.

        Examples
        --------
        >>> d.discard("8-rows-aaaaaaaaaa")  # nothing stored: nothing to do
        >>> d.has("8-rows-aaaaaaaaaa")
        False
        """
        self.delete(key)

    def commit_all(self, prepared: list[PendingCommit]) -> list[dict[str, Any]]:
        """Commit the groups written together by one make or persist, as one batch.

        The default commits them one after the other; frontends that can make them
        visible together (one transaction, one flush to disk) do.

        Parameters
        ----------
        prepared : list of PendingCommit
            ``[writer.prepare(meta), ...]``: each group's writer and metadata.

        Returns
        -------
        list of dict
            Each group's committed metadata document, in order.

        Raises
        ------
        WriteAborted
            A writer of the batch was aborted; nothing of the batch is stored.

        Examples
        --------
        >>> import tempfile, numpy as np, dastrax
        >>> d = dastrax.ZarrDirectory(tempfile.mkdtemp())
        >>> w = d.writer("0-t-abcdefghij", np.dtype([("time", "i8"), ("endtime", "i8")]))
        >>> rows = np.zeros(2, w_dtype := np.dtype([("time", "i8"), ("endtime", "i8")]))
        >>> rows["time"], rows["endtime"] = [0, 1], [1, 2]
        >>> w = w.append(rows, 0, 2)
        >>> meta = {"run_id": "0", "data_type": "t", "data_kind": "t", "lineage": {},
        ...         "lineage_hash": "abcdefghij", "chunk_target_size_mb": 200}
        >>> [m["n_rows"] for m in d.commit_all([w.prepare(meta)])]
        [2]
        """
        return [p.writer.commit(p.meta) for p in prepared]

    def replace[T](self, old_key: str, writer_commit: Callable[[], T]) -> T:
        """Run ``writer_commit()`` (which commits a new group) and only then delete
        ``old_key``: the old data stays until the new is committed.

        Parameters
        ----------
        old_key : str
            The key to delete once the new group is committed.
        writer_commit : callable
            Commits the new group; its result is returned.

        Returns
        -------
        object
            What ``writer_commit()`` returned.

        Raises
        ------
        InvalidRequest
            The frontend is read-only.
        Exception
            Whatever ``writer_commit`` raises (then ``old_key`` is kept).

        Examples
        --------
        >>> d.replace("7-rows-aaaaaaaaaa", lambda: "committed")
        'committed'
        """
        result = writer_commit()
        self.delete(old_key)
        return result

    # -- run documents ----------------------------------------------------------------
    @abc.abstractmethod
    def run_metadata(self, run_id: str) -> dict[str, Any]:
        """The stored run document of ``run_id``.

        Parameters
        ----------
        run_id : str
            A run or superrun id.

        Returns
        -------
        dict
            The document as stored (the catalog completes it).

        Raises
        ------
        RunMetadataNotAvailable
            There is none.
        CorruptData
            The document cannot be decoded.

        Examples
        --------
        >>> d.run_metadata("0")["end"]
        10
        """

    @abc.abstractmethod
    def write_run_metadata(self, run_id: str, doc: dict[str, Any]) -> None:
        """Write (atomically, replacing) the run document of ``run_id``.

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        doc : dict
            The document (JSON-able).

        Returns
        -------
        None

        Raises
        ------
        InvalidRequest
            The frontend is read-only.
        InvalidRunName
            A run id that is not allowed.

        Examples
        --------
        >>> d.write_run_metadata("5", {"name": "5", "start": 0, "end": 10})
        >>> d.run_metadata("5")["start"]
        0
        """

    def create_run_metadata(self, run_id: str, doc: dict[str, Any]) -> bool:
        """Write the run document of ``run_id`` only if there is none; whether it was written.
        Of two writers racing, exactly one gets True. Frontends that cannot create
        exclusively override this; the default is check-then-write.

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        doc : dict
            The document (JSON-able).

        Returns
        -------
        bool

        Raises
        ------
        InvalidRequest
            The frontend is read-only.

        Examples
        --------
        >>> d.create_run_metadata("6", {"name": "6", "start": 0, "end": 1})
        True
        >>> d.create_run_metadata("6", {"name": "6", "start": 0, "end": 2})
        False
        """
        from dastrax.errors import RunMetadataNotAvailable

        try:
            self.run_metadata(run_id)
            return False
        except RunMetadataNotAvailable:
            self.write_run_metadata(run_id, doc)
            return True

    @abc.abstractmethod
    def write_run_attachment(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Store a numpy array beside the run document of ``run_id`` (e.g. the million windows
        of a minimum-bias superrun), under ``name`` (letters, digits, ``_.``).

        Parameters
        ----------
        run_id : str
            The run the array belongs to.
        name : str
            Its name.
        array : numpy.ndarray
            The array.

        Returns
        -------
        None

        Raises
        ------
        InvalidRequest
            The frontend is read-only, or a name that is not allowed.

        Examples
        --------
        >>> import numpy as np
        >>> d.write_run_attachment("0", "windows", np.array([[0, 5], [6, 9]]))
        >>> d.run_attachment("0", "windows").tolist()
        [[0, 5], [6, 9]]
        """

    @abc.abstractmethod
    def run_attachment(self, run_id: str, name: str) -> np.ndarray:
        """The array stored by :meth:`write_run_attachment`.

        Parameters
        ----------
        run_id : str
            The run the array belongs to.
        name : str
            Its name.

        Returns
        -------
        numpy.ndarray

        Raises
        ------
        RunMetadataNotAvailable
            There is none.

        Examples
        --------
        >>> d.run_attachment("0", "nothing")
        Traceback (most recent call last):
        ...
        dastrax.errors.RunMetadataNotAvailable: ...
        """

    @abc.abstractmethod
    def delete_run_metadata(self, run_id: str) -> None:
        """Delete the run document of ``run_id`` and its attachments (nothing if there is none).

        Parameters
        ----------
        run_id : str
            A run or superrun id.

        Returns
        -------
        None

        Raises
        ------
        InvalidRequest
            The frontend is read-only.

        Examples
        --------
        >>> d.delete_run_metadata("4")  # none: nothing to do
        >>> "4" in d.list_runs()
        False
        """

    @abc.abstractmethod
    def list_runs(self) -> list[str]:
        """Run ids with a run document here, sorted.

        Returns
        -------
        list of str

        Raises
        ------
        DataNotAvailable
            An object store that cannot be reached.

        Examples
        --------
        >>> d.list_runs()[0]
        '0'
        """

    # -- helpers ----------------------------------------------------------------------
    def check_writable(self) -> None:
        """Refuse writes to a read-only frontend.

        Returns
        -------
        None

        Raises
        ------
        InvalidRequest
            This frontend is read-only.

        Examples
        --------
        >>> d.check_writable()
        """
        if self.readonly:
            raise InvalidRequest(f"storage {self.url} is read-only: nothing is written to it")

    @abc.abstractmethod
    def check_exists(self) -> None:
        """Refuse a location that does not exist (read commands on one fail, naming it).

        Returns
        -------
        None

        Raises
        ------
        DataNotAvailable
            The location does not exist, naming its URL.

        Examples
        --------
        >>> d.check_exists()
        """

    def check_readable(self) -> None:
        """Refuse a location where a read can find nothing because it does not exist (the
        check every reading call of a :class:`~dastrax.Context` makes; it never creates the
        location). The default is :meth:`check_exists`; object stores, where an empty prefix
        is no different from one not yet written, override it to check only what can be
        missing (a bucket).

        Returns
        -------
        None

        Raises
        ------
        DataNotAvailable
            The location does not exist.

        Examples
        --------
        >>> d.check_readable()
        """
        self.check_exists()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, readonly={self.readonly})"


# -- optional capabilities --------------------------------------------------------------
@runtime_checkable
class SupportsVersions(Protocol):
    """A frontend that keeps every version of a run document (an icechunk repository):
    each write of a superrun's document is a version, and what was stored while it was
    the current one can be read again.

    Examples
    --------
    >>> from dastrax.storage import SupportsVersions, ZarrDirectory
    >>> isinstance(ZarrDirectory("memory://v"), SupportsVersions)
    False
    """

    def superrun_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of the run document ``name``, oldest first: dicts of
        ``version`` (1, 2, ...), ``time``, ``commit``, ``message`` and ``doc``."""
        ...

    def at_version(self, name: str, version: int) -> StorageFrontend:
        """A read-only view of this frontend as it was while version ``version`` of
        ``name`` was the current one (:class:`~dastrax.errors.InvalidRequest` if there
        is no such version)."""
        ...

    def tag(self, name: str, version: int, tag: str) -> None:
        """Give version ``version`` of ``name`` a name that pins it."""
        ...


@runtime_checkable
class SupportsRunDocumentPath(Protocol):
    """A frontend whose run documents are files: messages name the file."""

    def run_document_path(self, run_id: str) -> str:
        """Where the run document of ``run_id`` is (a path or URL)."""
        ...


@runtime_checkable
class SupportsChunkCopy(Protocol):
    """A writer that copies zarr chunk files of a stored group as they are (still
    compressed): the fast path of writes by position (a superrun's persist copies its
    subruns' chunk files)."""

    def copy_chunk_from(
        self,
        group: StoredGroup,
        field: str,
        chunk_index: int,
        dest_chunk_index: int,
        link: bool = False,
    ) -> bool:
        """Copy zarr chunk ``chunk_index`` of column ``field`` of ``group`` verbatim as
        zarr chunk ``dest_chunk_index`` of the same column here (hard-linked with
        ``link`` where the storage allows).

        False (nothing written) where it cannot be done — other chunk shapes, codecs or
        dtype, another kind of storage, a missing source file — and the caller then
        writes the rows themselves.
        """
        ...


def start_all[W: GroupWriter](
    specs: Iterable[Mapping[str, Any]], start: Callable[..., W]
) -> list[W]:
    """``[start(**spec) for spec in specs]``; if one cannot be started, those already
    started are aborted (one place for every frontend's :meth:`StorageFrontend.writers`)."""
    out: list[W] = []
    try:
        for spec in specs:
            out.append(start(**spec))
    except BaseException:
        for w in out:
            w.abort()
        raise
    return out

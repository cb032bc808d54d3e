"""Writing a group into an icechunk repository: the append chain and writes by position.

The writer starts from ``repo.writable_session(branch).fork()``; its state carries that
:class:`icechunk.ForkSession` (pickled), so ``append`` runs in any process of any
scheduler and returns the new state with the fork's changes. Rows are buffered until a
whole zarr chunk is there (:func:`~dastrax.storage.grid.buffer_rows`, as a
``ZarrDirectory``'s writer does). Writes by position (:meth:`IcechunkWriter.array`) go
into one live fork per writer held by the process that opened the writer; they may come
from its threads, not from other processes (that raises). The commit is
:func:`~dastrax.storage.icechunk.commit.commit_together`'s.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import icechunk
import numpy as np
import zarr

from dastrax.core.chunks import chunk_entry
from dastrax.errors import DastraxError, WriteAborted
from dastrax.storage.abc import GroupWriter
from dastrax.storage.codecs import dtype_from_json, make_codecs
from dastrax.storage.grid import buffer_rows, position_chunk_rows
from dastrax.storage.groupdoc import group_document
from dastrax.storage.icechunk.commit import commit_together, find_meta
from dastrax.storage.icechunk.location import Location

#: writer id -> this process's live ForkSession (writes by position)
_LIVE: dict[str, icechunk.ForkSession] = {}
_LIVE_LOCK = threading.Lock()
#: ids of the writers aborted in this process (as an ordered set: the oldest forgotten
#: beyond :data:`ABORTED_KEPT`)
_ABORTED: dict[str, None] = {}
ABORTED_KEPT = 65536


@dataclass(frozen=True)
class IcechunkWriter(GroupWriter):
    """The immutable, picklable state of a group being written into an icechunk repository.

    Holds the pickled :class:`icechunk.ForkSession` with everything written so far; see
    the module docstring for how writes from dask tasks and commits work.
    """

    location: Location
    branch: str
    key: str
    dtype: list[Any]
    compressor: dict[str, Any]
    data_kind: str
    fork: bytes
    writer_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = field(default_factory=os.getpid)
    chunk_rows: int = 0
    created: bool = False
    n: int = 0
    written: int = 0
    tail: np.ndarray | None = None
    chunks: tuple[dict[str, Any], ...] = ()
    overwrite: bool = False

    @property
    def np_dtype(self) -> np.dtype:
        return dtype_from_json(self.dtype)

    def check_not_aborted(self) -> None:
        """Raise :class:`~dastrax.errors.WriteAborted` if this writer was aborted in this
        process (another process's abort is not seen: its commit would not know of it)."""
        if self.writer_id in _ABORTED:
            raise WriteAborted(
                f"writing {self.key} into {self.location.url} was aborted; nothing of it is stored"
            )

    @property
    def _names(self) -> tuple[str, ...]:
        """The fields of the rows' dtype."""
        return _fields(self.np_dtype)

    def _session(self) -> icechunk.ForkSession:
        """The fork to write into: this process's live one (writes by position), else a
        fresh copy of the state's."""
        live = _LIVE.get(self.writer_id)
        if live is not None:
            return live
        fork: icechunk.ForkSession = pickle.loads(self.fork)
        return fork

    def _with_session(self, session: icechunk.ForkSession, **changes: Any) -> IcechunkWriter:
        if self.writer_id in _LIVE:
            return replace(self, **changes)
        return replace(self, fork=pickle.dumps(session), **changes)

    def _create(
        self,
        session: icechunk.ForkSession,
        rows: int,
        total_rows: int,
        extra: dict[str, Any] | None,
        attributes: dict[str, Any] | None,
    ) -> None:
        dt = self.np_dtype
        fields = {name: dt[name] for name in self._names}
        fields.update({name: np.dtype(d) for name, d in (extra or {}).items()})
        group = zarr.open_group(session.store, path=self.key, mode="a", use_consolidated=False)
        for name, sub in fields.items():
            group.create_array(
                name,
                shape=(total_rows, *sub.shape),
                chunks=(rows, *sub.shape),
                dtype=sub.base,
                compressors=make_codecs(self.compressor),
                fill_value=0,
                dimension_names=[self.data_kind]
                + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)],
                attributes=dict(attributes or {}) if name != "subrun" else {},
                overwrite=True,
            )

    def create_arrays(
        self,
        base_rows: int,
        total_rows: int = 0,
        extra: dict[str, Any] | None = None,
        attributes: dict[str, Any] | None = None,
        rows: int | None = None,
    ) -> IcechunkWriter:
        """Create the columns (plus ``extra`` ``{name: dtype}``) for writes by position.

        Idempotent. Writes by position then go through :meth:`array` in this process.
        """
        self.check_not_aborted()
        if self.created:
            return self
        dt = self.np_dtype
        widest = max(
            [dt[n].itemsize for n in self._names]
            + [np.dtype(d).itemsize for d in (extra or {}).values()]
        )
        chunk_rows = position_chunk_rows(base_rows, total_rows, widest, rows)
        session = self._session()
        self._create(session, chunk_rows, total_rows, extra, attributes)
        state = self._with_session(session, chunk_rows=chunk_rows, created=True)
        with _LIVE_LOCK:
            _LIVE.setdefault(state.writer_id, session)
        return state

    def array(self, name: str) -> PositionTarget:
        """Column ``name`` as a write target (``target[lo:hi] = values``), in this process.

        Raises
        ------
        DastraxError
            If used in another process than the one that called :meth:`create_arrays`.
        """
        return PositionTarget(self, name)

    def with_rows(self, n: int) -> IcechunkWriter:
        """This state, told that ``n`` rows were written by position."""
        return replace(self, n=int(n), written=int(n))

    def append(
        self,
        data: np.ndarray,
        start: int,
        end: int,
        subruns: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> IcechunkWriter:
        """Add one logical chunk ``[start, end)`` holding ``data``; the new state.

        Raises
        ------
        WriteAborted
            If this writer was aborted (in this process).
        """
        self.check_not_aborted()
        written = self.written
        session = None
        chunk_rows, whole, tail = buffer_rows(self.tail, data, self.chunk_rows)
        state = replace(self, chunk_rows=chunk_rows)
        if whole is not None:
            full = len(whole)
            session = state._session()
            if not state.created:
                state._create(session, state.chunk_rows, 0, None, None)
                state = replace(state, created=True)
            for name in _fields(data.dtype):
                arr = zarr.open_array(session.store, path=f"{state.key}/{name}", mode="r+")
                if arr.shape[0] < written + full:
                    arr.resize((written + full, *arr.shape[1:]))  # grown: metadata only
                arr[written : written + full] = whole[name]
            written += full
        chunk = chunk_entry(len(state.chunks), start, end, state.n, data, run_id, subruns)
        changes: dict[str, Any] = {
            "n": state.n + len(data),
            "written": written,
            "tail": tail,
            "chunks": (*state.chunks, chunk),
        }
        if session is None:
            return replace(state, **changes)
        return state._with_session(session, **changes)

    def commit(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Write the last rows and the metadata, and commit the group: one icechunk commit.

        Returns the committed metadata document. If another writer committed the key
        first, theirs is kept and returned (same lineage, same data).

        Raises
        ------
        WriteConflict
            If the commit could not be rebased over others' commits after
            :data:`~dastrax.storage.icechunk.commit.COMMIT_TRIES` tries.
        WriteAborted
            If this writer was aborted (in this process).
        """
        return commit_together([(self, meta)])[0]

    def stage(
        self, repo: icechunk.Repository, meta: dict[str, Any]
    ) -> tuple[bytes, dict[str, Any]] | dict[str, Any]:
        """The commit up to merging the fork into the branch: the last rows and the
        metadata written into this writer's fork. Returns ``(the pickled fork, the full
        metadata)`` — or, if another writer committed the key first (and this is no
        overwrite), their metadata."""
        self.check_not_aborted()
        existing = None if self.overwrite else find_meta(repo, self.branch, self.key)
        if existing is not None:
            self._forget()
            return existing
        session = self._session()
        state = self
        if not state.created:
            # every row in memory: one zarr chunk of them all (as a ZarrDirectory's)
            state = replace(state, chunk_rows=max(1, state.n))
            state._create(session, state.chunk_rows, state.n, None, None)
        names = state._names
        for name in names:
            arr = zarr.open_array(session.store, path=f"{state.key}/{name}", mode="r+")
            if arr.shape[0] != state.n:
                arr.resize((state.n, *arr.shape[1:]))
            if state.tail is not None and len(state.tail):
                arr[state.written : state.n] = state.tail[name]
        group = zarr.open_group(session.store, path=state.key, mode="r")
        for name in [n for n in group.array_keys() if n not in names]:
            arr = zarr.open_array(session.store, path=f"{state.key}/{name}", mode="r+")
            if arr.shape[0] != state.n:
                arr.resize((state.n, *arr.shape[1:]))
        full = group_document(
            meta,
            dtype=state.dtype,
            compressor=state.compressor,
            n_rows=state.n,
            zarr_chunk_rows=state.chunk_rows,
            chunks=state.chunks,
        )
        full = json.loads(json.dumps(full))
        group = zarr.open_group(session.store, path=state.key, mode="a", use_consolidated=False)
        group.attrs["dastrax"] = full
        fork = pickle.dumps(session)
        self._forget()
        return fork, full

    def _forget(self) -> None:
        """Drop this process's live fork of the writer (writes by position)."""
        with _LIVE_LOCK:
            _LIVE.pop(self.writer_id, None)

    def abort(self) -> None:
        """Forget what this writer wrote: it was never committed, so nothing of it is
        visible (its chunk objects are left to icechunk's garbage collection). Its later
        appends and commits in this process raise :class:`~dastrax.errors.WriteAborted`."""
        with _LIVE_LOCK:
            _LIVE.pop(self.writer_id, None)
            _ABORTED[self.writer_id] = None
            while len(_ABORTED) > ABORTED_KEPT:
                del _ABORTED[next(iter(_ABORTED))]


class PositionTarget:
    """Column ``name`` of a writer, as a target of ``dask.array.store`` (in its process)."""

    def __init__(self, writer: IcechunkWriter, name: str):
        self.writer = writer
        self.name = name

    def _array(self) -> zarr.Array:
        self.writer.check_not_aborted()
        live = _LIVE.get(self.writer.writer_id)
        if live is None:
            raise DastraxError(
                f"writing {self.writer.key} by position into the icechunk repository "
                f"{self.writer.location.url} must happen in the process that created its "
                f"arrays (pid {self.writer.pid}; this is pid {os.getpid()}): use the threaded "
                "or synchronous scheduler for it, or append in order"
            )
        return zarr.open_array(live.store, path=f"{self.writer.key}/{self.name}", mode="r+")

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array().shape

    @property
    def dtype(self) -> np.dtype:
        return self._array().dtype

    @property
    def ndim(self) -> int:
        return self._array().ndim

    @property
    def chunks(self) -> tuple[int, ...]:
        return self._array().chunks

    def __setitem__(self, index: Any, value: Any) -> None:
        self._array()[index] = value

    def __getitem__(self, index: Any) -> Any:
        return self._array()[index]


def _fields(dtype: np.dtype) -> tuple[str, ...]:
    """The field names of a structured dtype (none for a plain one)."""
    return dtype.names or ()

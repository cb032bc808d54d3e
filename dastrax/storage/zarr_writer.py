"""Writing groups of a ZarrDirectory: the append chain, zarr chunk sizing, and the
atomic commit (a rename locally; the metadata document written last on object stores)."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import zarr
import zarr.api.asynchronous
import zarr.errors
from zarr.core.sync import sync

from .._version import __version__
from ..chunks import chunk_entry
from ..errors import DastraxError, WriteAborted
from . import _fastwrite
from .base import GroupWriter
from .codecs import dtype_from_json, make_codecs
from .layout import COMMIT_FILE, WRITER_FILE, _discard, local_path, thaw_options, zarr_store

#: whether small local groups are written by :mod:`._fastwrite` (``DASTRAX_FASTWRITE=0``:
#: through zarr)
FASTWRITE = os.environ.get("DASTRAX_FASTWRITE", "1") not in ("0", "false", "no")

#: largest uncompressed zarr chunk of one column, in bytes
MAX_ZARR_CHUNK_BYTES = 32 * 10**6


#: smallest uncompressed zarr chunk of the widest column, in bytes
MIN_ZARR_CHUNK_BYTES = 10**6


#: row capacity of arrays whose final size is not known while they are written
CAPACITY = 2**40


#: zarr arrays open for writing in this process, by (root, group path, field)
_WRITE_ARRAYS: dict[tuple[str, str, str], Any] = {}


def zarr_chunk_rows(base_rows: int, itemsize: int) -> int:
    """Rows per zarr chunk of a group.

    ``base_rows`` (a typical logical chunk, so that logical chunks align with zarr
    chunks), raised so that the widest column's chunk (``itemsize`` bytes a row) holds at
    least :data:`MIN_ZARR_CHUNK_BYTES` (tiny chunks cost more in overhead than they
    save), or an even part of it so that none exceeds :data:`MAX_ZARR_CHUNK_BYTES`.
    """
    itemsize = max(1, int(itemsize))
    rows = max(1, int(base_rows), -(-MIN_ZARR_CHUNK_BYTES // itemsize))
    parts = max(1, -(-rows * itemsize // MAX_ZARR_CHUNK_BYTES))
    return max(1, -(-rows // parts))


def end_aligned_rows(rows: int, total_rows: int, itemsize: int) -> int:
    """``rows``, or the nearest number of rows within a factor of two of it (and within
    the chunk byte bounds) that divides ``total_rows``: then the last zarr chunk is
    full, and a group that later grows by appending (an extended superrun's next
    persist) writes only its new rows, never rewriting a partial last chunk."""
    if total_rows <= rows or total_rows % rows == 0:
        return rows
    itemsize = max(1, int(itemsize))
    lo = max(1, rows // 2, -(-MIN_ZARR_CHUNK_BYTES // itemsize))
    hi = min(2 * rows, max(rows, MAX_ZARR_CHUNK_BYTES // itemsize))
    for step in range(1, max(rows - lo, hi - rows) + 1):
        for d in (rows - step, rows + step):
            if lo <= d <= hi and total_rows % d == 0:
                return d
    return rows


def position_chunk_rows(
    base_rows: int, total_rows: int, itemsize: int, rows: int | None = None
) -> int:
    """Rows per zarr chunk of a group written by position (every writer's grid):
    ``rows`` if given, else :func:`zarr_chunk_rows` of ``base_rows`` made to divide
    ``total_rows`` where a near size does (:func:`end_aligned_rows`); never more than
    ``total_rows`` when that is known (a zarr chunk is stored whole, so a tiny array in
    a big chunk would cost a big chunk's bytes)."""
    if rows is None:
        rows = end_aligned_rows(zarr_chunk_rows(base_rows, itemsize), total_rows, itemsize)
    if total_rows:
        rows = min(rows, total_rows)
    return int(rows)


def buffer_rows(
    tail: np.ndarray | None, data: np.ndarray, chunk_rows: int
) -> tuple[int, np.ndarray | None, np.ndarray]:
    """The append chain's buffer (every writer's): ``data`` added to the rows not yet
    written (``tail``), and what of them fills whole zarr chunks.

    Returns ``(chunk_rows, whole, tail)``: the rows per zarr chunk (sized by the first
    non-empty ``data``, :func:`zarr_chunk_rows`, if still 0), the rows to write now (a
    multiple of ``chunk_rows``; None if not a whole zarr chunk is there yet) and the rows
    left for the next append (the last partial zarr chunk, written by the commit).
    """
    tail = data if tail is None or not len(tail) else np.concatenate([tail, data])
    if not chunk_rows and len(data):
        widest = max(data.dtype.fields[f][0].itemsize for f in data.dtype.names)
        chunk_rows = zarr_chunk_rows(len(data), widest)
    full = (len(tail) // chunk_rows) * chunk_rows if chunk_rows else 0
    if not full:
        return chunk_rows, None, tail
    return chunk_rows, tail[:full], tail[full:].copy()


def shared_chunk_rows(source_rows, itemsize: int) -> int:
    """The zarr chunk rows that all of ``source_rows`` (zarr chunk rows of the groups a
    group is written from; 0 where unknown) share, if its chunk of the widest column
    (``itemsize`` bytes a row) lies within [:data:`MIN_ZARR_CHUNK_BYTES`,
    :data:`MAX_ZARR_CHUNK_BYTES`] — writing with it, their chunk files can be copied as
    they are — else 0."""
    sizes = {int(r or 0) for r in source_rows}
    if len(sizes) != 1:
        return 0
    (rows,) = sizes
    if rows and MIN_ZARR_CHUNK_BYTES <= rows * max(1, int(itemsize)) <= MAX_ZARR_CHUNK_BYTES:
        return rows
    return 0


@dataclass(frozen=True)
class ZarrGroupWriter(GroupWriter):
    """The state of one group being written, appended to in time order.

    It is immutable and picklable: :meth:`append` returns a new state, so a chain of
    dask tasks (``append`` of chunk i depends on the state after chunk i-1) streams rows
    into zarr in order on any scheduler, each zarr chunk written by exactly one task.
    All columns share one zarr chunk row count; rows are flushed whenever whole zarr
    chunks are available, and the last partial one is written by :meth:`commit`.
    """

    root: str
    key: str
    path: str
    local: bool
    dtype: list
    compressor: dict
    data_kind: str = "rows"
    options: tuple = ()
    overwrite: bool = False
    chunk_rows: int = 0
    created: bool = False
    n: int = 0
    written: int = 0
    tail: Any = None
    chunks: tuple = ()

    @property
    def np_dtype(self) -> np.dtype:
        return dtype_from_json(self.dtype)

    @property
    def folder(self) -> str:
        """The local temporary folder holding the group and its writer file."""
        return os.path.dirname(os.path.join(local_path(self.root), self.path))

    def _store(self):
        return zarr_store(self.root, False, self.options)

    def group(self):
        """The zarr group being written."""
        return zarr.open_group(self._store(), path=self.path, mode="a")

    def array(self, name: str) -> WriteTarget:
        """Array ``name`` of the group, as a target of writes (e.g. ``dask.array.store``).

        Each write is checked afterwards: if the write of the group was aborted meanwhile,
        what it wrote is removed and it raises (see :meth:`check_not_aborted`).
        """
        return WriteTarget(self, name)

    def write_block(self, lo: int, hi: int, columns: dict[str, np.ndarray]) -> None:
        """Rows ``[lo, hi)`` of several columns, encoded and written concurrently (one
        pass through zarr's event loop instead of one a column)."""
        import asyncio

        try:
            arrays = [(self._array(name)._async_array, v) for name, v in columns.items()]

            async def write():
                await asyncio.gather(*(a.setitem(slice(lo, hi), v) for a, v in arrays))

            sync(write())
        finally:
            self.check_not_aborted()

    def _array(self, name: str):
        """Array ``name`` of the group, opened to write every chunk (empty ones too).

        Opened once per process and group: its metadata does not change until the commit
        (arrays are created with their final shape, or with :data:`CAPACITY` rows when the
        size is not known yet, and cut to size by the commit).
        """
        cache_key = (self.root, self.path, name)
        arr = _WRITE_ARRAYS.get(cache_key)
        if arr is None:
            arr = zarr.open_array(
                self._store(),
                path=f"{self.path}/{name}",
                mode="r+",
                config={"write_empty_chunks": True},
            )
            _WRITE_ARRAYS[cache_key] = arr
        return arr

    def create_arrays(
        self,
        base_rows: int,
        total_rows: int = 0,
        extra: dict | None = None,
        attributes: dict | None = None,
        rows: int | None = None,
    ) -> ZarrGroupWriter:
        """Create one zarr array per field (plus ``extra`` {name: dtype}) in the group.

        Zarr chunks hold :func:`position_chunk_rows` rows (``rows`` if given, else sized
        from ``base_rows`` to suit ``total_rows``).
        Idempotent: arrays that exist with the same shape and chunks are kept (a task
        rerun after its worker died goes on where it was); others are replaced.
        """
        dt = self.np_dtype
        fields = {name: dt.fields[name][0] for name in dt.names}
        fields.update({name: np.dtype(d) for name, d in (extra or {}).items()})
        widest = max(f.itemsize for f in fields.values())
        rows = position_chunk_rows(base_rows, total_rows, widest, rows)
        group = self.group()
        for name, sub in fields.items():
            shape = (total_rows or CAPACITY, *sub.shape)
            chunks = (rows, *sub.shape)
            kwargs = dict(
                shape=shape,
                chunks=chunks,
                dtype=sub.base,
                compressors=make_codecs(self.compressor),
                fill_value=0,
                dimension_names=[self.data_kind]
                + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)],
                config={"write_empty_chunks": True},
                attributes=dict(attributes or {}) if name != "subrun" else {},
            )
            try:
                group.create_array(name, **kwargs)
            except zarr.errors.ContainsArrayError:
                old = group[name]
                if old.shape != shape or old.chunks != chunks or old.dtype != sub.base:
                    group.create_array(name, overwrite=True, **kwargs)
        return replace(self, chunk_rows=rows, created=True)

    def append(
        self,
        data: np.ndarray,
        start: int,
        end: int,
        subruns: dict | None = None,
        run_id: str | None = None,
    ) -> ZarrGroupWriter:
        """Add one logical chunk ``[start, end)`` holding ``data``; return the new state."""
        state = self
        written = state.written
        try:
            # arrays created once a whole zarr chunk is there to write (a run smaller
            # than one gets chunks of its own size at the commit)
            chunk_rows, whole, tail = buffer_rows(state.tail, data, state.chunk_rows)
            state = replace(state, chunk_rows=chunk_rows)
            if whole is not None:
                if not state.created:
                    state = state.create_arrays(0, rows=state.chunk_rows)
                for name in data.dtype.names:
                    state._array(name)[written : written + len(whole)] = whole[name]
                written += len(whole)
        finally:
            self.check_not_aborted()
        chunk = chunk_entry(len(state.chunks), start, end, state.n, data, run_id, subruns)
        return replace(
            state, n=state.n + len(data), written=written, tail=tail, chunks=(*state.chunks, chunk)
        )

    def commit(self, meta: dict) -> dict:
        """Write the last rows and the metadata, then make the group visible under its key.

        Returns the committed metadata document. If another writer committed the same key
        first, this copy is discarded and theirs is kept (same lineage, same data).
        """
        if not self.created:
            return self._commit_whole(meta)
        try:
            state = self
            for name in state.np_dtype.names:
                arr = state._array(name)
                if state.tail is not None and len(state.tail):
                    arr[state.written : state.n] = state.tail[name]
                if arr.shape[0] != state.n:
                    sync(
                        arr._async_array.resize(
                            (state.n, *arr.shape[1:]), delete_outside_chunks=False
                        )
                    )
        except BaseException:
            self.check_not_aborted()
            raise
        full = state._full_meta(meta)
        finish_group(state, full)
        return full

    def _full_meta(self, meta: dict) -> dict:
        """``meta`` completed with what the writer knows (dtype, codecs, rows, chunks)."""
        return {
            **meta,
            "dtype": self.dtype,
            "compressor": self.compressor,
            "dastrax_version": __version__,
            "n_rows": int(self.n),
            "zarr_chunk_rows": int(self.chunk_rows),
            "chunks": list(meta.get("chunks") or self.chunks),
        }

    def _commit_whole(self, meta: dict) -> dict:
        """Commit a group whose rows are all in memory (no array created yet): every
        array created with its data at once, concurrently, then the group document with
        the metadata and the consolidated metadata of its arrays — one zarr document a
        array and one for the group, no read back (thousands of small runs are made so)."""
        state = replace(self, chunk_rows=max(1, self.n))
        full = state._full_meta(meta)
        dt = state.np_dtype
        data = state.tail if state.tail is not None else np.zeros(0, dt)
        try:
            folder = os.path.join(local_path(self.root), self.path)
            if not (
                FASTWRITE
                and self.local
                and _fastwrite.write_group(folder, dt, data, self.compressor, self.data_kind, full)
            ):
                sync(_write_whole(state, dt, data, full))
        except BaseException:
            self.check_not_aborted()
            raise
        finish_group(state, full, written=True)
        return full

    def check_not_aborted(self) -> None:
        """Called after each write: if the write of the group was aborted meanwhile (its
        writer file taken by :meth:`abort`), remove what this write left and raise.

        Tasks of a failed graph may still be running when it is aborted; a late write
        would otherwise recreate the temporary folder that the abort removed.
        """
        if not self.local:
            return
        folder = self.folder
        try:
            # touched: the writer's heartbeat, for sweeps on hosts that cannot see its pid
            os.utime(os.path.join(folder, WRITER_FILE))
            return
        except FileNotFoundError:
            if os.path.exists(os.path.join(folder, COMMIT_FILE)):
                return
        _forget_arrays(self.root, self.path)
        _discard(folder, folder)
        raise WriteAborted(
            f"writing {self.key} was aborted (its temporary folder {folder} was removed); "
            "nothing of it is stored"
        )

    def abort(self) -> None:
        """Remove what this writer wrote (its temporary folder), unless its commit has
        taken over: the writer file is the token that either the commit or the abort takes.
        """
        _forget_arrays(self.root, self.path)
        if self.local:
            folder = self.folder
            try:
                os.remove(os.path.join(folder, WRITER_FILE))
            except FileNotFoundError:
                if os.path.exists(os.path.join(folder, COMMIT_FILE)):
                    return  # being committed: the commit completes or removes it
            _discard(folder, folder)
        else:
            import fsspec

            fs, root = fsspec.core.url_to_fs(self.root, **thaw_options(self.options))
            path = f"{root.rstrip('/')}/{self.path}"
            with contextlib.suppress(FileNotFoundError):
                if not fs.exists(f"{path}/zarr.json") or not _committed_doc(fs, path):
                    fs.rm(path, recursive=True)

    def with_rows(self, n: int) -> ZarrGroupWriter:
        return replace(self, n=n, written=n)

    def copy_chunk_from(
        self, group, field: str, chunk_index: int, dest_chunk_index: int, link: bool = False
    ) -> bool:
        """Copy a zarr chunk file of ``group`` (a local :class:`ZarrGroup`) verbatim into
        this (local) group, where both arrays have the same dtype, chunk shape and codecs
        (its crc32c covers the bytes, so it stays valid); False where they do not. With
        ``link``, the file is hard-linked (the same file, bytes and mtime: zarr replaces
        files by rename, never in place) where the filesystem allows."""
        from .zarr_group import ZarrGroup

        if not (self.local and isinstance(group, ZarrGroup) and group.local):
            return False
        src_dir = os.path.join(local_path(group.root), group.key, field)
        dst_dir = os.path.join(local_path(self.root), self.path, field)
        src, dst = _chunk_signature(src_dir), _chunk_signature(dst_dir)
        if src is None or src != dst:
            return False
        tail = ["0"] * (len(src[1]) - 1)
        src_file = os.path.join(src_dir, "c", str(int(chunk_index)), *tail)
        dst_file = os.path.join(dst_dir, "c", str(int(dest_chunk_index)), *tail)
        try:
            os.makedirs(os.path.dirname(dst_file), exist_ok=True)
            try:
                if not link:
                    raise OSError
                os.link(src_file, dst_file)
            except FileExistsError:
                os.remove(dst_file)
                os.link(src_file, dst_file)
            except OSError:
                shutil.copyfile(src_file, dst_file)
        except FileNotFoundError:
            # a missing source chunk: the caller's read reports the damage
            with contextlib.suppress(FileNotFoundError):
                os.remove(dst_file)
            return False
        finally:
            self.check_not_aborted()
        return True


#: chunk signatures of array folders read in this process, by folder
_SIGNATURES: dict[str, tuple[tuple, tuple | None]] = {}


def _chunk_signature(adir: str) -> tuple | None:
    """What must match for a zarr chunk file of one array to be another's: dtype, chunk
    shape and codecs — or None where this is not a local zarr v3 array with a regular
    grid and the default ``/`` chunk keys (cached per ``zarr.json`` version)."""
    import json

    meta = os.path.join(adir, "zarr.json")
    try:
        st = os.stat(meta)
    except OSError:
        return None
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _SIGNATURES.get(adir)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        with open(meta, "rb") as f:
            doc = json.loads(f.read())
        grid, enc = doc["chunk_grid"], doc["chunk_key_encoding"]
        ok = (
            doc.get("zarr_format") == 3
            and grid["name"] == "regular"
            and enc["name"] == "default"
            and (enc.get("configuration") or {}).get("separator", "/") == "/"
            and not doc.get("storage_transformers")
            and list(grid["configuration"]["chunk_shape"][1:]) == list(doc["shape"][1:])
        )
        sig = (
            (
                json.dumps(doc["data_type"], sort_keys=True),
                tuple(grid["configuration"]["chunk_shape"]),
                json.dumps(doc["codecs"], sort_keys=True),
            )
            if ok
            else None
        )
    except (OSError, ValueError, KeyError, TypeError):
        sig = None
    if len(_SIGNATURES) > 100_000:
        _SIGNATURES.clear()
    _SIGNATURES[adir] = (stamp, sig)
    return sig


def _committed_doc(fs, path: str) -> bool:
    """Whether the group at ``path`` has its committed metadata (an object store's commit)."""
    import json

    try:
        return "dastrax" in json.loads(fs.cat_file(f"{path}/zarr.json")).get("attributes", {})
    except (OSError, ValueError):
        return False


def _forget_arrays(root: str, path: str) -> None:
    for cache_key in [k for k in _WRITE_ARRAYS if k[0] == root and k[1] == path]:
        _WRITE_ARRAYS.pop(cache_key, None)


async def _write_whole(state: ZarrGroupWriter, dt: np.dtype, data: np.ndarray, meta: dict):
    import asyncio

    from zarr.core.group import AsyncGroup, ConsolidatedMetadata, GroupMetadata
    from zarr.storage import StorePath

    store = state._store()
    rows = state.chunk_rows
    codecs = make_codecs(state.compressor)

    async def one(name: str):
        sub = dt.fields[name][0]
        shape = {"shape": (0, *sub.shape), "dtype": sub.base}
        if len(data):
            shape = {"data": np.ascontiguousarray(data[name])}
        return name, await zarr.api.asynchronous.create_array(
            store,
            name=f"{state.path}/{name}",
            **shape,
            chunks=(rows, *sub.shape),
            compressors=codecs,
            fill_value=0,
            dimension_names=[state.data_kind] + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)],
            config={"write_empty_chunks": True},
            overwrite=True,
        )

    made = await asyncio.gather(*(one(name) for name in dt.names))
    consolidated = ConsolidatedMetadata(metadata={name: arr.metadata for name, arr in made})
    group = AsyncGroup(
        GroupMetadata(attributes={"dastrax": meta}, consolidated_metadata=consolidated),
        StorePath(store, state.path),
    )
    await group._save_metadata()


def finish_group(state: ZarrGroupWriter, meta: dict, written: bool = False) -> None:
    """Store the metadata and consolidate, then commit: rename the group from its
    temporary folder to the key (locally) — on object stores the metadata write itself is
    the commit.

    Locally the commit first takes the writer file (renamed to :data:`COMMIT_FILE`), so
    that an abort running at the same time leaves the folder alone — or, if the abort took
    it first, the commit gives up. If anything fails after that, the folder is removed.
    """
    _forget_arrays(state.root, state.path)
    root = local_path(state.root)
    src, dst = os.path.join(root, state.path), os.path.join(root, state.key)
    folder = state.folder
    if state.local:
        try:
            os.rename(os.path.join(folder, WRITER_FILE), os.path.join(folder, COMMIT_FILE))
        except FileNotFoundError:
            if not os.path.exists(os.path.join(folder, COMMIT_FILE)):
                _discard(folder, folder)
                raise WriteAborted(
                    f"writing {state.key} was aborted before its commit; nothing of it is stored"
                ) from None
            # an earlier attempt of this very commit took the token and died (its worker
            # was killed, the task rerun): go on where it stopped
            if not os.path.exists(src):
                if os.path.exists(os.path.join(dst, "zarr.json")):
                    _discard(folder, folder)  # it had renamed the group: committed
                    return
                _discard(folder, folder)
                raise DastraxError(
                    f"writing {state.key}: its group vanished during the commit; make it again"
                ) from None
    try:
        if not written:
            # (unindented: json's C encoder, several times faster for the chunk tables of
            # superruns of thousands of subruns)
            with zarr.config.set({"json_indent": None}):
                group = state.group()
                group.update_attributes({"dastrax": meta})
                zarr.consolidate_metadata(state._store(), path=state.path)
        if state.local:
            if FSYNC:
                fsync_tree(src)  # a power loss cannot leave a committed group incomplete
            try:
                os.rename(src, dst)
                if FSYNC:
                    fsync_dir(root)
            except OSError:
                if not os.path.exists(os.path.join(dst, "zarr.json")):
                    raise
                if state.overwrite:
                    # the new group takes the key in one step; the old one goes with the
                    # temporary folder below
                    exchange(src, dst)
                # else another writer committed first: same lineage, same data; ours goes
    except BaseException:
        if state.local:
            _discard(folder, folder)
        raise
    if state.local:
        _discard(folder, folder)  # the writer file (and the group, if it lost)


#: whether commits flush a group's files and folders to disk before the rename that
#: makes it visible (``DASTRAX_FSYNC=1``). Off by default: measured in ``dastrax bench``
#: at 2.44 GB it makes a persist take 1.7 s instead of 0.75 s (+130 %, far above the 5 %
#: that would make it the default)
FSYNC = os.environ.get("DASTRAX_FSYNC", "0") not in ("0", "false", "no", "")


def fsync_dir(path: str) -> None:
    """Flush folder ``path`` (its entries: created and renamed files) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """Flush every file and folder below ``path`` to disk (files first)."""
    for dirpath, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


def exchange(a: str, b: str) -> None:
    """Swap paths ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``); where
    that is not available, ``b`` is moved aside, then ``a`` renamed to ``b``."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        fn = None
    if fn is not None:
        at_fdcwd, rename_exchange = -100, 2
        if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
    aside = f"{a}.old"
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


class WriteTarget:
    """Array ``name`` of a group being written, as a target of ``dask.array.store``.

    Picklable (the array is opened where it is written); every write is followed by
    :meth:`ZarrGroupWriter.check_not_aborted`.
    """

    def __init__(self, appender: ZarrGroupWriter, name: str):
        self.appender = appender
        self.name = name

    @property
    def shape(self) -> tuple:
        return self.appender._array(self.name).shape

    @property
    def dtype(self) -> np.dtype:
        return self.appender._array(self.name).dtype

    @property
    def ndim(self) -> int:
        return self.appender._array(self.name).ndim

    @property
    def chunks(self) -> tuple:
        return self.appender._array(self.name).chunks

    def __setitem__(self, index, value) -> None:
        try:
            self.appender._array(self.name)[index] = value
        finally:
            self.appender.check_not_aborted()

    def __getitem__(self, index):
        return self.appender._array(self.name)[index]

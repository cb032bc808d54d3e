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

from dastrax.core.chunks import chunk_entry, field_dtype, field_names
from dastrax.errors import DastraxError, WriteAborted
from dastrax.storage.abc import GroupWriter, PendingCommit
from dastrax.storage.codecs import dtype_from_json, make_codecs
from dastrax.storage.grid import buffer_rows, position_chunk_rows
from dastrax.storage.groupdoc import group_document
from dastrax.storage.zarr import _fastread, _fastwrite
from dastrax.storage.zarr.layout import (
    COMMIT_FILE,
    PUBLISH_FILE,
    WRITER_FILE,
    _discard,
    local_path,
    thaw_options,
    zarr_store,
)

#: whether small local groups are written by :mod:`._fastwrite` (``DASTRAX_FASTWRITE=0``:
#: through zarr)
FASTWRITE = os.environ.get("DASTRAX_FASTWRITE", "1") not in ("0", "false", "no")

#: row capacity of arrays whose final size is not known while they are written
CAPACITY = 2**40


#: zarr arrays open for writing in this process, by (root, group path, field)
_WRITE_ARRAYS: dict[tuple[str, str, str], Any] = {}


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
        fields = {name: field_dtype(dt, name) for name in field_names(dt)}
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
                for name in field_names(data.dtype):
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
        prepared = self.prepare(meta)
        publish([prepared])
        return prepared.meta

    def prepare(self, meta: dict) -> Prepared:
        """The commit up to making the group visible: the last rows and the metadata
        document written and read back (see :func:`prepare_staged`); then
        :func:`publish` (one flush for a whole batch, the renames)."""
        return prepare_staged(*self.stage(meta))

    def stage(self, meta: dict) -> tuple[ZarrGroupWriter, dict, bool]:
        """Everything of the commit before its metadata: the last rows written (and the
        arrays cut to size, or, if none was created, the whole group written at once).
        Returns ``(state, full metadata, whether the group document is written)`` for
        :func:`prepare_staged`."""
        if not self.created:
            return self._stage_whole(meta)
        try:
            state = self
            for name in field_names(state.np_dtype):
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
        return state, state._full_meta(meta), False

    def _full_meta(self, meta: dict) -> dict:
        """``meta`` completed with what the writer knows (dtype, codecs, rows, chunks)."""
        return group_document(
            meta,
            dtype=self.dtype,
            compressor=self.compressor,
            n_rows=self.n,
            zarr_chunk_rows=self.chunk_rows,
            chunks=self.chunks,
        )

    def _stage_whole(self, meta: dict) -> tuple[ZarrGroupWriter, dict, bool]:
        """Stage a group whose rows are all in memory (no array created yet): every
        array created with its data at once, concurrently, then the group document with
        the metadata and the consolidated metadata of its arrays — one zarr document a
        array and one for the group (thousands of small runs are made so)."""
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
        return state, full, True

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
            if _committing(folder):
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
                try:  # prepared, not yet being made visible: taken back
                    os.remove(os.path.join(folder, COMMIT_FILE))
                except FileNotFoundError:
                    if os.path.exists(os.path.join(folder, PUBLISH_FILE)):
                        return  # being made visible: the commit completes or removes it
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
        from dastrax.storage.zarr.group import ZarrGroup

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
    return _fastread.parsed_array_doc(adir, _SIGNATURES, _signature_of)


def _signature_of(adir: str, doc: dict) -> tuple | None:
    import json

    try:
        grid, enc = doc["chunk_grid"], doc["chunk_key_encoding"]
        ok = (
            doc.get("zarr_format") == 3
            and grid["name"] == "regular"
            and enc["name"] == "default"
            and (enc.get("configuration") or {}).get("separator", "/") == "/"
            and not doc.get("storage_transformers")
            and list(grid["configuration"]["chunk_shape"][1:]) == list(doc["shape"][1:])
        )
        if not ok:
            return None
        return (
            json.dumps(doc["data_type"], sort_keys=True),
            tuple(grid["configuration"]["chunk_shape"]),
            json.dumps(doc["codecs"], sort_keys=True),
        )
    except (KeyError, TypeError, ValueError):
        return None


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

    async def one(name: str) -> tuple[str, zarr.AsyncArray[Any]]:
        sub = field_dtype(dt, name)
        # the rows if there are any, else an empty array of the field's shape and dtype
        values = np.ascontiguousarray(data[name]) if len(data) else None
        return name, await zarr.api.asynchronous.create_array(
            store,
            name=f"{state.path}/{name}",
            shape=None if values is not None else (0, *sub.shape),
            dtype=None if values is not None else sub.base,
            data=values,
            chunks=(rows, *sub.shape),
            compressors=codecs,
            fill_value=0,
            dimension_names=[state.data_kind] + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)],
            config={"write_empty_chunks": True},
            overwrite=True,
        )

    made = await asyncio.gather(*(one(name) for name in field_names(dt)))
    consolidated = ConsolidatedMetadata(metadata={name: arr.metadata for name, arr in made})
    group = AsyncGroup(
        GroupMetadata(attributes={"dastrax": meta}, consolidated_metadata=consolidated),
        StorePath(store, state.path),
    )
    await group._save_metadata()


@dataclass(frozen=True)
class Prepared(PendingCommit):
    """A group whose commit is prepared (:meth:`ZarrGroupWriter.prepare`): written,
    its metadata document written and read back, its writer file taken (locally:
    renamed to :data:`COMMIT_FILE`). ``paths`` — ``(temporary group, key)`` — is None
    where nothing is left to do (object stores: the document was the commit; or an
    earlier attempt of this commit had made it visible). Small and picklable (no rows)."""

    writer: ZarrGroupWriter
    paths: tuple[str, str] | None = None


def _committing(folder: str) -> bool:
    """Whether a commit took the writer file of temporary folder ``folder``."""
    return any(os.path.exists(os.path.join(folder, f)) for f in (COMMIT_FILE, PUBLISH_FILE))


def prepare_staged(state: ZarrGroupWriter, meta: dict, written: bool) -> Prepared:
    """Prepare the commit of a staged group (:meth:`ZarrGroupWriter.stage`): take its
    writer file (so that an abort at the same time leaves it alone, or, if the abort took
    it first, give up), write its metadata document — the group's metadata and its
    arrays' (consolidated) in one write: on object stores that write is the commit — and
    locally read it back: a commit depends on every write before it, and one that failed
    or came out short is never made visible. If anything fails, the temporary folder is
    removed."""
    try:
        paths = _take_commit(state)
        if paths is not None:
            if not written:
                # (unindented: json's C encoder, several times faster for the chunk
                # tables of superruns of thousands of subruns)
                with zarr.config.set({"json_indent": None}):
                    sync(_write_group_document(state, meta))
            if state.local:
                check_group_document(paths[0], meta)
            else:
                paths = None
    except BaseException:
        if state.local:
            _discard(state.folder, state.folder)
        raise
    return Prepared(replace(state, tail=None), meta, paths)


def publish(prepared: list[Prepared]) -> None:
    """Make prepared groups of one directory visible, as one batch: every one's commit
    file taken (renamed to :data:`PUBLISH_FILE`; if an abort took one back, the whole
    batch gives up), then — with :data:`FSYNC` — all their files flushed to disk at once,
    then each renamed from its temporary folder to its key, then the directory flushed
    (the renames). If anything fails before the renames, every temporary folder of the
    batch is removed and nothing of it is visible."""
    ready = [(p.writer, p.paths) for p in prepared if p.paths is not None]
    try:
        for writer, _paths in ready:
            folder = writer.folder
            try:
                os.rename(os.path.join(folder, COMMIT_FILE), os.path.join(folder, PUBLISH_FILE))
            except FileNotFoundError:
                if not os.path.exists(os.path.join(folder, PUBLISH_FILE)):  # (else: a rerun)
                    raise WriteAborted(
                        f"writing {writer.key} was aborted before its commit; nothing of "
                        "this write is stored"
                    ) from None
        if ready and FSYNC:
            # data and metadata on disk before the renames that make them visible
            flush_trees([paths[0] for _writer, paths in ready])
        for writer, paths in ready:
            _publish(writer, *paths)
        if ready and FSYNC:
            fsync_dir(local_path(ready[0][0].root))  # the renames themselves
    except BaseException:
        for p in prepared:
            if p.writer.local:
                _discard(p.writer.folder, p.writer.folder)
        raise
    for p in prepared:
        if p.writer.local:
            _discard(p.writer.folder, p.writer.folder)  # the commit file (and a losing group)


def _take_commit(state: ZarrGroupWriter) -> tuple[str, str] | None:
    """Take the writer token of a local group (``(temporary group path, key path)``);
    None if an earlier attempt of this very commit had committed it. Raises if the
    write was aborted. Object stores: ``("", "")``."""
    _forget_arrays(state.root, state.path)
    if not state.local:
        return "", ""
    root = local_path(state.root)
    src, dst = os.path.join(root, state.path), os.path.join(root, state.key)
    folder = state.folder
    try:
        os.rename(os.path.join(folder, WRITER_FILE), os.path.join(folder, COMMIT_FILE))
    except FileNotFoundError:
        if not _committing(folder):
            _discard(folder, folder)
            raise WriteAborted(
                f"writing {state.key} was aborted before its commit; nothing of it is stored"
            ) from None
        # an earlier attempt of this very commit took the token and died (its worker
        # was killed, the task rerun): go on where it stopped
        if not os.path.exists(src):
            if os.path.exists(os.path.join(dst, "zarr.json")):
                return None  # it had renamed the group: committed
            raise DastraxError(
                f"writing {state.key}: its group vanished during the commit; make it again"
            ) from None
    return src, dst


def _publish(state: ZarrGroupWriter, src: str, dst: str) -> None:
    """Rename a staged local group to its key (with ``overwrite``, swapped with the
    group there in one step); if another writer committed the key first, ours stays in
    its temporary folder (same lineage, same data) and goes with it."""
    try:
        os.rename(src, dst)
    except OSError:
        if not os.path.exists(os.path.join(dst, "zarr.json")):
            raise
        if state.overwrite:
            exchange(src, dst)  # the old group goes with the temporary folder


async def _write_group_document(state: ZarrGroupWriter, meta: dict) -> None:
    """The group document of ``state``: attribute ``dastrax`` (``meta``) and the
    consolidated metadata of its arrays, in one write."""
    from zarr.core.group import AsyncGroup, ConsolidatedMetadata, GroupMetadata
    from zarr.storage import StorePath

    store = state._store()
    group = await zarr.api.asynchronous.open_group(
        store, path=state.path, mode="r", use_consolidated=False
    )
    members = {name: arr.metadata async for name, arr in group.arrays()}
    doc = AsyncGroup(
        GroupMetadata(
            attributes={"dastrax": meta},
            consolidated_metadata=ConsolidatedMetadata(metadata=members),
        ),
        StorePath(store, state.path),
    )
    await doc._save_metadata()


def check_group_document(folder: str, meta: dict) -> None:
    """Raise ``OSError`` unless the group document in local ``folder`` is complete: it
    reads back, holds the metadata ``meta`` (rows and chunk table) and the consolidated
    metadata of every array."""

    path = os.path.join(folder, "zarr.json")
    try:
        with open(path, "rb") as f:
            text = f.read()
        stored = _fastread.group_attributes(text)["dastrax"]
        ok = (
            stored.get("n_rows") == meta.get("n_rows")
            and len(stored.get("chunks") or ()) == len(meta.get("chunks") or ())
            and b'"consolidated_metadata"' in text
        )
    except (ValueError, KeyError, TypeError) as e:
        raise OSError(f"the metadata document {path} did not come out whole ({e})") from e
    if not ok:
        raise OSError(f"the metadata document {path} does not hold what was written")


#: whether commits make a group durable (``DASTRAX_FSYNC=1``): its files flushed to disk
#: (once for a whole batch: :func:`publish`) before the rename that makes it visible, the
#: directory after it. Off by default: measured side by side at 2.44 GB, the flush — the
#: disk writing the ~1.4 GB of chunk files a persist copies — is 0.7-1.3 s: a median +31 %
#: of a persist on the loaded machine (15 rounds) and more than +100 % on a quiet one
#: (0.75 s), above the 10 % that would make it the default (README, Guarantees)
FSYNC = os.environ.get("DASTRAX_FSYNC", "0") not in ("0", "false", "no", "")

#: how the files of a group are flushed: ``"syncfs"`` (one ``syncfs(2)`` of the
#: filesystem: every dirty page of it, in one journal commit) or ``"fsync"`` (each file
#: and folder, in parallel threads); ``DASTRAX_FSYNC_METHOD``
FSYNC_METHOD = os.environ.get("DASTRAX_FSYNC_METHOD", "syncfs")


def flush_trees(paths: list[str]) -> None:
    """Flush every file and folder below each of ``paths`` (folders of one filesystem)
    to disk: by one ``syncfs`` of their filesystem where the platform has it (see
    :data:`FSYNC_METHOD`), else by :func:`fsync_tree`."""
    if FSYNC_METHOD == "syncfs" and _syncfs(paths[0]):
        return
    for path in paths:
        fsync_tree(path)


def _syncfs(path: str) -> bool:
    """``syncfs(2)`` of the filesystem holding ``path`` (Linux); False where it is not
    available. Raises ``OSError`` if the flush fails."""
    fn = _libc_syncfs()
    if fn is None:
        return False
    import ctypes

    fd = os.open(path, os.O_RDONLY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs of {path} failed: {os.strerror(err)}")
    finally:
        os.close(fd)
    return True


_SYNCFS: list = []


def _libc_syncfs():
    if not _SYNCFS:
        import ctypes

        try:
            fn = ctypes.CDLL(None, use_errno=True).syncfs
            fn.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            fn = None
        _SYNCFS.append(fn)
    return _SYNCFS[0]


def fsync_dir(path: str) -> None:
    """Flush folder ``path`` (its entries: created and renamed files) — or file ``path``
    — to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """Flush every file and folder below ``path`` to disk: the files (in parallel
    threads: the filesystem batches them into few journal commits), then the folders."""
    from concurrent.futures import ThreadPoolExecutor

    files: list[str] = []
    dirs: list[str] = []
    for dirpath, _dirs, names in os.walk(path, topdown=False):
        files.extend(os.path.join(dirpath, n) for n in names)
        dirs.append(dirpath)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fsync_dir, files))
        list(pool.map(fsync_dir, dirs))


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

"""Storage frontends: where stored data and run documents live.

The superrun and loader code talks to storage only through the small protocol of
:class:`StorageFrontend` (find a key, open its metadata, read a chunk's rows of a column,
write and commit a group, read and write run documents); :class:`ZarrDirectory` is its
implementation over a local directory or an fsspec URL.

On-disk layout of a :class:`ZarrDirectory`::

    <root>/<run_id>-<data_type>-<lineage_hash>/   one zarr v3 group per stored key
        zarr.json                                 group attrs["dastrax"]: all metadata,
                                                  incl. the chunk table; consolidated
        <field>/zarr.json, <field>/c/<i>[/0...]    one array per field, rows first
    <root>/runs/<run_id>.json                     run documents
    <root>/.tmp-<key>-<uuid>/                     a group being written (never listed):
        dastrax-writer.json                       its writer (host, pid), the token that
                                                  its commit or its abort takes
        group/                                    the group, renamed to <root>/<key>
    <root>/.tmp-<key>-<uuid>[-<uuid>].trash/      a folder being deleted
    <root>/runs/<run_id>.json.tmp-<pid>-<uuid>-<host>  a run document being written
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from dataclasses import dataclass, replace
from typing import Any, Protocol

import fsspec
import numpy as np
import zarr
import zarr.errors
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec
from zarr.core.sync import sync

from . import __version__, fastread
from .errors import (
    CorruptData,
    DastraxError,
    DataNotAvailable,
    InvalidRequest,
    RunMetadataNotAvailable,
)
from .names import validate_run_id

__all__ = ["Appender", "StorageFrontend", "ZarrDirectory", "make_codecs", "read_block"]

RUNS_DIR = "runs"
TMP_PREFIX = ".tmp-"
WRITER_FILE = "dastrax-writer.json"
#: the writer file, renamed by the commit that takes over the temporary folder
COMMIT_FILE = "dastrax-commit.json"
#: the group inside a temporary folder (beside, not inside it, the writer file)
GROUP_DIR = "group"
#: suffix of temporary folders being deleted (swept whoever left them)
TRASH_SUFFIX = ".trash"
#: largest uncompressed zarr chunk of one column, in bytes
MAX_ZARR_CHUNK_BYTES = 32 * 10**6
#: smallest uncompressed zarr chunk of the widest column, in bytes
MIN_ZARR_CHUNK_BYTES = 10**6
#: temporary folders of writers on other hosts are swept after this many seconds without
#: a write (each write touches the writer file)
STALE_TMP_SECONDS = 6 * 3600
#: temporary folders without a writer file (a writer killed at a few-microsecond step)
#: are swept after this many seconds
ORPHAN_TMP_SECONDS = 600
#: row capacity of arrays whose final size is not known while they are written
CAPACITY = 2**40
#: zarr arrays open for writing in this process, by (root, group path, field)
_WRITE_ARRAYS: dict[tuple[str, str, str], Any] = {}

warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")


# --------------------------------------------------------------------------------------
# codecs and dtypes
# --------------------------------------------------------------------------------------
DEFAULT_COMPRESSOR = {"name": "blosc", "cname": "lz4", "clevel": 5, "shuffle": "shuffle"}


def normalize_compressor(spec: Any) -> dict:
    """A compressor description as a dict: ``"blosc-lz4"``, ``"zstd"`` or a dict."""
    if spec is None:
        return dict(DEFAULT_COMPRESSOR)
    if isinstance(spec, str):
        name, _, cname = spec.partition("-")
        if name == "blosc":
            return {**DEFAULT_COMPRESSOR, "cname": cname or "lz4"}
        if name == "zstd":
            return {"name": "zstd", "level": 3}
        if name == "none":
            return {"name": "none"}
        raise InvalidRequest(
            f"unknown compressor {spec!r}: use 'blosc-lz4', 'blosc-zstd', 'zstd' or 'none'"
        )
    if isinstance(spec, dict) and spec.get("name", "blosc") in ("blosc", "zstd", "none"):
        return {**(DEFAULT_COMPRESSOR if spec.get("name", "blosc") == "blosc" else {}), **spec}
    raise InvalidRequest(f"unknown compressor {spec!r}: use a name or a dict with 'name'")


def make_codecs(spec: dict) -> list:
    """zarr codecs for a compressor description; always ending with a crc32c checksum."""
    spec = normalize_compressor(spec)
    if spec["name"] == "blosc":
        first = [BloscCodec(cname=spec["cname"], clevel=spec["clevel"], shuffle=spec["shuffle"])]
    elif spec["name"] == "zstd":
        first = [ZstdCodec(level=spec.get("level", 3))]
    else:
        first = []
    return [*first, Crc32cCodec()]


def dtype_to_json(dtype: np.dtype) -> list:
    """A structured dtype as JSON: ``[[name, title, base dtype str, shape], ...]``."""
    out = []
    for name in dtype.names:
        sub, _offset, *title = dtype.fields[name]
        out.append([name, title[0] if title else None, sub.base.str, list(sub.shape)])
    return out


def dtype_from_json(desc: list) -> np.dtype:
    """Inverse of :func:`dtype_to_json`."""
    fields = []
    for name, title, base, shape in desc:
        key = (title, name) if title else name
        fields.append((key, np.dtype(base), tuple(shape)) if shape else (key, np.dtype(base)))
    return np.dtype(fields)


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


@functools.lru_cache(maxsize=256)
def _zarr_store(root: str, readonly: bool):
    if _is_local(root):
        return zarr.storage.LocalStore(_local_path(root), read_only=readonly)
    return zarr.storage.FsspecStore.from_url(root, read_only=readonly)


@functools.lru_cache(maxsize=8192)
def _open_array(root: str, path: str):
    return zarr.open_array(
        _zarr_store(root, True), path=path, mode="r", config={"read_missing_chunks": False}
    )


def _chunk_file(root: str, path: str, arr, lo: int, hi: int) -> str:
    """The chunk file of ``path`` in rows ``[lo, hi)`` that fails to decode (or the range)."""
    rows = arr.chunks[0]
    tail = "/0" * (arr.ndim - 1)
    for c in range(lo // rows, max(lo // rows + 1, -(-hi // rows))):
        try:
            arr[c * rows : min((c + 1) * rows, arr.shape[0])]
        except Exception:  # noqa: BLE001 - we are locating the damage
            return f"{root.rstrip('/')}/{path}/c/{c}{tail}"
    return f"{root.rstrip('/')}/{path} rows {lo}:{hi}"


def read_block(root: str, path: str, lo: int, hi: int, index=None, out=None) -> np.ndarray:
    """Rows ``[lo, hi)`` of the zarr array at ``root/path``, then ``[index]`` if given.

    ``out``, if given, is filled and returned: an array of the result's shape, possibly a
    strided view such as a field of a structured array. Local arrays in dastrax's own
    layout are read by :mod:`dastrax.fastread` (chunks decompressed in place, no extra
    copy); others by zarr. Damaged or missing chunk files raise :class:`CorruptData`
    naming the file.
    """
    lay = fastread.layout(root, path)
    if lay is not None:
        if hi > lay.shape[0]:
            raise CorruptData(
                f"stored array {root.rstrip('/')}/{path} holds {lay.shape[0]} rows, but its "
                f"chunk table refers to rows up to {hi}; the store is damaged: delete it and "
                "make the data again"
            )
        if index is None:
            if out is None:
                out = np.empty((hi - lo, *lay.inner), lay.dtype)
            return fastread.read_rows(lay, lo, hi, out)
        block = fastread.read_rows(lay, lo, hi, np.empty((hi - lo, *lay.inner), lay.dtype))
        return _into(block[index], out)
    return _into(_zarr_block(root, path, lo, hi, index), out)


def _into(data: np.ndarray, out) -> np.ndarray:
    if out is None:
        return data
    out[...] = data
    return out


def _zarr_block(root: str, path: str, lo: int, hi: int, index=None) -> np.ndarray:
    try:
        arr = _open_array(root, path)
    except (FileNotFoundError, zarr.errors.NodeNotFoundError, ValueError, KeyError) as e:
        _open_array.cache_clear()
        raise CorruptData(
            f"cannot open stored array {root.rstrip('/')}/{path}: {e}. The store is damaged; "
            "delete it and make the data again"
        ) from e
    try:
        out = arr[lo:hi]
    except zarr.errors.ChunkNotFoundError as e:
        raise CorruptData(
            f"missing chunk file {_chunk_file(root, path, arr, lo, hi)}: the store is "
            "damaged; delete it and make the data again"
        ) from e
    except (ValueError, RuntimeError, OSError, EOFError) as e:
        raise CorruptData(
            f"damaged chunk file {_chunk_file(root, path, arr, lo, hi)}: {e}. "
            "Delete the store and make the data again"
        ) from e
    return out if index is None else out[index]


# --------------------------------------------------------------------------------------
# the frontend protocol
# --------------------------------------------------------------------------------------
class StorageFrontend(Protocol):
    """What the rest of dastrax needs of a storage backend."""

    url: str
    readonly: bool
    provide_run_metadata: bool

    def has(self, key: str) -> bool: ...
    def metadata(self, key: str) -> dict: ...
    def keys(self, prefix: str = "") -> list[str]: ...
    def appender(self, key: str, dtype: np.dtype, compressor: dict, data_kind: str) -> Appender: ...
    def delete(self, key: str) -> None: ...
    def run_metadata(self, run_id: str) -> dict: ...
    def write_run_metadata(self, run_id: str, doc: dict) -> None: ...
    def delete_run_metadata(self, run_id: str) -> None: ...
    def list_runs(self) -> list[str]: ...


class ZarrDirectory:
    """A directory (local path or fsspec URL) of zarr v3 groups and run documents.

    Parameters
    ----------
    path
        Local directory, or an fsspec URL such as ``"s3://bucket/dastrax"``.
    readonly
        Never write here; reads still search it.
    provide_run_metadata
        Whether run documents are read from (and written to) this directory.

    Examples
    --------
    >>> import tempfile, dastrax
    >>> d = dastrax.ZarrDirectory(tempfile.mkdtemp())
    >>> d.write_run_metadata("0", {"start": 0, "end": 10})
    >>> d.run_metadata("0")["end"]
    10
    """

    def __init__(self, path: str, readonly: bool = False, provide_run_metadata: bool = True):
        path = str(path)
        self.local = _is_local(path)
        self.url = os.path.abspath(_local_path(path)) if self.local else path.rstrip("/")
        self.readonly = readonly
        self.provide_run_metadata = provide_run_metadata
        self.fs, self._fs_root = fsspec.core.url_to_fs(self.url)
        self._meta_cache: dict[str, dict] = {}
        self._swept = False  # whether this object swept the whole directory once

    def __repr__(self) -> str:
        return f"ZarrDirectory({self.url!r}, readonly={self.readonly})"

    def __reduce__(self):
        return (type(self), (self.url, self.readonly, self.provide_run_metadata))

    # -- paths ------------------------------------------------------------------------
    def _p(self, *parts: str) -> str:
        return "/".join([self._fs_root.rstrip("/"), *parts])

    def _read_text(self, path: str) -> str:
        if self.local:
            with open(path, encoding="utf-8") as f:
                return f.read()
        return self.fs.cat_file(path).decode()

    def _read_bytes(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as f:
                return f.read()
        return self.fs.cat_file(path)

    def _write_text(self, path: str, text: str) -> None:
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}-{socket.gethostname()}"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        else:
            self.fs.pipe_file(path, text.encode())

    # -- stored data ------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether complete, committed data is stored under ``key``."""
        try:
            self.metadata(key)
        except DataNotAvailable:
            return False
        except CorruptData:
            return False
        return True

    def metadata(self, key: str) -> dict:
        """The metadata document of ``key`` (group attrs["dastrax"]); one file read."""
        if key in self._meta_cache:
            return self._meta_cache[key]
        path = self._p(key, "zarr.json")
        try:
            text = self._read_bytes(path)
        except (FileNotFoundError, NotADirectoryError):
            raise DataNotAvailable(f"{key} is not stored in {self.url}") from None
        try:
            meta = fastread.group_attributes(text)["dastrax"]
        except (json.JSONDecodeError, TypeError) as e:
            raise CorruptData(
                f"metadata document {path} is damaged ({e}); delete {self._p(key)} "
                "and make the data again"
            ) from e
        except KeyError:
            # a group without committed metadata: an interrupted write on an object store
            raise DataNotAvailable(f"{key} is not (completely) stored in {self.url}") from None
        meta = dict(meta, _root=self.url)
        self._meta_cache[key] = meta
        return meta

    def keys(self, prefix: str = "") -> list[str]:
        """Stored (committed) keys starting with ``prefix``; temporary folders are skipped."""
        try:
            names = (
                os.listdir(self._fs_root)
                if self.local
                else [
                    p.rstrip("/").rsplit("/", 1)[-1]
                    for p in self.fs.ls(self._fs_root, detail=False)
                ]
            )
        except FileNotFoundError:
            return []
        out = [
            n
            for n in names
            if n.startswith(prefix) and not n.startswith(".") and n != RUNS_DIR and "-" in n
        ]
        return sorted(k for k in out if self.has(k))

    def delete(self, key: str) -> None:
        """Delete the data stored under ``key`` (first hidden, then removed)."""
        self._check_writable()
        self._meta_cache.pop(key, None)
        _open_array.cache_clear()
        if self.local:
            src = self._p(key)
            if not os.path.exists(src):
                return
            _discard(src, self._p(f"{TMP_PREFIX}{key}-{uuid.uuid4().hex}"))
        elif self.fs.exists(self._p(key)):
            self.fs.rm(self._p(key, "zarr.json"))
            self.fs.rm(self._p(key), recursive=True)

    def appender(
        self, key: str, dtype: np.dtype, compressor: dict | None = None, data_kind: str = "rows"
    ) -> Appender:
        """Start writing ``key``: a new temporary group (locally), swept of dead writers' ones."""
        self._check_writable()
        if self.local:
            self._sweep_once()
            self.sweep(key)
            folder = f"{TMP_PREFIX}{key}-{uuid.uuid4().hex}"
            os.makedirs(self._p(folder))
            with open(self._p(folder, WRITER_FILE), "w") as f:
                json.dump(
                    {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f
                )
            path = f"{folder}/{GROUP_DIR}"
        else:
            path = key
            if self.fs.exists(self._p(key)) and not self.has(key):
                self.fs.rm(self._p(key), recursive=True)
        return Appender(
            root=self.url,
            key=key,
            path=path,
            local=self.local,
            dtype=dtype_to_json(np.dtype(dtype)),
            compressor=normalize_compressor(compressor),
            data_kind=data_kind,
        )

    def sweep(self, key: str | None = None) -> list[str]:
        """Remove temporary folders of ``key`` (or all, and run documents' temporary
        files) whose writers are gone. Returns the removed paths.

        A folder is swept if its writer ran on this host and its process no longer exists,
        if its writer (on another host) wrote nothing for :data:`STALE_TMP_SECONDS`, if it
        has no writer file and is older than :data:`ORPHAN_TMP_SECONDS`, or if it is being
        deleted (``.trash``).
        """
        self._check_writable()
        if not self.local or not os.path.isdir(self._fs_root):
            return []
        removed = []
        for name in os.listdir(self._fs_root):
            if not name.startswith(TMP_PREFIX):
                continue
            if key is not None and not name.startswith(f"{TMP_PREFIX}{key}-"):
                continue
            path = self._p(name)
            if name.endswith(TRASH_SUFFIX) or _writer_gone(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        if key is None:
            for path in self._run_temporaries():
                if _run_writer_gone(path):
                    with contextlib.suppress(OSError):
                        os.remove(path)
                    removed.append(path)
        return removed

    def _sweep_once(self) -> None:
        """Sweep the whole directory at this object's first write."""
        if not self._swept:
            self._swept = True
            self.sweep()

    def _run_temporaries(self) -> list[str]:
        try:
            names = os.listdir(self._p(RUNS_DIR))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [self._p(RUNS_DIR, n) for n in names if f".json{TMP_PREFIX}" in n]

    def temporary_paths(self) -> list[str]:
        """Temporary folders and files present (writes in progress or left by crashes)."""
        if not self.local or not os.path.isdir(self._fs_root):
            return []
        return sorted(
            [self._p(n) for n in os.listdir(self._fs_root) if n.startswith(TMP_PREFIX)]
            + self._run_temporaries()
        )

    def _check_writable(self):
        if self.readonly:
            raise InvalidRequest(f"storage {self.url} is read-only: nothing is written to it")

    def _committed(self, key: str, meta: dict) -> None:
        self._meta_cache[key] = dict(meta, _root=self.url)

    # -- run documents ----------------------------------------------------------------
    def _run_path(self, run_id: str) -> str:
        return self._p(RUNS_DIR, f"{validate_run_id(run_id)}.json")

    def run_metadata(self, run_id: str) -> dict:
        """The stored run document of ``run_id``."""
        path = self._run_path(run_id)
        try:
            text = self._read_text(path)
        except (FileNotFoundError, NotADirectoryError):
            raise RunMetadataNotAvailable(
                f"no run document for run {run_id!r} in {self.url}"
            ) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise CorruptData(f"run document {path} is damaged ({e}); write it again") from e

    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write (atomically) the run document of ``run_id``."""
        self._check_writable()
        if self.local:
            self._sweep_once()
        self._write_text(self._run_path(run_id), json.dumps(doc, indent=1))

    def delete_run_metadata(self, run_id: str) -> None:
        self._check_writable()
        path = self._run_path(run_id)
        if self.local:
            if os.path.exists(path):
                os.remove(path)
        elif self.fs.exists(path):
            self.fs.rm(path)

    def list_runs(self) -> list[str]:
        """Run ids that have a run document here."""
        try:
            names = (
                os.listdir(self._p(RUNS_DIR))
                if self.local
                else [p.rsplit("/", 1)[-1] for p in self.fs.ls(self._p(RUNS_DIR), detail=False)]
            )
        except FileNotFoundError:
            return []
        return sorted(
            n[: -len(".json")] for n in names if n.endswith(".json") and TMP_PREFIX not in n
        )


def _writer_gone(path: str) -> bool:
    """Whether the writer of temporary folder ``path`` is gone (see ZarrDirectory.sweep)."""
    info, touched = None, 0.0
    for name in (WRITER_FILE, COMMIT_FILE):  # in this order: a commit renames one to the other
        try:
            with open(os.path.join(path, name)) as f:
                touched = os.fstat(f.fileno()).st_mtime  # each write touches it
                info = json.load(f)
            break
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            break
    try:
        age = time.time() - max(os.path.getmtime(path), touched)
    except OSError:
        return False
    if not isinstance(info, dict):
        return age > ORPHAN_TMP_SECONDS
    return _pid_gone(info.get("host"), info.get("pid"), age)


def _pid_gone(host, pid, age: float) -> bool:
    if host == socket.gethostname() and pid is not None:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, OverflowError):
            return False
        return int(pid) == os.getpid() and age > STALE_TMP_SECONDS
    return age > STALE_TMP_SECONDS


def _run_writer_gone(path: str) -> bool:
    """Whether the writer of a run document's temporary file ``path`` is gone."""
    parts = path.rsplit(TMP_PREFIX, 1)[1].split("-", 2)  # pid, uuid, host
    try:
        age = time.time() - os.path.getmtime(path)
    except OSError:
        return False
    if len(parts) != 3 or not parts[0].isdigit():
        return age > STALE_TMP_SECONDS
    return _pid_gone(parts[2], parts[0], age)


def _discard(path: str, trash: str) -> None:
    """Remove folder ``path``: first renamed to ``<trash>-<uuid>.trash`` (a name that
    starts with :data:`TMP_PREFIX`), so that what a killed removal leaves is swept."""
    trash = f"{trash}-{uuid.uuid4().hex}{TRASH_SUFFIX}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Appender:
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
        return os.path.dirname(os.path.join(_local_path(self.root), self.path))

    def group(self):
        """The zarr group being written."""
        return zarr.open_group(_zarr_store(self.root, False), path=self.path, mode="a")

    def array(self, name: str) -> WriteTarget:
        """Array ``name`` of the group, as a target of writes (e.g. ``dask.array.store``).

        Each write is checked afterwards: if the write of the group was aborted meanwhile,
        what it wrote is removed and it raises (see :meth:`check_not_aborted`).
        """
        return WriteTarget(self, name)

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
                _zarr_store(self.root, False),
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
    ) -> Appender:
        """Create one zarr array per field (plus ``extra`` {name: dtype}) in the group.

        Zarr chunks hold ``rows`` rows, by default :func:`zarr_chunk_rows` of
        ``base_rows``; never more than ``total_rows`` when that is known (a zarr chunk is
        stored whole, so a tiny array in a big chunk would cost a big chunk's bytes).
        """
        dt = self.np_dtype
        fields = {name: dt.fields[name][0] for name in dt.names}
        fields.update({name: np.dtype(d) for name, d in (extra or {}).items()})
        if rows is None:
            rows = zarr_chunk_rows(base_rows, max(f.itemsize for f in fields.values()))
        if total_rows:
            rows = min(rows, total_rows)
        group = self.group()
        for name, sub in fields.items():
            group.create_array(
                name,
                shape=(total_rows or CAPACITY, *sub.shape),
                chunks=(rows, *sub.shape),
                dtype=sub.base,
                compressors=make_codecs(self.compressor),
                fill_value=0,
                dimension_names=[self.data_kind]
                + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)],
                config={"write_empty_chunks": True},
                attributes=dict(attributes or {}) if name != "subrun" else {},
            )
        return replace(self, chunk_rows=rows, created=True)

    def append(
        self,
        data: np.ndarray,
        start: int,
        end: int,
        subruns: dict | None = None,
        run_id: str | None = None,
    ) -> Appender:
        """Add one logical chunk ``[start, end)`` holding ``data``; return the new state."""
        state = self
        tail = (
            data
            if state.tail is None or not len(state.tail)
            else np.concatenate([state.tail, data])
        )
        written = state.written
        try:
            if not state.chunk_rows and len(data):
                # sized by the first chunk; created once a whole zarr chunk is there to
                # write (a run smaller than one gets chunks of its own size at the commit)
                widest = max(data.dtype.fields[f][0].itemsize for f in data.dtype.names)
                state = replace(state, chunk_rows=zarr_chunk_rows(len(data), widest))
            full = (len(tail) // state.chunk_rows) * state.chunk_rows if state.chunk_rows else 0
            if full:
                if not state.created:
                    state = state.create_arrays(0, rows=state.chunk_rows)
                for name in data.dtype.names:
                    arr = state._array(name)
                    arr[written : written + full] = tail[name][:full]
                tail = tail[full:].copy()
                written += full
        finally:
            self.check_not_aborted()
        chunk = {
            "chunk_i": len(state.chunks),
            "start": int(start),
            "end": int(end),
            "row_start": int(state.n),
            "n": int(len(data)),
            "first_time": int(data["time"][0]) if len(data) else None,
            "last_endtime": int(_endtime(data).max()) if len(data) else None,
            "nbytes": int(data.nbytes),
            "run_id": run_id,
            "subruns": subruns,
        }
        return replace(
            state, n=state.n + len(data), written=written, tail=tail, chunks=(*state.chunks, chunk)
        )

    def commit(self, meta: dict) -> dict:
        """Write the last rows and the metadata, then make the group visible under its key.

        Returns the committed metadata document. If another writer committed the same key
        first, this copy is discarded and theirs is kept (same lineage, same data).
        """
        try:
            state = self if self.created else self.create_arrays(0, rows=max(1, self.n))
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
        full = {
            **meta,
            "dtype": state.dtype,
            "compressor": state.compressor,
            "dastrax_version": __version__,
            "n_rows": int(state.n),
            "zarr_chunk_rows": int(state.chunk_rows),
            "chunks": list(meta.get("chunks") or state.chunks),
        }
        finish_group(state, full)
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
        raise DastraxError(
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
            frontend = ZarrDirectory(self.root)
            if not frontend.has(self.key) and frontend.fs.exists(frontend._p(self.path)):
                frontend.fs.rm(frontend._p(self.path), recursive=True)


def _forget_arrays(root: str, path: str) -> None:
    for cache_key in [k for k in _WRITE_ARRAYS if k[0] == root and k[1] == path]:
        _WRITE_ARRAYS.pop(cache_key, None)


def _endtime(data: np.ndarray) -> np.ndarray:
    from .plugin import endtime

    return endtime(data)


def finish_group(state: Appender, meta: dict) -> None:
    """Store the metadata and consolidate, then commit: rename the group from its
    temporary folder to the key (locally) — on object stores the metadata write itself is
    the commit.

    Locally the commit first takes the writer file (renamed to :data:`COMMIT_FILE`), so
    that an abort running at the same time leaves the folder alone — or, if the abort took
    it first, the commit gives up. If anything fails after that, the folder is removed.
    """
    _forget_arrays(state.root, state.path)
    root = _local_path(state.root)
    src, dst = os.path.join(root, state.path), os.path.join(root, state.key)
    folder = state.folder
    if state.local:
        try:
            os.rename(os.path.join(folder, WRITER_FILE), os.path.join(folder, COMMIT_FILE))
        except FileNotFoundError:
            _discard(folder, folder)
            raise DastraxError(
                f"writing {state.key} was aborted before its commit; nothing of it is stored"
            ) from None
    try:
        group = state.group()
        group.update_attributes({"dastrax": meta})
        zarr.consolidate_metadata(_zarr_store(state.root, False), path=state.path)
        if state.local:
            try:
                os.rename(src, dst)
            except OSError:
                if not os.path.exists(os.path.join(dst, "zarr.json")):
                    raise
                # another writer committed first: same lineage, same data; ours goes
    except BaseException:
        if state.local:
            _discard(folder, folder)
        raise
    if state.local:
        _discard(folder, folder)  # the writer file (and the group, if it lost)


class WriteTarget:
    """Array ``name`` of a group being written, as a target of ``dask.array.store``.

    Picklable (the array is opened where it is written); every write is followed by
    :meth:`Appender.check_not_aborted`.
    """

    def __init__(self, appender: Appender, name: str):
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


class StorageList:
    """Several frontends: reads search them in order, writes go to the first writable one."""

    def __init__(self, frontends):
        if frontends is None:
            frontends = []
        if not isinstance(frontends, (list, tuple)):
            frontends = [frontends]
        self.frontends = [
            f if not isinstance(f, (str, os.PathLike)) else ZarrDirectory(f) for f in frontends
        ]

    def __iter__(self):
        return iter(self.frontends)

    def __len__(self) -> int:
        return len(self.frontends)

    def find(self, key: str) -> tuple[ZarrDirectory, dict] | None:
        """The first frontend storing ``key`` (complete and committed), with its metadata."""
        for f in self.frontends:
            try:
                return f, f.metadata(key)
            except DataNotAvailable:
                continue
        return None

    def writable(self) -> ZarrDirectory:
        for f in self.frontends:
            if not f.readonly:
                return f
        raise InvalidRequest(
            "no writable storage: every frontend is read-only; add a writable ZarrDirectory "
            "to the context's storage"
        )

    def run_metadata(self, run_id: str) -> dict:
        for f in self.frontends:
            if not f.provide_run_metadata:
                continue
            try:
                return f.run_metadata(run_id)
            except RunMetadataNotAvailable:
                continue
        where = ", ".join(f.url for f in self.frontends) or "no storage configured"
        raise RunMetadataNotAvailable(
            f"no run document for run {run_id!r} (searched {where}); "
            "write one with st.write_run_metadata(run_id, {'start': ..., 'end': ...})"
        )

    def run_metadata_writer(self, run_id: str | None = None) -> ZarrDirectory:
        """The frontend run documents are written to; with ``run_id``, refuse if a
        read-only frontend searched before it holds that run's document (the new one
        would be hidden behind it, and reads would go on returning the old one)."""
        writer = next(
            (f for f in self.frontends if not f.readonly and f.provide_run_metadata), None
        )
        if writer is None:
            raise InvalidRequest("no writable storage provides run metadata")
        for f in self.frontends:
            if f is writer or run_id is None:
                break
            if not f.provide_run_metadata:
                continue
            try:
                f.run_metadata(run_id)
            except RunMetadataNotAvailable:
                continue
            raise InvalidRequest(
                f"the run document of {run_id!r} is in read-only storage {f.url}, which is "
                f"searched before {writer.url}: a new document would be hidden behind it. "
                "Change it in that storage, or use another run id"
            )
        return writer

    def list_runs(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.frontends:
            if f.provide_run_metadata:
                seen.update(dict.fromkeys(f.list_runs()))
        return list(seen)

"""ZarrDirectory: zarr v3 groups and JSON run documents in a local directory or under an
fsspec URL (object stores, ``memory://``)."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Callable

import fsspec
import numpy as np

from dastrax.core.names import validate_run_id
from dastrax.errors import (
    ConfigError,
    CorruptData,
    DataNotAvailable,
    InvalidRequest,
    RunMetadataNotAvailable,
    advice,
)
from dastrax.storage.abc import GroupWriter, StorageFrontend, StoredGroup, start_all
from dastrax.storage.codecs import dtype_to_json, normalize_compressor
from dastrax.storage.zarr import _fastread
from dastrax.storage.zarr.group import ZarrGroup, _open_array, remote_error
from dastrax.storage.zarr.layout import (
    GROUP_DIR,
    MANIFESTS_DIR,
    RUNS_DIR,
    TMP_PREFIX,
    TRASH_SUFFIX,
    WRITER_FILE,
    _discard,
    _run_writer_gone,
    _writer_gone,
    freeze_options,
    is_local,
    local_path,
    thaw_options,
    writer_suffix,
)
from dastrax.storage.zarr.writer import FSYNC, ZarrGroupWriter, fsync_dir, publish

__all__ = ["DataDirectory", "ZarrDirectory", "remote_error"]

#: the folder of run attachments, below the run documents' folder
ATTACHMENTS_DIR = "attachments"


class ZarrDirectory(StorageFrontend):
    """A directory (local path or fsspec URL) of zarr v3 groups and run documents.

    Parameters
    ----------
    path_or_url
        Local directory, or an fsspec URL such as ``"s3://bucket/dastrax"`` or
        ``"memory://scratch"``.
    readonly
        Never write here; reads still search it.
    provide_run_metadata
        Whether run documents are read from (and written to) this directory.
    storage_options
        fsspec options for the URL (credentials, endpoint...). They travel with every
        handle to dask workers, so workers need no environment variables.

    Raises
    ------
    ConfigError
        The URL's protocol is unknown, or its fsspec driver is not installed.

    Examples
    --------
    >>> import tempfile, dastrax
    >>> d = dastrax.ZarrDirectory(tempfile.mkdtemp())
    >>> d.write_run_metadata("0", {"name": "0", "start": 0, "end": 10})
    >>> d.run_metadata("0")["end"]
    10
    """

    def __init__(
        self,
        path_or_url,
        readonly: bool = False,
        provide_run_metadata: bool = True,
        storage_options: dict | None = None,
    ):
        if not isinstance(path_or_url, (str, os.PathLike)):
            raise ConfigError(
                f"a storage location is a path or a URL (a string), not {path_or_url!r:.100}"
            )
        if storage_options is not None and not isinstance(storage_options, dict):
            raise ConfigError(
                f"storage_options of {path_or_url!r} must be a dict of fsspec options, not "
                f"{type(storage_options).__name__}"
            )
        path = str(path_or_url)
        self.local = is_local(path)
        self.url = os.path.abspath(local_path(path)) if self.local else path.rstrip("/")
        self.readonly = bool(readonly)
        self.provide_run_metadata = bool(provide_run_metadata)
        self.storage_options = dict(storage_options or {})
        self._options = freeze_options(self.storage_options)
        try:
            self.fs, self._fs_root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except (ValueError, ImportError, TypeError) as e:
            raise ConfigError(f"cannot use storage {self.url!r}: {e}") from None
        self._meta_cache: dict[str, tuple] = {}
        self._doc_cache: dict[str, tuple] = {}
        self._swept = False  # whether this object swept the whole directory once
        self._bucket_ok = False  # whether the bucket (object stores) was found once
        self._bucket_missing = False  # whether it was found missing at the last look

    def __reduce__(self):
        return (
            type(self),
            (self.url, self.readonly, self.provide_run_metadata, self.storage_options or None),
        )

    # -- remote access ----------------------------------------------------------------
    @contextlib.contextmanager
    def _remote(self, what: str):
        """Errors of an object store, as dastrax errors naming the URL: the one place
        where they are translated. A missing file stays ``FileNotFoundError`` (the
        callers' "not stored") only while the bucket exists (:meth:`_require_bucket`)."""
        try:
            yield
        except (DataNotAvailable, RunMetadataNotAvailable, CorruptData, InvalidRequest):
            raise
        except FileNotFoundError as e:
            self._require_bucket(what, e)
            raise
        except Exception as e:  # noqa: BLE001 - botocore & co: named by class
            raise remote_error(self.url, what, e) from e

    #: fsspec protocols whose first path component is a bucket (or container)
    _BUCKETS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})

    def _require_bucket(self, what: str, cause: BaseException | None = None) -> None:
        """Raise :class:`DataNotAvailable` naming the URL if the bucket of this (object
        store) directory does not exist; remembered once it was found."""
        if self.local or self._bucket_ok:
            return
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if not self._BUCKETS.intersection(protocols):
            self._bucket_ok = True
            return
        bucket = self._fs_root.strip("/").split("/", 1)[0]
        said = cause is not None and "bucket" in str(cause).lower()
        try:
            self.fs.invalidate_cache(bucket)
            ok = not said and self.fs.exists(bucket)
        except FileNotFoundError:
            ok = False
        except Exception as e:  # noqa: BLE001 - botocore & co: named by class
            raise remote_error(self.url, what, e) from e
        self._bucket_missing = not ok
        if not ok:
            raise DataNotAvailable(
                f"the bucket {bucket!r} of storage {self.url} does not exist ({what}); "
                "create it, or check the URL"
            ) from None
        self._bucket_ok = True

    def _p(self, *parts: str) -> str:
        return "/".join([self._fs_root.rstrip("/"), *parts])

    def _read_bytes(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as f:
                return f.read()
        with self._remote(f"reading {path}"):
            # never from a listing remembered by the filesystem object (s3fs answers
            # "no such file" from its directory cache): a miss is asked again like a hit
            self.fs.invalidate_cache(path)
            return self.fs.cat_file(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        if self.local:
            _publish_local(path, data, os.replace)
        else:
            with self._remote(f"writing {path}"):
                self.fs.pipe_file(path, data)

    def _listdir(self, path: str) -> list[str]:
        """Names in folder ``path`` (never a stale listing); [] if it does not exist."""
        if self.local:
            try:
                return os.listdir(path)
            except (FileNotFoundError, NotADirectoryError):
                return []
        with self._remote(f"listing {path}"):
            try:
                self.fs.invalidate_cache(path)
                entries = self.fs.ls(path, detail=False, refresh=True)
            except FileNotFoundError as e:
                self._require_bucket(f"listing {path}", e)
                return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in entries]

    def check_exists(self) -> None:
        """Raise :class:`DataNotAvailable` if the directory (or bucket) does not exist."""
        if self.local:
            ok = os.path.isdir(self._fs_root)
        else:
            with self._remote("opening the storage"):
                self.fs.invalidate_cache()
                try:
                    ok = self.fs.exists(self._fs_root) or bool(self._listdir(self._fs_root))
                except FileNotFoundError:
                    ok = False
                if not ok and "/" not in self._fs_root.strip("/"):
                    ok = False
            self._bucket_missing = not ok  # (object stores: a local folder may be made)
        if not ok:
            raise DataNotAvailable(
                f"storage {self.url} does not exist; {advice('storage_missing')}"
            )

    def check_readable(self) -> None:
        """As :meth:`check_exists` for a local directory; on an object store only a
        missing bucket is refused (an empty prefix is an empty storage there), and
        ``memory://`` always exists.

        Raises
        ------
        DataNotAvailable
            The directory, or the bucket, does not exist.
        """
        if self.local:
            self.check_exists()
            return
        if self.url.startswith("memory://"):
            return
        bucket = self._fs_root.strip("/").split("/", 1)[0]
        with self._remote("opening the storage"):
            try:
                ok = self.fs.exists(bucket)
            except FileNotFoundError:
                ok = False
            except PermissionError:  # not allowed to look: the reads will tell
                ok = True
        if not ok:
            raise DataNotAvailable(
                f"storage {self.url} does not exist (no bucket {bucket!r}); check the URL, "
                "or create the bucket first"
            )

    # -- stored data ------------------------------------------------------------------
    def find(self, key: str) -> ZarrGroup | None:
        """The complete, committed group stored under ``key``, or None.

        Reads one document (the group's ``zarr.json``), of which only the attributes
        are decoded; locally it is remembered until the file changes.
        """
        try:
            return ZarrGroup(self.url, key, self._metadata(key), self._options)
        except DataNotAvailable:
            if self._bucket_missing:
                raise
            return None

    def metadata(self, key: str) -> dict:
        """The metadata document of ``key``; :class:`DataNotAvailable` if not stored."""
        return self._metadata(key)

    def handle(self, key: str, n_rows: int, hint: dict | None = None) -> StoredGroup:
        """A handle of ``key`` whose metadata is read when first needed (see
        :meth:`StorageFrontend.handle`)."""
        if not self.local:
            return super().handle(key, n_rows)
        load = functools.partial(_indexed_metadata, self.url, self._options, key, n_rows)
        group = ZarrGroup(self.url, key, None, self._options, load)
        group.read_hint = hint
        return group

    def signatures(self, keys: list[str], *, as_read: bool = False) -> list | None:
        """Locally: ``[inode, mtime_ns, size]`` of each key's ``zarr.json`` (None where
        not stored); dastrax replaces documents by rename, so a new commit is a new
        inode (see :meth:`StorageFrontend.signatures`). None on object stores."""
        if not self.local:
            return None
        out: list = []
        for key in keys:
            if as_read:
                hit = self._meta_cache.get(key)
                out.append(list(hit[0]) if hit is not None else None)
                continue
            try:
                st = os.stat(self._p(key, "zarr.json"))
            except OSError:
                out.append(None)
            else:
                out.append([st.st_ino, st.st_mtime_ns, st.st_size])
        return out

    def run_signature(self, run_id: str) -> list | None:
        if not self.local or not self.provide_run_metadata:
            return None
        try:
            st = os.stat(self._run_path(run_id))
        except OSError:
            return None
        return [st.st_ino, st.st_mtime_ns, st.st_size]

    def manifest_folder(self) -> str | None:
        """``runs/manifests`` of a local, writable directory (see
        :meth:`StorageFrontend.manifest_folder`)."""
        if not self.local or self.readonly:
            return None
        return self._p(RUNS_DIR, MANIFESTS_DIR)

    def change_stamp(self) -> tuple[tuple, float] | None:
        """Locally, the modification times of the directory and of its run documents'
        folder: every commit, overwrite and delete of a group renames an entry of the
        one, every run document written renames one into the other (see
        :meth:`StorageFrontend.change_stamp`). None on object stores."""
        if not self.local:
            return None
        token: list[tuple[int, int, int] | None] = []
        newest = 0.0
        for path in (self._fs_root, self._p(RUNS_DIR)):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                token.append(None)
                continue
            except OSError:
                return None
            token.append((st.st_dev, st.st_ino, st.st_mtime_ns))
            newest = max(newest, st.st_mtime)
        return tuple(token), newest

    def _metadata(self, key: str) -> dict:
        path = self._p(key, "zarr.json")
        sig = None
        if self.local:
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                self._meta_cache.pop(key, None)
                raise DataNotAvailable(f"{key} is not stored in {self.url}") from None
            except OSError as e:
                raise _os_error(self.url, key, e) from e
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
            hit = self._meta_cache.get(key)
            if hit is not None and hit[0] == sig:
                return hit[1]
        try:
            text = self._read_bytes(path)
        except (FileNotFoundError, NotADirectoryError):
            raise DataNotAvailable(f"{key} is not stored in {self.url}") from None
        except OSError as e:
            raise _os_error(self.url, key, e) from e
        try:
            meta = _fastread.group_attributes(text)["dastrax"]
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise CorruptData(
                f"metadata document {path} is damaged ({e}); delete {self._p(key)} "
                "and make the data again"
            ) from e
        except KeyError:
            # a group without committed metadata: an interrupted write on an object store
            raise DataNotAvailable(f"{key} is not (completely) stored in {self.url}") from None
        if sig is not None:
            if len(self._meta_cache) > 100_000:
                self._meta_cache.clear()
            self._meta_cache[key] = (sig, meta)
        return meta

    def keys(self, prefix: str = "") -> list[str]:
        """Stored (committed) keys starting with ``prefix``; temporary folders skipped."""
        names = self._listdir(self._fs_root)
        out = [
            n
            for n in names
            if n.startswith(prefix) and not n.startswith(".") and n != RUNS_DIR and "-" in n
        ]
        return sorted(k for k in out if self.has(k))

    def delete(self, key: str, background: bool = False) -> None:
        """Delete the data stored under ``key`` (first hidden, then removed; locally with
        ``background``, removed by a thread)."""
        self.check_writable()
        self._meta_cache.pop(key, None)
        _open_array.cache_clear()
        if self.local:
            src = self._p(key)
            if not os.path.exists(src):
                return
            _discard(src, self._p(f"{TMP_PREFIX}{key}-{uuid.uuid4().hex}"), background)
            return
        with self._remote(f"deleting {key}"):
            self.fs.invalidate_cache(self._p(key))
            if self.fs.exists(self._p(key)):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(self._p(key, "zarr.json"))  # uncommits it first
                self.fs.rm(self._p(key), recursive=True)

    def discard(self, key: str) -> None:
        """Delete ``key``; locally its folder is hidden (renamed) now and removed by a
        thread that the interpreter waits for at exit (what a killed process leaves is
        swept like any removal's)."""
        self.delete(key, background=True)

    def writer(
        self,
        key: str,
        dtype: np.dtype,
        compressor: dict | None = None,
        data_kind: str = "rows",
        overwrite: bool = False,
    ) -> ZarrGroupWriter:
        """Start writing ``key``: a new temporary group (locally), swept of dead writers'
        ones. With ``overwrite``, the commit replaces a stored ``key`` atomically (locally:
        the new group is swapped in by one rename; on object stores the old group is
        removed when the new one starts)."""
        self.check_writable()
        if self.local:
            self._sweep_once()
            self.sweep(key)
        return self._writer(key, dtype, compressor, data_kind, overwrite)

    def writers(self, specs) -> list[GroupWriter]:
        """Start writing several keys (see :meth:`StorageFrontend.writers`): locally the
        directory is listed once to sweep dead writers' folders of all of them, not once a
        key (a ``make`` of N runs would otherwise list N growing directories)."""
        self.check_writable()
        specs = list(specs)
        if self.local and specs:
            if self._swept:
                self._sweep({str(spec["key"]) for spec in specs})
            else:
                self._sweep_once()  # (all of them)
        return start_all(specs, self._writer)

    def _writer(
        self,
        key: str,
        dtype: np.dtype,
        compressor: dict | None = None,
        data_kind: str = "rows",
        overwrite: bool = False,
    ) -> ZarrGroupWriter:
        """A writer of ``key``, its temporary folder made (locally), nothing swept."""
        if self.local:
            folder = f"{TMP_PREFIX}{key}-{writer_suffix()}"
            os.makedirs(self._p(folder))
            with open(self._p(folder, WRITER_FILE), "w") as f:
                json.dump(
                    {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f
                )
            path = f"{folder}/{GROUP_DIR}"
        else:
            path = key
            with self._remote(f"writing {key}"):
                self._require_bucket(f"writing {key}")
                self.fs.invalidate_cache(self._p(key))
                if self.fs.exists(self._p(key)) and (overwrite or not self.has(key)):
                    self.delete(key)
        return ZarrGroupWriter(
            root=self.url,
            key=key,
            path=path,
            local=self.local,
            dtype=dtype_to_json(np.dtype(dtype)),
            compressor=normalize_compressor(compressor),
            data_kind=data_kind,
            options=self._options,
            overwrite=overwrite,
        )

    #: the name of the first loop (kept for callers of the old API)
    appender = writer

    def commit_all(self, prepared) -> list[dict]:
        """Commit the groups of one make or persist (``[writer.prepare(meta), ...]``: each
        written and checked, see :meth:`ZarrGroupWriter.prepare`) as one batch: locally
        none becomes visible unless all got that far, their files are flushed to disk at
        once (:data:`~dastrax.storage.zarr.writer.FSYNC`), then renamed into place
        (:func:`~dastrax.storage.zarr.writer.publish`). Each group's committed metadata
        document."""
        prepared = list(prepared)
        publish(prepared)
        return [p.meta for p in prepared]

    def sweep(self, key: str | None = None) -> list[str]:
        """Remove temporary folders of ``key`` (or all, and run documents' temporary
        files) whose writers are gone. Returns the removed paths.

        A folder is swept if its writer ran on this host and its process no longer exists,
        if its writer (on another host) wrote nothing for
        :data:`~dastrax.storage.zarr.layout.STALE_TMP_SECONDS`, if it has no writer file and is
        older than :data:`~dastrax.storage.zarr.layout.ORPHAN_TMP_SECONDS`, or if it is being
        deleted (``.trash``).
        """
        self.check_writable()
        return self._sweep(None if key is None else {key})

    def _sweep(self, keys: set[str] | None) -> list[str]:
        """:meth:`sweep` of the temporary folders of ``keys`` (None: all), from one
        listing of the directory."""
        if not self.local or not os.path.isdir(self._fs_root):
            return []
        removed = []
        for name in self._listdir(self._fs_root):
            if not name.startswith(TMP_PREFIX):
                continue
            if keys is not None and not _names_a_key(name, keys):
                continue
            path = self._p(name)
            if name.endswith(TRASH_SUFFIX) or _writer_gone(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        if keys is None:
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
        names = self._listdir(self._p(RUNS_DIR))
        return [self._p(RUNS_DIR, n) for n in names if f".json{TMP_PREFIX}" in n]

    def temporary_paths(self) -> list[str]:
        """Temporary folders and files present (writes in progress or left by crashes)."""
        if not self.local or not os.path.isdir(self._fs_root):
            return []
        return sorted(
            [self._p(n) for n in os.listdir(self._fs_root) if n.startswith(TMP_PREFIX)]
            + self._run_temporaries()
        )

    # -- run documents ----------------------------------------------------------------
    def _run_path(self, run_id: str) -> str:
        return self._p(RUNS_DIR, f"{validate_run_id(run_id)}.json")

    def run_document_path(self, run_id: str) -> str:
        """Where the run document of ``run_id`` is (for messages)."""
        path = self._run_path(run_id)
        return path if self.local else f"{self.fs.unstrip_protocol(path)}"

    def run_metadata(self, run_id: str) -> dict:
        """The stored run document of ``run_id`` (``name`` from the file name if absent).

        Locally a small one is remembered until its file changes (a superrun of N
        subruns reads N documents at every define, extend and persist); callers get
        their own copy."""
        path = self._run_path(run_id)
        sig = None
        if self.local:
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                self._doc_cache.pop(run_id, None)
                raise RunMetadataNotAvailable(
                    f"no run document for run {run_id!r} in {self.url}"
                ) from None
            except OSError:
                st = None
            if st is not None:
                sig = (st.st_ino, st.st_mtime_ns, st.st_size)
                hit = self._doc_cache.get(run_id)
                if hit is not None and hit[0] == sig:
                    return copy.deepcopy(hit[1]) if hit[2] else dict(hit[1])
        try:
            text = self._read_bytes(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise RunMetadataNotAvailable(
                f"no run document for run {run_id!r} in {self.url}"
            ) from None
        except OSError as e:
            raise CorruptData(f"cannot read run document {path}: {e}") from e
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorruptData(f"run document {path} is damaged ({e}); write it again") from e
        if isinstance(doc, dict):
            doc.setdefault("name", run_id)
            # (big ones parse faster than they copy; a file written in the last seconds is
            # not remembered: on filesystems with coarse times a rewrite within the same
            # tick, its inode reused, would look unchanged)
            if sig is not None and len(text) <= 4096 and sig[1] < time.time_ns() - 2 * 10**9:
                if len(self._doc_cache) > 100_000:
                    self._doc_cache.clear()
                nested = any(isinstance(v, (dict, list)) for v in doc.values())
                self._doc_cache[run_id] = (sig, doc, nested)
                return copy.deepcopy(doc) if nested else dict(doc)
        return doc

    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write (atomically) the run document of ``run_id``."""
        self.check_writable()
        if self.local:
            self._sweep_once()
        self._write_bytes(self._run_path(run_id), _dumps(doc, run_id))

    def create_run_metadata(self, run_id: str, doc: dict) -> bool:
        """Write the run document of ``run_id`` only if there is none (exclusively:
        locally a hard link that fails if the file exists; on object stores a
        create-if-absent write where the store supports it). Whether it was written."""
        self.check_writable()
        path = self._run_path(run_id)
        data = _dumps(doc, run_id)
        if not self.local:
            with self._remote(f"writing {path}"):
                try:
                    with self.fs.open(path, "xb") as f:
                        f.write(data)
                    return True
                except FileExistsError:
                    return False
                except (ValueError, NotImplementedError, TypeError):
                    return super().create_run_metadata(run_id, doc)
        self._sweep_once()
        try:
            _publish_local(path, data, os.link)  # fails if a document is there
        except FileExistsError:
            return False
        return True

    def _attachment_path(self, run_id: str, name: str) -> str:
        from dastrax.core.names import validate_run_id as _check

        _check(name.replace(".", "_") if name else name)
        return self._p(RUNS_DIR, ATTACHMENTS_DIR, validate_run_id(run_id), f"{name}.npy")

    def write_run_attachment(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Store ``array`` beside the run document of ``run_id`` (``.npy``)."""
        self.check_writable()
        buf = io.BytesIO()
        np.save(buf, np.asarray(array), allow_pickle=False)
        self._write_bytes(self._attachment_path(run_id, name), buf.getvalue())

    def run_attachment(self, run_id: str, name: str) -> np.ndarray:
        """The array stored by :meth:`write_run_attachment`."""
        path = self._attachment_path(run_id, name)
        try:
            data = self._read_bytes(path)
        except (FileNotFoundError, NotADirectoryError):
            raise RunMetadataNotAvailable(
                f"run {run_id!r} has no attachment {name!r} in {self.url} (expected {path})"
            ) from None
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise CorruptData(f"run attachment {path} is damaged ({e}); define it again") from e

    def delete_run_metadata(self, run_id: str) -> None:
        """Delete the run document of ``run_id`` and its attachments."""
        self.check_writable()
        path = self._run_path(run_id)
        folder = self._p(RUNS_DIR, ATTACHMENTS_DIR, run_id)
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            shutil.rmtree(folder, ignore_errors=True)
            return
        with self._remote(f"deleting {path}"):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(path)
            with contextlib.suppress(FileNotFoundError):
                if self.fs.exists(folder):
                    self.fs.rm(folder, recursive=True)

    def list_runs(self) -> list[str]:
        """Run ids that have a run document here."""
        names = self._listdir(self._p(RUNS_DIR))
        return sorted(
            n[: -len(".json")] for n in names if n.endswith(".json") and TMP_PREFIX not in n
        )


class DataDirectory(ZarrDirectory):
    """strax's name for a storage directory: a :class:`ZarrDirectory` that also accepts
    strax's keyword arguments (``deep_scan``, ``take_only``, ``exclude``...); those
    without a meaning here warn once and do nothing.

    Examples
    --------
    >>> import tempfile, dastrax
    >>> d = dastrax.DataDirectory(tempfile.mkdtemp(), provide_run_metadata=True)
    """

    _warned: set[str] = set()

    def __init__(
        self,
        path=".",
        readonly: bool = False,
        provide_run_metadata: bool = True,
        storage_options: dict | None = None,
        **strax_kwargs,
    ):
        ignored = sorted(k for k in strax_kwargs if k not in DataDirectory._warned)
        if ignored:
            DataDirectory._warned.update(ignored)
            warnings.warn(
                f"DataDirectory: strax option(s) {ignored} have no meaning in dastrax and are "
                "ignored",
                UserWarning,
                stacklevel=2,
            )
        super().__init__(path, readonly, provide_run_metadata, storage_options)


def _dumps(doc: dict, run_id: str) -> bytes:
    try:
        return json.dumps(doc, indent=1, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise InvalidRequest(
            f"run document of {run_id!r} cannot be stored as JSON: {e}; give numbers, "
            "strings, lists and dicts"
        ) from None


def _names_a_key(name: str, keys: set[str]) -> bool:
    """Whether temporary folder ``name`` belongs to one of ``keys``: starts with
    ``.tmp-<key>-`` (tried at each ``-`` of the name, a few, not once a key)."""
    start = len(TMP_PREFIX)
    at = name.find("-", start)
    while at != -1:
        if name[start:at] in keys:
            return True
        at = name.find("-", at + 1)
    return False


def _os_error(url: str, key: str, e: OSError):
    if getattr(e, "errno", None) == 36:  # ENAMETOOLONG
        return InvalidRequest(f"key {key!r} is too long for the filesystem of {url}")
    return CorruptData(f"cannot read {key} in {url}: {e}")


@functools.lru_cache(maxsize=16)
def _reader(url: str, options: tuple) -> ZarrDirectory:
    return ZarrDirectory(url, readonly=True, storage_options=thaw_options(options))


def _indexed_metadata(url: str, options: tuple, key: str, n_rows: int) -> dict:
    """The metadata document of ``key`` for a handle an open index made: it must still
    hold the ``n_rows`` rows the index recorded."""
    meta = _reader(url, options)._metadata(key)
    if meta.get("n_rows") != n_rows:
        raise DataNotAvailable(
            f"{key} in {url} was replaced since the superrun was opened (it holds "
            f"{meta.get('n_rows')} rows, not {n_rows}); open it again"
        )
    return meta


def _publish_local(path: str, data: bytes, place: Callable[[str, str], None]) -> None:
    """Write ``data`` to a temporary file beside ``path`` (fsynced with ``DASTRAX_FSYNC``),
    then ``place(tmp, path)``: ``os.replace`` (atomic overwrite) or ``os.link`` (exclusive
    create: ``FileExistsError`` if ``path`` exists). The temporary file never stays."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}-{socket.gethostname()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if FSYNC:
                f.flush()
                os.fsync(f.fileno())
        place(tmp, path)
        if FSYNC:
            fsync_dir(os.path.dirname(path))
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)

"""Storage frontends: the protocol, ZarrDirectory, and several frontends in order."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
from typing import Protocol

import fsspec
import numpy as np

from .. import fastread
from ..errors import (
    CorruptData,
    DataNotAvailable,
    InvalidRequest,
    RunMetadataNotAvailable,
)
from ..names import validate_run_id
from .codecs import dtype_to_json, normalize_compressor
from .layout import (
    GROUP_DIR,
    RUNS_DIR,
    TMP_PREFIX,
    TRASH_SUFFIX,
    WRITER_FILE,
    _discard,
    _is_local,
    _local_path,
    _run_writer_gone,
    _writer_gone,
)
from .reading import _open_array
from .writing import Appender


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

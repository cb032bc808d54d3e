"""Where things live in a storage directory, and whether their writers are alive."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid

import zarr
import zarr.errors

RUNS_DIR = "runs"
#: manifests of superrun loads, inside RUNS_DIR (see dastrax.load.openindex)
MANIFESTS_DIR = "manifests"


TMP_PREFIX = ".tmp-"


WRITER_FILE = "dastrax-writer.json"


#: the writer file, renamed by the commit that takes over the temporary folder (the group
#: is then written and checked, not yet visible: an abort may still take it back)
COMMIT_FILE = "dastrax-commit.json"


#: the commit file, renamed when the group's batch is being made visible (an abort then
#: leaves it to the commit)
PUBLISH_FILE = "dastrax-publish.json"


#: the group inside a temporary folder (beside, not inside it, the writer file)
GROUP_DIR = "group"


#: suffix of temporary folders being deleted (swept whoever left them)
TRASH_SUFFIX = ".trash"


#: temporary folders of writers on other hosts are swept after this many seconds without
#: a write (each write touches the writer file)
STALE_TMP_SECONDS = 6 * 3600


#: temporary folders without a writer file (a writer killed at a few-microsecond step)
#: are swept after this many seconds
ORPHAN_TMP_SECONDS = 600


def is_local(url: str) -> bool:
    """Whether ``url`` is a local path (or a ``file://`` URL)."""
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> str:
    """The path of a local ``url``."""
    return url[len("file://") :] if url.startswith("file://") else url


def freeze_options(options: dict | None) -> tuple:
    """fsspec ``storage_options`` as a hashable, picklable tuple (nested dicts too)."""
    if not options:
        return ()
    return tuple(
        sorted((k, freeze_options(v) if isinstance(v, dict) else v) for k, v in options.items())
    )


def thaw_options(options: tuple) -> dict:
    """Inverse of :func:`freeze_options`."""
    return {k: thaw_options(v) if _is_frozen(v) else v for k, v in options}


def _is_frozen(v) -> bool:
    return isinstance(v, tuple) and all(isinstance(i, tuple) and len(i) == 2 for i in v) and bool(v)


@functools.lru_cache(maxsize=256)
def zarr_store(root: str, readonly: bool, options: tuple = ()):
    """The zarr store of a storage directory (cached per process)."""
    if is_local(root):
        return zarr.storage.LocalStore(local_path(root), read_only=readonly)
    return zarr.storage.FsspecStore.from_url(
        root, read_only=readonly, storage_options=thaw_options(options) or None
    )


def writer_suffix() -> str:
    """The end of a new temporary folder's name: a fresh uuid, then this process's pid and
    host (``<uuid>.<pid>@<host>``), so that a writer killed before its writer file is
    complete (a window of microseconds after the folder is created) is still known."""
    return f"{uuid.uuid4().hex}.{os.getpid()}@{socket.gethostname()}"


_NAMED_WRITER = re.compile(r"-[0-9a-f]{32}\.(\d+)@([^/]+)$")


def _writer_gone(path: str) -> bool:
    """Whether the writer of temporary folder ``path`` is gone (see ZarrDirectory.sweep)."""
    info, touched = None, 0.0
    for name in (WRITER_FILE, COMMIT_FILE, PUBLISH_FILE):  # in the order a commit renames it
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
        named = _NAMED_WRITER.search(os.path.basename(path))
        if named is not None:  # killed before its writer file was complete
            return _pid_gone(named.group(2), named.group(1), age)
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


def _discard(path: str, trash: str, background: bool = False) -> None:
    """Remove folder ``path``: first renamed to ``<trash>-<uuid>.trash`` (a name that
    starts with :data:`TMP_PREFIX`), so that what a killed removal leaves is swept. With
    ``background``, the renamed folder is removed by a thread that the interpreter waits
    for at exit."""
    trash = f"{trash}-{uuid.uuid4().hex}{TRASH_SUFFIX}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    except OSError:
        trash, background = path, False
    if background:
        threading.Thread(
            target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=False
        ).start()
        return
    shutil.rmtree(trash, ignore_errors=True)

"""A storage frontend over an icechunk repository: transactions and versions.

Layout inside the repository (on one branch, ``main`` by default)::

    /<run_id>-<data_type>-<lineage_hash>/   one zarr v3 group per stored key (as in a
        attrs["dastrax"]                    ZarrDirectory): the metadata document with
        <field>                             its chunk table; one array per field, rows first
    /runs/<run_id>/                         a group per run document:
        attrs["run"]                        the document
        <name>                              its attachments, one array each

Every change is one icechunk commit, whose message names what it wrote
(``"dastrax: commit 0-peaks-abc123 (run 0, peaks)"``, ``"dastrax: define _sr"``) and whose
commit metadata (``{"dastrax": {"op": ..., "run_id": ..., "key": ...}}``) lets
:meth:`IcechunkRepository.superrun_versions` find every version of a run document. A group
is visible only once its commit is: readers never see a partial group, and nothing is
written to temporary folders.

Writes from dask tasks: the writer starts from ``repo.writable_session(branch).fork()``; its
state carries that :class:`icechunk.ForkSession` (pickled), so ``append`` runs in any
process of any scheduler and returns the new state with the fork's changes. ``commit``
merges the fork into a fresh writable session on the branch tip and commits it, rebasing
over commits of others that do not touch the key. Writes by position
(:meth:`IcechunkWriter.array`) go into one live fork per writer held by the process that
opened the writer; they may come from its threads, not from other processes (that raises).

Two writers of one key: the first commit wins; the other finds the key committed and
keeps theirs (same lineage, same data), or, if the repository moved on in a way it cannot
rebase over after a few tries, raises :class:`~dastrax.errors.WriteConflict`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import icechunk
import numpy as np
import zarr
import zarr.errors

from dastrax._version import __version__
from dastrax.core.chunks import chunk_entry
from dastrax.errors import (
    CorruptData,
    DastraxError,
    DataNotAvailable,
    InvalidRequest,
    RunMetadataNotAvailable,
    WriteConflict,
)
from dastrax.storage.abc import GroupWriter, StorageFrontend, StoredGroup
from dastrax.storage.codecs import dtype_from_json, dtype_to_json, make_codecs, normalize_compressor
from dastrax.storage.grid import buffer_rows, position_chunk_rows

__all__ = ["IcechunkGroup", "IcechunkRepository", "IcechunkWriter"]

if "ICECHUNK_LOG" not in os.environ:
    # icechunk warns on every local commit that local disks are unsafe for concurrent
    # commits; that is documented in IcechunkRepository's docstring instead
    icechunk.set_logs_filter("error")

RUNS = "runs"
#: commits tried (with a rebase each) before a writer gives up with WriteConflict
COMMIT_TRIES = 20
_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
_S3_OPTIONS = {"key", "secret", "token", "anon", "client_kwargs", "endpoint_url", "region_name"}
_S3_CLIENT = {"endpoint_url", "region_name"}


# -- repositories, opened once per process ----------------------------------------------
@dataclass(frozen=True)
class _Location:
    """Where a repository is: picklable, and the key of this process's open repository."""

    url: str
    kind: str  # "local" or "s3"
    path: str  # local path, or "bucket/prefix"
    options: tuple = ()  # sorted storage_options items (nested dicts as tuples)

    def storage(self) -> icechunk.Storage:
        if self.kind == "local":
            return icechunk.local_filesystem_storage(self.path)
        opts = _unfreeze(self.options)
        client = dict(opts.get("client_kwargs") or {})
        endpoint = opts.get("endpoint_url") or client.get("endpoint_url")
        region = opts.get("region_name") or client.get("region_name")
        bucket, _, prefix = self.path.partition("/")
        kwargs: dict[str, Any] = {
            "bucket": bucket,
            "prefix": prefix or None,
            "region": region,
            "endpoint_url": endpoint,
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "force_path_style": bool(endpoint),
        }
        if opts.get("anon"):
            kwargs["anonymous"] = True
        elif opts.get("key") is not None:
            kwargs["access_key_id"] = opts["key"]
            kwargs["secret_access_key"] = opts.get("secret")
            kwargs["session_token"] = opts.get("token")
        else:
            kwargs["from_env"] = True
        return icechunk.s3_storage(**kwargs)


_REPOS: dict[_Location, icechunk.Repository] = {}
_REPOS_LOCK = threading.Lock()


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _unfreeze(items: tuple) -> dict:
    return {k: _unfreeze(v) if isinstance(v, tuple) else v for k, v in items}


def _parse_location(path_or_url: str, storage_options: dict | None) -> _Location:
    url = str(path_or_url)
    if not url:
        raise InvalidRequest("IcechunkRepository needs a path or an s3:// URL")
    for scheme in ("icechunk://", "file://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
    options = dict(storage_options or {})
    if url.startswith("s3://"):
        path = url[len("s3://") :].strip("/")
        if not path:
            raise InvalidRequest(f"{path_or_url!r} names no bucket: use s3://BUCKET[/PREFIX]")
        unknown = set(options) - _S3_OPTIONS
        unknown |= {f"client_kwargs.{k}" for k in set(options.get("client_kwargs") or {})}
        unknown -= {f"client_kwargs.{k}" for k in _S3_CLIENT}
        if unknown:
            raise InvalidRequest(
                f"storage_options {sorted(unknown)} are not understood for an icechunk "
                f"repository on S3; use {sorted(_S3_OPTIONS)} "
                "(client_kwargs: endpoint_url, region_name)"
            )
        return _Location(f"s3://{path}", "s3", path, _freeze(options))
    if "://" in url:
        raise InvalidRequest(
            f"IcechunkRepository({path_or_url!r}): only local paths and s3:// URLs are supported"
        )
    if options:
        raise InvalidRequest(
            f"storage_options {sorted(options)} were given for the local path {url!r}; "
            "they apply to s3:// URLs only"
        )
    path = os.path.abspath(os.path.expanduser(url))
    return _Location(path, "local", path)


#: attempts to open a repository that another process is creating at the same moment
#: (waiting 0.1 s, 0.2 s, ... between them: about 4 s in all)
CREATE_ATTEMPTS = 9


def _open_repo(loc: _Location, create: bool) -> icechunk.Repository | None:
    """This process's repository at ``loc``; None if there is none and ``create`` is False."""
    with _REPOS_LOCK:
        repo = _REPOS.get(loc)
        if repo is not None:
            return repo
        try:
            storage = loc.storage()
            for attempt in range(CREATE_ATTEMPTS):
                try:
                    if icechunk.Repository.exists(storage):
                        repo = icechunk.Repository.open(storage)
                    elif create:
                        repo = icechunk.Repository.create(storage)
                    else:
                        return None
                    break
                except icechunk.IcechunkError:
                    # another process is creating it at the same moment (its first
                    # objects are there, so the prefix is no longer clean, but the
                    # repository may not be complete yet): wait for it, then open theirs
                    if attempt == CREATE_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))
        except icechunk.IcechunkError as e:
            raise DataNotAvailable(
                f"cannot open the icechunk repository at {loc.url}: {_first_line(e)}; check "
                "that the path or bucket exists and that storage_options hold the endpoint "
                "and credentials"
            ) from None
        _REPOS[loc] = repo
        return repo


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _root(store):
    """The root group of a read-only session, or None (a new repository has none)."""
    try:
        return zarr.open_group(store, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None


def _is_conflict(e: BaseException) -> bool:
    return isinstance(e, icechunk.ConflictError | icechunk.RebaseFailedError)


# -- stored groups ----------------------------------------------------------------------
_ARRAYS: dict[tuple, Any] = {}
_ARRAYS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class IcechunkGroup(StoredGroup):
    """A committed group in an icechunk snapshot; picklable, reads that snapshot anywhere.

    Pinned to the snapshot it was found in: commits of others (even a delete of its key)
    do not change what it reads.
    """

    key: str
    meta: dict
    url: str
    location: _Location
    snapshot_id: str

    def _array(self, name: str):
        cache_key = (self.location, self.snapshot_id, self.key, name)
        arr = _ARRAYS.get(cache_key)
        if arr is None:
            repo = _open_repo(self.location, create=False)
            if repo is None:
                raise DataNotAvailable(f"{self.key}: the repository {self.url} is gone")
            session = repo.readonly_session(snapshot_id=self.snapshot_id)
            arr = zarr.open_array(session.store, path=f"{self.key}/{name}", mode="r")
            with _ARRAYS_LOCK:
                if len(_ARRAYS) > 1024:
                    _ARRAYS.clear()
                _ARRAYS[cache_key] = arr
        return arr

    def read(
        self,
        field: str,
        lo: int,
        hi: int,
        index: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``[lo, hi)`` of column ``field`` (then ``[index]``), into ``out`` if given.

        Raises
        ------
        DataNotAvailable
            If ``field`` is not a column of the group.
        CorruptData
            If stored bytes are damaged or missing.
        """
        if field not in self.fields:
            raise DataNotAvailable(
                f"{self.key} in {self.url} has no column {field!r}; it has {list(self.fields)}"
            )
        try:
            values = self._array(field)[lo:hi]
        except DastraxError:
            raise
        except Exception as e:
            raise CorruptData(
                f"{self.key}/{field} rows {lo}:{hi} in {self.url} (snapshot "
                f"{self.snapshot_id}) cannot be read: {_first_line(e)}; the stored bytes are "
                f"damaged or missing: delete {self.key} and make it again"
            ) from None
        if index is not None:
            values = values[index]
        if out is None:
            return values
        out[...] = values
        return out


# -- writers ----------------------------------------------------------------------------
_LIVE: dict[str, Any] = {}  # writer id -> this process's live ForkSession (writes by position)
_LIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class IcechunkWriter(GroupWriter):
    """The immutable, picklable state of a group being written into an icechunk repository.

    Holds the pickled :class:`icechunk.ForkSession` with everything written so far; see
    the module docstring for how writes from dask tasks and commits work.
    """

    location: _Location
    branch: str
    key: str
    dtype: list
    compressor: dict
    data_kind: str
    fork: bytes
    writer_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = field(default_factory=os.getpid)
    chunk_rows: int = 0
    created: bool = False
    n: int = 0
    written: int = 0
    tail: Any = None
    chunks: tuple = ()
    overwrite: bool = False

    @property
    def np_dtype(self) -> np.dtype:
        return dtype_from_json(self.dtype)

    def _session(self):
        """The fork to write into: this process's live one (writes by position), else a
        fresh copy of the state's."""
        live = _LIVE.get(self.writer_id)
        return live if live is not None else pickle.loads(self.fork)

    def _with_session(self, session, **changes) -> IcechunkWriter:
        if self.writer_id in _LIVE:
            return replace(self, **changes)
        return replace(self, fork=pickle.dumps(session), **changes)

    def _create(self, session, rows: int, total_rows: int, extra, attributes) -> None:
        dt = self.np_dtype
        fields = {name: dt.fields[name][0] for name in dt.names}
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
        extra: dict | None = None,
        attributes: dict | None = None,
        rows: int | None = None,
    ) -> IcechunkWriter:
        """Create the columns (plus ``extra`` ``{name: dtype}``) for writes by position.

        Idempotent. Writes by position then go through :meth:`array` in this process.
        """
        if self.created:
            return self
        dt = self.np_dtype
        widest = max(
            [dt.fields[n][0].itemsize for n in dt.names]
            + [np.dtype(d).itemsize for d in (extra or {}).values()]
        )
        rows = position_chunk_rows(base_rows, total_rows, widest, rows)
        session = self._session()
        self._create(session, rows, total_rows, extra, attributes)
        state = self._with_session(session, chunk_rows=rows, created=True)
        with _LIVE_LOCK:
            _LIVE.setdefault(state.writer_id, session)
        return state

    def array(self, name: str) -> _PositionTarget:
        """Column ``name`` as a write target (``target[lo:hi] = values``), in this process.

        Raises
        ------
        DastraxError
            If used in another process than the one that called :meth:`create_arrays`.
        """
        return _PositionTarget(self, name)

    def with_rows(self, n: int) -> IcechunkWriter:
        """This state, told that ``n`` rows were written by position."""
        return replace(self, n=int(n), written=int(n))

    def append(
        self,
        data: np.ndarray,
        start: int,
        end: int,
        subruns: dict | None = None,
        run_id: str | None = None,
    ) -> IcechunkWriter:
        """Add one logical chunk ``[start, end)`` holding ``data``; the new state."""
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
            for name in data.dtype.names:
                arr = zarr.open_array(session.store, path=f"{state.key}/{name}", mode="r+")
                if arr.shape[0] < written + full:
                    arr.resize((written + full, *arr.shape[1:]))  # grown: metadata only
                arr[written : written + full] = whole[name]
            written += full
        chunk = chunk_entry(len(state.chunks), start, end, state.n, data, run_id, subruns)
        changes = {
            "n": state.n + len(data),
            "written": written,
            "tail": tail,
            "chunks": (*state.chunks, chunk),
        }
        if session is None:
            return replace(state, **changes)
        return state._with_session(session, **changes)

    def commit(self, meta: dict) -> dict:
        """Write the last rows and the metadata, and commit the group: one icechunk commit.

        Returns the committed metadata document. If another writer committed the key
        first, theirs is kept and returned (same lineage, same data).

        Raises
        ------
        WriteConflict
            If the commit could not be rebased over others' commits after
            :data:`COMMIT_TRIES` tries.
        """
        return commit_together([(self, meta)])[0]

    def _prepare(self, repo, meta: dict) -> tuple[bytes, dict] | dict:
        """The last rows and the metadata written into this writer's fork: ``(the pickled
        fork, the full metadata)`` — or, if another writer committed the key first (and
        this is no overwrite), their metadata."""
        existing = None if self.overwrite else _find_meta(repo, self.branch, self.key)
        if existing is not None:
            self.abort()
            return existing
        session = self._session()
        state = self
        if not state.created:
            # every row in memory: one zarr chunk of them all (as a ZarrDirectory's)
            state = replace(state, chunk_rows=max(1, state.n))
            state._create(session, state.chunk_rows, state.n, None, None)
        rows = state.chunk_rows
        for name in state.np_dtype.names:
            arr = zarr.open_array(session.store, path=f"{state.key}/{name}", mode="r+")
            if arr.shape[0] != state.n:
                arr.resize((state.n, *arr.shape[1:]))
            if state.tail is not None and len(state.tail):
                arr[state.written : state.n] = state.tail[name]
        extra = [
            n
            for n in zarr.open_group(session.store, path=state.key, mode="r").array_keys()
            if n not in state.np_dtype.names
        ]
        for name in extra:
            arr = zarr.open_array(session.store, path=f"{state.key}/{name}", mode="r+")
            if arr.shape[0] != state.n:
                arr.resize((state.n, *arr.shape[1:]))
        full = {
            **meta,
            "dtype": state.dtype,
            "compressor": state.compressor,
            "dastrax_version": __version__,
            "n_rows": int(state.n),
            "zarr_chunk_rows": int(rows),
            "chunks": list(meta.get("chunks") or state.chunks),
        }
        full = json.loads(json.dumps(full))
        group = zarr.open_group(session.store, path=state.key, mode="a", use_consolidated=False)
        group.attrs["dastrax"] = full
        fork = pickle.dumps(session)
        with _LIVE_LOCK:
            _LIVE.pop(self.writer_id, None)
        return fork, full

    def abort(self) -> None:
        """Forget what this writer wrote: it was never committed, so nothing of it is
        visible (its chunk objects are left to icechunk's garbage collection)."""
        with _LIVE_LOCK:
            _LIVE.pop(self.writer_id, None)


def commit_together(pairs: list[tuple[IcechunkWriter, dict]]) -> list[dict]:
    """Commit several groups written into one repository (``[(writer, meta), ...]``, e.g.
    the data types of one ``make``) as ONE icechunk commit, whose message names every
    key: a make or a persist is one transaction — all of its groups become visible
    together, or none. Returns each group's committed metadata (another writer's where
    it committed the key first: same lineage, same data)."""
    if not pairs:
        return []
    first = pairs[0][0]
    repo = _open_repo(first.location, create=False)
    if repo is None:
        raise DataNotAvailable(f"the icechunk repository {first.location.url} is gone")
    out: list[dict | None] = [None] * len(pairs)
    todo = []  # (index, writer, pickled fork, full metadata)
    for i, (writer, meta) in enumerate(pairs):
        prepared = writer._prepare(repo, meta)
        if isinstance(prepared, dict):
            out[i] = prepared
        else:
            todo.append((i, writer, *prepared))
    if not todo:
        return out
    keys = [w.key for _i, w, _f, _m in todo]
    runs = sorted({str(m.get("run_id")) for *_x, m in todo})
    types = list(dict.fromkeys(str(m.get("data_type")) for *_x, m in todo))
    message = f"dastrax: commit {', '.join(keys)} (run {', '.join(runs)}, {', '.join(types)})"
    info = {"op": "commit", "key": keys[0], "keys": keys, "run_id": todo[0][3].get("run_id")}
    theirs: dict[int, dict] = {}

    def attempt():
        # the forks only add nodes under their /<key>: merged into a session on the tip
        # that has none of them, a commit that races another writer of a key is rebased
        # and the conflict (both created /<key>) detected
        parent = repo.writable_session(first.branch)
        theirs.clear()
        merged = 0
        for i, writer, fork, _full in todo:
            existing = None if writer.overwrite else _find_meta_in(parent.store, writer.key)
            if existing is not None:
                theirs[i] = existing
                continue
            parent.merge(pickle.loads(fork))
            merged += 1
        return parent if merged else None

    try:
        _commit(repo, first.branch, attempt, message, info, first.location.url)
    except WriteConflict:
        found = [_find_meta(repo, first.branch, w.key) for _i, w, _f, _m in todo]
        if any(m is None for m in found):
            raise
        for (i, *_rest), meta in zip(todo, found):
            out[i] = meta
        return out
    for i, _writer, _fork, full in todo:
        out[i] = theirs.get(i, full)
    return out


class _PositionTarget:
    """Column ``name`` of a writer, as a target of ``dask.array.store`` (in its process)."""

    def __init__(self, writer: IcechunkWriter, name: str):
        self.writer = writer
        self.name = name

    def _array(self):
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
    def shape(self) -> tuple:
        return self._array().shape

    @property
    def dtype(self) -> np.dtype:
        return self._array().dtype

    @property
    def ndim(self) -> int:
        return self._array().ndim

    @property
    def chunks(self) -> tuple:
        return self._array().chunks

    def __setitem__(self, index, value) -> None:
        self._array()[index] = value

    def __getitem__(self, index):
        return self._array()[index]


def _commit(
    repo: icechunk.Repository,
    branch: str,
    make_session: Callable[[], Any],
    message: str | Callable[[], str],
    info: dict,
    url: str,
) -> str:
    """Commit the session ``make_session()`` builds on the branch tip, rebasing over
    others' commits; retried from a fresh session on conflicts it cannot rebase over."""
    last: BaseException | None = None
    for _ in range(COMMIT_TRIES):
        with _commit_lock(url):
            session = make_session()
            if session is None:
                return ""
            text = message() if callable(message) else message
            try:
                return session.commit(
                    text,
                    metadata={"dastrax": info},
                    rebase_with=icechunk.ConflictDetector(),
                    rebase_tries=5,
                )
            except icechunk.IcechunkError as e:
                if not _is_conflict(e):
                    raise DastraxError(f"{text!r} in {url} failed: {_first_line(e)}") from None
                last = e
    raise WriteConflict(
        f"{text!r} in {url}: other writers changed the same data at the same time "
        f"{COMMIT_TRIES} times ({_first_line(last)}); nothing of this write was committed: "
        "try again"
    )


_COMMIT_LOCKS: dict[str, threading.Lock] = {}


def _commit_lock(url: str):
    """Commits of this process's threads to a local repository, one at a time: a local
    disk has no conditional writes, so two threads committing on the same tip would
    both succeed and the second would silently drop the first's commit (object stores
    detect that; their commits need no lock)."""
    if url.startswith("s3://"):
        return contextlib.nullcontext()
    with _REPOS_LOCK:
        return _COMMIT_LOCKS.setdefault(url, threading.Lock())


def _find_meta(repo, branch: str, key: str) -> dict | None:
    return _find_meta_in(repo.readonly_session(branch=branch).store, key)


def _find_meta_in(store, key: str) -> dict | None:
    try:
        group = zarr.open_group(store, path=key, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return None
    return group.attrs.get("dastrax")


def _ensure_root(repo, branch: str, url: str) -> None:
    """Create the branch (from ``main``) and the root group if missing: writers' forks
    then only add nodes below it."""
    if branch not in repo.list_branches():
        with contextlib.suppress(icechunk.IcechunkError):
            repo.create_branch(branch, repo.lookup_branch("main"))
    if _root(repo.readonly_session(branch=branch).store) is not None:
        return

    def make_session():
        session = repo.writable_session(branch)
        if _root(session.store) is not None:
            return None
        zarr.open_group(session.store, mode="a", use_consolidated=False)
        return session

    _commit(repo, branch, make_session, "dastrax: create the root group", {"op": "init"}, url)


# -- the frontend -----------------------------------------------------------------------
class IcechunkRepository(StorageFrontend):
    """A storage frontend over an icechunk repository (a local path or ``s3://``).

    Every write — a committed group, a run document, an attachment, a delete — is one
    icechunk commit on ``branch``; a redefinition of a run document keeps the old one in
    the history (:meth:`superrun_versions`, :meth:`at_version`).

    Parameters
    ----------
    path_or_url : str
        A local directory (``icechunk://PATH`` and ``file://PATH`` too) or
        ``s3://BUCKET[/PREFIX]``. Created on the first write unless ``readonly``.
    branch : str
        The icechunk branch read and written.
    storage_options : dict, optional
        For ``s3://``: s3fs-style ``key``, ``secret``, ``token``, ``anon`` and
        ``client_kwargs`` (``endpoint_url``, ``region_name``); without ``key`` the
        credentials come from the environment. They travel with handles to workers.
    readonly : bool
        Refuse every write.

    Notes
    -----
    Icechunk guarantees atomic, isolated commits on object stores (conditional writes);
    on a local disk concurrent commits of several processes are not safe — use an object
    store for that. Snapshot pins are only as durable as the history: nothing here expires
    snapshots, but icechunk's ``expire_snapshots`` would.

    Examples
    --------
    >>> repo = IcechunkRepository("/data/dastrax.icechunk")  # doctest: +SKIP
    >>> [v["version"] for v in repo.superrun_versions("_sr")]  # doctest: +SKIP
    [1, 2]
    """

    def __init__(
        self,
        path_or_url: str,
        branch: str = "main",
        storage_options: dict | None = None,
        readonly: bool = False,
        provide_run_metadata: bool = True,
        *,
        snapshot_id: str | None = None,
    ):
        self._location = _parse_location(path_or_url, storage_options)
        self.url = self._location.url
        self.branch = branch
        self.readonly = bool(readonly or snapshot_id)
        self.provide_run_metadata = provide_run_metadata
        self.snapshot_id = snapshot_id
        self.storage_options = dict(storage_options or {})

    def __reduce__(self):
        return (
            _rebuild,
            (
                self._location,
                self.branch,
                self.readonly,
                self.provide_run_metadata,
                self.snapshot_id,
                self.storage_options,
            ),
        )

    def __repr__(self) -> str:
        at = f", snapshot_id={self.snapshot_id!r}" if self.snapshot_id else ""
        return (
            f"IcechunkRepository({self.url!r}, branch={self.branch!r}, "
            f"readonly={self.readonly}{at})"
        )

    # -- sessions ---------------------------------------------------------------------
    def _repo(self, create: bool = False) -> icechunk.Repository | None:
        return _open_repo(self._location, create=create and not self.readonly)

    def _read_session(self):
        """A read-only session on the branch tip (or the pinned snapshot); None if there
        is no repository. Opened per call: what others committed is visible at once."""
        repo = self._repo()
        if repo is None:
            return None
        try:
            if self.snapshot_id:
                return repo.readonly_session(snapshot_id=self.snapshot_id)
            return repo.readonly_session(branch=self.branch)
        except icechunk.IcechunkError as e:
            raise DataNotAvailable(
                f"branch {self.branch!r} of {self.url} cannot be read: {_first_line(e)}"
            ) from None

    def _write(
        self, message: str | Callable[[], str], info: dict, change: Callable[[Any], bool]
    ) -> bool:
        """Apply ``change(root_group)`` in a writable session and commit it (retrying on
        conflicts); ``change`` returns False when there is nothing to do."""
        self.check_writable()
        repo = self._repo(create=True)
        _ensure_root(repo, self.branch, self.url)
        outcome = {"changed": False}

        def make_session():
            session = repo.writable_session(self.branch)
            root = zarr.open_group(session.store, mode="a", use_consolidated=False)
            outcome["changed"] = bool(change(root))
            return session if outcome["changed"] else None

        _commit(repo, self.branch, make_session, message, info, self.url)
        return outcome["changed"]

    def check_exists(self) -> None:
        """Raise :class:`DataNotAvailable` naming the URL if there is no repository."""
        if self._repo() is None:
            raise DataNotAvailable(
                f"there is no icechunk repository at {self.url}; write to it first "
                "(a writable IcechunkRepository creates it)"
            )

    # -- stored data ------------------------------------------------------------------
    def find(self, key: str) -> IcechunkGroup | None:
        """The committed group of ``key`` (pinned to the current snapshot), or None."""
        session = self._read_session()
        if session is None or not key or "/" in key or key == RUNS:
            return None
        try:
            group = zarr.open_group(session.store, path=key, mode="r", use_consolidated=False)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
            return None
        meta = group.attrs.get("dastrax")
        if not isinstance(meta, dict):
            raise CorruptData(
                f"{key} in {self.url} has no dastrax metadata document; delete it and make it again"
            )
        return IcechunkGroup(key, meta, self.url, self._location, session.snapshot_id)

    def keys(self, prefix: str = "") -> list[str]:
        """Committed keys starting with ``prefix``, sorted."""
        session = self._read_session()
        if session is None:
            return []
        root = None if session is None else _root(session.store)
        if root is None:
            return []
        return sorted(k for k in root.group_keys() if k != RUNS and k.startswith(prefix))

    def writer(
        self,
        key: str,
        dtype: np.dtype,
        compressor: dict | None = None,
        data_kind: str = "rows",
        overwrite: bool = False,
    ) -> IcechunkWriter:
        """Start writing ``key``: a writer forked from the branch tip. With
        ``overwrite``, its commit replaces a stored ``key`` (one icechunk commit: readers
        see the old group or the new one, never a mix).

        Raises
        ------
        InvalidRequest
            If the repository is read-only or ``key`` is not a valid key.
        """
        self.check_writable()
        _check_key(key)
        repo = self._repo(create=True)
        _ensure_root(repo, self.branch, self.url)
        fork = repo.writable_session(self.branch).fork()
        return IcechunkWriter(
            location=self._location,
            branch=self.branch,
            key=key,
            dtype=dtype_to_json(np.dtype(dtype)),
            compressor=normalize_compressor(compressor),
            data_kind=data_kind,
            fork=pickle.dumps(fork),
            overwrite=bool(overwrite),
        )

    def commit_all(self, prepared) -> list[dict]:
        """Commit the groups of one make or persist (``[writer.prepare(meta), ...]``) as
        one icechunk commit naming every key (:func:`commit_together`)."""
        return commit_together([(p.writer, p.meta) for p in prepared])

    def delete(self, key: str) -> None:
        """Delete ``key`` in one commit (nothing if it is not stored). Older snapshots keep it."""
        _check_key(key)

        def change(root) -> bool:
            if key not in root:
                return False
            del root[key]
            return True

        if self._repo() is None:
            self.check_writable()
            return
        self._write(f"dastrax: delete {key}", {"op": "delete", "key": key}, change)

    # -- run documents ----------------------------------------------------------------
    def _run_group(self, session, run_id: str):
        try:
            return zarr.open_group(
                session.store, path=f"{RUNS}/{run_id}", mode="r", use_consolidated=False
            )
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
            return None

    def run_metadata(self, run_id: str) -> dict:
        """The run document of ``run_id``.

        Raises
        ------
        RunMetadataNotAvailable
            If there is none.
        """
        _check_run_id(run_id)
        session = self._read_session()
        group = None if session is None else self._run_group(session, run_id)
        if group is None or "run" not in group.attrs:
            raise RunMetadataNotAvailable(f"no run document for run {run_id!r} in {self.url}")
        return dict(group.attrs["run"])

    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write the run document of ``run_id`` in one commit (a new version if it existed)."""
        self._put_run(run_id, doc, exclusive=False)

    def create_run_metadata(self, run_id: str, doc: dict) -> bool:
        """Write the run document only if there is none (exclusive across writers)."""
        return self._put_run(run_id, doc, exclusive=True)

    def _put_run(self, run_id: str, doc: dict, exclusive: bool) -> bool:
        _check_run_id(run_id)
        self.check_writable()
        doc = _json_doc(run_id, doc)
        verb = {"v": "define"}

        def change(root) -> bool:
            path = f"{RUNS}/{run_id}"
            exists = path in root and "run" in root[path].attrs
            if exists and exclusive:
                return False
            verb["v"] = "redefine" if exists else "define"
            group = root.require_group(RUNS).require_group(run_id)
            group.attrs["run"] = doc
            return True

        info = {"op": "run_document", "run_id": run_id}
        try:
            return self._write(lambda: f"dastrax: {verb['v']} {run_id}", info, change)
        except WriteConflict:
            if exclusive:
                return False
            raise

    def write_run_attachment(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Store ``array`` beside the run document of ``run_id`` (one commit)."""
        _check_run_id(run_id)
        if not isinstance(name, str) or not _NAME.match(name) or name == "run":
            raise InvalidRequest(
                f"attachment name {name!r} of run {run_id!r}: use letters, digits, '_' and '.'"
            )
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise InvalidRequest(
                f"attachment {name!r} of run {run_id!r} holds Python objects; store a numeric "
                "or fixed-width numpy array"
            )

        def change(root) -> bool:
            group = root.require_group(RUNS).require_group(run_id)
            arr = group.create_array(
                name,
                shape=array.shape,
                dtype=array.dtype,
                chunks=array.shape or None,
                compressors=make_codecs(None),
                overwrite=True,
            )
            if array.size:
                arr[...] = array
            return True

        info = {"op": "attachment", "run_id": run_id, "name": name}
        self._write(f"dastrax: attach {name} to run {run_id}", info, change)

    def run_attachment(self, run_id: str, name: str) -> np.ndarray:
        """The array stored by :meth:`write_run_attachment`.

        Raises
        ------
        RunMetadataNotAvailable
            If there is none.
        """
        _check_run_id(run_id)
        session = self._read_session()
        group = None if session is None else self._run_group(session, run_id)
        if group is None or name not in group.array_keys():
            raise RunMetadataNotAvailable(
                f"run {run_id!r} has no attachment {name!r} in {self.url}"
            )
        try:
            return group[name][...]
        except Exception as e:
            raise CorruptData(
                f"attachment {name!r} of run {run_id!r} in {self.url} cannot be read: "
                f"{_first_line(e)}; write it again"
            ) from None

    def delete_run_metadata(self, run_id: str) -> None:
        """Delete the run document of ``run_id`` and its attachments (one commit)."""
        _check_run_id(run_id)
        if self._repo() is None:
            self.check_writable()
            return

        def change(root) -> bool:
            if RUNS not in root or run_id not in root[RUNS]:
                return False
            del root[RUNS][run_id]
            return True

        info = {"op": "delete_run_document", "run_id": run_id}
        self._write(f"dastrax: delete run document {run_id}", info, change)

    def list_runs(self) -> list[str]:
        """Run ids with a run document, sorted."""
        session = self._read_session()
        if session is None:
            return []
        root = _root(session.store)
        if root is None or RUNS not in root:
            return []
        return sorted(k for k in root[RUNS].group_keys() if "run" in root[RUNS][k].attrs)

    # -- versions ---------------------------------------------------------------------
    def _history(self) -> Iterator[icechunk.SnapshotInfo]:
        repo = self._repo()
        if repo is None:
            return iter(())
        if self.snapshot_id:
            return repo.ancestry(snapshot_id=self.snapshot_id)
        return repo.ancestry(branch=self.branch)

    def _versions(self, name: str) -> list[tuple[icechunk.SnapshotInfo, str | None]]:
        """(commit of version i, the commit after it on the branch or None), oldest first."""
        history = list(self._history())  # newest first
        out = []
        for i, snap in enumerate(history):
            info = (snap.metadata or {}).get("dastrax") or {}
            if info.get("op") == "run_document" and info.get("run_id") == name:
                out.append((snap, history[i - 1].id if i else None))
        out.reverse()
        return out

    def superrun_versions(self, name: str) -> list[dict]:
        """Every version of the run document ``name``: each write of it is one, numbered
        1, 2, ... oldest first.

        Returns
        -------
        list of dict
            ``version``, ``time`` (the commit's datetime, UTC), ``commit`` (the snapshot
            id), ``message`` and ``doc`` (the run document of that version).

        Examples
        --------
        >>> repo.superrun_versions("_sr")[0]["version"]  # doctest: +SKIP
        1
        """
        _check_run_id(name)
        repo = self._repo()
        out = []
        for i, (snap, _after) in enumerate(self._versions(name), start=1):
            session = repo.readonly_session(snapshot_id=snap.id)
            group = self._run_group(session, name)
            doc = dict(group.attrs["run"]) if group is not None else None
            out.append(
                {
                    "version": i,
                    "time": snap.written_at,
                    "commit": snap.id,
                    "message": snap.message,
                    "doc": doc,
                }
            )
        return out

    def at_version(self, name: str, version: int) -> IcechunkRepository:
        """A read-only view of this repository as it was while version ``version`` of
        ``name`` was the current one: its run document, and what was stored until the
        next version was written.

        Raises
        ------
        InvalidRequest
            If there is no such version (the message lists the versions there are).
        """
        versions = self._versions(name)
        if (
            isinstance(version, bool)
            or not isinstance(version, int | np.integer)
            or not 1 <= version <= len(versions)
        ):
            have = f"1..{len(versions)}" if versions else "none"
            raise InvalidRequest(
                f"run {name!r} in {self.url} has no version {version!r}; versions: {have}"
            )
        snap, _after = versions[int(version) - 1]
        if int(version) < len(versions):
            # the last commit before the next version: what was stored for this one
            history = [s.id for s in self._history()]
            next_id = versions[int(version)][0].id
            pin = history[history.index(next_id) + 1]
        elif self.snapshot_id:
            pin = self.snapshot_id
        else:
            pin = self._repo().lookup_branch(self.branch)
        return IcechunkRepository._pinned(self, pin)

    @classmethod
    def _pinned(cls, base: IcechunkRepository, snapshot_id: str) -> IcechunkRepository:
        view = cls.__new__(cls)
        view.__dict__.update(base.__dict__)
        view.snapshot_id = snapshot_id
        view.readonly = True
        return view

    def tag(self, name: str, version: int, tag: str) -> None:
        """Give version ``version`` of ``name`` an icechunk tag (e.g. a paper's pin)."""
        self.check_writable()
        view = self.at_version(name, version)
        try:
            self._repo().create_tag(tag, view.snapshot_id)
        except icechunk.IcechunkError as e:
            raise InvalidRequest(
                f"cannot tag {name}@{version} as {tag!r}: {_first_line(e)}"
            ) from None


def _rebuild(location, branch, readonly, provide, snapshot_id, options) -> IcechunkRepository:
    view = IcechunkRepository.__new__(IcechunkRepository)
    view._location = location
    view.url = location.url
    view.branch = branch
    view.readonly = readonly
    view.provide_run_metadata = provide
    view.snapshot_id = snapshot_id
    view.storage_options = options
    return view


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or "/" in key or key == RUNS or key.startswith("."):
        raise InvalidRequest(
            f"{key!r} is not a storage key: use run_id-data_type-lineage_hash, without '/'"
        )


def _check_run_id(run_id: str) -> None:
    if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id.startswith("."):
        raise InvalidRequest(f"{run_id!r} is not a run id: a non-empty name without '/'")


def _json_doc(run_id: str, doc: dict) -> dict:
    if not isinstance(doc, dict):
        raise InvalidRequest(f"the run document of {run_id!r} must be a dict, not {type(doc)}")
    try:
        return json.loads(json.dumps(doc))
    except (TypeError, ValueError) as e:
        raise InvalidRequest(f"the run document of {run_id!r} is not JSON: {e}") from None

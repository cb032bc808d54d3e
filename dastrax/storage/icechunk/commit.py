"""Commits to an icechunk repository: rebased over others' commits, retried on conflicts.

Every change is one icechunk commit on the branch tip (:func:`commit_session`): a
session built by the caller is committed with icechunk's conflict detector, rebased over
the commits others made meanwhile; if it cannot be rebased, the session is built again on
the new tip and committed again, :data:`COMMIT_TRIES` times before
:class:`~dastrax.errors.WriteConflict`. :func:`commit_together` commits the groups of one
make or persist as one such commit.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import icechunk
import zarr
import zarr.errors

from dastrax.errors import DastraxError, DataNotAvailable, WriteConflict
from dastrax.storage.icechunk.location import REPOS_LOCK, first_line, open_repo

if TYPE_CHECKING:
    from dastrax.storage.icechunk.writer import IcechunkWriter

#: commits tried (with a rebase each) before a writer gives up with WriteConflict
COMMIT_TRIES = 20

_COMMIT_LOCKS: dict[str, threading.Lock] = {}


def is_conflict(e: BaseException) -> bool:
    """Whether ``e`` is icechunk's way of saying that others changed the same data."""
    return isinstance(e, icechunk.ConflictError | icechunk.RebaseFailedError)


def commit_session(
    repo: icechunk.Repository,
    branch: str,
    make_session: Callable[[], icechunk.Session | None],
    message: str | Callable[[], str],
    info: dict[str, Any],
    url: str,
) -> str:
    """Commit the session ``make_session()`` builds on the branch tip, rebasing over
    others' commits; retried from a fresh session on conflicts it cannot rebase over.

    ``make_session`` returns None when there is nothing to commit (then nothing is, and
    the result is ``""``); ``message`` may be a function of what it built. The commit's
    metadata is ``{"dastrax": info}``. Returns the new snapshot id.

    Raises
    ------
    WriteConflict
        If every one of :data:`COMMIT_TRIES` tries met a conflict.
    DastraxError
        If icechunk refused the commit for another reason (the message is icechunk's).
    """
    conflicts: list[BaseException] = []
    text = message if isinstance(message, str) else ""
    for _ in range(COMMIT_TRIES):
        with commit_lock(url):
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
                if not is_conflict(e):
                    raise DastraxError(f"{text!r} in {url} failed: {first_line(e)}") from None
                conflicts.append(e)
    last = first_line(conflicts[-1]) if conflicts else "no commit was tried"
    raise WriteConflict(
        f"{text!r} in {url}: other writers changed the same data at the same time "
        f"{COMMIT_TRIES} times ({last}); nothing of this write was committed: try again"
    )


def commit_lock(url: str) -> contextlib.AbstractContextManager[bool | None]:
    """Commits of this process's threads to a local repository, one at a time: a local
    disk has no conditional writes, so two threads committing on the same tip would
    both succeed and the second would silently drop the first's commit (object stores
    detect that; their commits need no lock)."""
    if url.startswith("s3://"):
        return contextlib.nullcontext()
    with REPOS_LOCK:
        return _COMMIT_LOCKS.setdefault(url, threading.Lock())


def root_group(store: icechunk.IcechunkStore) -> zarr.Group | None:
    """The root group of a read-only session's store, or None (a new repository has none)."""
    try:
        return zarr.open_group(store, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None


def find_meta(repo: icechunk.Repository, branch: str, key: str) -> dict[str, Any] | None:
    """The metadata document of the group ``key`` on the branch tip, or None."""
    return find_meta_in(repo.readonly_session(branch=branch).store, key)


def find_meta_in(store: icechunk.IcechunkStore, key: str) -> dict[str, Any] | None:
    """The metadata document of the group ``key`` in ``store``, or None if there is no
    such group (or it has none)."""
    try:
        group = zarr.open_group(store, path=key, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return None
    meta = group.attrs.get("dastrax")
    return meta if isinstance(meta, dict) else None


def ensure_root(repo: icechunk.Repository, branch: str, url: str) -> None:
    """Create the branch (from ``main``) and the root group if missing: writers' forks
    then only add nodes below it."""
    if branch not in repo.list_branches():
        with contextlib.suppress(icechunk.IcechunkError):
            repo.create_branch(branch, repo.lookup_branch("main"))
    if root_group(repo.readonly_session(branch=branch).store) is not None:
        return

    def make_session() -> icechunk.Session | None:
        session = repo.writable_session(branch)
        if root_group(session.store) is not None:
            return None
        zarr.open_group(session.store, mode="a", use_consolidated=False)
        return session

    commit_session(
        repo, branch, make_session, "dastrax: create the root group", {"op": "init"}, url
    )


def commit_together(pairs: list[tuple[IcechunkWriter, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Commit several groups written into one repository (``[(writer, meta), ...]``, e.g.
    the data types of one ``make``) as ONE icechunk commit, whose message names every
    key: a make or a persist is one transaction — all of its groups become visible
    together, or none. Returns each group's committed metadata (another writer's where
    it committed the key first: same lineage, same data).

    Raises
    ------
    DataNotAvailable
        If the repository is gone.
    WriteConflict
        If the commit could not be rebased over others' commits after
        :data:`COMMIT_TRIES` tries (and others did not commit every key meanwhile).
    """
    if not pairs:
        return []
    first = pairs[0][0]
    repo = open_repo(first.location, create=False)
    if repo is None:
        raise DataNotAvailable(f"the icechunk repository {first.location.url} is gone")
    out: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, IcechunkWriter, bytes, dict[str, Any]]] = []  # fork, full meta
    for i, (writer, meta) in enumerate(pairs):
        staged = writer.stage(repo, meta)
        if isinstance(staged, dict):
            out[i] = staged
        else:
            todo.append((i, writer, *staged))
    if todo:
        out.update(_commit_staged(repo, todo))
    return [out[i] for i in range(len(pairs))]


def _commit_staged(
    repo: icechunk.Repository, todo: list[tuple[int, IcechunkWriter, bytes, dict[str, Any]]]
) -> dict[int, dict[str, Any]]:
    """:func:`commit_together` of the staged forks: ``{index: committed metadata}``."""
    first = todo[0][1]
    keys = [w.key for _i, w, _f, _m in todo]
    runs = sorted({str(m.get("run_id")) for *_x, m in todo})
    types = list(dict.fromkeys(str(m.get("data_type")) for *_x, m in todo))
    message = f"dastrax: commit {', '.join(keys)} (run {', '.join(runs)}, {', '.join(types)})"
    info = {"op": "commit", "key": keys[0], "keys": keys, "run_id": todo[0][3].get("run_id")}
    theirs: dict[int, dict[str, Any]] = {}

    def attempt() -> icechunk.Session | None:
        # the forks only add nodes under their /<key>: merged into a session on the tip
        # that has none of them, a commit that races another writer of a key is rebased
        # and the conflict (both created /<key>) detected
        parent = repo.writable_session(first.branch)
        theirs.clear()
        merged = 0
        for i, writer, fork, _full in todo:
            existing = None if writer.overwrite else find_meta_in(parent.store, writer.key)
            if existing is not None:
                theirs[i] = existing
                continue
            parent.merge(pickle.loads(fork))
            merged += 1
        return parent if merged else None

    try:
        commit_session(repo, first.branch, attempt, message, info, first.location.url)
    except WriteConflict:
        found = {i: find_meta(repo, first.branch, w.key) for i, w, _f, _m in todo}
        done = {i: meta for i, meta in found.items() if meta is not None}
        if len(done) < len(found):
            raise
        return done
    return {i: theirs.get(i, full) for i, _writer, _fork, full in todo}

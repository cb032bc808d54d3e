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

The parts, each in its module of :mod:`dastrax.storage.icechunk`: :mod:`.location` (where
a repository is; opened once per process), :mod:`.commit` (commits, rebases, conflicts),
:mod:`.base` (sessions), :mod:`.group` (reading), :mod:`.writer` (writing), :mod:`.runs`
(run documents), :mod:`.versions` (versions as snapshots) and this frontend.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr
import zarr.errors

from dastrax.errors import CorruptData, InvalidRequest
from dastrax.storage.abc import PendingCommit
from dastrax.storage.codecs import dtype_to_json, normalize_compressor
from dastrax.storage.icechunk.commit import commit_together, root_group
from dastrax.storage.icechunk.group import IcechunkGroup
from dastrax.storage.icechunk.location import Location, parse_location
from dastrax.storage.icechunk.runs import RUNS, RunDocuments
from dastrax.storage.icechunk.versions import Versions
from dastrax.storage.icechunk.writer import IcechunkWriter

__all__ = ["IcechunkGroup", "IcechunkRepository", "IcechunkWriter"]


class IcechunkRepository(Versions, RunDocuments):
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
        storage_options: dict[str, Any] | None = None,
        readonly: bool = False,
        provide_run_metadata: bool = True,
        *,
        snapshot_id: str | None = None,
    ):
        self._location = parse_location(path_or_url, storage_options)
        self.url = self._location.url
        self.branch = branch
        self.readonly = bool(readonly or snapshot_id)
        self.provide_run_metadata = provide_run_metadata
        self.snapshot_id = snapshot_id
        self.storage_options = dict(storage_options or {})

    def __reduce__(self) -> tuple[Callable[..., IcechunkRepository], tuple[Any, ...]]:
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

    def check_exists(self) -> None:
        """Raise :class:`DataNotAvailable` naming the URL if there is no repository."""
        self._existing_repo()

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
        root = root_group(session.store)
        if root is None:
            return []
        return sorted(k for k in root.group_keys() if k != RUNS and k.startswith(prefix))

    def writer(
        self,
        key: str,
        dtype: np.dtype,
        compressor: dict[str, Any] | None = None,
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
        repo = self._writable_repo()
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

    def commit_all(self, prepared: list[PendingCommit]) -> list[dict[str, Any]]:
        """Commit the groups of one make or persist (``[writer.prepare(meta), ...]``) as
        one icechunk commit naming every key
        (:func:`~dastrax.storage.icechunk.commit.commit_together`)."""
        pairs = []
        for p in prepared:
            if not isinstance(p.writer, IcechunkWriter):
                raise InvalidRequest(
                    f"{p.writer!r} is not a writer of an icechunk repository: commit it "
                    "with its own frontend's commit_all"
                )
            pairs.append((p.writer, p.meta))
        return commit_together(pairs)

    def delete(self, key: str) -> None:
        """Delete ``key`` in one commit (nothing if it is not stored). Older snapshots keep it."""
        _check_key(key)

        def change(root: zarr.Group) -> bool:
            if key not in root:
                return False
            del root[key]
            return True

        if self._repo() is None:
            self.check_writable()
            return
        self._write(f"dastrax: delete {key}", {"op": "delete", "key": key}, change)


def _rebuild(
    location: Location,
    branch: str,
    readonly: bool,
    provide: bool,
    snapshot_id: str | None,
    options: dict[str, Any],
) -> IcechunkRepository:
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

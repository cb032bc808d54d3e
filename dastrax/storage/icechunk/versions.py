"""Versions of run documents in an icechunk repository, as snapshots of its history.

Each write of a run document is one commit whose metadata says so
(``{"dastrax": {"op": "run_document", "run_id": ...}}``): version ``i`` of a run is the
``i``-th such commit on the branch, and what was stored for it is the last snapshot before
the next version (:meth:`Versions.at_version`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import icechunk
import numpy as np

from dastrax.errors import InvalidRequest
from dastrax.storage.icechunk.base import RepositoryBase
from dastrax.storage.icechunk.location import first_line
from dastrax.storage.icechunk.runs import check_run_id, run_document, run_group


class Versions(RepositoryBase):
    """The versions of an ``IcechunkRepository``'s run documents (see the module docstring)."""

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

    def superrun_versions(self, name: str) -> list[dict[str, Any]]:
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
        check_run_id(name)
        versions = self._versions(name)
        if not versions:
            return []
        repo = self._existing_repo()
        out = []
        for i, (snap, _after) in enumerate(versions, start=1):
            session = repo.readonly_session(snapshot_id=snap.id)
            group = run_group(session, name)
            doc = run_document(group, self.url) if group is not None else None
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

    def at_version(self, name: str, version: int) -> Self:
        """A read-only view of this repository as it was while version ``version`` of
        ``name`` was the current one: its run document, and what was stored until the
        next version was written.

        Raises
        ------
        InvalidRequest
            If there is no such version (the message lists the versions there are).
        """
        return self._pinned(self._version_snapshot(name, version))

    def _version_snapshot(self, name: str, version: int) -> str:
        """The snapshot :meth:`at_version` pins: the last one of ``name``'s version."""
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
        if int(version) < len(versions):
            # the last commit before the next version: what was stored for this one
            history = [s.id for s in self._history()]
            next_id = versions[int(version)][0].id
            return history[history.index(next_id) + 1]
        if self.snapshot_id:
            return self.snapshot_id
        return self._existing_repo().lookup_branch(self.branch)

    def _pinned(self, snapshot_id: str) -> Self:
        """A read-only copy of this frontend pinned to ``snapshot_id``."""
        view = type(self).__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.snapshot_id = snapshot_id
        view.readonly = True
        return view

    def tag(self, name: str, version: int, tag: str) -> None:
        """Give version ``version`` of ``name`` an icechunk tag (e.g. a paper's pin)."""
        self.check_writable()
        snapshot_id = self._version_snapshot(name, version)
        try:
            self._existing_repo().create_tag(tag, snapshot_id)
        except icechunk.IcechunkError as e:
            raise InvalidRequest(
                f"cannot tag {name}@{version} as {tag!r}: {first_line(e)}"
            ) from None

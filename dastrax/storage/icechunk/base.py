"""What every part of an ``IcechunkRepository`` stands on: its repository (opened once per
process), read sessions on the branch tip or a pinned snapshot, and writes as commits.

:class:`RepositoryBase` is shared by the frontend's parts: stored groups
(:mod:`.repository`), run documents (:mod:`.runs`) and versions (:mod:`.versions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import icechunk
import zarr

from dastrax.errors import DataNotAvailable
from dastrax.storage.abc import StorageFrontend
from dastrax.storage.icechunk.commit import commit_session, ensure_root
from dastrax.storage.icechunk.location import Location, first_line, open_repo


class RepositoryBase(StorageFrontend):
    """Sessions and commits of an icechunk repository; see ``IcechunkRepository``."""

    _location: Location
    url: str
    branch: str
    readonly: bool
    provide_run_metadata: bool
    #: the snapshot a read-only view is pinned to (None: the branch tip)
    snapshot_id: str | None
    storage_options: dict[str, Any]

    def _repo(self, create: bool = False) -> icechunk.Repository | None:
        return open_repo(self._location, create=create and not self.readonly)

    def _existing_repo(self) -> icechunk.Repository:
        """The repository; raises :class:`DataNotAvailable` naming the URL if there is none."""
        repo = self._repo()
        if repo is None:
            raise DataNotAvailable(
                f"there is no icechunk repository at {self.url}; write to it first "
                "(a writable IcechunkRepository creates it)"
            )
        return repo

    def _writable_repo(self) -> icechunk.Repository:
        """The repository to write to, created if missing, with the branch and its root
        group; refused (:class:`~dastrax.errors.InvalidRequest`) if read-only."""
        self.check_writable()
        repo = open_repo(self._location, create=True)
        ensure_root(repo, self.branch, self.url)
        return repo

    def _read_session(self) -> icechunk.Session | None:
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
                f"branch {self.branch!r} of {self.url} cannot be read: {first_line(e)}"
            ) from None

    def _write(
        self,
        message: str | Callable[[], str],
        info: dict[str, Any],
        change: Callable[[zarr.Group], bool],
    ) -> bool:
        """Apply ``change(root_group)`` in a writable session and commit it (retrying on
        conflicts); ``change`` returns False when there is nothing to do."""
        repo = self._writable_repo()
        outcome = {"changed": False}

        def make_session() -> icechunk.Session | None:
            session = repo.writable_session(self.branch)
            root = zarr.open_group(session.store, mode="a", use_consolidated=False)
            outcome["changed"] = bool(change(root))
            return session if outcome["changed"] else None

        commit_session(repo, self.branch, make_session, message, info, self.url)
        return outcome["changed"]

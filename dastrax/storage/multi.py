"""Several storage frontends in search order: reads search them in order, writes go to
the first writable one."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dastrax.errors import DataNotAvailable, InvalidRequest, RunMetadataNotAvailable, advice
from dastrax.storage.abc import StorageFrontend, StoredGroup
from dastrax.storage.registry import frontend_for

__all__ = ["StorageList"]


#: where data is stored: a path, an fsspec URL or a frontend
Location = str | os.PathLike[str] | StorageFrontend


class StorageList:
    """Frontends in search order (paths and URLs become frontends by their scheme)."""

    def __init__(self, frontends: Location | Sequence[Location] | None = None) -> None:
        if frontends is None:
            items: list[object] = []
        elif isinstance(frontends, (list, tuple)):
            items = list(frontends)
        else:
            items = [frontends]
        self.frontends: list[StorageFrontend] = []
        for f in items:
            if isinstance(f, (str, os.PathLike)):
                f = frontend_for(f)
            if not isinstance(f, StorageFrontend):
                raise InvalidRequest(
                    f"storage must be paths, URLs or StorageFrontend objects: got {f!r}"
                )
            self.frontends.append(f)
        self._readable = False  # whether check_readable found the locations

    def __iter__(self):
        return iter(self.frontends)

    def __len__(self) -> int:
        return len(self.frontends)

    def find(self, key: str) -> StoredGroup | None:
        """The first complete, committed group stored under ``key``."""
        for f in self.frontends:
            group = f.find(key)
            if group is not None:
                return group
        return None

    def change_stamp(self) -> tuple[tuple, float] | None:
        """The frontends' change stamps together (see
        :meth:`StorageFrontend.change_stamp`); None if one cannot tell."""
        token, newest = [], 0.0
        for f in self.frontends:
            stamp = f.change_stamp()
            if stamp is None:
                return None
            token.append((type(f).__name__, f.url, f.readonly, stamp[0]))
            newest = max(newest, stamp[1])
        return tuple(token), newest

    def manifest_folder(self) -> str | None:
        """Where manifests of superrun loads are kept: the first writable frontend's
        folder, if every frontend can sign what it stores (see
        :meth:`StorageFrontend.signatures`); else None."""
        if any(f.signatures([]) is None for f in self.frontends):
            return None
        for f in self.frontends:
            if not f.readonly:
                return f.manifest_folder()
        return None

    def signatures(self, fronts: list[int], keys: list[str], *, as_read=False) -> list | None:
        """Signatures of ``keys``, each asked of frontend number ``fronts[i]``."""
        out: list = [None] * len(keys)
        for i, f in enumerate(self.frontends):
            mine = [j for j, fi in enumerate(fronts) if fi == i]
            if not mine:
                continue
            got = f.signatures([keys[j] for j in mine], as_read=as_read)
            if got is None:
                return None
            for j, sig in zip(mine, got):
                out[j] = sig
        return out

    def find_data(self, run_id: str, data_type: str) -> list[StoredGroup]:
        """Every stored group of ``data_type`` of ``run_id``, whatever its lineage (the
        first frontend holding a key wins)."""
        seen: dict[str, StoredGroup] = {}
        for f in self.frontends:
            for g in f.find_data(run_id, data_type):
                seen.setdefault(g.key, g)
        return list(seen.values())

    def writable(self) -> StorageFrontend:
        for f in self.frontends:
            if not f.readonly:
                return f
        raise InvalidRequest(
            "no writable storage: every frontend is read-only; add a writable ZarrDirectory "
            "to the context's storage"
        )

    def delete_everywhere(self, prefix: str) -> list[str]:
        """Delete every stored key starting with ``prefix`` from the writable frontends."""
        deleted = []
        for f in self.frontends:
            if not f.readonly:
                for key in f.keys(prefix):
                    f.delete(key)
                    deleted.append(key)
        return deleted

    def check_exists(self) -> None:
        """Raise :class:`DataNotAvailable` if no frontend's location exists."""
        errors = []
        for f in self.frontends:
            try:
                f.check_exists()
                return
            except DataNotAvailable as e:
                errors.append(str(e))
        if errors:
            raise DataNotAvailable("; ".join(errors))

    def check_readable(self) -> None:
        """Raise :class:`DataNotAvailable` naming the location if a read cannot find
        anything here: no frontend's location exists, or a read-only one's does not (it
        never will). Reads never create a location; once one is found, it is not looked
        for again."""
        if self._readable:
            return
        missing = []
        for f in self.frontends:
            try:
                f.check_readable()
            except DataNotAvailable as e:
                missing.append((f, str(e)))
        if missing and (len(missing) == len(self.frontends) or any(f.readonly for f, _ in missing)):
            raise DataNotAvailable("; ".join(m for _f, m in missing))
        self._readable = bool(self.frontends)

    def run_metadata(self, run_id: str) -> tuple[dict, StorageFrontend]:
        """The first run document of ``run_id``, and the frontend holding it."""
        for f in self.frontends:
            if not f.provide_run_metadata:
                continue
            try:
                return f.run_metadata(run_id), f
            except RunMetadataNotAvailable:
                continue
        where = ", ".join(f.url for f in self.frontends) or "no storage configured"
        raise RunMetadataNotAvailable(
            f"no run document for run {run_id!r} (searched {where}); "
            f"{advice('write_run_document', run=run_id)}"
        )

    def run_metadata_writer(self, run_id: str | None = None) -> StorageFrontend:
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

"""Versioned superruns: every definition, redefinition and extension of a superrun on a
frontend that keeps versions (an :class:`~dastrax.storage.IcechunkRepository`) is a
version; a load can pin one (``version=N`` or the run id ``"name@N"``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dastrax.core.lineage import DataKey
from dastrax.core.names import validate_superrun_name
from dastrax.errors import InvalidRequest, advice
from dastrax.load.resolver import Resolver
from dastrax.runs.catalog import Catalog
from dastrax.storage import StorageList, SupportsVersions

__all__ = ["pinned", "split_version", "superrun_versions"]


def split_version(
    run_id: str | Sequence[str], version: int | None = None
) -> tuple[str | Sequence[str], int | None]:
    """``("name", N)`` from ``"name@N"`` (or ``version=N``); other run ids unchanged."""
    if isinstance(run_id, str) and "@" in run_id:
        name, _, number = run_id.rpartition("@")
        if version is not None:
            raise InvalidRequest(f"give the version once: {run_id!r} and version={version!r}")
        try:
            version = int(number)
        except ValueError:
            raise InvalidRequest(
                f"{run_id!r}: a version is 'name@N' with N a number (1, 2, ...)"
            ) from None
        run_id = name
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidRequest(f"version must be a number 1, 2, ...: got {version!r}")
        if not isinstance(run_id, str):
            raise InvalidRequest("version= pins one superrun: give one superrun name")
        validate_superrun_name(run_id)
    return run_id, version


def _versioned(storage: StorageList, name: str) -> SupportsVersions:
    """The frontend holding superrun ``name``'s document, which must keep versions."""
    _doc, frontend = storage.run_metadata(name)
    if not isinstance(frontend, SupportsVersions):
        raise InvalidRequest(
            f"superrun {name!r} is stored in {frontend.url} ({type(frontend).__name__}), "
            f"which keeps no versions: to keep them, {advice('icechunk')}"
        )
    return frontend


def pinned(resolver: Resolver, name: str, version: int) -> Resolver:
    """A resolver that sees superrun ``name`` (its document and its stored data) as
    version ``version`` defined it; everything else as now."""
    frontend = _versioned(resolver.storage, name)
    view = frontend.at_version(name, version)
    others = [f for f in resolver.storage if f is not frontend]
    storage = StorageList([view, *others])
    return Resolver(resolver.registry, storage, Catalog(storage), open_index=False)


def superrun_versions(resolver: Resolver, name: str) -> pd.DataFrame:
    """One row per version of superrun ``name``: ``version, time, commit, subruns,
    livetime, stored`` (the data types stored while it was the current version)."""
    validate_superrun_name(name)
    resolver.catalog.run_metadata(name)  # "superrun ... is not defined"
    frontend = _versioned(resolver.storage, name)
    rows = []
    for v in frontend.superrun_versions(name):
        doc = v.get("doc") or {}
        view = frontend.at_version(name, v["version"])
        stored = sorted(
            {DataKey.parse(k).data_type for k in view.keys(f"{name}-") if k.count("-") == 2}
        )
        rows.append(
            {
                "version": v["version"],
                "time": pd.Timestamp(v["time"]),
                "commit": v["commit"],
                "subruns": list(doc.get("sub_run_spec") or {}),
                "livetime": doc.get("livetime"),
                "stored": stored,
            }
        )
    return pd.DataFrame(
        rows, columns=["version", "time", "commit", "subruns", "livetime", "stored"]
    )

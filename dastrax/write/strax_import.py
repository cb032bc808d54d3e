"""Converting strax's stored data into dastrax storage (``dastrax import``).

:func:`import_strax` copies every complete group a :class:`~dastrax.storage.StraxDirectory`
serves (runs, and superruns strax stored, their chunks' ``subruns`` kept) and every run
document into any storage frontend, through the storage protocol only. Every row is read
back from the destination and compared with strax's, column by column. A commit is atomic,
so an import that is killed leaves nothing half-stored; run again, it skips what is
already stored (after verifying it) and converts the rest.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dastrax.core.lineage import DataKey
from dastrax.errors import DastraxError, InvalidRequest, RunMetadataNotAvailable
from dastrax.storage.abc import StorageFrontend, StoredGroup
from dastrax.storage.codecs import dtype_to_json
from dastrax.storage.strax.directory import StraxDirectory

__all__ = ["ImportItem", "ImportReport", "import_strax"]

#: the chunk-table entries that must survive an import unchanged
_CHUNK_FIELDS = ("start", "end", "n", "run_id", "subruns")


@dataclass(frozen=True)
class ImportItem:
    """One thing an import converted, skipped or could not convert.

    Attributes
    ----------
    kind
        ``"data"`` (a stored group, ``name`` its key) or ``"run document"`` (``name`` the
        run id).
    name
        The key or run id.
    reason
        Why it was skipped or failed (empty when converted).
    """

    kind: str
    name: str
    reason: str = ""


@dataclass
class ImportReport:
    """What :func:`import_strax` did: items ``converted``, ``skipped`` (already stored
    and verified) and ``failed`` (each with its reason)."""

    converted: list[ImportItem] = field(default_factory=list)
    skipped: list[ImportItem] = field(default_factory=list)
    failed: list[ImportItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return not self.failed

    def summary(self) -> str:
        """A few lines for people: the counts, then every failure and its reason."""
        lines = [
            f"converted {len(self.converted)}, skipped {len(self.skipped)} (already stored), "
            f"failed {len(self.failed)}"
        ]
        lines += [f"  FAILED {i.kind} {i.name}: {i.reason}" for i in self.failed]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def import_strax(
    source: StraxDirectory,
    dest: StorageFrontend,
    runs: str | Sequence[str] | None = None,
    progress: bool = False,
    compressor: dict[str, Any] | None = None,
) -> ImportReport:
    """Convert strax's stored data and run documents into dastrax storage.

    Parameters
    ----------
    source
        The strax data directory.
    dest
        A writable storage frontend (e.g. a ``ZarrDirectory``).
    runs
        Run ids (and superrun names) to import; default all.
    progress
        Print one line per item to stderr.
    compressor
        The compressor of the dastrax copy (default: dastrax's default).

    Returns
    -------
    ImportReport
        What was converted, skipped (already stored and verified) and what failed, why.

    Raises
    ------
    InvalidRequest
        ``source`` is not a StraxDirectory, ``dest`` is read-only, or ``runs`` names a
        run that ``source`` does not hold (nothing is written then).
    DataNotAvailable
        ``source`` does not exist.

    Examples
    --------
    >>> import tempfile, dastrax
    >>> from dastrax.write.strax_import import import_strax
    >>> report = import_strax(dastrax.StraxDirectory("strax_data"),
    ...                       dastrax.ZarrDirectory(tempfile.mkdtemp()))  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    converted 17, skipped 0 (already stored), failed 0
    """
    if not isinstance(source, StraxDirectory):
        raise InvalidRequest(
            f"import_strax reads a StraxDirectory, not {type(source).__name__}: give "
            "dastrax.StraxDirectory(path)"
        )
    if not isinstance(dest, StorageFrontend):
        raise InvalidRequest(
            f"import_strax writes to a storage frontend, not {type(dest).__name__}: give "
            "e.g. dastrax.ZarrDirectory(path)"
        )
    source.check_exists()
    dest.check_writable()
    keys = source.keys()
    docs = source.list_runs()
    if runs is not None:
        wanted = [runs] if isinstance(runs, str) else list(runs)
        known = set(docs) | {DataKey.parse(k).run_id for k in keys}
        unknown = [r for r in wanted if not isinstance(r, str) or r not in known]
        if unknown:
            raise InvalidRequest(
                f"runs {unknown} are not in {source.path}; it holds: "
                f"{', '.join(sorted(known)) or 'nothing'}"
            )
        keys = [k for k in keys if DataKey.parse(k).run_id in wanted]
        docs = [r for r in docs if r in wanted]
    keys.sort(key=lambda k: (k.startswith("_"), k))

    report = ImportReport()
    total = len(docs) + len(keys)
    for i, run_id in enumerate(docs):
        _record(report, _import_document(source, dest, run_id), i, total, progress)
    for i, key in enumerate(keys, start=len(docs)):
        _record(report, _import_group(source, dest, key, compressor), i, total, progress)
    if progress:
        print(report.summary(), file=sys.stderr)
    return report


def _record(
    report: ImportReport, result: tuple[str, ImportItem], i: int, total: int, progress: bool
) -> None:
    status, item = result
    getattr(report, status).append(item)
    if progress:
        note = f" ({item.reason})" if item.reason else ""
        print(f"[{i + 1}/{total}] {status} {item.kind} {item.name}{note}", file=sys.stderr)


def _import_document(
    source: StraxDirectory, dest: StorageFrontend, run_id: str
) -> tuple[str, ImportItem]:
    item = "run document"
    try:
        doc = source.run_metadata(run_id)
        try:
            stored = dest.run_metadata(run_id)
        except RunMetadataNotAvailable:
            stored = None
        if stored is not None:
            if _same(stored, doc):
                return "skipped", ImportItem(item, run_id, "already stored, identical")
            return "failed", ImportItem(
                item,
                run_id,
                f"{dest.url} already holds a different run document of {run_id}; delete it "
                "there to import strax's",
            )
        dest.write_run_metadata(run_id, doc)
        if not _same(dest.run_metadata(run_id), doc):
            return "failed", ImportItem(item, run_id, "read back, it differs from strax's")
    except DastraxError as e:
        return "failed", ImportItem(item, run_id, str(e))
    return "converted", ImportItem(item, run_id)


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _import_group(
    source: StraxDirectory, dest: StorageFrontend, key: str, compressor: dict[str, Any] | None
) -> tuple[str, ImportItem]:
    try:
        group = source.find(key)
        if group is None:
            return "failed", ImportItem("data", key, "strax did not finish writing it")
        stored = dest.find(key)
        if stored is not None:
            problem = verify(group, stored)
            if problem is None:
                return "skipped", ImportItem("data", key, "already stored, verified")
            return "failed", ImportItem(
                "data",
                key,
                f"{dest.url} already holds {key}, but it differs from strax's ({problem}); "
                "delete it there to import it again",
            )
        _copy(group, dest, compressor)
        problem = verify(group, dest.find(key))
        if problem is not None:
            dest.delete(key)
            return "failed", ImportItem("data", key, f"verification failed: {problem}")
    except Exception as e:  # noqa: BLE001 - an import reports every failure and goes on
        return "failed", ImportItem("data", key, f"{type(e).__name__}: {e}")
    return "converted", ImportItem("data", key)


def _copy(group: StoredGroup, dest: StorageFrontend, compressor: dict[str, Any] | None) -> None:
    """Write ``group`` into ``dest`` and commit it.

    Runs are appended chunk by chunk (the writer builds the chunk table); superruns are
    written by position, with their ``subrun`` column, and committed with strax's chunk
    table (its ``subruns`` kept).
    """
    meta = group.meta
    dtype = group.dtype
    writer = dest.writer(group.key, dtype, compressor, meta["data_kind"])
    commit = {
        "run_id": meta["run_id"],
        "data_type": meta["data_type"],
        "data_kind": meta["data_kind"],
        "lineage": meta["lineage"],
        "lineage_hash": meta["lineage_hash"],
        "chunk_target_size_mb": meta["chunk_target_size_mb"] or 200,
        "imported_from": {
            "format": "strax",
            "folder": meta["strax_folder"],
            "strax_version": meta["strax_version"],
        },
    }
    try:
        if meta.get("subruns") is None:
            for c in group.chunks:
                lo = c["row_start"]
                writer = writer.append(
                    group.read_rows(lo, lo + c["n"]),
                    c["start"],
                    c["end"],
                    subruns=c["subruns"],
                    run_id=c["run_id"],
                )
        else:
            n = meta["n_rows"]
            writer = writer.create_arrays(
                max([c["n"] for c in group.chunks] + [1]),
                total_rows=n,
                extra={"subrun": np.int32},
                attributes={"coordinates": "subrun"},
            )
            step = max(1, writer.chunk_rows)
            for lo in range(0, n, step):
                hi = min(n, lo + step)
                rows = group.read_rows(lo, hi)
                for name in dtype.names or ():
                    writer.array(name)[lo:hi] = rows[name]
                writer.array("subrun")[lo:hi] = group.read("subrun", lo, hi)
            writer = writer.with_rows(n)
            commit["subruns"] = list(meta["subruns"])
            commit["chunks"] = [
                {k: c[k] for k in c if k not in ("filename", "last_time")} for c in group.chunks
            ]
        writer.commit(commit)
    except BaseException:
        writer.abort()
        raise


def verify(source: StoredGroup, copy: StoredGroup | None) -> str | None:
    """Compare a copy with its source, every row of every column; None if identical,
    else what differs.

    Parameters
    ----------
    source, copy
        Two stored groups (``copy`` None: it is not stored).

    Returns
    -------
    str or None
    """
    if copy is None:
        return "the copy is not stored"
    if dtype_to_json(copy.dtype) != dtype_to_json(source.dtype):
        return f"dtype {copy.dtype} differs from {source.dtype}"
    for name in ("n_rows", "lineage_hash", "run_id", "data_type", "data_kind", "subruns"):
        if copy.meta.get(name) != source.meta.get(name):
            return f"{name} {copy.meta.get(name)!r} differs from {source.meta.get(name)!r}"
    if not _same(copy.meta.get("lineage"), source.meta.get("lineage")):
        return "the lineage differs"
    got = [{k: c.get(k) for k in _CHUNK_FIELDS} for c in copy.chunks]
    want = [{k: c.get(k) for k in _CHUNK_FIELDS} for c in source.chunks]
    if not _same(got, want):
        return "the chunk table (start, end, n, run_id, subruns) differs"
    for c in source.chunks:
        lo, hi = c["row_start"], c["row_start"] + c["n"]
        if lo == hi:
            continue
        for name in source.fields:
            a, b = source.read(name, lo, hi), copy.read(name, lo, hi)
            if a.dtype != b.dtype or a.shape != b.shape:
                return f"column {name} rows [{lo}, {hi}): {b.dtype}{b.shape} not {a.dtype}{a.shape}"
            if np.ascontiguousarray(a).tobytes() != np.ascontiguousarray(b).tobytes():
                return f"column {name} differs in rows [{lo}, {hi})"
    return None

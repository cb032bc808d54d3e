"""Storage: everything that touches bytes, behind one protocol.

:class:`StorageFrontend` (find a key, list keys, write and commit a group, delete; run
documents), :class:`StoredGroup` (a picklable handle that reads rows of a column) and
:class:`GroupWriter` (append, commit, abort) are the whole interface, and optional
capabilities are protocols checked with ``isinstance`` (:class:`SupportsVersions`,
:class:`SupportsRunDocumentPath`, :class:`SupportsChunkCopy`); the rest of dastrax never
imports zarr or fsspec or builds a path. Frontends are chosen by URL scheme
(:func:`frontend_for`, open to third parties through the entry point group
``dastrax.storage``):

- :class:`ZarrDirectory` (and strax's name for it, :class:`DataDirectory`): zarr v3
  groups on a local path or any fsspec URL;
- :class:`~dastrax.storage.zarr.memory.MemoryDirectory`: ``memory://``;
- ``StraxDirectory``: strax's own ``DataDirectory`` layout, read-only;
- ``IcechunkRepository``: an icechunk repository, every write a commit.

On-disk layout of a :class:`ZarrDirectory`::

    <root>/<run_id>-<data_type>-<lineage_hash>/   one zarr v3 group per stored key
        zarr.json                                 group attrs["dastrax"]: all metadata,
                                                  incl. the chunk table; consolidated
        <field>/zarr.json, <field>/c/<i>[/0...]    one array per field, rows first
    <root>/runs/<run_id>.json                     run documents
    <root>/runs/attachments/<run_id>/<name>.npy   arrays beside a run document
    <root>/.tmp-<key>-<uuid>/                     a group being written (never listed):
        dastrax-writer.json                       its writer (host, pid), the token that
                                                  its commit or its abort takes
        group/                                    the group, renamed to <root>/<key>
    <root>/.tmp-<key>-<uuid>[-<uuid>].trash/      a folder being deleted
    <root>/runs/<run_id>.json.tmp-<pid>-<uuid>-<host>  a run document being written
"""

from __future__ import annotations

from dastrax.storage.abc import (
    GroupWriter,
    StorageFrontend,
    StoredGroup,
    SupportsChunkCopy,
    SupportsRunDocumentPath,
    SupportsVersions,
)
from dastrax.storage.codecs import (
    DEFAULT_COMPRESSOR,
    dtype_from_json,
    dtype_to_json,
    normalize_compressor,
)
from dastrax.storage.grid import shared_chunk_rows, zarr_chunk_rows
from dastrax.storage.multi import StorageList
from dastrax.storage.registry import frontend_for
from dastrax.storage.zarr.directory import DataDirectory, ZarrDirectory

__all__ = [
    "DEFAULT_COMPRESSOR",
    "DataDirectory",
    "GroupWriter",
    "StorageFrontend",
    "StorageList",
    "StoredGroup",
    "SupportsChunkCopy",
    "SupportsRunDocumentPath",
    "SupportsVersions",
    "ZarrDirectory",
    "dtype_from_json",
    "dtype_to_json",
    "frontend_for",
    "normalize_compressor",
    "shared_chunk_rows",
    "zarr_chunk_rows",
]


def __getattr__(name: str):
    # optional frontends, imported when first used
    if name == "StraxDirectory":
        from dastrax.storage.strax.directory import StraxDirectory

        return StraxDirectory
    if name == "IcechunkRepository":
        from dastrax.storage.icechunk.repository import IcechunkRepository

        return IcechunkRepository
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

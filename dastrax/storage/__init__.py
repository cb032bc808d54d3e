"""Storage frontends: where stored data and run documents live.

The superrun and loader code talks to storage only through the small protocol of
:class:`StorageFrontend` (find a key, open its metadata, read a chunk's rows of a column,
write and commit a group, read and write run documents); :class:`ZarrDirectory` is its
implementation over a local directory or an fsspec URL.

On-disk layout of a :class:`ZarrDirectory`::

    <root>/<run_id>-<data_type>-<lineage_hash>/   one zarr v3 group per stored key
        zarr.json                                 group attrs["dastrax"]: all metadata,
                                                  incl. the chunk table; consolidated
        <field>/zarr.json, <field>/c/<i>[/0...]    one array per field, rows first
    <root>/runs/<run_id>.json                     run documents
    <root>/.tmp-<key>-<uuid>/                     a group being written (never listed):
        dastrax-writer.json                       its writer (host, pid), the token that
                                                  its commit or its abort takes
        group/                                    the group, renamed to <root>/<key>
    <root>/.tmp-<key>-<uuid>[-<uuid>].trash/      a folder being deleted
    <root>/runs/<run_id>.json.tmp-<pid>-<uuid>-<host>  a run document being written
"""

from __future__ import annotations

import warnings

from .codecs import (
    DEFAULT_COMPRESSOR,
    dtype_from_json,
    dtype_to_json,
    make_codecs,
    normalize_compressor,
)
from .directory import StorageFrontend, StorageList, ZarrDirectory
from .icechunk import IcechunkRepository as IcechunkRepository
from .layout import RUNS_DIR, STALE_TMP_SECONDS, TMP_PREFIX, WRITER_FILE
from .reading import read_block
from .writing import (
    CAPACITY,
    MAX_ZARR_CHUNK_BYTES,
    MIN_ZARR_CHUNK_BYTES,
    Appender,
    WriteTarget,
    finish_group,
    zarr_chunk_rows,
)

warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")

__all__ = [
    "CAPACITY",
    "DEFAULT_COMPRESSOR",
    "MAX_ZARR_CHUNK_BYTES",
    "MIN_ZARR_CHUNK_BYTES",
    "RUNS_DIR",
    "STALE_TMP_SECONDS",
    "TMP_PREFIX",
    "WRITER_FILE",
    "Appender",
    "StorageFrontend",
    "StorageList",
    "WriteTarget",
    "ZarrDirectory",
    "dtype_from_json",
    "dtype_to_json",
    "finish_group",
    "make_codecs",
    "normalize_compressor",
    "read_block",
    "zarr_chunk_rows",
]

"""The metadata document of a stored group, as every writing backend completes it.

A group's ``attrs["dastrax"]`` holds what its maker knows (run, data type, lineage, ...;
see :mod:`dastrax.storage.abc`) completed by its writer with what only the writer knows:
the dtype and codecs of its columns, its rows, its zarr chunk rows and its chunk table.
Backend-neutral: used by the zarr and icechunk writers alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dastrax._version import __version__

__all__ = ["group_document"]


def group_document(
    meta: dict[str, Any],
    *,
    dtype: list[Any],
    compressor: dict[str, Any],
    n_rows: int,
    zarr_chunk_rows: int,
    chunks: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """``meta`` completed with what a group's writer knows.

    Parameters
    ----------
    meta : dict
        The maker's metadata; its ``chunks``, if given and not empty, win over ``chunks``.
    dtype : list
        The rows' dtype as JSON (:func:`~dastrax.storage.codecs.dtype_to_json`).
    compressor : dict
        The codecs' description (:func:`~dastrax.storage.codecs.normalize_compressor`).
    n_rows : int
        Rows stored.
    zarr_chunk_rows : int
        Rows per zarr chunk of every column.
    chunks : sequence of dict
        The logical chunk table the writer recorded.

    Returns
    -------
    dict
        A new dict: ``meta`` plus ``dtype``, ``compressor``, ``dastrax_version``,
        ``n_rows``, ``zarr_chunk_rows`` and ``chunks``.

    Examples
    --------
    >>> doc = group_document({"run_id": "0"}, dtype=[["time", None, "<i8", []]],
    ...     compressor={"name": "none"}, n_rows=3, zarr_chunk_rows=3, chunks=[])
    >>> doc["n_rows"], doc["zarr_chunk_rows"], doc["chunks"]
    (3, 3, [])
    """
    return {
        **meta,
        "dtype": dtype,
        "compressor": compressor,
        "dastrax_version": __version__,
        "n_rows": int(n_rows),
        "zarr_chunk_rows": int(zarr_chunk_rows),
        "chunks": list(meta.get("chunks") or chunks),
    }

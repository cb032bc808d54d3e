"""The zarr chunk grid of a stored group, and the append chain's buffer: one decision
shared by every backend that writes zarr arrays (:mod:`dastrax.storage.zarr`,
:mod:`dastrax.storage.icechunk`) and by persist, which plans logical chunks on it."""

from __future__ import annotations

import numpy as np

from dastrax.core.chunks import field_dtype, field_names

__all__ = [
    "MAX_ZARR_CHUNK_BYTES",
    "MIN_ZARR_CHUNK_BYTES",
    "buffer_rows",
    "end_aligned_rows",
    "position_chunk_rows",
    "shared_chunk_rows",
    "zarr_chunk_rows",
]

#: largest uncompressed zarr chunk of one column, in bytes
MAX_ZARR_CHUNK_BYTES = 32 * 10**6


#: smallest uncompressed zarr chunk of the widest column, in bytes
MIN_ZARR_CHUNK_BYTES = 10**6


def zarr_chunk_rows(base_rows: int, itemsize: int) -> int:
    """Rows per zarr chunk of a group.

    ``base_rows`` (a typical logical chunk, so that logical chunks align with zarr
    chunks), raised so that the widest column's chunk (``itemsize`` bytes a row) holds at
    least :data:`MIN_ZARR_CHUNK_BYTES` (tiny chunks cost more in overhead than they
    save), or an even part of it so that none exceeds :data:`MAX_ZARR_CHUNK_BYTES`.
    """
    itemsize = max(1, int(itemsize))
    rows = max(1, int(base_rows), -(-MIN_ZARR_CHUNK_BYTES // itemsize))
    parts = max(1, -(-rows * itemsize // MAX_ZARR_CHUNK_BYTES))
    return max(1, -(-rows // parts))


def end_aligned_rows(rows: int, total_rows: int, itemsize: int) -> int:
    """``rows``, or the nearest number of rows within a factor of two of it (and within
    the chunk byte bounds) that divides ``total_rows``: then the last zarr chunk is
    full, and a group that later grows by appending (an extended superrun's next
    persist) writes only its new rows, never rewriting a partial last chunk."""
    if total_rows <= rows or total_rows % rows == 0:
        return rows
    itemsize = max(1, int(itemsize))
    lo = max(1, rows // 2, -(-MIN_ZARR_CHUNK_BYTES // itemsize))
    hi = min(2 * rows, max(rows, MAX_ZARR_CHUNK_BYTES // itemsize))
    for step in range(1, max(rows - lo, hi - rows) + 1):
        for d in (rows - step, rows + step):
            if lo <= d <= hi and total_rows % d == 0:
                return d
    return rows


def position_chunk_rows(
    base_rows: int, total_rows: int, itemsize: int, rows: int | None = None
) -> int:
    """Rows per zarr chunk of a group written by position (every writer's grid):
    ``rows`` if given, else :func:`zarr_chunk_rows` of ``base_rows`` made to divide
    ``total_rows`` where a near size does (:func:`end_aligned_rows`); never more than
    ``total_rows`` when that is known (a zarr chunk is stored whole, so a tiny array in
    a big chunk would cost a big chunk's bytes)."""
    if rows is None:
        rows = end_aligned_rows(zarr_chunk_rows(base_rows, itemsize), total_rows, itemsize)
    if total_rows:
        rows = min(rows, total_rows)
    return int(rows)


def buffer_rows(
    tail: np.ndarray | None, data: np.ndarray, chunk_rows: int
) -> tuple[int, np.ndarray | None, np.ndarray]:
    """The append chain's buffer (every writer's): ``data`` added to the rows not yet
    written (``tail``), and what of them fills whole zarr chunks.

    Returns ``(chunk_rows, whole, tail)``: the rows per zarr chunk (sized by the first
    non-empty ``data``, :func:`zarr_chunk_rows`, if still 0), the rows to write now (a
    multiple of ``chunk_rows``; None if not a whole zarr chunk is there yet) and the rows
    left for the next append (the last partial zarr chunk, written by the commit).
    """
    tail = data if tail is None or not len(tail) else np.concatenate([tail, data])
    if not chunk_rows and len(data):
        widest = max(field_dtype(data.dtype, f).itemsize for f in field_names(data.dtype))
        chunk_rows = zarr_chunk_rows(len(data), widest)
    full = (len(tail) // chunk_rows) * chunk_rows if chunk_rows else 0
    if not full:
        return chunk_rows, None, tail
    return chunk_rows, tail[:full], tail[full:].copy()


def shared_chunk_rows(source_rows, itemsize: int) -> int:
    """The zarr chunk rows that all of ``source_rows`` (zarr chunk rows of the groups a
    group is written from; 0 where unknown) share, if its chunk of the widest column
    (``itemsize`` bytes a row) lies within [:data:`MIN_ZARR_CHUNK_BYTES`,
    :data:`MAX_ZARR_CHUNK_BYTES`] — writing with it, their chunk files can be copied as
    they are — else 0."""
    sizes = {int(r or 0) for r in source_rows}
    if len(sizes) != 1:
        return 0
    (rows,) = sizes
    if rows and MIN_ZARR_CHUNK_BYTES <= rows * max(1, int(itemsize)) <= MAX_ZARR_CHUNK_BYTES:
        return rows
    return 0

"""Chunks: time-bounded pieces of a run's data, and the arithmetic on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk", "chunk_boundaries", "merge_columns"]


@dataclass
class Chunk:
    """One chunk of data: the rows of ``data_type`` in ``[start, end)`` of ``run_id``.

    ``subruns`` is, for a chunk of a superrun, ``{subrun: {"start": s, "end": e}}``.
    """

    data: np.ndarray
    start: int
    end: int
    run_id: str
    data_type: str
    subruns: dict | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return (
            f"Chunk({self.run_id}.{self.data_type}: [{self.start}, {self.end}), "
            f"{len(self.data)} rows, {self.data.nbytes / 1e6:.3f} MB)"
        )


def merge_dtype(dtypes: list[np.dtype]) -> np.dtype:
    """The union of the fields of ``dtypes`` (first occurrence of a name wins)."""
    fields, seen = [], set()
    for dt in dtypes:
        for name in dt.names:
            if name in seen:
                continue
            seen.add(name)
            sub, _off, *title = dt.fields[name]
            fields.append(((title[0], name) if title else name, sub))
    return np.dtype(fields)


def merge_columns(arrays: list[np.ndarray]) -> np.ndarray:
    """Merge structured arrays of the same rows column-wise into one."""
    if len(arrays) == 1:
        return arrays[0]
    n = {len(a) for a in arrays}
    if len(n) != 1:
        raise ValueError(f"cannot merge arrays of different lengths {sorted(n)} column-wise")
    out = np.empty(n.pop(), merge_dtype([a.dtype for a in arrays]))
    for name in out.dtype.names:
        for a in arrays:
            if name in a.dtype.names:
                out[name] = a[name]
                break
    return out


def chunk_boundaries(time: np.ndarray, end: np.ndarray, row_bytes: int, target_bytes: int):
    """Row indices where stored chunks begin, for about ``target_bytes`` per chunk.

    A boundary goes before row ``k`` only if every earlier row ends at or before
    ``time[k]``, so a chunk may exceed the target by one group of overlapping rows.
    Returns the start rows of the chunks after the first (possibly empty).

    >>> t = np.arange(10); e = t + 1
    >>> chunk_boundaries(t, e, row_bytes=1, target_bytes=4).tolist()
    [4, 8]
    """
    n = len(time)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    per_chunk = max(1, int(target_bytes // max(1, row_bytes)))
    if per_chunk >= n:
        return np.zeros(0, dtype=np.int64)
    reach = np.maximum.accumulate(end)
    # allowed[k]: a boundary may go before row k (k >= 1)
    allowed = np.flatnonzero(reach[:-1] <= time[1:]) + 1
    out = []
    pos = 0
    while True:
        i = np.searchsorted(allowed, pos + per_chunk)
        if i >= len(allowed):
            break
        pos = int(allowed[i])
        out.append(pos)
    return np.asarray(out, dtype=np.int64)

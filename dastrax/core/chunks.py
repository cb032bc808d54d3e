"""Chunks: time-bounded pieces of a run's data, and the arithmetic on them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dastrax.errors import CorruptData

__all__ = [
    "Chunk",
    "chunk_boundaries",
    "chunk_entry",
    "chunk_stats",
    "damaged_chunk_table",
    "endtime",
    "field_dtype",
    "field_names",
    "fields_of",
    "merge_columns",
    "table_intervals",
    "table_rows",
    "table_span",
]

#: a field of a structured dtype, as ``numpy.dtype.fields`` gives it: ``(dtype, offset)``
#: or ``(dtype, offset, title)``
FieldEntry = tuple[np.dtype[Any], int] | tuple[np.dtype[Any], int, Any]


def field_names(dtype: np.dtype[Any]) -> tuple[str, ...]:
    """The field names of a structured dtype, in order.

    Raises
    ------
    TypeError
        ``dtype`` has no fields.

    Examples
    --------
    >>> field_names(np.dtype([("time", "i8"), ("x", "f4")]))
    ('time', 'x')
    """
    names = dtype.names
    if names is None:
        raise TypeError(f"not a structured dtype: {dtype}")
    return names


def fields_of(dtype: np.dtype[Any]) -> Mapping[str, FieldEntry]:
    """``dtype.fields`` of a structured dtype (keyed by name, and by title if any).

    Raises
    ------
    TypeError
        ``dtype`` has no fields.

    Examples
    --------
    >>> fields_of(np.dtype([("time", "i8")]))["time"][0]
    dtype('int64')
    """
    fields = dtype.fields
    if fields is None:
        raise TypeError(f"not a structured dtype: {dtype}")
    return fields


def field_dtype(dtype: np.dtype[Any], name: str) -> np.dtype[Any]:
    """The dtype of field ``name`` of a structured dtype (``KeyError`` if it has none).

    Examples
    --------
    >>> field_dtype(np.dtype([("time", "i8"), ("w", "f4", (3,))]), "w")
    dtype(('<f4', (3,)))
    """
    return fields_of(dtype)[name][0]


def endtime(arr: np.ndarray) -> np.ndarray:
    """The end of each row: the ``endtime`` field, or ``time + length * dt``.

    >>> a = np.zeros(2, [("time", np.int64), ("length", np.int32), ("dt", np.int16)])
    >>> a["time"], a["length"], a["dt"] = [0, 10], 3, 2
    >>> endtime(a).tolist()
    [6, 16]
    """
    names = arr.dtype.names or ()
    if "endtime" in names:
        return arr["endtime"]
    return arr["time"] + arr["length"].astype(np.int64) * arr["dt"].astype(np.int64)


def chunk_stats(data: np.ndarray) -> dict[str, list]:
    """Minimum and maximum of each scalar numeric field of ``data``, for the chunk table.

    Fields with a shape, strings, and float fields holding NaN or infinities are left
    out (a selection then reads such a chunk). Booleans count as 0/1.

    Parameters
    ----------
    data : np.ndarray
        A structured array (the rows of one chunk).

    Returns
    -------
    dict
        ``{field: [min, max]}`` of Python ints/floats (JSON-able); empty for no rows.

    Examples
    --------
    >>> chunk_stats(np.array([(1, 2.5), (3, -1.0)], [("a", "i4"), ("b", "f8")]))
    {'a': [1, 3], 'b': [-1.0, 2.5]}
    """
    out: dict[str, list] = {}
    if not len(data) or data.dtype.names is None:
        return out
    for name in data.dtype.names:
        col = data[name]
        if col.ndim != 1:
            continue
        kind = col.dtype.kind
        if kind in "iub":
            lo, hi = col.min(), col.max()
            out[name] = [int(lo), int(hi)]
        elif kind == "f":
            lo, hi = float(col.min()), float(col.max())
            if math.isfinite(lo) and math.isfinite(hi):
                out[name] = [lo, hi]
    return out


def chunk_entry(
    chunk_i: int,
    start: int,
    end: int,
    row_start: int,
    data: np.ndarray,
    run_id: str | None = None,
    subruns: dict | None = None,
) -> dict:
    """The chunk-table entry of logical chunk ``chunk_i`` ``[start, end)`` holding
    ``data`` from row ``row_start`` of its group (every writer records the same)."""
    n = len(data)
    return {
        "chunk_i": int(chunk_i),
        "start": int(start),
        "end": int(end),
        "row_start": int(row_start),
        "n": int(n),
        "first_time": int(data["time"][0]) if n else None,
        "last_endtime": int(endtime(data).max()) if n else None,
        "nbytes": int(data.nbytes),
        "run_id": run_id,
        "subruns": subruns,
        "stats": chunk_stats(data) or None,
    }


def damaged_chunk_table(where: str, error: BaseException) -> CorruptData:
    """The error of a stored group whose chunk table lacks a field (or holds a value that
    is not an integer): names the group (``where``: its key and location) and the fix."""
    return CorruptData(
        f"the chunk table of {where or 'a stored group'} is damaged ({error!r} in its chunk "
        "entries, which need start, end, row_start, n): delete the group and make it again"
    )


def table_rows(chunks: Sequence[Mapping[str, Any]], where: str) -> int:
    """The number of rows a stored group's chunk table holds (the sum of its ``n``).

    Raises
    ------
    CorruptData
        An entry lacks ``n`` or its ``n`` is not an integer; names ``where``.

    Examples
    --------
    >>> table_rows([{"n": 3}, {"n": 0}, {"n": 4}], "0-peaks-abc in ./data")
    7
    """
    try:
        return sum(int(c["n"]) for c in chunks)
    except (KeyError, TypeError, ValueError) as e:
        raise damaged_chunk_table(where, e) from None


def table_intervals(chunks: Sequence[Mapping[str, Any]], where: str) -> list[tuple[int, int]]:
    """The ``[start, end)`` of every entry of a stored group's chunk table.

    Raises
    ------
    CorruptData
        An entry lacks ``start`` or ``end`` (or they are not integers); names ``where``.
    """
    try:
        return [(int(c["start"]), int(c["end"])) for c in chunks]
    except (KeyError, TypeError, ValueError) as e:
        raise damaged_chunk_table(where, e) from None


def table_span(chunks: Sequence[Mapping[str, Any]], i: int, where: str) -> tuple[int, int]:
    """The group rows ``[lo, hi)`` of entry ``i`` of a stored group's chunk table.

    Raises
    ------
    CorruptData
        The entry lacks ``row_start`` or ``n`` (or they are not integers); names
        ``where``.

    Examples
    --------
    >>> table_span([{"row_start": 0, "n": 3}, {"row_start": 3, "n": 4}], 1, "g")
    (3, 7)
    """
    try:
        c = chunks[i]
        lo = int(c["row_start"])
        return lo, lo + int(c["n"])
    except (KeyError, TypeError, ValueError) as e:
        raise damaged_chunk_table(where, e) from None


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

    @property
    def is_superrun(self) -> bool:
        """Whether this is a chunk of a superrun (with ``subruns`` information)."""
        return bool(self.subruns) and str(self.run_id).startswith("_")

    def _subrun(self, index: int) -> dict | None:
        subruns = self.subruns
        if not self.is_superrun or subruns is None:
            return None
        run_id = list(subruns)[index]
        span = subruns[run_id]
        return {"run_id": run_id, "start": span["start"], "end": span["end"]}

    @property
    def first_subrun(self) -> dict | None:
        """``{"run_id", "start", "end"}`` of the chunk's first subrun (superruns), else None."""
        return self._subrun(0)

    @property
    def last_subrun(self) -> dict | None:
        """``{"run_id", "start", "end"}`` of the chunk's last subrun (superruns), else None."""
        return self._subrun(-1)

    def __repr__(self) -> str:
        return (
            f"Chunk({self.run_id}.{self.data_type}: [{self.start}, {self.end}), "
            f"{len(self.data)} rows, {self.data.nbytes / 1e6:.3f} MB)"
        )


def merge_dtype(dtypes: list[np.dtype]) -> np.dtype:
    """The union of the fields of ``dtypes`` (first occurrence of a name wins)."""
    fields: list[tuple[str | tuple[Any, str], np.dtype[Any]]] = []
    seen: set[str] = set()
    for dt in dtypes:
        for name in field_names(dt):
            if name in seen:
                continue
            seen.add(name)
            sub, _off, *title = fields_of(dt)[name]
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
    for name in field_names(out.dtype):
        for a in arrays:
            if name in field_names(a.dtype):
                out[name] = a[name]
                break
    return out


def chunk_boundaries(
    time: np.ndarray, end: np.ndarray, row_bytes: int, target_bytes: int
) -> npt.NDArray[np.int64]:
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
    out: list[int] = []
    pos = 0
    while True:
        i = np.searchsorted(allowed, pos + per_chunk)
        if i >= len(allowed):
            break
        pos = int(allowed[i])
        out.append(pos)
    return np.asarray(out, dtype=np.int64)

"""Time windows over stored chunks, vectorised (SEMANTICS.md, "Loading a superrun").

Windows are ``(k, 2)`` int64 arrays of sorted, non-overlapping ``[start, end)`` ns
ranges. This module holds the range algebra (:func:`union`, :func:`intersect`,
:func:`check_ranges`) and :func:`select_rows`, which maps windows onto the chunk table of
one stored group: one :class:`ChunkSelection` per chunk with selected rows, reading the
``time``/end columns only of the chunks that some window cuts. Nothing here loops over
windows in Python; the loops are over chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from dastrax.core.chunks import damaged_chunk_table
from dastrax.errors import SuperrunDefinitionError

__all__ = [
    "ChunkSelection",
    "Selection",
    "as_windows",
    "check_ranges",
    "chunk_table",
    "intersect",
    "select_all",
    "select_rows",
    "union",
]

#: the fields every chunk-table entry has; the times may be None for empty chunks
_NEEDED_FIELDS = ("start", "end", "row_start", "n")
_TIME_FIELDS = ("first_time", "last_endtime")
_TABLE_FIELDS = _NEEDED_FIELDS + _TIME_FIELDS


@dataclass(slots=True)
class ChunkSelection:
    """The rows of one stored chunk that a load keeps.

    ``lo, hi`` are global row numbers of the group; ``index`` (sorted, relative to
    ``lo``) picks rows of ``[lo, hi)``, or is None when all of ``[lo, hi)`` are kept;
    ``n`` is the number of rows kept; ``start, end`` the part of the chunk's
    ``[start, end)`` that the windows cover (hull), for chunk metadata. (Not a named
    tuple: its field ``index`` would hide the tuple method of that name.)
    """

    chunk_i: int
    lo: int
    hi: int
    n: int
    start: int
    end: int
    index: np.ndarray | None


#: the name the loader uses
Selection = ChunkSelection


def as_windows(ranges) -> np.ndarray:
    """``ranges`` (pairs, or a ``(k, 2)`` array) as a ``(k, 2)`` int64 array (no checks)."""
    arr = np.asarray(ranges, dtype=np.int64)
    return arr.reshape(-1, 2) if arr.size else np.empty((0, 2), np.int64)


def union(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The union of intervals ``[starts, ends)`` as sorted, disjoint windows.

    Touching intervals (one ends where the next starts) merge.

    Parameters
    ----------
    starts, ends : np.ndarray
        int64 arrays of the same length, ``ends >= starts``.

    Returns
    -------
    np.ndarray
        ``(k, 2)`` int64 windows.

    Examples
    --------
    >>> union(np.array([5, 0, 2]), np.array([6, 3, 4])).tolist()
    [[0, 4], [5, 6]]
    """
    starts = np.asarray(starts, np.int64)
    ends = np.asarray(ends, np.int64)
    if not len(starts):
        return np.empty((0, 2), np.int64)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    first = np.empty(len(s), bool)
    first[0] = True
    first[1:] = s[1:] > e[:-1]
    begin = np.flatnonzero(first)
    last = np.append(begin[1:] - 1, len(s) - 1)
    return np.stack([s[begin], e[last]], axis=1)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The intersection of two sets of sorted, disjoint windows (empty pieces dropped).

    Examples
    --------
    >>> intersect(np.array([[0, 10], [20, 30]]), np.array([[5, 25]])).tolist()
    [[5, 10], [20, 25]]
    """
    a, b = as_windows(a), as_windows(b)
    if not len(a) or not len(b):
        return np.empty((0, 2), np.int64)
    j0 = np.searchsorted(b[:, 1], a[:, 0], side="right")  # first b ending after a starts
    j1 = np.searchsorted(b[:, 0], a[:, 1], side="left")  # b starting before a ends
    counts = np.maximum(j1 - j0, 0)
    total = int(counts.sum())
    if not total:
        return np.empty((0, 2), np.int64)
    ai = np.repeat(np.arange(len(a)), counts)
    offsets = np.cumsum(counts) - counts
    bi = np.repeat(j0, counts) + (np.arange(total) - np.repeat(offsets, counts))
    s = np.maximum(a[ai, 0], b[bi, 0])
    e = np.minimum(a[ai, 1], b[bi, 1])
    keep = s < e
    return np.stack([s[keep], e[keep]], axis=1)


def check_ranges(arr: np.ndarray, run_id: str) -> np.ndarray:
    """``arr`` as sorted windows of subrun ``run_id``, refusing bad ones.

    Raises
    ------
    SuperrunDefinitionError
        If a range ends before (or where) it starts, two ranges overlap, or none is given.
    """
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu":
        raise SuperrunDefinitionError(
            f"subrun {run_id!r}: time ranges must be (start, end) pairs of ns integers; "
            f"got an array of shape {arr.shape} and dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64, copy=False)
    if not len(arr):
        raise SuperrunDefinitionError(f"subrun {run_id!r}: no time ranges given")
    bad = np.flatnonzero(arr[:, 1] <= arr[:, 0])
    if len(bad):
        s, e = arr[bad[0]].tolist()
        raise SuperrunDefinitionError(
            f"subrun {run_id!r}: time range ({s}, {e}) ends before it starts"
        )
    if np.any(arr[1:, 0] < arr[:-1, 0]):
        arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    over = np.flatnonzero(arr[1:, 0] < arr[:-1, 1])
    if len(over):
        (s0, e0), (s1, e1) = arr[over[0]].tolist(), arr[over[0] + 1].tolist()
        raise SuperrunDefinitionError(
            f"subrun {run_id!r}: time ranges ({s0}, {e0}) and ({s1}, {e1}) overlap in "
            f"[{s1}, {min(e0, e1)}); the same data may not appear twice in a superrun"
        )
    return arr


def chunk_table(chunks) -> dict[str, np.ndarray]:
    """The chunk table (a list of chunk dicts, a dict of arrays or a record array) as a
    dict of int64 arrays ``chunk_i, start, end, row_start, n, first_time, last_endtime``
    (``chunk_i``: the chunks' own numbers if given, else their positions; a filtered
    table, e.g. by :func:`dastrax.core.rowfilter.chunks_may_match`, keeps its numbers)."""
    if isinstance(chunks, np.ndarray):
        names = chunks.dtype.names
        chunks = {f: chunks[f] for f in names}
    if isinstance(chunks, Mapping):
        out = {f: np.asarray(chunks[f], np.int64).reshape(-1) for f in _TABLE_FIELDS}
        n = len(out["n"])
        out["chunk_i"] = np.asarray(chunks.get("chunk_i", np.arange(n)), np.int64)
        return out
    rows = list(chunks)
    out = {}
    for f in _NEEDED_FIELDS:  # a missing one is a KeyError: never read as row 0
        out[f] = np.array([int(c[f]) for c in rows], np.int64).reshape(-1)
    for f in _TIME_FIELDS:
        # empty chunks may carry no first_time/last_endtime; they select nothing
        out[f] = np.array([int(c.get(f) or 0) for c in rows], np.int64).reshape(-1)
    out["chunk_i"] = np.array([int(c.get("chunk_i", i)) for i, c in enumerate(rows)], np.int64)
    out["last_time"] = np.array([_last_time(c) for c in rows], np.int64).reshape(-1)
    out["first_end"] = np.array([_first_end(c) for c in rows], np.int64).reshape(-1)
    return out


def _first_end(chunk: Mapping) -> int:
    """A lower bound of the rows' ends: their earliest ``endtime`` from the stats, or
    ``first_time + 1`` where no row has zero length (``length`` and ``dt`` at least 1)."""
    stats = chunk.get("stats") or {}
    first = int(chunk.get("first_time") or 0)
    if "endtime" in stats:
        return int(stats["endtime"][0])
    if stats.get("length", [0])[0] >= 1 and stats.get("dt", [0])[0] >= 1:
        return first + 1
    return first


def _last_time(chunk: Mapping) -> int:
    """The latest row ``time`` of a chunk: from its stats (or strax's ``last_time``); else
    its ``last_endtime``, which bounds it."""
    stats = chunk.get("stats") or {}
    if "time" in stats:
        return int(stats["time"][1])
    if chunk.get("last_time") is not None:
        return int(chunk["last_time"])
    return int(chunk.get("last_endtime") or 0)


def select_all(chunks) -> list[ChunkSelection]:
    """Every non-empty chunk whole (a load without windows)."""
    if isinstance(chunks, list):  # a stored chunk table: no arrays needed
        return [
            ChunkSelection(
                int(c.get("chunk_i", i)),
                int(c["row_start"]),
                int(c["row_start"]) + int(c["n"]),
                int(c["n"]),
                int(c["start"]),
                int(c["end"]),
                None,
            )
            for i, c in enumerate(chunks)
            if int(c["n"])
        ]
    t = chunk_table(chunks)
    return [
        ChunkSelection(int(i), int(lo), int(lo + n), int(n), int(s), int(e), None)
        for i, lo, n, s, e in zip(
            t["chunk_i"][t["n"] > 0],
            t["row_start"][t["n"] > 0],
            t["n"][t["n"] > 0],
            t["start"][t["n"] > 0],
            t["end"][t["n"] > 0],
        )
    ]


def select_rows(
    chunks,
    windows: np.ndarray | None,
    read_time_end: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    where: str = "",
) -> list[ChunkSelection]:
    """The rows of one stored group that ``windows`` keep, grouped per chunk.

    A row is kept when ``window_start <= time`` and ``endtime <= window_end`` for some
    window. Chunks whose rows all lie inside one window are kept whole without reading
    anything; for every other chunk that some window reaches, ``read_time_end(lo, hi)``
    is called once for its rows and all windows select at once (``searchsorted``).

    Parameters
    ----------
    chunks
        The chunk table of one stored group: list of chunk dicts, dict of arrays or a
        record array with ``start, end, row_start, n, first_time, last_endtime``.
    windows : np.ndarray or None
        ``(k, 2)`` int64 sorted, non-overlapping ``[start, end)``; None: every row.
    read_time_end : callable
        ``(lo, hi) -> (time, endtime)`` arrays of the group's rows ``[lo, hi)``.
    where : str
        The group (key and location), named by the error of a damaged chunk table.

    Returns
    -------
    list of ChunkSelection
        One per chunk with at least one row kept, in chunk order.

    Examples
    --------
    >>> table = {"start": [0, 10], "end": [10, 20], "row_start": [0, 10], "n": [10, 10],
    ...          "first_time": [0, 10], "last_endtime": [10, 20]}
    >>> def read(lo, hi):
    ...     t = np.arange(lo, hi)
    ...     return t, t + 1
    >>> picked = select_rows(table, np.array([[2, 4], [10, 20]]), read)
    >>> [(s.chunk_i, s.lo, s.hi, s.n) for s in picked]
    [(0, 2, 4, 2), (1, 10, 20, 10)]

    Raises
    ------
    CorruptData
        The chunk table lacks a field or holds values that are not integers.
    """
    try:
        if windows is None:
            return select_all(chunks)
        t = chunk_table(chunks)
    except (KeyError, TypeError, ValueError) as e:
        raise damaged_chunk_table(where, e) from None
    return _select_windows(t, windows, read_time_end)


def _select_windows(t: dict, windows, read_time_end) -> list[ChunkSelection]:
    w = as_windows(windows)
    if not len(w) or not len(t["n"]):
        return []
    ws, we = w[:, 0], w[:, 1]
    # windows that can hold a row of the chunk: end >= first_time, start <= last_endtime
    j0 = np.searchsorted(we, t.get("first_end", t["first_time"]), side="left")
    last_time = t.get("last_time", t["last_endtime"])
    j1 = np.searchsorted(ws, last_time, side="right")
    # windows overlapping the chunk's [start, end), for the covered span
    k0 = np.searchsorted(we, t["start"], side="right")
    k1 = np.searchsorted(ws, t["end"], side="left")
    touched = (t["n"] > 0) & (j1 > j0)
    jc = np.minimum(j0, len(w) - 1)
    whole = touched & (j1 - j0 == 1) & (ws[jc] <= t["first_time"]) & (t["last_endtime"] <= we[jc])
    out: list[ChunkSelection] = []
    for i in np.flatnonzero(touched).tolist():
        ci = int(t["chunk_i"][i])
        lo, n = int(t["row_start"][i]), int(t["n"][i])
        cs, ce = int(t["start"][i]), int(t["end"][i])
        a, b = int(k0[i]), int(k1[i])
        if b > a:
            span_s, span_e = max(cs, int(ws[a])), min(ce, int(we[b - 1]))
        else:  # rows reach past the chunk bounds into a window: use the rows' span
            span_s, span_e = int(t["first_time"][i]), int(t["last_endtime"][i])
        if whole[i]:
            out.append(ChunkSelection(ci, lo, lo + n, n, span_s, span_e, None))
            continue
        time, endtime = read_time_end(lo, lo + n)
        sub_s, sub_e = ws[j0[i] : j1[i]], we[j0[i] : j1[i]]
        j = np.searchsorted(sub_s, time, side="right") - 1
        keep = (j >= 0) & (endtime <= sub_e[np.maximum(j, 0)])
        index = np.flatnonzero(keep)
        if not len(index):
            continue
        first, last = int(index[0]), int(index[-1])
        if last - first + 1 == len(index):
            out.append(
                ChunkSelection(ci, lo + first, lo + last + 1, len(index), span_s, span_e, None)
            )
        else:
            out.append(
                ChunkSelection(
                    ci, lo + first, lo + last + 1, len(index), span_s, span_e, index - first
                )
            )
    return out

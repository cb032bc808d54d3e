"""Loading stored data lazily: one dask block per stored chunk (or per piece of a chunk
that a time range cuts), built from the stores' metadata alone.

A load is a list of :class:`Piece` s in time order — row ranges of stored groups — from
which the dask arrays, the numpy result, the chunk iterator and the xarray Dataset are all
made. Regular runs, lists of runs, unstored superruns (pieces of many subruns' groups) and
stored superruns (pieces of one group) are all the same thing here.
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

from dastrax.core.chunks import endtime, table_rows
from dastrax.core.rowfilter import Selection
from dastrax.core.windows import as_windows, select_rows
from dastrax.errors import CorruptData, InvalidRequest
from dastrax.storage import StoredGroup

if TYPE_CHECKING:
    import xarray as xr
    from dask.typing import Key

    from dastrax.core.chunks import Chunk
    from dastrax.core.scheduling import Scheduler

__all__ = ["Piece", "Source", "assemble", "dataset", "iter_chunks", "pieces_for"]

#: computing paths merge neighbouring pieces into tasks of at least this many bytes
MERGE_BYTES = 16 * 10**6
#: ... and split pieces bigger than this (at zarr chunk boundaries)
SPLIT_BYTES = 32 * 10**6
#: results smaller than this, from fewer parts than that, are read in the calling thread
#: (measured faster than two); many small parts (thousands of tiny subruns) use threads
SMALL_LOAD_BYTES = 64 * 10**6
SMALL_LOAD_PARTS = 256
#: ... unless their parts span fewer bytes than this on average: reading tiny chunk files
#: is system calls and Python, and threads then only fight over the GIL (the 20 000 files
#: of 5 000 tiny subruns: 1.2-1.3 s in the calling thread against 2.4-2.6 s on two)
TINY_PART_BYTES = 256 * 2**10
#: ... and are read in about this many blocks
MANY_PARTS_BLOCKS = 16

#: ``{field: (data_type, field dtype)}``: the loaded columns and the type each is read from
Columns = dict[str, tuple[str, np.dtype]]
#: the ``chunks=`` of a lazy load (see :func:`rows_per_block`)
ChunksArg = str | int | Mapping[str, str | int] | None
#: a chunk's ``subruns``: ``{subrun: {"start": s, "end": e}}``
Subruns = dict[str, dict[str, int]]
#: one part of a block: ``(groups, lo, hi, index, n, label)`` (see :class:`BlockSpec`)
Part = tuple[dict[str, StoredGroup], int, int, np.ndarray | None, int, str]
#: a numpy field of a loaded array: ``(name or (title, name), dtype)``
FieldSpec = tuple[str | tuple[object, str], np.dtype | str]


@dataclass(frozen=True)
class Source:
    """Stored groups of one run holding the requested types (same rows, same chunks)."""

    run_id: str  # the run whose store this is (a regular run or a stored superrun)
    label: str  # the run id the user asked for (``run_id`` field of get_array)
    groups: tuple[tuple[str, StoredGroup], ...]  # ((data_type, StoredGroup), ...)
    subrun: int  # index of its (first) subrun in the load's subrun list
    ranges: np.ndarray | None  # (k, 2) windows (start, end), or None for everything
    stored: bool = False  # a stored superrun: rows carry their subrun in a 'subrun' column


@dataclass
class Piece:
    """Rows ``[lo, hi)`` (then ``[index]``) of stored chunk ``chunk_i`` of a source."""

    source: Source
    chunk_i: int
    lo: int
    hi: int
    n: int
    start: int
    end: int
    index: np.ndarray | None = None

    @property
    def subruns(self) -> Subruns | None:
        subruns: Subruns | None = self.source.groups[0][1].chunks[self.chunk_i].get("subruns")
        return subruns


def end_fields(dtype: np.dtype) -> list[str]:
    names = dtype.names or ()
    return ["endtime"] if "endtime" in names else ["length", "dt"]


def field_specs(dtype: np.dtype) -> Mapping[str, tuple[np.dtype, int] | tuple[np.dtype, int, Any]]:
    """``dtype.fields``: ``{name: (dtype, offset[, title])}``, titles as keys too (empty for
    a plain dtype)."""
    return dtype.fields or {}


def field_title(dtype: np.dtype, name: str) -> object:
    """The title of field ``name`` of ``dtype``, or None if it has none."""
    spec = field_specs(dtype)[name]
    return spec[2] if len(spec) > 2 else None


def _time_end_reader(group: StoredGroup) -> Callable[[int, int], tuple[np.ndarray, np.ndarray]]:
    names = ["time", *end_fields(group.dtype)]

    def read(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        rows = group.read_rows(lo, hi, names=names)
        return rows["time"], endtime(rows)

    return read


def pieces_for(source: Source) -> list[Piece]:
    """The pieces of a source: one per stored chunk that its ranges touch.

    All the windows of a chunk select their rows at once (vectorised, see
    :func:`dastrax.core.windows.select_rows`): a chunk's ``time`` and end columns are read
    once, and only for chunks that some window cuts, however many windows there are.
    """
    _, group = source.groups[0]
    # types of one kind hold the same rows in the same order, so rows [lo, hi) of the
    # first group's chunks are the same rows in every group, however each was chunked
    # (e.g. a superrun's types persisted one at a time with different row sizes)
    n_rows = table_rows(group.chunks, f"{group.key} in {group.url}")
    for dt, g in source.groups[1:]:
        if table_rows(g.chunks, f"{g.key} in {g.url}") != n_rows:
            raise InvalidRequest(
                f"{group.key} and {g.key} hold different numbers of rows, so "
                f"{source.groups[0][0]} and {dt} cannot be merged column-wise; load them "
                "separately"
            )
    windows = None if source.ranges is None else as_windows(source.ranges)
    return [
        Piece(source, c.chunk_i, c.lo, c.hi, c.n, c.start, c.end, c.index)
        for c in select_rows(
            group.chunks, windows, _time_end_reader(group), f"{group.key} in {group.url}"
        )
    ]


def select_pieces(
    pieces: list[Piece], selection: str | Sequence[str] | Selection, columns: Columns
) -> list[Piece]:
    """``pieces`` cut to the rows ``selection`` keeps (SEMANTICS.md, "Selections").

    Chunks whose stored per-column minima and maxima show that no row can match are
    dropped unread; of the others, the columns the selection names are read and
    evaluated, and each piece keeps only its matching rows (as a row index).
    """
    sel = selection if isinstance(selection, Selection) else Selection(selection)
    sel.check(columns)
    out = []
    for p in pieces:
        stats: dict[str, Any] = {}
        for _dt, g in reversed(p.source.groups):
            if len(g.chunks) > p.chunk_i and g.chunks[p.chunk_i].get("stats"):
                stats.update(g.chunks[p.chunk_i]["stats"])
        if p.source.groups[0][1].chunks is not None and stats and not sel.may_match(stats):
            continue
        dtype = np.dtype([(c, columns[c][1]) for c in sel.columns])
        values = np.empty(p.n, dtype)
        for c in sel.columns:
            group_of(p, columns[c][0]).read(c, p.lo, p.hi, p.index, out=values[c])
        keep = np.flatnonzero(sel.mask(values))
        if not len(keep):
            continue
        rows = keep if p.index is None else p.index[keep]
        first, last = int(rows[0]), int(rows[-1])
        index = None if last - first + 1 == len(rows) else rows - first
        out.append(replace(p, lo=p.lo + first, hi=p.lo + last + 1, n=len(rows), index=index))
    return out


def column_dtypes(sources: list[Source], columns: Sequence[str] | None) -> Columns:
    """``{field: (data_type, field dtype)}`` of the loaded columns (first type wins)."""
    out: Columns = {}
    first = sources[0]
    for dt, group in first.groups:
        specs = field_specs(group.dtype)
        for name in group.dtype.names or ():
            if name not in out:
                out[name] = (dt, specs[name][0])
    if columns is not None:
        unknown = [c for c in columns if c not in out]
        if unknown:
            raise InvalidRequest(
                f"unknown columns {unknown} for {', '.join(g[0] for g in first.groups)}: "
                f"available are {list(out)}"
            )
        keep = set(columns) | {"time"} | set(end_fields(np.dtype([(n, out[n][1]) for n in out])))
        out = {n: v for n, v in out.items() if n in keep}
    return out


def group_of(piece: Piece, data_type: str) -> StoredGroup:
    """The stored group of ``data_type`` that ``piece`` reads."""
    for dt, group in piece.source.groups:
        if dt == data_type:
            return group
    raise CorruptData(f"{data_type} missing from {piece.source.run_id}")


# --------------------------------------------------------------------------------------
# the blocks of a lazy load: sized by bytes, across stored chunks and subruns
# --------------------------------------------------------------------------------------
def rows_per_block(chunks: ChunksArg, row_bytes: int, dim: str = "") -> int | None:
    """Rows a dask block holds for ``get_dataset(chunks=...)``: ``"auto"`` (dask's
    ``array.chunk-size`` of rows of the loaded columns), an int of rows, a dict
    ``{dim: ...}`` as xarray's ``open_zarr`` takes, or ``"stored"`` (None: one block per
    stored piece)."""
    import dask
    from dask.utils import parse_bytes

    original = chunks
    if isinstance(chunks, dict):
        unknown = [k for k in chunks if k != dim]
        if unknown or not chunks:
            raise InvalidRequest(
                f"chunks={original!r}: a dict must name the row dimension {dim!r} only "
                f"(e.g. chunks={{{dim!r}: 100_000}}), or give chunks='auto', 'stored' or a "
                "number of rows"
            )
        chunks = chunks[dim]
    if chunks is None or (isinstance(chunks, str) and chunks == "auto") or chunks == -1:
        if chunks == -1:
            return 2**62
        limit = parse_bytes(dask.config.get("array.chunk-size"))
        return max(1, int(limit) // max(1, int(row_bytes)))
    if isinstance(chunks, str) and chunks == "stored":
        return None
    if isinstance(chunks, str):
        try:
            return max(1, int(parse_bytes(chunks)) // max(1, int(row_bytes)))
        except (ValueError, TypeError):
            pass
    if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool) and chunks > 0:
        return int(chunks)
    raise InvalidRequest(
        f"chunks={original!r} is not understood: give 'auto' (dask's array.chunk-size of "
        "rows), a positive number of rows, a size such as '64MiB', or 'stored' (one block "
        "per stored chunk)"
    )


def block_bounds(pieces: list[Piece], max_rows: int | None) -> np.ndarray:
    """Row boundaries ``[0, ..., n]`` of the blocks of ``pieces``: neighbouring pieces
    (across subruns) merged while a block stays within ``max_rows``; a piece bigger than
    that split at zarr chunk boundaries of its group (no zarr chunk read by two
    blocks where it can be helped). ``max_rows`` None: one block per piece."""
    ns = np.fromiter((p.n for p in pieces), np.int64, len(pieces))
    offsets = np.zeros(len(pieces) + 1, np.int64)
    np.cumsum(ns, out=offsets[1:])
    if max_rows is None:
        return offsets
    bounds = [0]
    start = 0  # first row of the block being filled
    for i, p in enumerate(pieces):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        if hi - start <= max_rows:
            continue
        if lo > start:  # this piece does not fit: the block ends before it
            bounds.append(lo)
            start = lo
        if p.n > max_rows:  # a big piece: cut into blocks of its own
            for q in split(p, max_rows)[:-1]:
                start += q.n
                bounds.append(start)
    if int(offsets[-1]) > bounds[-1] or len(bounds) == 1:
        bounds.append(int(offsets[-1]))
    return np.asarray(bounds, np.int64)


class BlockSpec:
    """What one block's tasks read: ``parts`` of ``(groups, lo, hi, index, n, label)`` —
    the reading handles of a source's groups (``{data_type: group}``), rows ``[lo, hi)``
    then ``[index]`` (``n`` rows), the run id asked for — in order, ``n`` rows in all.
    Picklable, and proportional to its block (not to the load); kept opaque to dask (a
    plain object, not a container)."""

    __slots__ = ("n", "parts")

    def __init__(self, parts: tuple[Part, ...], n: int) -> None:
        self.parts = parts
        self.n = n

    def __reduce__(self) -> tuple[type[BlockSpec], tuple[tuple[Part, ...], int]]:
        return (BlockSpec, (self.parts, self.n))


def block_specs(pieces: list[Piece], bounds: np.ndarray) -> list[BlockSpec]:
    """One :class:`BlockSpec` per block of ``bounds`` over ``pieces``."""
    # one reading handle per source (shared by its parts)
    readers: dict[int, dict[str, StoredGroup]] = {}

    def handles(source: Source) -> dict[str, StoredGroup]:
        got = readers.get(id(source))
        if got is None:
            got = readers[id(source)] = {dt: g.for_reading() for dt, g in source.groups}
        return got

    ns = np.fromiter((p.n for p in pieces), np.int64, len(pieces))
    offsets = np.zeros(len(pieces) + 1, np.int64)
    np.cumsum(ns, out=offsets[1:])
    specs = []
    i = 0
    for k in range(len(bounds) - 1):
        b0, b1 = int(bounds[k]), int(bounds[k + 1])
        parts: list[Part] = []
        while i < len(pieces) and offsets[i + 1] <= b0:
            i += 1
        j = i
        while j < len(pieces) and offsets[j] < b1:
            p, off = pieces[j], int(offsets[j])
            a, b = max(b0, off) - off, min(b1, off + p.n) - off
            if a < b:
                last = parts[-1] if parts else None
                if (
                    p.index is None
                    and last is not None
                    and last[3] is None
                    and last[0] is readers.get(id(p.source))
                    and last[2] == p.lo + a
                ):  # the next rows of the same group (its next stored chunk): one read
                    parts[-1] = (last[0], last[1], p.lo + b, None, last[4] + b - a, last[5])
                elif p.index is None:
                    parts.append(
                        (handles(p.source), p.lo + a, p.lo + b, None, b - a, p.source.label)
                    )
                else:
                    idx = p.index[a:b]
                    first = int(idx[0])
                    parts.append(
                        (
                            handles(p.source),
                            p.lo + first,
                            p.lo + int(idx[-1]) + 1,
                            idx - first,
                            b - a,
                            p.source.label,
                        )
                    )
            if offsets[j + 1] > b1:
                break
            j += 1
        specs.append(BlockSpec(tuple(parts), b1 - b0))
    return specs


def read_block(spec: BlockSpec, name: str, data_type: str, dtype: np.dtype) -> np.ndarray:
    """Column ``name`` of one block: each part read straight into the result."""
    out = np.empty((spec.n, *dtype.shape), dtype.base)
    o = 0
    for groups, lo, hi, index, n, _label in spec.parts:
        groups[data_type].read(name, lo, hi, index, out=out[o : o + n])
        o += n
    return out


def fill_block(
    out: np.ndarray, offset: int, spec: BlockSpec, columns: Columns, labels: bool
) -> None:
    """Read one block's ``columns`` into the structured array ``out`` from row
    ``offset`` on, each column decompressed straight into it (one task's work)."""
    for groups, lo, hi, index, n, label in spec.parts:
        for name, (dt, _sub) in columns.items():
            groups[dt].read(name, lo, hi, index, out=out[name][offset : offset + n])
        if labels:
            out["run_id"][offset : offset + n] = label
        offset += n


def dask_columns(pieces: list[Piece], cols: Columns, max_rows: int | None) -> dict[str, da.Array]:
    """One lazy dask array per column of ``cols``, all with the same blocks (see
    :func:`block_bounds`); each block's :class:`BlockSpec` is one graph key that the
    columns' tasks of that block share. No data is read."""
    from dask.highlevelgraph import HighLevelGraph

    token = uuid.uuid4().hex
    out: dict[str, da.Array] = {}
    if not pieces:
        for name, (_dt, sub) in cols.items():
            meta = np.empty((0,) * (1 + len(sub.shape)), sub.base)
            out[name] = da.from_array(  # type: ignore[no-untyped-call]  # dask: no annotations
                np.empty((0, *sub.shape), sub.base), chunks=-1, name=f"{name}-{token}", meta=meta
            )
        return out
    bounds = block_bounds(pieces, max_rows)
    specs = block_specs(pieces, bounds)
    rows = tuple(int(b) for b in np.diff(bounds))
    spec_name = f"blocks-{token}"
    spec_layer: dict[Key, BlockSpec] = {(spec_name, k): spec for k, spec in enumerate(specs)}
    for name, (dt, sub) in cols.items():
        gname = f"{name}-{token}"
        zeros = (0,) * len(sub.shape)
        layer: dict[Key, tuple[object, ...]] = {
            (gname, k, *zeros): (read_block, (spec_name, k), name, dt, sub)
            for k in range(len(specs))
        }
        graph = HighLevelGraph(
            {spec_name: spec_layer, gname: layer}, {spec_name: set(), gname: {spec_name}}
        )
        chunks = (rows, *((s,) for s in sub.shape))
        meta = np.empty((0,) * (1 + len(sub.shape)), sub.base)
        out[name] = da.Array(graph, gname, chunks, meta=meta)  # type: ignore[no-untyped-call]  # dask: no annotations
    return out


def subrun_codes(pieces: list[Piece]) -> np.ndarray:
    """Each row's index into the load's subrun list (see :func:`subrun_runs`)."""
    return np.repeat(*subrun_runs(pieces))


def subrun_runs(pieces: list[Piece]) -> tuple[np.ndarray, np.ndarray]:
    """The rows' indices into the load's subrun list as runs ``(labels, lengths)``, from
    metadata: one run per piece of a subrun; for a stored superrun, from the rows per
    subrun its metadata records (``subrun_rows``), else read from its ``subrun`` column
    (one run a row)."""
    if not pieces:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    if not any(p.source.stored for p in pieces):
        values = np.fromiter((p.source.subrun for p in pieces), np.int32, len(pieces))
        counts = np.fromiter((p.n for p in pieces), np.int64, len(pieces))
        return values, counts
    runs: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for p in pieces:
        if not p.source.stored:
            runs.append(np.array([p.source.subrun], np.int32))
            lengths.append(np.array([p.n], np.int64))
            continue
        group = p.source.groups[0][1]
        starts = group.meta.get("subrun_rows")
        offset = np.int32(p.source.subrun)
        if starts is not None and p.index is None:
            # each subrun's rows within [lo, hi): no search
            starts = np.asarray(starts, np.int64)
            edges = np.clip(np.append(starts, np.iinfo(np.int64).max), p.lo, p.hi)
            runs.append(np.arange(len(starts), dtype=np.int32) + offset)
            lengths.append(np.diff(edges))
            continue
        if starts is not None and p.index is not None:
            starts = np.asarray(starts, np.int64)
            found = np.searchsorted(starts, p.lo + p.index, side="right") - 1
            codes = found.astype(np.int32, copy=False) + offset
        else:
            codes = _subrun_column(group, p.lo, p.hi, p.index, p.source.subrun)
        runs.append(codes)
        lengths.append(np.ones(len(codes), np.int64))
    return np.concatenate(runs), np.concatenate(lengths)


def _subrun_column(
    group: StoredGroup, lo: int, hi: int, index: np.ndarray | None, offset: int
) -> np.ndarray:
    return group.read("subrun", lo, hi, index) + np.int32(offset)


def split(piece: Piece, max_rows: int) -> list[Piece]:
    """``piece`` cut into row ranges of at most about ``max_rows`` rows, cut at zarr chunk
    boundaries of its first group (so no zarr chunk is read twice)."""
    if piece.index is not None or piece.n <= max_rows:
        return [piece]
    zrows = int(piece.source.groups[0][1].meta.get("zarr_chunk_rows") or 0) or 1
    step = max(zrows, (max_rows // zrows) * zrows)
    out: list[Piece] = []
    lo = piece.lo
    while lo < piece.hi:
        hi = min(piece.hi, (lo // step + 1) * step)
        out.append(replace(piece, lo=lo, hi=hi, n=hi - lo))
        lo = hi
    return out


def assemble(
    scheduler: Scheduler,
    pieces: list[Piece],
    columns: Columns,
    dtype: np.dtype,
    labels: bool = False,
    progress: bool = False,
    label: str = "",
) -> np.ndarray:
    """``pieces`` as one new structured array of ``dtype``, allocated once.

    The blocks are those of a lazy load (:func:`block_bounds`), of at most
    :data:`SPLIT_BYTES` of rows. In this process (dask's local threads) the scheduler's
    tasks fill the result in place, each column decompressed straight into it; elsewhere
    (a cluster) tasks return blocks that are copied in as they arrive, a window at a time.
    """
    import dask

    out = np.empty(sum(p.n for p in pieces), dtype)
    max_rows = max(1, SPLIT_BYTES // max(1, dtype.itemsize))
    if len(pieces) > SMALL_LOAD_PARTS:  # many small reads: enough blocks for every thread
        max_rows = min(max_rows, max(1, len(out) // MANY_PARTS_BLOCKS))
    bounds = block_bounds(pieces, max_rows)
    specs = block_specs(pieces, bounds)
    n_parts = sum(len(s.parts) for s in specs)
    few = n_parts < SMALL_LOAD_PARTS
    span = sum(part[2] - part[1] for s in specs for part in s.parts) * dtype.itemsize
    tiny = span < TINY_PART_BYTES * max(1, n_parts)
    if scheduler.in_process and (len(specs) < 2 or (out.nbytes < SMALL_LOAD_BYTES and few) or tiny):
        # small: threads would only fight over the GIL between a few chunk reads
        for off, spec in zip(bounds, specs):
            fill_block(out, int(off), spec, columns, labels)
        return out
    if scheduler.in_process:
        tasks = [
            dask.delayed(fill_task, pure=False)(Shared(out), int(off), spec, columns, labels)
            for off, spec in zip(bounds, specs)
        ]
        scheduler.compute(*tasks, progress=progress, label=label)
        return out
    tasks = [dask.delayed(read_task, pure=False)(spec, columns, dtype, labels) for spec in specs]
    for off, block in zip(bounds, scheduler.iter_ordered(tasks, progress=progress)):
        out[int(off) : int(off) + len(block)] = block
    return out


def fill_task(out: Shared, offset: int, spec: BlockSpec, columns: Columns, labels: bool) -> None:
    fill_block(out.array, offset, spec, columns, labels)


def read_task(spec: BlockSpec, columns: Columns, dtype: np.dtype, labels: bool) -> np.ndarray:
    out = np.empty(spec.n, dtype)
    fill_block(out, 0, spec, columns, labels)
    return out


class Opaque[T]:
    """A task argument dask passes as it is: dask walks lists, dicts and dataclasses in
    task arguments, and pieces hold whole chunk tables (seconds for a big load)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Shared:
    """Hands a big array to in-process tasks without dask hashing or copying it."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


# --------------------------------------------------------------------------------------
# what a load gives: a numpy array, a lazy Dataset, an iterator of chunks
# --------------------------------------------------------------------------------------
@dataclass
class Resolved:
    """A load, resolved: its sources in order, the flattened list of subrun ids, the
    targets and their data kind, and the fields of the targets (for empty loads)."""

    sources: list[Source]
    subruns: list[str]
    targets: list[str]
    data_kind: str
    dtype: np.dtype | None = None  # the first target's dtype, when no source tells it
    #: a selection string, list of strings, or Selection
    selection: str | Sequence[str] | Selection | None = None
    #: the pieces before the selection, where already known (e.g. from an open index)
    base_pieces: list[Piece] | None = field(default=None, repr=False, compare=False)

    # the outputs of a load (a join computed over a superrun gives the same three)
    def array(
        self, scheduler: Scheduler, columns: Sequence[str] | None, labels: bool, progress: bool
    ) -> np.ndarray:
        """The numpy result (see :func:`array`)."""
        return array(scheduler, self, columns, labels, progress)

    def iter_chunks(
        self, scheduler: Scheduler, columns: Sequence[str] | None = None
    ) -> Iterator[Chunk]:
        """One chunk per piece (see :func:`iter_chunks`)."""
        return iter_chunks(scheduler, self, columns)

    def dataset(
        self,
        columns: Sequence[str] | None = None,
        run_id: str | Sequence[str] | None = None,
        chunks: ChunksArg = "auto",
    ) -> xr.Dataset:
        """The lazy Dataset (see :func:`dataset`), with :meth:`extra_attrs`."""
        ds = dataset(self, columns, run_id, chunks)
        ds.attrs.update(self.extra_attrs(run_id))
        return ds

    def extra_attrs(self, run_id: str | Sequence[str] | None) -> dict[str, object]:
        """Attributes a kind of load adds to its Dataset (none here)."""
        return {}

    def pieces(self) -> list[Piece]:
        """The pieces of the load (cut to ranges, then to the selection), made once."""
        if getattr(self, "_pieces", None) is None:
            pieces = self.base_pieces
            if pieces is None:
                pieces = [p for s in self.sources for p in pieces_for(s)]
            if self.selection is not None and self.sources:
                pieces = select_pieces(pieces, self.selection, self.columns(None))
            self._pieces = pieces
        return self._pieces

    def fields(self, cols: Columns) -> list[FieldSpec]:
        """numpy fields of the loaded columns ``cols``, with their titles (as stored)."""
        dtypes = [g.dtype for s in self.sources[:1] for _dt, g in s.groups]
        if self.dtype is not None:
            dtypes.append(self.dtype)
        out: list[FieldSpec] = []
        for n, (_dt, sub) in cols.items():
            title = next(
                (
                    t
                    for d in dtypes
                    if n in (d.names or ()) and (t := field_title(d, n)) is not None
                ),
                None,
            )
            out.append(((title, n) if title else n, sub))
        return out

    def columns(self, columns: Sequence[str] | None = None) -> Columns:
        if self.sources:
            return column_dtypes(self.sources, columns)
        dtype = self.dtype if self.dtype is not None else np.dtype([("time", np.int64)])
        specs = field_specs(dtype)
        return {
            n: (self.targets[0], specs[n][0])
            for n in dtype.names or ()
            if columns is None or n in columns
        }


def variable_attrs(dtype: np.dtype, name: str) -> dict[str, str]:
    """xarray attributes of field ``name``: its title as ``long_name``, and ``units``
    where the title ends with them in brackets ("Start time since unix epoch [ns]")."""
    title = field_title(dtype, name)
    if not title:
        return {}
    attrs = {"long_name": str(title)}
    text = str(title).rstrip()
    if text.endswith("]") and "[" in text:
        attrs["units"] = text[text.rindex("[") + 1 : -1]
    return attrs


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: opening thousands of subruns creates hundreds
    of thousands of long-lived objects (metadata, pieces, graph keys), and the full
    collections they trigger cost more than the work itself (measured 1.5 s against
    0.8 s to open 10 000 subruns)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def dataset(
    res: Resolved,
    columns: Sequence[str] | None = None,
    run_id: str | Sequence[str] | None = None,
    chunks: ChunksArg = "auto",
) -> xr.Dataset:
    """The lazy ``xarray.Dataset`` of a load: blocks sized by bytes (see
    :func:`rows_per_block`), a ``subrun`` coordinate known from metadata."""
    with gc_paused():
        return _dataset(res, columns, run_id, chunks)


def _dataset(
    res: Resolved,
    columns: Sequence[str] | None = None,
    run_id: str | Sequence[str] | None = None,
    chunks: ChunksArg = "auto",
) -> xr.Dataset:
    import xarray as xr

    kind = res.data_kind
    cols = res.columns(columns)
    row_bytes = sum(sub.itemsize for _dt, sub in cols.values())
    max_rows = rows_per_block(chunks, row_bytes, kind)
    pieces = res.pieces()
    arrays = dask_columns(pieces, cols, max_rows)
    titled = {dt: g.dtype for s in res.sources[:1] for dt, g in s.groups}
    data_vars: dict[str, xr.Variable] = {}
    for name, (dt, sub) in cols.items():
        dims = [kind] + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)]
        full = titled.get(dt, res.dtype)
        attrs = (
            variable_attrs(full, name) if full is not None and name in (full.names or ()) else {}
        )
        data_vars[name] = xr.Variable(dims, arrays[name], attrs=attrs)
    return labelled(
        data_vars,
        subrun_runs(pieces),
        res.subruns,
        {"run_id": run_id, "data_types": res.targets, "data_kind": kind, "subruns": res.subruns},
    )


def labelled(
    data_vars: Mapping[str, xr.Variable],
    codes: np.ndarray | tuple[np.ndarray, np.ndarray],
    subruns: Sequence[str],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """A Dataset of ``data_vars`` with the ``subrun`` coordinate: each row's index into
    ``subruns``, given as ``codes`` (one a row) or as runs ``(labels, lengths)``, known from
    metadata. Its index makes ``ds.groupby("subrun")`` group lazily and
    ``ds.sel(subrun=k)`` pick subrun ``k``'s rows, int64 times exact: a
    :class:`~dastrax.load.subrunindex.SubrunIndex` (nothing a row until asked) where the
    labels come in increasing order, else xarray's ``PandasIndex``."""
    import xarray as xr

    from dastrax.load.subrunindex import SubrunIndex

    kind = attrs["data_kind"]
    coord_attrs = {
        "long_name": "index of the row's subrun in attrs['subruns']",
        "labels": list(subruns),
    }
    if isinstance(codes, tuple):
        index = SubrunIndex.from_runs(*codes, dim=kind)
        if index is not None:
            coords = xr.Coordinates.from_xindex(index)
            coords.variables["subrun"].attrs.update(coord_attrs)
            return xr.Dataset(data_vars, coords=coords, attrs=attrs)
        codes = np.repeat(*codes)
    subrun = xr.Variable([kind], codes, attrs=coord_attrs)
    ds = xr.Dataset(data_vars, coords={"subrun": subrun}, attrs=attrs)
    return ds.set_xindex("subrun")


def array(
    scheduler: Scheduler,
    res: Resolved,
    columns: Sequence[str] | None,
    labels: bool,
    progress: bool,
) -> np.ndarray:
    """The numpy result of a load: allocated once, filled by the scheduler's tasks."""
    cols = res.columns(columns)
    fields = res.fields(cols)
    if labels:
        width = max([len(s.label) for s in res.sources] + [1])
        fields.append(("run_id", f"<U{width}"))
    dtype = np.dtype(fields)
    return assemble(
        scheduler,
        res.pieces(),
        cols,
        dtype,
        labels,
        progress,
        f"loading {'+'.join(res.targets)}",
    )


def iter_chunks(
    scheduler: Scheduler, res: Resolved, columns: Sequence[str] | None = None
) -> Iterator[Chunk]:
    """One :class:`~dastrax.Chunk` per piece, in order, a window of them at a time."""
    import dask

    from dastrax.core.chunks import Chunk

    if not res.sources:
        return
    cols = res.columns(columns)
    dtype = np.dtype(res.fields(cols))
    data_type = "+".join(res.targets)
    pieces = res.pieces()
    specs = block_specs(pieces, block_bounds(pieces, None))  # one per piece
    tasks = [dask.delayed(read_task, pure=False)(spec, cols, dtype, False) for spec in specs]
    subruns: Subruns | None
    for p, data in zip(pieces, scheduler.iter_ordered(tasks)):
        if p.source.stored:  # the stored chunk's subruns, cut like the chunk itself
            subruns, run_id = _cut_subruns(p.subruns, p.start, p.end), p.source.run_id
        elif p.source.label.startswith("_"):  # a subrun's chunk, as part of the superrun
            subruns = {p.source.run_id: {"start": p.start, "end": p.end}}
            run_id = p.source.label
        else:
            subruns, run_id = None, p.source.run_id
        yield Chunk(data, p.start, p.end, run_id, data_type, subruns)


def _cut_subruns(subruns: Subruns | None, start: int, end: int) -> Subruns | None:
    """``subruns`` of a stored chunk restricted to ``[start, end)`` (a time range's cut)."""
    if subruns is None:
        return None
    out = {}
    for sub, r in subruns.items():
        s, e = max(r["start"], start), min(r["end"], end)
        if s < e:
            out[sub] = {"start": s, "end": e}
    return out

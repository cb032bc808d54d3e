"""Persisting a superrun: the rows of its subruns written, zarr chunk by zarr chunk, into
zarr groups that are stored runs of their own. Where the subruns share a zarr chunk size,
the persisted arrays take it, and each zarr chunk that is a whole chunk of one subrun is
copied as its compressed file (``SupportsChunkCopy.copy_chunk_from``); only the rest (time
ranges' cuts, shifted rows, other codecs) is read and compressed again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask
import numpy as np
from dask.delayed import Delayed

from dastrax.core.chunks import chunk_boundaries, endtime
from dastrax.core.lineage import DataKey, canonical
from dastrax.core.scheduling import Scheduler
from dastrax.errors import InvalidRequest, SuperrunDefinitionError, advice
from dastrax.load.plan import (
    MERGE_BYTES,
    Opaque,
    Piece,
    Resolved,
    Source,
    assemble,
    end_fields,
    group_of,
    pieces_for,
)
from dastrax.load.resolver import Resolver
from dastrax.runs.superruns import flat_fingerprint
from dastrax.storage import (
    GroupWriter,
    StoredGroup,
    SupportsChunkCopy,
    shared_chunk_rows,
    zarr_chunk_rows,
)

__all__ = ["logical_chunks", "persist_superrun"]


def _hulls(flat, run_doc) -> dict[str, tuple[int, int]]:
    out = {}
    for sub, ranges in flat:
        if isinstance(ranges, str):
            doc = run_doc(sub)
            out[sub] = (int(doc["start"]), int(doc["end"]))
        else:
            out[sub] = (int(ranges[0][0]), int(ranges[-1][1]))
    return out


def logical_chunks(
    spans: Sequence[tuple[int, int]],
    time: np.ndarray,
    end: np.ndarray,
    row_bytes: int,
    target_mb: float,
    sr_start: int,
    sr_end: int,
    subruns: list[str],
    hulls: dict,
    name: str,
    align: int = 1,
) -> list[dict]:
    """The logical chunks of a persisted superrun (SEMANTICS.md, "Stored superruns"):
    its chunk table, one dict a chunk (``chunk_i, start, end, row_start, n, first_time,
    last_endtime, nbytes, run_id, subruns``).

    ``spans``: ``(rows, subrun index)`` of each piece the rows come from, in order;
    ``time``/``end`` the rows' times. Chunks hold a multiple of ``align`` rows (the zarr
    chunk rows) where the target size allows, so that, rows not overlapping, logical
    chunks begin on zarr chunk boundaries.
    """
    n = len(time)
    target_bytes = int(target_mb * 1e6)
    per_chunk = target_bytes // max(1, row_bytes)
    if align > 1 and per_chunk >= align:
        target_bytes = (per_chunk // align) * align * row_bytes
    bounds = chunk_boundaries(time, end, row_bytes, target_bytes)
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    stops = np.concatenate([bounds, [n]]).astype(np.int64)
    piece_off = np.cumsum([0] + [n for n, _sub in spans])
    piece_sub = [sub for _n, sub in spans]
    table = []
    for k, (r0, r1) in enumerate(zip(starts.tolist(), stops.tolist())):
        cs = sr_start if k == 0 else int(time[r0])
        ce = sr_end if k == len(starts) - 1 else int(time[r1])
        p0 = int(np.searchsorted(piece_off, r0, side="right")) - 1
        p1 = int(np.searchsorted(piece_off, r1, side="left"))
        present = list(dict.fromkeys(piece_sub[p0:p1])) if r1 > r0 else []
        subs = {}
        for i in present:
            sub = subruns[i]
            hs, he = hulls[sub]
            subs[sub] = {"start": max(cs, hs), "end": min(ce, he)}
        table.append(
            {
                "chunk_i": k,
                "start": cs,
                "end": ce,
                "row_start": r0,
                "n": r1 - r0,
                "first_time": int(time[r0]) if r1 > r0 else None,
                "last_endtime": int(end[r0:r1].max()) if r1 > r0 else None,
                "nbytes": int((r1 - r0) * row_bytes),
                "run_id": name,
                "subruns": subs,
            }
        )
    return table


def persist_superrun(
    resolver: Resolver,
    scheduler: Scheduler,
    name: str,
    targets: list[str],
    chunk_target_size_mb: float,
    compressor: dict,
    progress: bool = False,
    overwrite: bool = False,
    make: bool = True,
) -> list[DataKey]:
    """Write superrun ``name``'s ``targets`` as stored runs; see Context.persist_superrun.

    Everything is checked (lineages, data kinds, what is stored) before anything is
    written; with ``overwrite`` a stored copy is replaced atomically by the commit. Each
    run document is read once (:meth:`Resolver.snapshot`)."""
    with resolver.snapshot():
        return _persist_superrun(
            resolver,
            scheduler,
            name,
            targets,
            chunk_target_size_mb,
            compressor,
            progress,
            overwrite,
            make,
        )


def _persist_superrun(
    resolver: Resolver,
    scheduler: Scheduler,
    name: str,
    targets: list[str],
    chunk_target_size_mb: float,
    compressor: dict,
    progress: bool,
    overwrite: bool,
    make: bool,
) -> list[DataKey]:
    storage, catalog = resolver.storage, resolver.catalog
    flat = resolver.flat(name)
    keys = {t: resolver.superrun_key(name, t, flat) for t in targets}  # LineageMismatch
    if not overwrite and all(storage.find(str(k)) for k in keys.values()):
        return list(keys.values())
    kind = resolver.same_kind(targets, name)
    # the stored copy of the definition this one extends: its rows are not read again
    base = None if overwrite else _extends(storage, name, targets, flat, keys)
    resolved = _resolve_subruns(resolver, name, keys, flat, base, progress, overwrite, make)
    if resolved is None:
        return list(keys.values())  # another process persisted it meanwhile
    sources = resolved.sources
    if base is not None:  # rows of the old definition: from its stored copy, as they are
        n_old_subruns = len(base[targets[0]].meta["subruns"])
        sources = [s for s in sources if s.subrun >= n_old_subruns]
    new_pieces = [p for s in sources for p in pieces_for(s)]
    dtypes = {t: _target_dtype(resolver, t, resolved) for t in targets}
    row_bytes = max(d.itemsize for d in dtypes.values())
    time, end = _time_and_end(scheduler, new_pieces, targets[0], dtypes[targets[0]])
    doc = catalog.run_metadata(name)
    old = _old_copy(base, name, targets, int(doc["start"]))
    pieces = [old.piece, *new_pieces] if old.piece is not None and old.n_rows else new_pieces
    n = old.n_rows + len(time)
    # zarr chunks of the subruns' size where they share one (or of the old copy's size
    # when extending it): their files are then copied, not compressed again
    shared = {t: _shared_rows(base, t, new_pieces, dtypes[t]) for t in targets}
    table = logical_chunks(
        [(p.n, p.source.subrun) for p in new_pieces],
        time,
        end,
        row_bytes,
        chunk_target_size_mb,
        min(old.start, int(time[0])) if len(time) else old.start,
        max(int(doc["end"]), int(end.max())) if len(time) else int(doc["end"]),
        resolved.subruns,
        _hulls(flat, catalog.run_metadata),
        name,
        shared[targets[0]] if len(set(shared.values())) == 1 else 1,
    )
    for c in table:  # after the old copy's rows and chunks
        c.update(chunk_i=c["chunk_i"] + len(old.chunks), row_start=c["row_start"] + old.n_rows)
    table = old.chunks + table
    common = {  # (each target's metadata: these between its lineage and its chunks)
        "chunk_target_size_mb": chunk_target_size_mb,
        "subruns": resolved.subruns,
        "sub_run_spec": flat_fingerprint(flat),
        "subrun_rows": _subrun_rows(base, targets[0], pieces, len(resolved.subruns)),
    }
    writing = _Writing(name, kind, targets, keys, dtypes, pieces, n, shared, table, common)
    _write_and_commit(resolver, scheduler, writing, compressor, progress, overwrite)
    if base is not None:  # the old definition's copy: its chunk files live on in the new one
        for group in base.values():
            storage.writable().discard(group.key)
    return list(keys.values())


def _resolve_subruns(
    resolver: Resolver,
    name: str,
    keys: dict[str, DataKey],
    flat: list[tuple[str, object]],
    base: dict[str, StoredGroup] | None,
    progress: bool,
    overwrite: bool,
    make: bool,
) -> Resolved | None:
    """Superrun ``name`` (``keys``: its key of each target) resolved from its subruns
    (with ``overwrite``: not from the copy being replaced; extending ``base``: from its
    first new subrun on), made where missing; None if another process persisted it
    meanwhile.

    Raises
    ------
    SuperrunDefinitionError
        The superrun was redefined meanwhile.
    InvalidRequest
        Some targets are stored, not all.
    """
    targets = list(keys)
    resolved = resolver.resolve(
        [name],
        targets,
        check_lineage=True,
        make=make,
        progress=progress,
        stored=not overwrite,
        from_subrun=len(base[targets[0]].meta["subruns"]) if base is not None else 0,
    )
    defined = dict(flat)
    if [s for s, _r in flat] != [s for s in resolved.subruns if s in defined] or len(
        resolved.subruns
    ) != len(flat):
        raise SuperrunDefinitionError(
            f"superrun {name!r} was redefined (by another process) while being persisted; "
            "persist it again"
        )
    if any(s.stored for s in resolved.sources):
        if all(resolver.storage.find(str(k)) for k in keys.values()):
            return None
        # some targets stored, not all: load them from subruns, not the partial store
        raise InvalidRequest(
            f"superrun {name!r} is partly stored; persist targets one by one, or "
            f"{advice('overwrite')} to write them all again"
        )
    return resolved


def _time_and_end(
    scheduler: Scheduler, pieces: list[Piece], target: str, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The time and end time of the rows of ``pieces`` (small columns: they decide the
    chunk boundaries)."""
    tcols = {f: (target, dtype[f]) for f in ["time", *end_fields(dtype)]}
    values = assemble(scheduler, pieces, tcols, np.dtype([(f, d) for f, (_t, d) in tcols.items()]))
    return (
        np.asarray(values["time"], dtype=np.int64),
        np.asarray(endtime(values), dtype=np.int64),
    )


@dataclass(frozen=True)
class _OldCopy:
    """What an extended superrun keeps of its stored copy: its chunks (without
    ``nbytes``), its row count, where the new rows start, and one piece of all its rows."""

    chunks: list[dict]
    n_rows: int
    start: int
    piece: Piece | None


def _old_copy(
    base: dict[str, StoredGroup] | None, name: str, targets: list[str], start: int
) -> _OldCopy:
    """The stored copy ``base`` an extension appends to (none: nothing kept, new rows
    from ``start``, the superrun's start)."""
    if base is None:
        return _OldCopy([], 0, start, None)
    old = base[targets[0]]
    chunks = [{k: v for k, v in c.items() if k != "nbytes"} for c in old.chunks]
    n_old = int(old.meta["n_rows"])
    new_start = int(chunks[-1]["end"]) if chunks else start
    piece = Piece(
        Source(name, name, tuple((t, base[t]) for t in targets), 0, None, True),
        0,
        0,
        n_old,
        n_old,
        int(chunks[0]["start"]) if chunks else new_start,
        new_start,
    )
    return _OldCopy(chunks, n_old, new_start, piece)


def _shared_rows(
    base: dict[str, StoredGroup] | None, target: str, pieces: list[Piece], dtype: np.dtype
) -> int:
    """The zarr chunk rows ``target``'s arrays take: the old copy's when extending one,
    else those the subruns share (0: none)."""
    if base is not None:
        return int(base[target].meta["zarr_chunk_rows"])
    widest = max(dtype[f].itemsize for f in dtype.names or ())
    return shared_chunk_rows({_zarr_rows(group_of(p, target)) for p in pieces}, widest)


@dataclass(frozen=True)
class _Writing:
    """What is written of a persisted superrun (its data kind): per target its key, dtype
    and zarr chunk rows (0: chosen by the writer); the pieces of its ``n`` rows in order,
    the logical chunk table and the metadata every target shares."""

    name: str
    kind: str
    targets: list[str]
    keys: dict[str, DataKey]
    dtypes: dict[str, np.dtype]
    pieces: list[Piece]
    n: int
    shared: dict[str, int]
    table: list[dict]
    common: dict


def _write_and_commit(
    resolver: Resolver,
    scheduler: Scheduler,
    w: _Writing,
    compressor: dict,
    progress: bool,
    overwrite: bool,
) -> None:
    """Write every target's rows and commit them in one batch (one transaction where the
    storage can); on any failure every writer is aborted."""
    frontend = resolver.storage.writable()
    row_bytes = max(d.itemsize for d in w.dtypes.values())
    base_rows = zarr_chunk_rows(max((c["n"] for c in w.table), default=1), row_bytes)
    kind = w.kind
    states: list[GroupWriter] = []
    try:
        for t in w.targets:
            app = frontend.writer(
                str(w.keys[t]), w.dtypes[t], compressor, kind, overwrite=overwrite
            )
            states.append(app)
            states[-1] = app.create_arrays(
                base_rows,
                total_rows=w.n,
                extra={"subrun": np.int32},
                attributes={"coordinates": "subrun"},
                rows=w.shared[t] or None,
            )
        if w.n:
            tasks = [task for t, app in zip(w.targets, states) for task in _write_tasks(w, t, app)]
            scheduler.compute(
                *tasks, progress=progress, label=f"persisting {', '.join(w.targets)} of {w.name}"
            )
        commits = []
        for t, app in zip(w.targets, states):
            meta = {
                "run_id": w.name,
                "data_type": t,
                "data_kind": kind,
                "lineage": canonical(w.keys[t].lineage),
                "lineage_hash": w.keys[t].lineage_hash,
                **w.common,
                "chunks": [dict(c, nbytes=c["n"] * w.dtypes[t].itemsize) for c in w.table],
            }
            commits.append(app.with_rows(w.n).prepare(meta))
        frontend.commit_all(commits)  # one batch (one transaction where the storage can)
    except BaseException:
        for app in states:
            app.abort()
        raise


def _write_tasks(w: _Writing, target: str, app: GroupWriter) -> list[Delayed]:
    """One task per run of whole zarr chunks of ``target``'s arrays, writing each zarr
    chunk as soon as its rows are read: no rechunk graph, every zarr chunk written by
    exactly one task, memory a zarr chunk (of the columns not copied) a thread."""
    offsets = np.cumsum([0] + [p.n for p in w.pieces])
    rows = app.chunk_rows
    step = rows * max(1, MERGE_BYTES // max(1, rows * w.dtypes[target].itemsize))
    job = Opaque((w.pieces, offsets, app, w.dtypes[target], target))
    return [
        dask.delayed(_write_rows, pure=False)(job, r0, min(w.n, r0 + step))
        for r0 in range(0, w.n, step)
    ]


def _extends(storage, name: str, targets, flat, keys) -> dict | None:
    """The stored copies of an earlier definition of superrun ``name`` that the current
    one extends (its flattened subruns come first, unchanged, and the lineage is the
    same), one per target; None if there are none."""
    now = flat_fingerprint(flat)
    out = {}
    for t in targets:
        found = None
        for group in storage.find_data(name, t):
            spec = group.meta.get("sub_run_spec")
            if (
                group.key != str(keys[t])
                and isinstance(spec, list)
                and 0 < len(spec) < len(now)
                and now[: len(spec)] == spec
                and group.meta.get("lineage") == canonical(keys[t].lineage)
                and group.meta.get("zarr_chunk_rows")
            ):
                found = group
        if found is None:
            return None
        out[t] = found
    rows = {int(g.meta["n_rows"]) for g in out.values()}
    return out if len(rows) == 1 else None


def _write_rows(job: Opaque, r0: int, r1: int) -> int:
    """Rows ``[r0, r1)`` of the superrun (whole zarr chunks of the target's arrays) read
    and written, zarr chunk by zarr chunk: chunk files copied where they line up, the
    other columns written together."""
    pieces, offsets, app, dtype, target = job.value
    for z0 in range(r0, r1, app.chunk_rows):
        z1 = min(r1, z0 + app.chunk_rows)
        first = int(np.searchsorted(offsets, z0, side="right")) - 1
        last = int(np.searchsorted(offsets, z1, side="left"))
        parts = []  # (piece, its rows a..b, at row o of this zarr chunk)
        for i in range(first, last):
            p, po = pieces[i], int(offsets[i])
            a, b = max(z0, po) - po, min(z1, po + p.n) - po
            if a < b:
                parts.append((p, a, b, po + a - z0))
        whole = _whole_source_chunk(parts, target, app.chunk_rows, z0, z1)
        if not isinstance(app, SupportsChunkCopy):
            whole = None  # a writer that copies no chunk files
        block = {}  # the columns not copied: written together
        for name in dtype.names:
            if whole is not None and app.copy_chunk_from(
                group_of(parts[0][0], target),
                name,
                whole,
                z0 // app.chunk_rows,
                link=parts[0][0].source.stored,
            ):
                continue  # the compressed chunk file copied as it is
            sub = dtype.fields[name][0]
            buf = np.empty((z1 - z0, *sub.shape), sub.base)
            for p, a, b, o in parts:
                _read_part(group_of(p, target), name, p, a, b, buf[o : o + b - a])
            block[name] = buf
        if not (
            whole is not None
            and parts[0][0].source.stored
            and parts[0][0].source.subrun == 0
            and app.copy_chunk_from(
                parts[0][0].source.groups[0][1], "subrun", whole, z0 // app.chunk_rows, link=True
            )
        ):  # (else an extended copy's own subrun indices: the same values, its file)
            subrun = np.empty(z1 - z0, np.int32)
            for p, a, b, o in parts:
                if p.source.stored:
                    _read_part(p.source.groups[0][1], "subrun", p, a, b, subrun[o : o + b - a])
                    subrun[o : o + b - a] += np.int32(p.source.subrun)
                else:
                    subrun[o : o + b - a] = p.source.subrun
            block["subrun"] = subrun
        if block:
            app.write_block(z0, z1, block)
    return r1 - r0


def _subrun_rows(base, target: str, pieces: list[Piece], n_subruns: int) -> list[int] | None:
    """The first row of each subrun in the stored superrun (its rows are in subrun
    order): with it a load knows every row's subrun from metadata. None where an
    extended copy's own table is missing (it is then read from the ``subrun`` column)."""
    counts = np.zeros(n_subruns, np.int64)
    for p in pieces:
        if p.source.stored:
            old = base[target].meta.get("subrun_rows") if base is not None else None
            if old is None:
                return None
            old_n = np.diff(np.append(np.asarray(old, np.int64), p.n))
            counts[: len(old_n)] += old_n
        else:
            counts[p.source.subrun] += p.n
    starts = np.zeros(n_subruns, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts.tolist()


def _whole_source_chunk(parts, target: str, rows: int, z0: int, z1: int) -> int | None:
    """The source zarr chunk that holds exactly the rows of zarr chunk ``[z0, z1)`` here
    (the same rows from its first on; a short last chunk only from a source's own short
    last chunk, so no rows outside the superrun travel along), or None where they come
    from several chunks, a time range's cut or a selection of rows."""
    if len(parts) != 1:
        return None
    p, a, b, o = parts[0]
    first = p.lo + a
    if p.index is not None or o or first % rows or b - a != z1 - z0:
        return None
    if z1 - z0 != rows:
        n_rows = group_of(p, target).meta.get("n_rows")
        if n_rows is None or p.lo + b != int(n_rows):
            return None
    return first // rows


def _read_part(group, field: str, p: Piece, a: int, b: int, out: np.ndarray) -> None:
    """Rows ``a..b`` of piece ``p`` (column ``field`` of ``group``) into ``out``."""
    if p.index is None:
        group.read(field, p.lo + a, p.lo + b, out=out)
    else:
        idx = p.index[a:b]
        lo = p.lo + int(idx[0])
        group.read(field, lo, p.lo + int(idx[-1]) + 1, idx - idx[0], out=out)


def _zarr_rows(group) -> int:
    return int(group.meta.get("zarr_chunk_rows") or 0)


def _target_dtype(resolver, target, resolved) -> np.dtype:
    for s in resolved.sources:
        for t, group in s.groups:
            if t == target:
                return group.dtype
    run = resolved.subruns[0] if resolved.subruns else "0"
    return resolver.registry.plugin(target, run).dtype

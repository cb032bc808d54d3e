"""Persisting a superrun: rechunk its lazy concatenation to the target chunk size and
stream it into zarr groups that are stored runs of their own."""

from __future__ import annotations

from dataclasses import replace

import dask
import dask.array as da
import numpy as np

from .chunks import chunk_boundaries
from .errors import InvalidRequest
from .lineage import DataKey, canonical
from .loader import Piece, dask_column, dask_subrun, end_fields, pieces_for, struct_dtype
from .plugin import endtime
from .storage import zarr_chunk_rows

__all__ = ["chunk_table", "persist_superrun"]


def _hulls(flat, run_doc) -> dict[str, tuple[int, int]]:
    out = {}
    for sub, ranges in flat:
        if ranges == "all":
            doc = run_doc(sub)
            out[sub] = (int(doc["start"]), int(doc["end"]))
        else:
            out[sub] = (ranges[0][0], ranges[-1][1])
    return out


def chunk_table(
    pieces: list[Piece],
    time: np.ndarray,
    end: np.ndarray,
    row_bytes: int,
    target_mb: float,
    sr_start: int,
    sr_end: int,
    subruns: list[str],
    hulls: dict,
    name: str,
) -> list[dict]:
    """The stored chunks of a persisted superrun (SEMANTICS.md, "Stored superruns")."""
    n = len(time)
    bounds = chunk_boundaries(time, end, row_bytes, int(target_mb * 1e6))
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    stops = np.concatenate([bounds, [n]]).astype(np.int64)
    piece_off = np.cumsum([0] + [p.n for p in pieces])
    piece_sub = [p.source.subrun for p in pieces]
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
    ctx, name: str, targets: list[str], chunk_target_size_mb: float, progress: bool
) -> list[DataKey]:
    """Write superrun ``name``'s ``targets`` as stored runs; see Context.persist_superrun."""
    resolver = ctx._resolver
    flat = resolver.flat(name)
    keys = {t: resolver.superrun_key(name, t, flat) for t in targets}  # LineageMismatch
    if all(ctx._storage.find(str(k)) for k in keys.values()):
        return list(keys.values())
    resolved = resolver.resolve([name], targets, check_lineage=True)
    if any(s.stored for s in resolved.sources):
        # some targets stored, not all: load them from subruns, not the partial store
        raise InvalidRequest(f"superrun {name!r} is partly stored; persist targets one by one")
    pieces = [p for s in resolved.sources for p in pieces_for(s)]
    first_meta = resolved.sources[0].groups[0][3] if resolved.sources else None
    dtypes = {t: _target_dtype(ctx, t, resolved, first_meta) for t in targets}
    row_bytes = max(d.itemsize for d in dtypes.values())
    n = sum(p.n for p in pieces)

    # time and end columns (small) decide the chunk boundaries
    t0 = targets[0]
    cols = {
        f: dask_column(pieces, f, t0, dtypes[t0].fields[f][0])
        for f in ["time", *end_fields(dtypes[t0])]
    }
    (values,) = (
        ctx._scheduler.compute(cols) if pieces else ({f: np.zeros(0, np.int64) for f in cols},)
    )
    time = np.asarray(values["time"], dtype=np.int64)
    end = (
        endtime(np.rec.fromarrays([values[f] for f in cols], names=list(cols)))
        if "endtime" not in cols
        else np.asarray(values["endtime"], np.int64)
    )
    doc = ctx.run_metadata(name)
    table = chunk_table(
        pieces,
        time,
        end,
        row_bytes,
        chunk_target_size_mb,
        int(doc["start"]),
        int(doc["end"]),
        resolved.subruns,
        _hulls(flat, ctx.run_metadata),
        name,
    )
    typical = max((c["n"] for c in table), default=1)
    base_rows = zarr_chunk_rows(typical, row_bytes)

    frontend = ctx._storage.writable()
    states, stores = [], []
    try:
        subrun = dask_subrun(pieces) if pieces else None
        for t in targets:
            app = frontend.appender(
                str(keys[t]), dtypes[t], ctx._compressor(), ctx._registry.data_kind(t)
            )
            states.append(app)
            app = app.create_arrays(
                base_rows,
                total_rows=n,
                extra={"subrun": np.int32},
                attributes={"coordinates": "subrun"},
            )
            states[-1] = app
            if not n:
                continue
            rows = app.chunk_rows
            for f in dtypes[t].names:
                arr = dask_column(pieces, f, t, dtypes[t].fields[f][0])
                stores.append(
                    da.store(arr.rechunk({0: rows}), app.array(f), lock=False, compute=False)
                )
            stores.append(
                da.store(subrun.rechunk({0: rows}), app.array("subrun"), lock=False, compute=False)
            )
        if stores:
            ctx._scheduler.compute(
                dask.delayed(stores),
                progress=progress,
                label=f"persisting {', '.join(targets)} of {name}",
            )
        for t, app in zip(targets, states):
            meta = {
                "run_id": name,
                "data_type": t,
                "data_kind": ctx._registry.data_kind(t),
                "lineage": canonical(keys[t].lineage),
                "lineage_hash": keys[t].lineage_hash,
                "chunk_target_size_mb": chunk_target_size_mb,
                "subruns": resolved.subruns,
                "sub_run_spec": [[s, r] for s, r in flat],
                "chunks": table,
            }
            committed = replace(app, n=n, written=n, chunks=tuple(table)).commit(meta)
            frontend._committed(str(keys[t]), committed)
    except BaseException:
        for app in states:
            app.abort()
        raise
    return list(keys.values())


def _target_dtype(ctx, target, resolved, first_meta) -> np.dtype:
    for s in resolved.sources:
        for t, _root, _key, meta in s.groups:
            if t == target:
                return struct_dtype(meta)
    return ctx._registry.plugin(target, resolved.subruns[0] if resolved.subruns else "0").dtype

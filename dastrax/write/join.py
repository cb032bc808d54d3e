"""Plugins that allow superruns (strax 2's ``allow_superrun``): computed once over a
superrun's joined subruns instead of concatenating per-subrun results.

For a superrun target whose plugin allows superruns, :func:`plan` walks down from the
target: allowing plugins are *computed*, the first non-allowing types below them are the
*bases*. The bases are loaded per subrun (made if missing, all subruns in parallel) and
joined lazily in time order through the loader's pieces; chunk ``j`` of the join is piece
``j`` (one subrun's chunk, cut to the superrun's ranges), and every allowing plugin runs
on it in one dask task with ``run_id`` = the superrun and the superrun's run document in
``plugin.run_metadata()``. Whole-run plugins (``needs_summary``) get a first pass of
``summarize`` tasks and a ``combine`` in the same graph (:mod:`dastrax.core.wholerun`).

Keys: :func:`join_key` covers the lineage (the bases' lineage, shared by the subruns, and
the allowing plugins' entries) and the flattened spec, marked as computed over the join,
so it differs from the concatenation's key. Saving (:func:`persist_join`) stores every
allowing type computed on the way under its join key, rechunked to the chunk target size
like any stored superrun, with a ``subrun`` column and chunk ``subruns`` metadata.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import dask
import numpy as np

from dastrax.core.chunks import Chunk, endtime, merge_columns
from dastrax.core.lineage import DataKey, canonical, deterministic_hash
from dastrax.core.names import is_superrun_id, validate_run_id
from dastrax.core.plugin import chunk_rows
from dastrax.core.plugins import PluginRegistry
from dastrax.core.scheduling import Scheduler
from dastrax.core.wholerun import apply_summaries, summary_graph
from dastrax.errors import (
    DastraxError,
    DataNotAvailable,
    InvalidRequest,
    LineageMismatch,
    PluginError,
    advice,
)
from dastrax.load import plan as loader
from dastrax.load.plan import Piece, Resolved, Source, end_fields, group_of
from dastrax.load.requests import LoadRequest
from dastrax.load.resolver import PartialResolved, Resolver, incomplete_attrs, intersect_ranges
from dastrax.runs.superruns import flat_fingerprint
from dastrax.storage import GroupWriter
from dastrax.storage.grid import buffer_rows
from dastrax.write import persist
from dastrax.write.make import _validate

if TYPE_CHECKING:
    import xarray as xr
    from dask.typing import Key

__all__ = [
    "JoinLoad",
    "JoinWork",
    "conflicts",
    "join_key",
    "key",
    "persist_join",
    "plan",
    "resolve",
]


#: run ids as loads take them: one, a list, or an array of them
RunIds = str | Sequence[str] | np.ndarray


# --------------------------------------------------------------------------------------
# which types are computed over the join, and their keys
# --------------------------------------------------------------------------------------
def allows(registry: PluginRegistry, data_type: str) -> bool:
    """Whether ``data_type``'s registered plugin allows superruns (source plugins never
    compute over a join: they make the subruns' data)."""
    cls = registry.plugins.get(data_type)
    return bool(cls is not None and cls.allow_superrun and cls.depends_on)


def plan(registry: PluginRegistry, targets) -> tuple[list[str], list[str]]:
    """``(computed, bases)``: the allowing types computed over the join, dependencies
    first, and the first non-allowing types below them (loaded per subrun)."""
    computed: list[str] = []
    bases: list[str] = []

    def visit(dt: str) -> None:
        if dt in computed or dt in bases:
            return
        if not allows(registry, dt):
            bases.append(dt)
            return
        for dep in registry.plugins[dt].depends_on:
            visit(dep)
        computed.append(dt)

    for t in [targets] if isinstance(targets, str) else targets:
        visit(t)
    return computed, bases


def conflicts(registry: PluginRegistry) -> list[tuple[str, str]]:
    """``(data_type, allowing dependency)`` for every registered type whose plugin does
    not allow superruns but depends (directly or not) on one that does: such types
    cannot be asked for a superrun unless ``combining=True``."""
    out = []
    for dt in sorted(registry.plugins):
        if allows(registry, dt):
            continue
        for dep in registry.dependencies(dt)[:-1]:
            if allows(registry, dep):
                out.append((dt, dep))
    return out


def check_conflicts(registry: PluginRegistry, run_id: str, targets) -> None:
    """Refuse non-allowing ``targets`` that depend on allowing types, for superruns."""
    for t in targets:
        if t in registry.plugins and not allows(registry, t):
            for dep in registry.dependencies(t)[:-1]:
                if allows(registry, dep):
                    raise InvalidRequest(
                        f"{t} of superrun {run_id!r} cannot be made: its plugin "
                        f"{registry.plugins[t].__name__} does not allow superruns but depends "
                        f"on {dep}, whose plugin does; pass combining=True to concatenate the "
                        f"subruns' {t}, or set allow_superrun = True on "
                        f"{registry.plugins[t].__name__}"
                    )


def uses_join(registry: PluginRegistry, run_id, targets, combining: bool) -> bool:
    """Whether loading ``targets`` of ``run_id`` computes over a superrun's join."""
    return (
        isinstance(run_id, str)
        and is_superrun_id(run_id)
        and not combining
        and any(allows(registry, t) for t in targets)
    )


def join_key(resolver: Resolver, name: str, data_type: str, flat=None) -> DataKey:
    """The key of ``data_type`` computed over superrun ``name``'s join.

    Raises
    ------
    LineageMismatch
        The subruns' lineages of the bases differ (one join, one lineage).
    """
    flat = flat if flat is not None else resolver.flat(name)
    computed, bases = plan(resolver.registry, [data_type])
    lineage: dict = {}
    for b in bases:
        lineage.update(resolver.superrun_key(name, b, flat).lineage)
    own = resolver.registry.lineage(data_type, name)
    for dt in computed:
        lineage[dt] = own[dt]
    lineage = canonical(lineage)
    h = deterministic_hash(
        {"lineage": lineage, "superrun": flat_fingerprint(flat), "computed": "over the join"}
    )
    return DataKey(name, data_type, h, lineage)


def key(resolver: Resolver, run_id: str, data_type: str) -> DataKey:
    """``key_for``: the join's key for an allowing type of a superrun, else the usual."""
    if uses_join(resolver.registry, run_id, [data_type], False):
        return join_key(resolver, run_id, data_type)
    return resolver.key(run_id, data_type)


# --------------------------------------------------------------------------------------
# the join: its chunks and the per-chunk computation
# --------------------------------------------------------------------------------------
@dataclass
class JoinWork:
    """What computing over superrun ``name``'s join needs; shipped to workers once."""

    name: str
    compute: list[str]  # allowing types, dependencies first
    bases: list[str]  # loaded per subrun
    plugins: dict  # {data_type: Plugin} for ``compute``, run_id = the superrun
    kinds: dict[str, str]  # data kind of every type
    dtypes: dict[str, np.dtype]  # dtype of every type
    chunks: list[tuple[int, int, int, dict]]  # (subrun index, start, end, {base: Piece})
    subruns: list[str]
    #: subruns left out, their data missing (``allow_incomplete``)
    skipped: list[str] = field(default_factory=list)
    #: the superrun's run document the plugins see (without the skipped subruns)
    document: dict | None = None

    @property
    def intervals(self) -> list[tuple[int, int]]:
        return [(s, e) for _i, s, e, _p in self.chunks]


def build_join(
    resolver: Resolver,
    name: str,
    targets,
    flat,
    check_lineage=True,
    make=True,
    progress=False,
    incomplete: bool = False,
) -> JoinWork:
    """The join of superrun ``name`` for ``targets``: bases made where missing, then
    their pieces (metadata only) aligned into join chunks. With ``incomplete`` (the
    context option ``allow_incomplete``), subruns missing any base are left out (the
    resolver warns) and the plugins see the superrun's document without them."""
    registry = resolver.registry
    computed, bases = plan(registry, targets)
    kinds = {b: resolver.data_kind(b, name) for b in bases}
    by_kind: dict[str, list[str]] = defaultdict(list)
    for b in bases:
        by_kind[kinds[b]].append(b)
    dtypes: dict[str, np.dtype] = {}
    aligned: dict[tuple[int, int, int], dict[str, Piece]] = {}
    subruns: list[str] = []
    skipped: list[str] = []
    for group in by_kind.values():
        res = resolver.resolve(
            [name],
            group,
            None,
            check_lineage,
            make=make,
            progress=progress,
            stored=False,
            incomplete=incomplete,
        )
        subruns = res.subruns
        if isinstance(res, PartialResolved):
            skipped += [s for s in res.skipped.get(name, []) if s not in skipped]
        for b in group:
            dtypes[b] = _dtype_of(resolver, b, res)
        for p in res.pieces():
            slot = aligned.setdefault((p.start, p.end, p.source.subrun), {})
            for b in group:
                slot[b] = p
    if skipped:  # (a subrun skipped for one base is left out for all)
        aligned = _without(aligned, name, subruns, skipped, bases)
    chunks = [(i, s, e, pieces) for (s, e, i), pieces in sorted(aligned.items())]
    for (_i, _s, prev_end, _p), (_j, s, _e, _q) in zip(chunks, chunks[1:]):
        if s < prev_end:
            raise InvalidRequest(
                f"the subruns' {', '.join(bases)} of superrun {name!r} are chunked differently "
                "(their chunks overlap), so they cannot be joined chunk by chunk; make them "
                "with the same plugins, or pass combining=True"
            )
    if skipped:
        doc = resolver.loaded_document(name, skipped)
    else:
        doc = resolver.catalog.run_metadata(name)
    plugins = registry.plugins_for(computed, name)
    for dt, plugin in plugins.items():
        plugin._run_doc = doc
        kinds[dt] = registry.data_kind(dt)  # (what the registry set on the plugin)
        dtypes[dt] = plugin.dtype
    return JoinWork(name, computed, bases, plugins, kinds, dtypes, chunks, subruns, skipped, doc)


def _without(
    aligned: dict[tuple[int, int, int], dict[str, Piece]],
    name: str,
    subruns: list[str],
    skipped: list[str],
    bases: list[str],
) -> dict[tuple[int, int, int], dict[str, Piece]]:
    """The join's ``aligned`` pieces without those of the ``skipped`` subruns.

    Raises
    ------
    DataNotAvailable
        Every subrun is skipped (for one base or another).
    """
    gone = {i for i, s in enumerate(subruns) if s in set(skipped)}
    if len(gone) == len(subruns):
        raise DataNotAvailable(
            f"superrun {name!r}: every subrun lacks some of {', '.join(bases)}, and "
            "allow_incomplete=True does not make them; make them, or load with make=True"
        )
    return {k: v for k, v in aligned.items() if k[2] not in gone}


def _dtype_of(resolver: Resolver, data_type: str, res: Resolved) -> np.dtype:
    for s in res.sources:
        for t, g in s.groups:
            if t == data_type:
                return g.dtype
    return resolver.registry.plugin(data_type, res.subruns[0] if res.subruns else "0").dtype


def join_chunk(work: JoinWork, j: int, start: int, end: int, summaries=None, upto=None, want=None):
    """Chunk ``j`` of the join: ``{data_type: rows}`` of the bases and of every computed
    type (only up to those in ``want``, if given); with ``upto``, the keyword arguments
    of ``upto``'s compute (a whole-run plugin's summary pass)."""
    apply_summaries(work.plugins, summaries)
    _i, _s, _e, pieces = work.chunks[j]
    results: dict[str, np.ndarray] = {}
    done: dict = {}  # a multi-output plugin's result, for all its outputs
    for b in work.bases:
        p = pieces.get(b)
        if p is None:
            results[b] = np.zeros(0, work.dtypes[b])
        else:
            results[b] = group_of(p, b).read_rows(p.lo, p.hi, index=p.index)
    needed = _needed(work, want if upto is None else [upto])
    for dt in work.compute:
        if dt not in needed:
            continue
        plugin = work.plugins[dt]
        kwargs: dict[str, list] = defaultdict(list)
        for dep in type(plugin).depends_on:
            kwargs[work.kinds[dep]].append(results[dep])
        merged = {k: merge_columns(v) for k, v in kwargs.items()}
        if dt == upto:
            return merged
        where = f"superrun {work.name!r} (joined), chunk {j} [{start}, {end})"
        try:
            out = chunk_rows(plugin, merged, start, end, j, done, where)
        except DastraxError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {type(plugin).__name__} failed on {where}: {e!r}") from e
        _validate(out, plugin, where, start, end)
        results[dt] = out
    return results if want is None else {dt: results[dt] for dt in want}


def _needed(work: JoinWork, want) -> set[str]:
    if want is None:
        return set(work.compute)
    out: set[str] = set()

    def visit(dt):
        if dt in out or dt not in work.plugins:
            return
        out.add(dt)
        for dep in type(work.plugins[dt]).depends_on:
            visit(dep)

    for dt in want:
        visit(dt)
    return out


# --------------------------------------------------------------------------------------
# loading: a lazy join, or the stored copy of it
# --------------------------------------------------------------------------------------
@dataclass
class JoinLoad:
    """A load computed over a superrun's join (not stored): made into numbers only by
    :func:`array`, :func:`iter_chunks` or the lazy :func:`dataset`."""

    work: JoinWork
    targets: list[str]
    data_kind: str
    time_range: tuple[int, int] | None
    scheduler: Scheduler

    @property
    def subruns(self) -> list[str]:
        return self.work.subruns

    # the outputs of a load, as :class:`dastrax.load.plan.Resolved` gives them
    def array(
        self, scheduler: Scheduler, columns: Sequence[str] | None, labels: bool, progress: bool
    ) -> np.ndarray:
        return _array(self, scheduler, columns, labels, progress)

    def iter_chunks(
        self, scheduler: Scheduler, columns: Sequence[str] | None = None
    ) -> Iterator[Chunk]:
        return _iter_chunks(self, scheduler, columns)

    def dataset(
        self,
        columns: Sequence[str] | None = None,
        run_id: str | Sequence[str] | None = None,
        chunks: str | int | Mapping[str, str | int] | None = "auto",
    ) -> xr.Dataset:
        return _dataset(self, columns, run_id, chunks)

    def selected(self) -> list[int]:
        """The join chunks that overlap the time range."""
        if self.time_range is None:
            return list(range(len(self.work.chunks)))
        ts, te = self.time_range
        return [j for j, (_i, s, e, _p) in enumerate(self.work.chunks) if s < te and e > ts]

    def columns(self, columns=None) -> dict[str, tuple[str, np.dtype]]:
        out: dict[str, tuple[str, np.dtype]] = {}
        for t in self.targets:
            dtype = self.work.dtypes[t]
            for n in dtype.names or ():
                out.setdefault(n, (t, dtype[n]))
        if columns is None:
            return out
        unknown = [c for c in columns if c not in out]
        if unknown:
            raise InvalidRequest(
                f"unknown columns {unknown} for {', '.join(self.targets)}: available are "
                f"{list(out)}"
            )
        keep = set(columns) | {"time"} | set(end_fields(self.work.dtypes[self.targets[0]]))
        return {n: v for n, v in out.items() if n in keep}

    def tasks(self, columns=None):
        """``(join chunk indices, delayed rows of each)``, and the rows' dtype."""
        cols = self.columns(columns)
        dtype = np.dtype([(_titled(self.work.dtypes[t], n), sub) for n, (t, sub) in cols.items()])
        node = dask.delayed(self.work, pure=False)
        summaries = summary_graph(
            node, self.work.compute, self.work.plugins, self.work.intervals, join_chunk
        )
        picked = self.selected()
        tasks = [
            dask.delayed(_rows, pure=False)(
                node,
                j,
                *self.work.intervals[j],
                summaries,
                self.targets,
                cols,
                dtype,
                self.time_range,
            )
            for j in picked
        ]
        return picked, tasks, dtype


#: what a load reads: stored data (a stored join included), or a join to compute
Load = Resolved | JoinLoad


def _titled(dtype: np.dtype, name: str):
    """``name``, with its title in ``dtype`` if it has one (as stored data keeps it)."""
    fields = dtype.fields
    if fields is None or name not in (dtype.names or ()):
        return name
    title = fields[name][2:]
    return (title[0], name) if title else name


def _rows(work, j, start, end, summaries, targets, cols, dtype, time_range) -> np.ndarray:
    results = join_chunk(work, j, start, end, summaries, want=targets)
    lengths = {t: len(results[t]) for t in targets}
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(
            f"{', '.join(targets)} hold different numbers of rows in chunk {j} of superrun "
            f"{work.name!r} ({lengths}), so they cannot be merged column-wise; load them "
            "separately"
        )
    out = np.empty(lengths[targets[0]], dtype)
    for name, (t, _sub) in cols.items():
        out[name] = results[t][name]
    if time_range is not None:
        out = out[(out["time"] >= time_range[0]) & (endtime(out) <= time_range[1])]
    return out


def resolve(
    resolver: Resolver,
    scheduler: Scheduler,
    run_ids: RunIds,
    targets: str | Sequence[str],
    req: LoadRequest,
    allow_incomplete: bool = False,
) -> Load:
    """What a load of ``targets`` of ``run_ids`` reads: a :class:`loader.Resolved` (stored
    data, a stored join included), or a :class:`JoinLoad` computed over a join. With
    ``allow_incomplete`` (the context option) and no ``make=True``, subruns of superruns
    whose data is missing are skipped with a warning (a :class:`PartialResolved`, or a
    join without them) instead of made.

    Raises
    ------
    InvalidRequest
        A non-allowing type depending on an allowing one, asked for a superrun without
        ``combining=True``; an allowing type of a superrun inside a list of runs.
    """
    targets = [targets] if isinstance(targets, str) else list(dict.fromkeys(targets))
    registry = resolver.registry
    if isinstance(run_ids, str):
        runs = [run_ids]
    elif isinstance(run_ids, (list, tuple)) or hasattr(run_ids, "tolist"):
        runs = [str(r) for r in run_ids]
    else:  # refused by the resolver, naming it
        runs = []
    if not req.combining:
        for r in runs:
            if is_superrun_id(r):
                check_conflicts(registry, r, targets)
        if not isinstance(run_ids, str) and any(
            is_superrun_id(r) and any(allows(registry, t) for t in targets) for r in runs
        ):
            raise InvalidRequest(
                f"{', '.join(targets)} of a superrun is computed over its joined subruns, "
                "which is done for one superrun at a time: load each superrun on its own, or "
                "pass combining=True to concatenate"
            )
    if not isinstance(run_ids, str) or not uses_join(registry, run_ids, targets, req.combining):
        res = resolver.resolve(
            run_ids,
            targets,
            req.time_range,
            req.check_lineage,
            make=req.make,
            incomplete=allow_incomplete,
        )
        res.selection = req.selection
        return res
    name = run_ids
    flat = resolver.flat(name)
    kind = resolver.same_kind(targets, name)
    time_range = req.time_range
    if time_range is not None:
        from dastrax.core import times

        time_range = times.time_range(time_range)
    if all(allows(registry, t) for t in targets):
        keys = {t: join_key(resolver, name, t, flat) for t in targets}
        found = {t: resolver.storage.find(str(k)) for t, k in keys.items()}
        groups = [(t, g) for t, g in found.items() if g is not None]
        if len(groups) == len(found):
            for t, g in groups:
                _check_stored_lineage(g, keys[t], req.check_lineage)
            source = Source(name, name, tuple(groups), 0, intersect_ranges(None, time_range), True)
            return Resolved([source], list(groups[0][1].meta["subruns"]), targets, kind)
    if req.selection is not None:
        raise InvalidRequest(
            f"selection= is not applied to {', '.join(targets)} computed over the joined "
            f"subruns of {name}; load with combining=True, or select in the result"
        )
    work = build_join(
        resolver,
        name,
        targets,
        flat,
        req.check_lineage,
        req.make,
        req.progress,
        incomplete=allow_incomplete,
    )
    return JoinLoad(work, targets, kind, time_range, scheduler)


def _check_stored_lineage(group, k: DataKey, check: bool) -> None:
    if check and canonical(group.meta.get("lineage")) != canonical(k.lineage):
        raise LineageMismatch(
            f"stored {k.data_type} of superrun {k.run_id!r} ({k}) was made with another "
            "lineage than the one requested; "
            f"{advice('persist_again', run=k.run_id, data_type=k.data_type)}, or "
            f"{advice('check_lineage')}"
        )


def _array(
    res: JoinLoad,
    scheduler: Scheduler,
    columns: Sequence[str] | None,
    labels: bool,
    progress: bool,
) -> np.ndarray:
    """The join's rows in time order (:meth:`JoinLoad.array`)."""
    _picked, tasks, dtype = res.tasks(columns)
    if not tasks:
        return np.empty(0, dtype)
    blocks = scheduler.compute(
        *tasks, progress=progress, label=f"computing {'+'.join(res.targets)} over the join"
    )
    return np.concatenate(blocks)


def _iter_chunks(
    res: JoinLoad, scheduler: Scheduler, columns: Sequence[str] | None = None
) -> Iterator[Chunk]:
    """One :class:`Chunk` per join chunk (run id the superrun, ``subruns`` naming its one
    subrun) (:meth:`JoinLoad.iter_chunks`)."""
    picked, tasks, _dtype = res.tasks(columns)
    data_type = "+".join(res.targets)
    ts, te = res.time_range or (None, None)
    for j, data in zip(picked, scheduler.iter_ordered(tasks)):
        i, s, e, _p = res.work.chunks[j]
        s, e = (s, e) if ts is None else (max(s, ts), min(e, te))
        subruns = {res.work.subruns[i]: {"start": s, "end": e}}
        yield Chunk(data, s, e, res.work.name, data_type, subruns)


def _dataset(
    res: JoinLoad,
    columns: Sequence[str] | None = None,
    run_id: str | Sequence[str] | None = None,
    chunks: str | int | Mapping[str, str | int] | None = "auto",
) -> xr.Dataset:
    """A lazy ``xarray.Dataset`` whose blocks compute the join's chunks
    (:meth:`JoinLoad.dataset`; its blocks are the join's chunks, whatever ``chunks``).
    Row counts come from the bases' metadata where a
    target has a base's data kind (types of one kind share rows) and no time range cuts;
    otherwise a counting pass computes them first (the data itself stays lazy)."""
    import dask.array as da
    import xarray as xr
    from dask.highlevelgraph import HighLevelGraph

    work = res.work
    picked, tasks, dtype = res.tasks(columns)
    base = next((b for b in work.bases if work.kinds[b] == res.data_kind), None)
    if base is not None and res.time_range is None:
        counts = [_n(work.chunks[j][3].get(base)) for j in picked]
    else:
        counts = [int(n) for n in res.scheduler.compute(*[dask.delayed(len)(t) for t in tasks])]
    kind = res.data_kind
    data_vars = {}
    for name in dtype.names:
        sub = dtype.fields[name][0]
        gname = f"{name}-join-{uuid.uuid4().hex}"
        zeros = (0,) * sub.ndim
        dsk: dict[Key, tuple[object, ...]] = {
            (gname, k, *zeros): (_field, t.key, name) for k, t in enumerate(tasks)
        }
        if not tasks:
            dsk = {(gname, 0, *zeros): (np.empty, (0, *sub.shape), sub.base)}
        graph = HighLevelGraph.from_collections(gname, dsk, dependencies=tasks)
        blocks = (tuple(counts) or (0,), *((s,) for s in sub.shape))
        arr = da.Array(graph, gname, blocks, meta=np.empty((0,) * (1 + sub.ndim), sub.base))
        t = res.columns(columns)[name][0]
        dims = [kind] + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)]
        data_vars[name] = xr.Variable(dims, arr, attrs=loader.variable_attrs(work.dtypes[t], name))
    subrun = (  # runs of rows: each join chunk's subrun
        np.array([work.chunks[j][0] for j in picked], np.int32),
        np.array(counts, np.int64),
    )
    attrs: dict[str, object] = {  # (the Dataset's)
        "run_id": run_id,
        "data_types": res.targets,
        "data_kind": kind,
        "subruns": work.subruns,
        "computed_over": "joined subruns",
    }
    if work.skipped and work.document is not None:
        attrs.update(incomplete_attrs([work.document], run_id))
    return loader.labelled(data_vars, subrun, work.subruns, attrs)


def _n(piece) -> int:
    return 0 if piece is None else piece.n


def _field(rows: np.ndarray, name: str) -> np.ndarray:
    return rows[name]


# --------------------------------------------------------------------------------------
# making and storing
# --------------------------------------------------------------------------------------
def make_requests(
    resolver: Resolver,
    run_id_or_ids: str | Sequence[str],
    targets: list[str],
    combining: bool = False,
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """``([(run_id, targets), ...], superruns)`` for ``make``: superruns become their
    subruns, asked for ``targets`` — or, for a superrun computed over its join, for the
    join's (registered) bases. Unknown data types are refused before anything is made."""
    registry = resolver.registry
    for t in targets:
        registry.plugin_class(t)
    run_ids = [run_id_or_ids] if isinstance(run_id_or_ids, str) else list(run_id_or_ids)
    requests: dict[str, list[str]] = {}
    superruns = []
    for r in run_ids:
        validate_run_id(r)
        if not is_superrun_id(r):
            requests.setdefault(r, []).extend(targets)
            continue
        superruns.append(r)
        wanted = list(targets)
        if not combining:
            check_conflicts(registry, r, targets)
            if uses_join(registry, r, targets, False):
                wanted = [b for b in plan(registry, targets)[1] if b in registry.plugins]
        for sub, _ranges in resolver.flat(r):
            requests.setdefault(sub, []).extend(wanted)
    return [(r, list(dict.fromkeys(t))) for r, t in requests.items() if t], superruns


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
    combining: bool = False,
) -> list[DataKey]:
    """``persist.persist_superrun`` for concatenated targets; allowing targets (unless
    ``combining``) are computed over the join and stored with every allowing type
    computed on the way (:func:`persist_join`). Returns the keys of what is stored."""
    registry = resolver.registry
    if combining:
        joined_targets: list[str] = []
    else:
        check_conflicts(registry, name, targets)
        joined_targets = [t for t in targets if allows(registry, t)]
    rest = [t for t in targets if t not in joined_targets]
    keys: list[DataKey] = []
    if joined_targets:
        keys += persist_join(
            resolver,
            scheduler,
            name,
            joined_targets,
            chunk_target_size_mb,
            compressor,
            progress,
            overwrite,
            make,
        )
    if rest:
        keys += persist.persist_superrun(
            resolver,
            scheduler,
            name,
            rest,
            chunk_target_size_mb,
            compressor,
            progress,
            overwrite=overwrite,
            make=make,
        )
    return keys


@dataclass(frozen=True)
class _Carry:
    """The state of one stored type's write chain (immutable, picklable)."""

    app: GroupWriter  # arrays created with the total row count
    written: int  # rows written to whole zarr chunks
    tail: np.ndarray | None  # rows (with 'subrun') waiting for a whole zarr chunk


def _write_chunk(
    carry: _Carry, results: dict, dt: str, j: int, sub_i: int, name: str, n: int
) -> _Carry:
    """Append join chunk ``j``'s rows of ``dt`` (``n`` of them, as counted) to the chain:
    whole zarr chunks written as soon as they are there (the writers' buffer,
    :func:`~dastrax.storage.grid.buffer_rows`)."""
    data = results[dt]
    if len(data) != n:
        raise PluginError(
            f"{dt} of superrun {name!r} gave {len(data)} rows in chunk {j}, but {n} in the "
            "counting pass: its plugin must give the same rows every time"
        )
    names = data.dtype.names or ()
    rows = np.empty(len(data), [*[(f, data.dtype[f]) for f in names], ("subrun", np.int32)])
    for f in names:
        rows[f] = data[f]
    rows["subrun"] = sub_i
    app, written = carry.app, carry.written
    _rows, whole, tail = buffer_rows(carry.tail, rows, app.chunk_rows)
    if whole is not None:
        _write_at(app, written, whole)
        written += len(whole)
    return replace(carry, written=written, tail=tail)


def _write_at(app: GroupWriter, lo: int, rows: np.ndarray) -> None:
    """``rows`` written from row ``lo`` on, column by column."""
    for f in rows.dtype.names or ():
        app.array(f)[lo : lo + len(rows)] = rows[f]


def _flush(carry: _Carry) -> _Carry:
    """The chain's last rows (a partial zarr chunk) written."""
    if carry.tail is not None and len(carry.tail):
        _write_at(carry.app, carry.written, carry.tail)
        return replace(carry, written=carry.written + len(carry.tail), tail=None)
    return carry


def _counts(work, j, start, end, summaries, types) -> dict[str, tuple]:
    """Join chunk ``j``'s rows of each type, counted: ``(time, endtime)`` of its rows."""
    results = join_chunk(work, j, start, end, summaries, want=types)
    return {
        t: (np.asarray(results[t]["time"], np.int64), np.asarray(endtime(results[t]), np.int64))
        for t in types
    }


def _join_tables(resolver, name, flat, work, todo, counted, size_mb) -> dict[str, list]:
    """The stored chunk table of each type of ``todo`` (SEMANTICS.md, "Stored
    superruns"): about ``size_mb`` of rows a chunk, boundaries only between rows that do
    not overlap; types of one data kind share their boundaries."""
    doc = resolver.catalog.run_metadata(name)
    hulls = persist._hulls(flat, resolver.catalog.run_metadata)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for dt in todo:
        by_kind[work.kinds[dt]].append(dt)
    tables = {}
    for types in by_kind.values():
        first = types[0]
        time = np.concatenate([c[first][0] for c in counted] or [np.zeros(0, np.int64)])
        end = np.concatenate([c[first][1] for c in counted] or [np.zeros(0, np.int64)])
        spans = [(len(c[first][0]), sub_i) for c, (sub_i, _s, _e, _p) in zip(counted, work.chunks)]
        start, stop = int(doc["start"]), int(doc["end"])
        if len(time):
            start, stop = min(start, int(time[0])), max(stop, int(end.max()))
        row_bytes = max(work.dtypes[dt].itemsize for dt in types)
        table = persist.logical_chunks(
            spans, time, end, row_bytes, size_mb, start, stop, work.subruns, hulls, name
        )
        for dt in types:
            tables[dt] = [dict(c, nbytes=c["n"] * work.dtypes[dt].itemsize) for c in table]
    return tables


def persist_join(
    resolver: Resolver,
    scheduler,
    name: str,
    targets: list[str],
    chunk_target_size_mb: float,
    compressor,
    progress: bool = False,
    overwrite: bool = False,
    make: bool = True,
) -> list[DataKey]:
    """Compute ``targets`` over superrun ``name``'s join and store them — and every
    allowing type computed on the way — under their join keys (targets' keys first).

    Two passes over the join: one counts each chunk's rows and gives their times (so
    the arrays are created with their final size and the stored chunks are chosen, about
    ``chunk_target_size_mb`` each, as for every stored superrun), one computes and
    streams them into zarr, each type through a chain of write tasks in time order
    (every zarr chunk written once). Chunks name their subruns; rows carry a ``subrun``
    column."""
    flat = resolver.flat(name)
    computed, _bases = plan(resolver.registry, targets)
    order = [*targets, *[dt for dt in computed if dt not in targets]]
    # the other outputs of multi-output plugins computed on the way are saved too
    registry = resolver.registry
    order += [s for dt in computed for s in registry.siblings(dt) if s not in order]
    order = list(dict.fromkeys(order))
    keys = {dt: join_key(resolver, name, dt, flat) for dt in order}
    storage = resolver.storage
    todo = [dt for dt in order if overwrite or storage.find(str(keys[dt])) is None]
    if not todo:
        return [keys[dt] for dt in order]
    work = build_join(resolver, name, todo, flat, True, make, progress)
    node = dask.delayed(work, pure=False)
    summaries = summary_graph(node, work.compute, work.plugins, work.intervals, join_chunk)
    counted = scheduler.compute(
        *[
            dask.delayed(_counts, pure=False)(node, j, s, e, summaries, todo)
            for j, (s, e) in enumerate(work.intervals)
        ],
        progress=progress,
        label=f"counting {', '.join(todo)} of {name} over the join",
    )
    tables = _join_tables(resolver, name, flat, work, todo, counted, chunk_target_size_mb)
    frontend = storage.writable()
    apps = []
    try:
        finals = []
        chunk_tasks = [
            dask.delayed(join_chunk, pure=False)(node, j, s, e, summaries, None, todo)
            for j, (s, e) in enumerate(work.intervals)
        ]
        for dt in todo:
            n_rows = [len(c[dt][0]) for c in counted]
            total = sum(n_rows)
            app = frontend.writer(
                str(keys[dt]), work.dtypes[dt], compressor, work.kinds[dt], overwrite=overwrite
            )
            apps.append(app)
            apps[-1] = app = app.create_arrays(
                max((c["n"] for c in tables[dt]), default=1) or 1,
                total_rows=total,
                extra={"subrun": np.int32},
                attributes={"coordinates": "subrun"},
            )
            state = _Carry(app, 0, None)
            for j, ((sub_i, _s, _e, _p), task) in enumerate(zip(work.chunks, chunk_tasks)):
                state = dask.delayed(_write_chunk, pure=False)(
                    state, task, dt, j, sub_i, name, n_rows[j]
                )
            finals.append(dask.delayed(_flush, pure=False)(state))
        carries = scheduler.compute(
            *finals, progress=progress, label=f"storing {', '.join(todo)} of {name} (joined)"
        )
        for dt, app, carry in zip(todo, apps, carries):
            meta = {
                "run_id": name,
                "data_type": dt,
                "data_kind": work.kinds[dt],
                "lineage": canonical(keys[dt].lineage),
                "lineage_hash": keys[dt].lineage_hash,
                "chunk_target_size_mb": chunk_target_size_mb,
                "subruns": work.subruns,
                "sub_run_spec": flat_fingerprint(flat),
                "computed_over": "joined subruns",
                "chunks": tables[dt],
            }
            app.with_rows(carry.written).commit(meta)
    except BaseException:
        for app in apps:
            app.abort()
        raise
    return [keys[dt] for dt in order]

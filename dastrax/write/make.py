"""Making data: a run's data types built chunk by chunk as one dask graph and stored.

For each run, chunk ``i`` of every missing type is computed in one task from chunk ``i``
of its inputs (read from storage, or computed in the same task); tasks of all chunks and
all runs run in parallel. Each stored type is written by a chain of append tasks, one per
chunk in time order, so rows stream to zarr as they are made, each zarr chunk written once,
and a final commit task makes the data visible only once it is complete.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from dask.task_spec import DataNode, Task, TaskRef

from dastrax.core.chunks import endtime, merge_columns, table_intervals, table_span
from dastrax.core.lineage import DataKey, canonical
from dastrax.core.plugin import Plugin, chunk_rows
from dastrax.core.plugins import PluginRegistry
from dastrax.core.scheduling import Scheduler
from dastrax.core.wholerun import apply_summaries, summary_graph
from dastrax.errors import DastraxError, PluginError
from dastrax.storage import StorageFrontend, StorageList, StoredGroup
from dastrax.storage.abc import GroupWriter, PendingCommit

__all__ = ["RunWork", "make_runs", "plan_run"]


@dataclass
class RunWork:
    """What has to be computed for one regular run."""

    run_id: str
    compute: list[str]  # data types to compute, dependencies first
    plugins: dict[str, Plugin]
    keys: dict[str, DataKey]
    inputs: dict[str, StoredGroup] = field(default_factory=dict)  # stored dependencies
    intervals: list[tuple[int, int]] = field(default_factory=list)


def plan_run(
    registry: PluginRegistry, storage: StorageList, run_id: str, targets: list[str]
) -> RunWork | None:
    """What is missing of ``targets`` for regular run ``run_id``, and how to make it."""
    compute: list[str] = []
    stored: dict[str, StoredGroup] = {}
    keys: dict[str, DataKey] = {}

    def need(dt: str) -> None:
        if dt in compute or dt in stored:
            return
        key = registry.key(run_id, dt)
        keys[dt] = key
        found = storage.find(str(key))
        if found is not None:
            stored[dt] = found
            return
        for dep in registry.plugin_class(dt).depends_on:
            need(dep)
        compute.append(dt)
        for other in registry.siblings(dt):  # a multi-output plugin makes all its outputs
            need(other)

    for t in targets:
        need(t)
    if not compute:
        return None
    plugins = registry.plugins_for(compute, run_id)
    direct = {d for dt in compute for d in registry.plugin_class(dt).depends_on}
    inputs = {dt: v for dt, v in stored.items() if dt in direct}
    work = RunWork(run_id, compute, plugins, keys, inputs)
    work.intervals = _intervals(work)
    return work


def _intervals(work: RunWork) -> list[tuple[int, int]]:
    if work.inputs:
        first = next(iter(work.inputs.values()))
        return table_intervals(first.chunks, f"{first.key} in {first.url}")
    source = next(p for p in work.plugins.values() if not type(p).depends_on)
    try:
        intervals = [(int(s), int(e)) for s, e in source.chunk_intervals(work.run_id)]
    except DastraxError:
        raise
    except Exception as e:
        raise PluginError(
            f"plugin {type(source).__name__} failed in chunk_intervals for run "
            f"{work.run_id!r}: {e!r}"
        ) from e
    prev_end = None
    for start, end in intervals:
        if end < start or (prev_end is not None and start < prev_end):
            raise PluginError(
                f"plugin {type(source).__name__} gave chunk intervals for run {work.run_id!r} "
                f"that overlap or run backwards at [{start}, {end}): chunks must tile the run "
                "in time order"
            )
        prev_end = end
    return intervals


def compute_chunk(
    work: RunWork, i: int, start: int, end: int, summaries=None, upto=None
) -> dict[str, np.ndarray]:
    """Chunk ``i`` of every data type in ``work.compute`` (with ``upto``: the inputs of
    ``upto``'s compute, for a whole-run plugin's summary pass; see dastrax.core.wholerun)."""
    apply_summaries(work.plugins, summaries)
    results: dict[str, np.ndarray] = {}
    done: dict = {}  # a multi-output plugin's result, for all its outputs
    for dt, group in work.inputs.items():
        lo, hi = table_span(group.chunks, i, f"{group.key} in {group.url}")
        results[dt] = group.read_rows(lo, hi)
    for dt in work.compute:
        plugin = work.plugins[dt]
        name = type(plugin).__name__
        where = f"run {work.run_id!r}, chunk {i} [{start}, {end})"
        kwargs: dict[str, list] = defaultdict(list)
        for dep in type(plugin).depends_on:
            kwargs[_kind_of(work, dep)].append(results[dep])
        if dt == upto:
            return {k: merge_columns(v) for k, v in kwargs.items()}
        try:
            inputs = {k: merge_columns(v) for k, v in kwargs.items()}
            out = chunk_rows(plugin, inputs, start, end, i, done, where)
        except DastraxError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {name} failed on {where}: {e!r}") from e
        _validate(out, plugin, where, start, end)
        results[dt] = out
    return {dt: results[dt] for dt in work.compute}


def _kind_of(work: RunWork, dt: str) -> str:
    kind = work.plugins[dt].data_kind if dt in work.plugins else None
    if isinstance(kind, str):  # (the registry sets each instance's kind, a str)
        return kind
    return work.inputs[dt].meta["data_kind"]


def _validate(out, plugin: Plugin, where: str, start: int, end: int) -> None:
    name = type(plugin).__name__
    if not isinstance(out, np.ndarray) or out.dtype != plugin.dtype:
        got = out.dtype if isinstance(out, np.ndarray) else type(out).__name__
        raise PluginError(
            f"plugin {name} returned the wrong dtype on {where}: expected {plugin.dtype}, "
            f"got {got}; return np.zeros(n, self.dtype) filled in"
        )
    if len(out):
        t = out["time"]
        if np.any(np.diff(t) < 0):
            raise PluginError(f"plugin {name} returned rows not sorted by time on {where}")
        if t[0] < start or endtime(out).max() > end:
            raise PluginError(
                f"plugin {name} returned rows outside the chunk on {where}: times "
                f"[{int(t[0])}, {int(endtime(out).max())}) must lie in [{start}, {end})"
            )


def _append(
    state: GroupWriter,
    results: dict[str, np.ndarray],
    dt: str,
    start: int,
    end: int,
    run_id: str,
) -> GroupWriter:
    return state.append(results[dt], start, end, run_id=run_id)


def _prepare(state: GroupWriter, meta: dict[str, Any]) -> PendingCommit:
    return state.prepare(meta)


def _commit_batch(frontend: StorageFrontend, *prepared: PendingCommit) -> list[dict[str, Any]]:
    return frontend.commit_all(list(prepared))


def make_runs(
    registry: PluginRegistry,
    storage: StorageList,
    scheduler: Scheduler,
    requests: list[tuple[str, list[str]]],
    compressor: dict | None,
    chunk_target_size_mb: float,
    progress: bool = False,
) -> list[str]:
    """Make and store what is missing of each ``(run_id, targets)``; returns keys written.

    All runs and chunks form one graph, run in parallel. If anything fails, nothing of
    what was being written is left behind (already stored inputs stay stored).
    """
    works = [
        w
        for run_id, targets in requests
        if (w := plan_run(registry, storage, run_id, targets)) is not None
    ]
    if not works:
        return []
    frontend = storage.writable()
    groups = [(work, dt) for work in works for dt in work.compute]
    appenders = frontend.writers(
        [
            {
                "key": str(work.keys[dt]),
                "dtype": work.plugins[dt].dtype,
                "compressor": compressor,
                "data_kind": work.plugins[dt].data_kind,
            }
            for work, dt in groups
        ]
    )
    try:
        graph = _make_graph(works, appenders, chunk_target_size_mb, frontend)
        label = (
            f"making {', '.join(sorted({d for w in works for d in w.compute}))} "
            f"for {len(works)} run(s)"
        )
        # each group prepared on its own (in parallel), then all committed as one batch
        # (one transaction, one flush to disk, where the storage can)
        (metas,) = scheduler.compute(graph, progress=progress, label=label)
    except BaseException:
        for app in appenders:
            app.abort()
        raise
    return [f"{m['run_id']}-{m['data_type']}-{m['lineage_hash']}" for m in metas]


def _make_graph(
    works: list[RunWork],
    appenders: list[GroupWriter],
    chunk_target_size_mb: float,
    frontend: StorageFrontend,
) -> Delayed:
    """The graph of a ``make``, as one delayed list of the committed metadata documents.

    Built as one layer of tasks (not a delayed call per task: dask would traverse each
    call's arguments, and its graph optimisation would cull each of the thousands of
    layers against every key of the graph, which grew as the square of the runs). Per
    run: one node holding its plugins and inputs (shipped once per worker), one task per
    chunk computing every type, one chain of appends per type, one prepared commit per
    type; then one task committing them all as one batch (``frontend.commit_all``).
    """
    token = uuid.uuid4().hex
    names = {n: f"make-{n}-{token}" for n in ("work", "chunk", "append", "commit", "done")}
    dsk: dict = {}
    commits = []
    groups = iter(appenders)
    for j, work in enumerate(works):
        work_key = (names["work"], j)
        dsk[work_key] = DataNode(work_key, work)
        summaries = _summaries(work, work_key, dsk)
        chunk_keys = []
        for i, (s, e) in enumerate(work.intervals):
            key = (names["chunk"], j, i)
            dsk[key] = Task(key, compute_chunk, TaskRef(work_key), i, s, e, summaries)
            chunk_keys.append(key)
        for d, dt in enumerate(work.compute):
            data_key = work.keys[dt]
            # the writer, then the task whose result is the writer's next state
            state: GroupWriter | TaskRef = next(groups)
            for i, ((s, e), chunk) in enumerate(zip(work.intervals, chunk_keys)):
                app_key = (names["append"], j, d, i)
                dsk[app_key] = Task(app_key, _append, state, TaskRef(chunk), dt, s, e, work.run_id)
                state = TaskRef(app_key)
            meta = {
                "run_id": work.run_id,
                "data_type": dt,
                "data_kind": work.plugins[dt].data_kind,
                "lineage": canonical(data_key.lineage),
                "lineage_hash": data_key.lineage_hash,
                "chunk_target_size_mb": chunk_target_size_mb,
            }
            commit_key = (names["commit"], j, d)
            dsk[commit_key] = Task(commit_key, _prepare, state, meta)
            commits.append(TaskRef(commit_key))
    done = names["done"]
    dsk[done] = Task(done, _commit_batch, frontend, *commits)
    return Delayed(done, HighLevelGraph.from_collections(done, dsk, dependencies=()))


def _summaries(work: RunWork, work_key, dsk: dict):
    """The combined summaries of ``work``'s whole-run plugins (see
    :func:`dastrax.core.wholerun.summary_graph`): their tasks added to ``dsk``, a reference
    to them returned (None if no plugin of ``work`` needs one)."""
    if not any(type(work.plugins[dt]).needs_summary for dt in work.compute):
        return None
    layer = f"{work_key[0]}-{work_key[1]}"
    node = Delayed(
        work_key, HighLevelGraph.from_collections(layer, {work_key: dsk[work_key]}), layer=layer
    )
    summaries = summary_graph(node, work.compute, work.plugins, work.intervals, compute_chunk)
    dsk.update(summaries.__dask_graph__())
    return TaskRef(summaries.key)

"""Making data: a run's data types built chunk by chunk as one dask graph and stored.

For each run, chunk ``i`` of every missing type is computed in one task from chunk ``i``
of its inputs (read from storage, or computed in the same task); tasks of all chunks and
all runs run in parallel. Each stored type is written by a chain of append tasks, one per
chunk in time order, so rows stream to zarr as they are made, each zarr chunk written once,
and a final commit task makes the data visible only once it is complete.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import dask
import numpy as np

from .chunks import endtime, merge_columns
from .errors import DastraxError, PluginError
from .lineage import canonical
from .plugin import Plugin, chunk_rows
from .registry import PluginRegistry
from .scheduling import Scheduler
from .storage import StorageList, StoredGroup
from .wholerun import apply_summaries, summary_graph

__all__ = ["RunWork", "make_runs", "plan_run"]


@dataclass
class RunWork:
    """What has to be computed for one regular run."""

    run_id: str
    compute: list[str]  # data types to compute, dependencies first
    plugins: dict[str, Plugin]
    keys: dict
    inputs: dict[str, StoredGroup] = field(default_factory=dict)  # stored dependencies
    intervals: list[tuple[int, int]] = field(default_factory=list)


def plan_run(
    registry: PluginRegistry, storage: StorageList, run_id: str, targets: list[str]
) -> RunWork | None:
    """What is missing of ``targets`` for regular run ``run_id``, and how to make it."""
    compute: list[str] = []
    stored: dict[str, StoredGroup] = {}
    keys = {}

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
        return [(c["start"], c["end"]) for c in first.chunks]
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
    for s, e in intervals:
        if e < s or (prev_end is not None and s < prev_end):
            raise PluginError(
                f"plugin {type(source).__name__} gave chunk intervals for run {work.run_id!r} "
                f"that overlap or run backwards at [{s}, {e}): chunks must tile the run in "
                "time order"
            )
        prev_end = e
    return intervals


def compute_chunk(
    work: RunWork, i: int, start: int, end: int, summaries=None, upto=None
) -> dict[str, np.ndarray]:
    """Chunk ``i`` of every data type in ``work.compute`` (with ``upto``: the inputs of
    ``upto``'s compute, for a whole-run plugin's summary pass; see dastrax.wholerun)."""
    apply_summaries(work.plugins, summaries)
    results: dict[str, np.ndarray] = {}
    done: dict = {}  # a multi-output plugin's result, for all its outputs
    for dt, group in work.inputs.items():
        c = group.chunks[i]
        results[dt] = group.read_rows(c["row_start"], c["row_start"] + c["n"])
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
    if dt in work.plugins:
        return work.plugins[dt].data_kind
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


def _append(state, results, dt, start, end, run_id):
    return state.append(results[dt], start, end, run_id=run_id)


def _commit(state, meta):
    return state.commit(meta)


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
    appenders, finals = [], []
    try:
        for work in works:
            # one graph node holds the run's plugins and inputs: shipped once per worker
            work_node = dask.delayed(work, pure=False)
            summaries = summary_graph(
                work_node, work.compute, work.plugins, work.intervals, compute_chunk
            )
            chunk_tasks = [
                dask.delayed(compute_chunk, pure=False)(work_node, i, s, e, summaries)
                for i, (s, e) in enumerate(work.intervals)
            ]
            for dt in work.compute:
                key = work.keys[dt]
                kind = work.plugins[dt].data_kind
                app = frontend.writer(str(key), work.plugins[dt].dtype, compressor, kind)
                appenders.append(app)
                state = app
                for (s, e), chunk in zip(work.intervals, chunk_tasks):
                    state = dask.delayed(_append, pure=False)(state, chunk, dt, s, e, work.run_id)
                meta = {
                    "run_id": work.run_id,
                    "data_type": dt,
                    "data_kind": kind,
                    "lineage": canonical(key.lineage),
                    "lineage_hash": key.lineage_hash,
                    "chunk_target_size_mb": chunk_target_size_mb,
                }
                finals.append(dask.delayed(_commit, pure=False)(state, meta))
        label = (
            f"making {', '.join(sorted({d for w in works for d in w.compute}))} "
            f"for {len(works)} run(s)"
        )
        metas = scheduler.compute(*finals, progress=progress, label=label)
    except BaseException:
        for app in appenders:
            app.abort()
        raise
    return [f"{m['run_id']}-{m['data_type']}-{m['lineage_hash']}" for m in metas]

"""Plugins whose result depends on the whole run: the first pass of ``summarize`` tasks
and the ``combine`` that feeds ``compute``, as nodes of the dask graph that makes the run.

For each plugin with ``needs_summary`` (in dependency order), one task per chunk computes
the chunk's lower types and calls ``summarize`` on the plugin's inputs; one task combines
the partials; every later task gets the combined summaries as an argument. Nothing is
held between passes: the lower types are computed again in the final pass, so memory stays
a few chunks per worker. Used by :mod:`dastrax.write.make` (regular runs) and
:mod:`dastrax.write.join` (superruns' joined subruns) alike.
"""

from __future__ import annotations

from collections.abc import Callable

import dask

__all__ = ["apply_summaries", "summary_graph"]


def summary_graph(work_node, order, plugins: dict, intervals, chunk_fn: Callable):
    """The combined summaries of ``work``'s whole-run plugins, as a delayed dict
    ``{data_type: summary}`` (None if no plugin in ``order`` needs one).

    ``chunk_fn(work, i, start, end, summaries=..., upto=dt)`` must return the keyword
    arguments (by data kind) that ``dt``'s ``compute`` would get for chunk ``i``.
    """
    summaries = None
    for dt in order:
        if not type(plugins[dt]).needs_summary:
            continue
        partials = [
            dask.delayed(_partial, pure=False)(work_node, i, s, e, summaries, dt, chunk_fn)
            for i, (s, e) in enumerate(intervals)
        ]
        summaries = dask.delayed(_combine, pure=False)(work_node, dt, summaries, partials)
    return summaries


def apply_summaries(plugins: dict, summaries: dict | None) -> None:
    """Give each whole-run plugin its combined summary (the same value in every task)."""
    for dt, value in (summaries or {}).items():
        plugins[dt].summary = value


def _partial(work, i, start, end, summaries, dt, chunk_fn):
    kwargs = chunk_fn(work, i, start, end, summaries=summaries, upto=dt)
    return work.plugins[dt].summarize(**kwargs, start=start, end=end)


def _combine(work, dt, summaries, partials) -> dict:
    plugin = work.plugins[dt]
    return {**(summaries or {}), dt: plugin.combine(list(partials))}

"""Superrun definitions: normalising what the user gives, flattening nested superruns,
checking overlaps, and the superrun's run document (SEMANTICS.md, "define_run")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .errors import RunMetadataNotAvailable, SuperrunDefinitionError
from .names import is_superrun_id, validate_run_id
from .times import to_ns

__all__ = ["flatten", "normalize_spec", "superrun_document"]

#: a flattened superrun: [(regular run id, "all" or [[start, end], ...]), ...] by start
Flat = list[tuple[str, object]]


def _ranges(value, run_id: str) -> list[list[int]] | str:
    if isinstance(value, str):
        if value != "all":
            raise SuperrunDefinitionError(
                f"subrun {run_id!r}: give 'all' or a list of (start, end) ranges, not {value!r}"
            )
        return "all"
    try:
        items = list(value)
        pairs = [
            None if isinstance(p, (str, bytes, dict)) or len(p) != 2 else list(p) for p in items
        ]
    except TypeError:
        pairs = [None]
    if None in pairs:
        raise SuperrunDefinitionError(
            f"subrun {run_id!r}: time ranges must be (start, end) pairs of ns integers; "
            f"got {value!r}"
        )
    what = f"time range of subrun {run_id!r}"
    pairs = [
        [to_ns(s, what, SuperrunDefinitionError), to_ns(e, what, SuperrunDefinitionError)]
        for s, e in pairs
    ]
    for s, e in pairs:
        if e <= s:
            raise SuperrunDefinitionError(
                f"subrun {run_id!r}: time range ({s}, {e}) ends before it starts"
            )
    pairs.sort()
    for (s0, e0), (s1, e1) in zip(pairs, pairs[1:]):
        if s1 < e0:
            raise SuperrunDefinitionError(
                f"subrun {run_id!r}: time ranges ({s0}, {e0}) and ({s1}, {e1}) overlap in "
                f"[{s1}, {min(e0, e1)}); the same data may not appear twice in a superrun"
            )
    if not pairs:
        raise SuperrunDefinitionError(f"subrun {run_id!r}: no time ranges given")
    return pairs


def _union(starts: np.ndarray, ends: np.ndarray) -> list[list[int]]:
    order = np.argsort(starts, kind="stable")
    out: list[list[int]] = []
    for s, e in zip(starts[order].tolist(), ends[order].tolist()):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _from_rows(data, from_run: str | None) -> dict:
    if isinstance(data, pd.DataFrame):
        cols = set(data.columns)

        def col(name):
            return data[name].to_numpy()
    else:
        cols = set(data.dtype.names or ())

        def col(name):
            return data[name]

    if "time" not in cols:
        raise SuperrunDefinitionError(
            f"rows defining a superrun need a 'time' field (ns); got fields {sorted(cols)}"
        )
    time = np.asarray(col("time"), dtype=np.int64)
    if "endtime" in cols:
        end = np.asarray(col("endtime"), dtype=np.int64)
    elif {"length", "dt"} <= cols:
        end = time + np.asarray(col("length"), np.int64) * np.asarray(col("dt"), np.int64)
    else:
        raise SuperrunDefinitionError(
            "rows defining a superrun need an 'endtime' field, or 'length' and 'dt'"
        )
    if np.any(end <= time):
        raise SuperrunDefinitionError("rows defining a superrun must have endtime > time")
    if "run_id" in cols:
        runs = np.asarray(col("run_id")).astype(str)
    elif from_run is not None:
        runs = np.full(len(time), str(from_run))
    else:
        raise SuperrunDefinitionError(
            "rows defining a superrun need a 'run_id' field, or pass from_run=<run id>"
        )
    if not len(time):
        raise SuperrunDefinitionError("no rows given to define the superrun")
    out = {}
    for run in dict.fromkeys(runs.tolist()):
        mask = runs == run
        out[run] = _union(time[mask], end[mask])
    return out


def normalize_spec(data, from_run: str | None = None) -> dict[str, object]:
    """``{run_id: "all" or [[start, end], ...]}`` from any accepted form of ``data``."""
    if isinstance(data, str):
        data = [data]
    if isinstance(data, pd.DataFrame) or (isinstance(data, np.ndarray) and data.dtype.names):
        spec = _from_rows(data, from_run)
    elif isinstance(data, dict):
        spec = {validate_run_id(r): _ranges(v, r) for r, v in data.items()}
    elif isinstance(data, (list, tuple, np.ndarray)):
        runs = [validate_run_id(str(r) if isinstance(r, np.str_) else r) for r in data]
        if len(set(runs)) != len(runs):
            dup = sorted({r for r in runs if runs.count(r) > 1})
            raise SuperrunDefinitionError(f"subruns listed more than once: {dup}")
        spec = dict.fromkeys(runs, "all")
    else:
        raise SuperrunDefinitionError(
            f"cannot define a superrun from {type(data).__name__}: give a list of run ids, a "
            "dict {run_id: 'all' or [(start, end), ...]}, or rows with time and endtime"
        )
    if not spec:
        raise SuperrunDefinitionError("a superrun needs at least one subrun")
    for r in spec:
        validate_run_id(r)
    return spec


def _intersect(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append([s, e])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def flatten(spec: dict, run_doc: Callable[[str], dict], stack: tuple[str, ...] = ()) -> Flat:
    """Resolve nested superruns into regular runs with their time ranges.

    ``run_doc(run_id)`` returns a run document (raising :class:`RunMetadataNotAvailable`);
    ``stack`` holds the superruns being resolved, so a cycle is refused.
    Overlapping data (within or across runs) is refused. Sorted by start.
    """
    if not isinstance(run_doc, _DocCache):  # each document is read once per flattening
        run_doc = _DocCache(run_doc)
    pieces: list[tuple[str, object]] = []
    for run, ranges in spec.items():
        if run in stack:
            raise SuperrunDefinitionError(
                f"superrun {stack[0]!r} would contain itself: "
                f"{' -> '.join([*stack, run])}; a superrun cannot include itself"
            )
        doc = run_doc(run)
        if ranges != "all":
            _check_inside(run, ranges, doc)
        if is_superrun_id(run):
            inner = flatten(doc["sub_run_spec"], run_doc, (*stack, run))
            for sub, sub_ranges in inner:
                if ranges != "all":
                    full = sub_ranges if sub_ranges != "all" else [_bounds(run_doc(sub))]
                    cut = _intersect(full, ranges)
                    if cut:
                        pieces.append((sub, cut))
                else:
                    pieces.append((sub, sub_ranges))
        else:
            pieces.append((run, ranges))
    merged: dict[str, object] = {}
    for run, ranges in pieces:
        if run in merged:
            if merged[run] == "all" or ranges == "all":
                whole = _bounds(run_doc(run))
                a = [whole] if merged[run] == "all" else merged[run]
                b = [whole] if ranges == "all" else ranges
                s, e = _intersect(a, b)[0]
                raise SuperrunDefinitionError(
                    f"run {run!r} appears more than once in the superrun: its data in "
                    f"[{s}, {e}) would be included twice; the same data may not appear twice"
                )
            merged[run] = _ranges(merged[run] + ranges, run)
        else:
            merged[run] = ranges
    flat = sorted(merged.items(), key=lambda kv: _start(kv, run_doc))
    _check_overlaps(flat, run_doc)
    if len(stack) == 1 and not flat:
        raise SuperrunDefinitionError(
            f"superrun {stack[0]!r} would hold no data: its time ranges {spec} contain "
            "none of its subruns' data; give ranges that overlap them"
        )
    return flat


def _check_inside(run: str, ranges, doc: dict) -> None:
    """Each range of subrun ``run`` must lie inside its ``[start, end)``."""
    s0, e0 = _bounds(doc)
    for s, e in ranges:
        if s < s0 or e > e0:
            raise SuperrunDefinitionError(
                f"time range ({s}, {e}) of subrun {run!r} lies outside the run "
                f"[{s0}, {e0}); give ranges inside the run"
            )


class _DocCache:
    """``run_doc`` remembering the documents it has returned."""

    def __init__(self, run_doc: Callable[[str], dict]):
        self.run_doc, self.docs = run_doc, {}

    def __call__(self, run_id: str) -> dict:
        if run_id not in self.docs:
            self.docs[run_id] = self.run_doc(run_id)
        return self.docs[run_id]


def _bounds(doc: dict) -> list[int]:
    return [int(doc["start"]), int(doc["end"])]


def _start(item, run_doc) -> int:
    run, ranges = item
    return int(run_doc(run)["start"]) if ranges == "all" else ranges[0][0]


def _check_overlaps(flat: Flat, run_doc) -> None:
    spans = []
    for run, ranges in flat:
        for s, e in [_bounds(run_doc(run))] if ranges == "all" else ranges:
            spans.append((s, e, run))
    spans.sort()
    for (s0, e0, r0), (s1, e1, r1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise SuperrunDefinitionError(
                f"runs {r0!r} [{s0}, {e0}) and {r1!r} [{s1}, {e1}) overlap in "
                f"[{s1}, {min(e0, e1)}); the same stretch of data may not appear twice"
            )


def superrun_document(name: str, spec: dict, flat: Flat, run_doc) -> dict:
    """The run document of superrun ``name`` (SEMANTICS.md)."""
    starts, ends, livetime_ns = [], [], 0
    modes, sources, tags, comments = set(), set(), [], []
    for run, ranges in flat:
        doc = run_doc(run)
        if ranges == "all":
            s, e = _bounds(doc)
            starts.append(s)
            ends.append(e)
            if doc.get("livetime") is not None:
                # summed in whole ns, so 3 runs of 10 ns make exactly 3e-8 s
                livetime_ns += round(float(doc["livetime"]) * 1e9)
            else:
                livetime_ns += e - s
        else:
            starts.append(ranges[0][0])
            ends.append(ranges[-1][1])
            livetime_ns += sum(e - s for s, e in ranges)
        modes.update(_as_list(doc.get("mode")))
        sources.update(_as_list(doc.get("source")))
        for t in _as_list(doc.get("tags")):
            if t not in tags:
                tags.append(t)
        comments.extend(_as_list(doc.get("comments")))
    ordered = dict(sorted(spec.items(), key=lambda kv: _start(kv, run_doc)))
    return {
        "name": name,
        "start": min(starts),
        "end": max(ends),
        "livetime": livetime_ns / 1e9,
        "mode": sorted(m for m in modes if m not in ("", None)),
        "source": sorted(s for s in sources if s not in ("", None)),
        "tags": tags,
        "comments": comments,
        "sub_run_spec": ordered,
    }


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def require_docs(spec: dict, run_doc, name: str | None = None) -> None:
    """Every subrun must have a run document (superruns: be defined), and superrun
    ``name`` may not list itself."""
    if name is not None and name in spec:
        raise SuperrunDefinitionError(
            f"superrun {name!r} would contain itself: {name} -> {name}; a superrun cannot "
            "include itself"
        )
    for run in spec:
        try:
            run_doc(run)
        except RunMetadataNotAvailable as e:
            raise RunMetadataNotAvailable(
                f"subrun {run!r} has no run document: {e}. Write it first "
                "(st.write_run_metadata) or define that superrun first"
            ) from None

"""Superrun definitions: normalising what the user gives, flattening nested superruns,
checking overlaps, and the superrun's run document (SEMANTICS.md, "define_run").

Time ranges are carried as ``(k, 2)`` int64 arrays of sorted, disjoint ``[start, end)``
windows (see :mod:`dastrax.core.windows`); everything is vectorised over windows, so a
minimum-bias superrun of 10^6 windows defines in well under a second. A spec of more than
:data:`COMPACT_ABOVE` windows is stored compactly: the run document references one array
attachment (:func:`superrun_document`, :func:`expand_spec`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dastrax.core.names import is_superrun_id, validate_run_id
from dastrax.core.times import to_ns
from dastrax.core.windows import as_windows, check_ranges, intersect, union
from dastrax.errors import RunMetadataNotAvailable, SuperrunDefinitionError, advice

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "COMPACT_ABOVE",
    "expand_spec",
    "flat_fingerprint",
    "flatten",
    "flatten_arrays",
    "normalize_spec",
    "same_spec",
    "spec_summary",
    "superrun_document",
]

#: the time ranges of one subrun: "all", or ``(k, 2)`` int64 windows
Ranges = str | np.ndarray
#: a flattened superrun: [(regular run id, "all" or ranges), ...] by start (the ranges
#: are :data:`Ranges`; typed Any because the resolver holds a flattening as
#: ``list[tuple[str, object]]``, and a list of :data:`Ranges` pairs is not one of those)
Flat = list[tuple[str, Any]]
#: a spec holding more windows than this is stored as an attachment of the run document
COMPACT_ABOVE = 1000
#: the prefix of the attachment names of compact specs
ATTACHMENT_PREFIX = "windows."
_INT64_MAX = np.iinfo(np.int64).max


def _ranges(value, run_id: str) -> list[list[int]] | str:
    if isinstance(value, str):
        if value != "all":
            raise SuperrunDefinitionError(
                f"subrun {run_id!r}: give 'all' or a list of (start, end) ranges, not {value!r}"
            )
        return "all"
    given: list[list[Any] | None]
    try:
        items = list(value)
        given = [
            None if isinstance(p, (str, bytes, dict)) or len(p) != 2 else list(p) for p in items
        ]
    except TypeError:
        given = [None]
    found = [p for p in given if p is not None]
    if len(found) != len(given):
        raise SuperrunDefinitionError(
            f"subrun {run_id!r}: time ranges must be (start, end) pairs of ns integers; "
            f"got {value!r}"
        )
    what = f"time range of subrun {run_id!r}"
    pairs = [
        [to_ns(s, what, SuperrunDefinitionError), to_ns(e, what, SuperrunDefinitionError)]
        for s, e in found
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


def _union(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The union of the intervals as ``(k, 2)`` int64 windows (touching ones merge)."""
    return union(starts, ends)


def _refuse_rows(what: str, bad: np.ndarray, problem: str, values) -> None:
    rows = np.flatnonzero(bad)
    if len(rows):
        first = int(rows[0])
        value = values[first]
        value = value.item() if isinstance(value, np.generic) else value
        raise SuperrunDefinitionError(
            f"rows defining a superrun: {len(rows)} value(s) of {what!r} are {problem} "
            f"(the first at row {first}: {value!r}); give whole ns integers"
        )


def _ns(values, what: str) -> np.ndarray:
    """``values`` as int64 ns, refusing NaN, infinities, fractions and overflow."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "O":
        missing = np.asarray(pd.isna(arr), bool)
        _refuse_rows(what, missing, "missing (NaN/None)", arr)
        arr = np.array(arr.tolist()) if len(arr) else arr.astype(np.int64)
        kind = arr.dtype.kind
        if kind == "O":
            raise SuperrunDefinitionError(
                f"rows defining a superrun: {what!r} must hold ns integers; it holds "
                f"{type(arr[0]).__name__} values"
            )
    if kind == "i":
        return arr.astype(np.int64, copy=False)
    if kind == "u":
        if len(arr) and int(arr.max()) > _INT64_MAX:
            _refuse_rows(what, arr > _INT64_MAX, "beyond int64", arr)
        return arr.astype(np.int64)
    if kind == "f":
        _refuse_rows(what, ~np.isfinite(arr), "NaN or infinite", arr)
        _refuse_rows(what, np.abs(arr) >= 2.0**63, "beyond int64", arr)
        _refuse_rows(what, arr != np.floor(arr), "fractional", arr)
        return arr.astype(np.int64)
    if kind == "M":
        ns = arr.astype("datetime64[ns]")
        _refuse_rows(what, np.isnat(ns), "NaT", arr)
        return ns.view(np.int64)
    raise SuperrunDefinitionError(
        f"rows defining a superrun: {what!r} must hold ns integers; its dtype is {arr.dtype}"
    )


def _from_rows(data, from_run: str | None) -> dict[str, np.ndarray]:
    if isinstance(data, pd.DataFrame):
        cols = set(map(str, data.columns))

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
    time = _ns(col("time"), "time")
    if "endtime" in cols:
        end = _ns(col("endtime"), "endtime")
    elif {"length", "dt"} <= cols:
        length, dt = _ns(col("length"), "length"), _ns(col("dt"), "dt")
        approx = time.astype(float) + length.astype(float) * dt.astype(float)
        _refuse_rows("time + length * dt", np.abs(approx) >= 2.0**63, "beyond int64", approx)
        end = time + length * dt
    else:
        raise SuperrunDefinitionError(
            "rows defining a superrun need an 'endtime' field, or 'length' and 'dt'"
        )
    bad = np.flatnonzero(end <= time)
    if len(bad):
        i = int(bad[0])
        raise SuperrunDefinitionError(
            f"rows defining a superrun must have endtime > time; {len(bad)} row(s) do not "
            f"(the first: row {i}, time {int(time[i])}, endtime {int(end[i])})"
        )
    if not len(time):
        raise SuperrunDefinitionError("no rows given to define the superrun")
    if "run_id" in cols:
        codes, uniques = pd.factorize(np.asarray(col("run_id")), sort=False)
        if (codes < 0).any():
            raise SuperrunDefinitionError(
                "rows defining a superrun: some rows have no run_id (NaN/None); give every "
                "row its subrun"
            )
        uniques = np.asarray(uniques)
        names = [
            u.decode() if isinstance(u, bytes) else str(u) for u in np.asarray(uniques).tolist()
        ]
        if uniques.dtype.kind in "iu":
            names = [str(int(u)) for u in uniques.tolist()]
    elif from_run is not None:
        codes, names = np.zeros(len(time), np.intp), [str(from_run)]
    else:
        raise SuperrunDefinitionError(
            "rows defining a superrun need a 'run_id' field, or pass from_run=<run id>"
        )
    for name in names:
        validate_run_id(name)
    order = np.lexsort((time, codes))
    codes, time, end = codes[order], time[order], end[order]
    bounds = np.searchsorted(codes, np.arange(len(names) + 1))
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(names):  # one pass per subrun, vectorised over its rows
        lo, hi = bounds[k], bounds[k + 1]
        out[name] = _union_sorted(time[lo:hi], end[lo:hi])
    return out


def _union_sorted(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """:func:`dastrax.core.windows.union` of intervals already sorted by start."""
    e = np.maximum.accumulate(e)
    first = np.empty(len(s), bool)
    first[0] = True
    np.greater(s[1:], e[:-1], out=first[1:])
    begin = np.flatnonzero(first)
    last = np.append(begin[1:] - 1, len(s) - 1)
    return np.stack([s[begin], e[last]], axis=1)


def _value(value, run_id: str, owner: str | None = None, read_attachment=None) -> Ranges:
    """One value of a spec as ``"all"`` or sorted ``(k, 2)`` int64 windows."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and value.size:
            value = _ns(value.reshape(-1), f"time ranges of {run_id}").reshape(value.shape)
        return check_ranges(value, run_id)
    if isinstance(value, Mapping):
        if "windows" not in value:
            raise SuperrunDefinitionError(
                f"subrun {run_id!r}: give 'all' or a list of (start, end) ranges, not a dict"
            )
        if read_attachment is None or owner is None:
            raise SuperrunDefinitionError(
                f"subrun {run_id!r}: its time ranges are stored in attachment "
                f"{value['windows']!r}, which cannot be read here; pass the run document "
                "as run_metadata gives it"
            )
        return _resolve(owner, run_id, value, read_attachment)
    if isinstance(value, (list, tuple)) and len(value) > COMPACT_ABOVE:
        arr = np.asarray(value)
        if arr.dtype.kind in "iuf" and arr.ndim == 2:
            return _value(arr, run_id)
    ranges = _ranges(value, run_id)
    return ranges if isinstance(ranges, str) else as_windows(ranges)


def _resolve(owner: str, run_id: str, ref: Mapping, read_attachment) -> np.ndarray:
    arr = np.asarray(read_attachment(owner, ref["windows"]))
    off, n = int(ref.get("offset", 0)), int(ref["n"])
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < off + n:
        raise SuperrunDefinitionError(
            f"superrun {owner!r}: attachment {ref['windows']!r} has shape {arr.shape}, too "
            f"small for the {n} windows of subrun {run_id!r} at offset {off}; redefine the "
            f"superrun: {advice('redefine')}"
        )
    return arr[off : off + n].astype(np.int64, copy=False)


def normalize_spec(data, from_run: str | None = None) -> dict[str, object]:
    """``{run_id: "all" or (k, 2) int64 windows}`` from any accepted form of ``data``.

    Raises
    ------
    SuperrunDefinitionError
        For a form that is not accepted or inconsistent ranges.
    """
    if isinstance(data, str):
        data = [data]
    spec: dict[str, object]
    if isinstance(data, pd.DataFrame) or (isinstance(data, np.ndarray) and data.dtype.names):
        spec = dict(_from_rows(data, from_run))
    elif isinstance(data, dict):
        spec = {validate_run_id(r): _value(v, r) for r, v in data.items()}
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


def _is_all(ranges: object) -> TypeIs[str]:
    return isinstance(ranges, str)


def stored_flat(name: str, spec: dict, read_attachment=None) -> Flat | None:
    """The flattened spec of a stored superrun document whose subruns are all regular
    runs: the stored ``sub_run_spec`` is already flat and ordered by start (see
    :func:`superrun_document`; it was checked against the subruns' documents when it was
    written), so no subrun document is read — a superrun of 10 000 subruns opens without
    reading 10 000 files. None where a subrun is a superrun (flatten it afresh: nested
    definitions may have changed)."""
    if any(is_superrun_id(r) for r in spec):
        return None
    return [(run, _value(value, run, name, read_attachment)) for run, value in spec.items()]


def flatten_arrays(
    spec: dict,
    run_doc: Callable[[str], dict],
    stack: tuple[str, ...] = (),
    read_attachment: Callable[[str, str], np.ndarray] | None = None,
) -> Flat:
    """Resolve nested superruns into regular runs with their windows, vectorised.

    Parameters
    ----------
    spec : dict
        ``{run: "all" | pairs | (k, 2) array | attachment reference}``.
    run_doc : callable
        ``run_id -> run document`` (raising :class:`RunMetadataNotAvailable`).
    stack : tuple of str
        The superruns being resolved (the first is the one being defined or loaded), so
        a cycle is refused and references in ``spec`` resolve against ``stack[-1]``.
    read_attachment : callable, optional
        ``(run_id, name) -> array``, e.g. ``frontend.run_attachment``, for specs stored
        compactly.

    Returns
    -------
    list of (str, "all" or np.ndarray)
        Regular runs with ``"all"`` or ``(k, 2)`` int64 windows, sorted by start.

    Raises
    ------
    SuperrunDefinitionError
        On cycles, ranges outside their run, the same data twice, or no data at all.
    """
    if not isinstance(run_doc, _DocCache):  # each document is read once per flattening
        run_doc = _DocCache(run_doc)
    owner = stack[-1] if stack else None
    pieces: list[tuple[str, Ranges]] = []
    for run, value in spec.items():
        if run in stack:
            raise SuperrunDefinitionError(
                f"superrun {stack[0]!r} would contain itself: "
                f"{' -> '.join([*stack, run])}; a superrun cannot include itself"
            )
        doc = run_doc(run)
        ranges = _value(value, run, owner, read_attachment)
        if not _is_all(ranges):
            _check_inside(run, ranges, doc)
        if is_superrun_id(run):
            inner = flatten_arrays(doc["sub_run_spec"], run_doc, (*stack, run), read_attachment)
            for sub, sub_ranges in inner:
                if _is_all(ranges):
                    pieces.append((sub, sub_ranges))
                    continue
                full = as_windows([_bounds(run_doc(sub))]) if _is_all(sub_ranges) else sub_ranges
                cut = intersect(full, ranges)
                if len(cut):
                    pieces.append((sub, cut))
        else:
            pieces.append((run, ranges))
    grouped: dict[str, list[Ranges]] = {}
    for run, ranges in pieces:
        grouped.setdefault(run, []).append(ranges)
    merged: dict[str, Ranges] = {}
    for run, parts in grouped.items():
        if len(parts) == 1:
            merged[run] = parts[0]
            continue
        if any(_is_all(p) for p in parts):
            whole = as_windows([_bounds(run_doc(run))])
            a, b = (whole if _is_all(p) else p for p in parts[:2])
            s, e = intersect(a, b)[0].tolist()
            raise SuperrunDefinitionError(
                f"run {run!r} appears more than once in the superrun: its data in "
                f"[{s}, {e}) would be included twice; the same data may not appear twice"
            )
        merged[run] = check_ranges(np.concatenate(parts), run)
    flat = sorted(merged.items(), key=lambda kv: _start(kv, run_doc))
    _check_overlaps(flat, run_doc)
    if len(stack) == 1 and not flat:
        raise SuperrunDefinitionError(
            f"superrun {stack[0]!r} would hold no data: its time ranges "
            f"({_describe(spec)}) contain none of its subruns' data; give ranges that "
            "overlap them"
        )
    return flat


def flatten(
    spec: dict,
    run_doc: Callable[[str], dict],
    stack: tuple[str, ...] = (),
    read_attachment: Callable[[str, str], np.ndarray] | None = None,
) -> Flat:
    """:func:`flatten_arrays` with the windows as lists of ``[start, end]`` (JSON form).

    For small specs and for code that wants lists; loaders should use
    :func:`flatten_arrays`.
    """
    flat = flatten_arrays(spec, run_doc, stack, read_attachment)
    return [(r, v if _is_all(v) else v.tolist()) for r, v in flat]


def _describe(spec: Mapping) -> str:
    parts = []
    for run, value in list(spec.items())[:5]:
        if isinstance(value, str):
            parts.append(f"{run}: {value}")
        else:
            arr = as_windows(value) if not isinstance(value, Mapping) else None
            n = len(arr) if arr is not None else value.get("n")
            parts.append(f"{run}: {n} window(s)")
    more = f", and {len(spec) - 5} more subruns" if len(spec) > 5 else ""
    return ", ".join(parts) + more


def _check_inside(run: str, ranges, doc: dict) -> None:
    """Each range of subrun ``run`` must lie inside its ``[start, end)``."""
    s0, e0 = _bounds(doc)
    arr = as_windows(ranges)
    bad = np.flatnonzero((arr[:, 0] < s0) | (arr[:, 1] > e0))
    if len(bad):
        s, e = arr[bad[0]].tolist()
        raise SuperrunDefinitionError(
            f"time range ({s}, {e}) of subrun {run!r} lies outside the run "
            f"[{s0}, {e0}); give ranges inside the run"
            + (f" ({len(bad)} ranges do)" if len(bad) > 1 else "")
        )


class _DocCache:
    """``run_doc`` remembering the documents it has returned."""

    def __init__(self, run_doc: Callable[[str], dict]):
        self.run_doc = run_doc
        self.docs: dict[str, dict] = {}

    def __call__(self, run_id: str) -> dict:
        if run_id not in self.docs:
            self.docs[run_id] = self.run_doc(run_id)
        return self.docs[run_id]


def _bounds(doc: dict) -> list[int]:
    return [int(doc["start"]), int(doc["end"])]


def _start(item, run_doc) -> int:
    run, ranges = item
    if isinstance(ranges, str):
        return int(run_doc(run)["start"])
    if isinstance(ranges, Mapping):
        return int(ranges["hull"][0])
    return int(as_windows(ranges)[0, 0])


def _check_overlaps(flat: Flat, run_doc) -> None:
    if not flat:
        return
    parts = [as_windows([_bounds(run_doc(r))] if _is_all(v) else v) for r, v in flat]
    spans = np.concatenate(parts)
    labels = np.repeat(np.arange(len(flat)), [len(p) for p in parts])
    order = np.lexsort((spans[:, 1], spans[:, 0]))
    spans, labels = spans[order], labels[order]
    over = np.flatnonzero(spans[1:, 0] < spans[:-1, 1])
    if len(over):
        i = int(over[0])
        (s0, e0), (s1, e1) = spans[i].tolist(), spans[i + 1].tolist()
        r0, r1 = flat[labels[i]][0], flat[labels[i + 1]][0]
        raise SuperrunDefinitionError(
            f"runs {r0!r} [{s0}, {e0}) and {r1!r} [{s1}, {e1}) overlap in "
            f"[{s1}, {min(e0, e1)}); the same stretch of data may not appear twice"
        )


def _digest(arrays: list[np.ndarray], names: list[str]) -> str:
    h = hashlib.sha256()
    for name, arr in zip(names, arrays):
        h.update(name.encode() + b"\0" + str(len(arr)).encode() + b"\0")
        h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return h.hexdigest()


def superrun_document(
    name: str,
    spec: dict,
    flat: Flat,
    run_doc,
    compact_above: int | None = COMPACT_ABOVE,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The run document of superrun ``name`` (SEMANTICS.md), and its attachments.

    Parameters
    ----------
    name : str
        The superrun.
    spec : dict
        Its normalised spec (:func:`normalize_spec`).
    flat : list
        Its flattened spec (:func:`flatten_arrays` or :func:`flatten`).
    run_doc : callable
        ``run_id -> run document``.
    compact_above : int or None
        A spec with more windows than this (summed over subruns) is stored compactly:
        every windowed subrun's ``sub_run_spec`` entry becomes a reference ``{"windows":
        name, "offset": o, "n": k, "livetime_ns": ..., "hull": [s, e]}`` to rows
        ``[o, o + k)`` of one ``(K, 2)`` int64 attachment. None: never.

    Returns
    -------
    doc : dict
        The run document; small specs keep ``{run: "all" or [[s, e], ...]}``.
    attachments : dict of str to np.ndarray
        ``{attachment name: array}`` to write with ``write_run_attachment(name, ...)``
        *before* the document (the name is content-addressed: the same spec, the same
        name). Empty for small specs.

    Examples
    --------
    >>> doc, att = superrun_document("_mb", spec, flat, st.run_metadata)  # doctest: +SKIP
    >>> for key, arr in att.items():                                       # doctest: +SKIP
    ...     frontend.write_run_attachment("_mb", key, arr)
    >>> frontend.write_run_metadata("_mb", doc)                            # doctest: +SKIP
    """
    starts, ends, livetime_ns = [], [], 0
    modes, sources, tags, comments = set(), set(), [], []
    for run, ranges in flat:
        doc = run_doc(run)
        if _is_all(ranges):
            s, e = _bounds(doc)
            starts.append(s)
            ends.append(e)
            if doc.get("livetime") is not None:
                # summed in whole ns, so 3 runs of 10 ns make exactly 3e-8 s
                livetime_ns += round(float(doc["livetime"]) * 1e9)
            else:
                livetime_ns += e - s
        else:
            arr = as_windows(ranges)
            starts.append(int(arr[0, 0]))
            ends.append(int(arr[-1, 1]))
            livetime_ns += int((arr[:, 1] - arr[:, 0]).sum())
        modes.update(_as_list(doc.get("mode")))
        sources.update(_as_list(doc.get("source")))
        for t in _as_list(doc.get("tags")):
            if t not in tags:
                tags.append(t)
        for c in _as_list(doc.get("comments")):
            if c not in comments:  # merged like tags: each once, in order
                comments.append(c)
    ordered = dict(sorted(spec.items(), key=lambda kv: _start(kv, run_doc)))
    windowed = {r: as_windows(v) for r, v in ordered.items() if not isinstance(v, str)}
    total = sum(len(v) for v in windowed.values())
    attachments: dict[str, np.ndarray] = {}
    if compact_above is not None and total > compact_above:
        runs = list(windowed)
        arrays = [windowed[r] for r in runs]
        key = ATTACHMENT_PREFIX + _digest(arrays, runs)[:24]
        attachments[key] = np.concatenate(arrays).astype(np.int64)
        sub_run_spec: dict[str, object] = {}
        offset = 0
        for run, value in ordered.items():
            if isinstance(value, str):
                sub_run_spec[run] = value
                continue
            arr = windowed[run]
            sub_run_spec[run] = {
                "windows": key,
                "offset": offset,
                "n": len(arr),
                "livetime_ns": int((arr[:, 1] - arr[:, 0]).sum()),
                "hull": [int(arr[0, 0]), int(arr[-1, 1])],
            }
            offset += len(arr)
    else:
        sub_run_spec = {
            r: v if isinstance(v, str) else as_windows(v).tolist() for r, v in ordered.items()
        }
    doc = {
        "name": name,
        "start": min(starts),
        "end": max(ends),
        "livetime": livetime_ns / 1e9,
        "mode": sorted(m for m in modes if m not in ("", None)),
        "source": sorted(s for s in sources if s not in ("", None)),
        "tags": tags,
        "comments": comments,
        "sub_run_spec": sub_run_spec,
    }
    return doc, attachments


def expand_spec(doc: dict, read_attachment: Callable[[str, str], np.ndarray]) -> dict[str, object]:
    """The full spec of superrun document ``doc``: ``{run: "all" or (k, 2) int64}``.

    Parameters
    ----------
    doc : dict
        A superrun's run document, as stored (compact references or lists).
    read_attachment : callable
        ``(run_id, name) -> array``, e.g. ``frontend.run_attachment``; each attachment
        is read once.

    Returns
    -------
    dict
        ``{run: "all" or (k, 2) int64 array}`` in the document's order.

    Examples
    --------
    >>> spec = expand_spec(frontend.run_metadata("_mb"), frontend.run_attachment)  # doctest: +SKIP
    """
    cache: dict[str, np.ndarray] = {}

    def read(owner, key):
        if key not in cache:
            cache[key] = read_attachment(owner, key)
        return cache[key]

    name = doc["name"]
    return {run: _value(v, run, name, read) for run, v in doc["sub_run_spec"].items()}


def same_spec(a: Mapping, b: Mapping) -> bool:
    """Whether two specs (``"all"``, pairs, arrays or references) say the same thing.

    References are equal when they are equal dicts (their attachment names are
    content-addressed); compare stored documents, or expanded ones, not one of each.
    """
    if list(a) != list(b):
        return False
    for run in a:
        x, y = a[run], b[run]
        if isinstance(x, (str, Mapping)) or isinstance(y, (str, Mapping)):
            if x != y:
                return False
        else:
            xa, ya = as_windows(x), as_windows(y)
            if xa.shape != ya.shape or not np.array_equal(xa, ya):
                return False
    return True


def flat_fingerprint(flat: Flat, compact_above: int | None = COMPACT_ABOVE) -> list:
    """A JSON-able form of ``flat`` for hashing into the superrun's key.

    Small specs give ``[[run, "all" or [[s, e], ...]], ...]`` (the keys of existing
    stored superruns are unchanged); above ``compact_above`` windows, each windowed run
    gives ``{"n": k, "sha256": ...}`` instead of its pairs.
    """
    total = sum(0 if _is_all(v) else len(v) for _r, v in flat)
    if compact_above is None or total <= compact_above:
        return [[r, v if _is_all(v) else as_windows(v).tolist()] for r, v in flat]
    return [
        [r, v if _is_all(v) else {"n": len(v), "sha256": _digest([as_windows(v)], [r])}]
        for r, v in flat
    ]


def spec_summary(doc: dict) -> dict:
    """What ``dastrax info`` prints of a superrun's spec, without expanding it.

    Returns
    -------
    dict
        ``subruns`` (count), ``windows`` (total over windowed subruns), ``livetime``
        (seconds, from the document) and ``per_run``: ``{run: "all" or n windows}``.
    """
    per_run: dict[str, str | int] = {}
    for run, v in doc["sub_run_spec"].items():
        if isinstance(v, str):
            per_run[run] = v
        elif isinstance(v, Mapping):
            per_run[run] = int(v["n"])
        else:
            per_run[run] = len(as_windows(v))
    return {
        "subruns": len(per_run),
        "windows": sum(v for v in per_run.values() if not isinstance(v, str)),
        "livetime": doc.get("livetime"),
        "per_run": per_run,
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

"""Run documents: validating what users write and what storage holds (one place), filling
what readers expect, and the ``select_runs`` table.

Run documents are accepted as users and strax have them: ``start``/``end`` as int ns, bson
``{"$date": ...}``, ISO strings, naive (UTC) or aware datetimes; without ``name`` (taken from
the run id, i.e. the file name) or ``livetime`` (end - start).
"""

from __future__ import annotations

import datetime as _dt
import json
import math

import numpy as np
import pandas as pd

from dastrax.core.times import to_ns as _to_ns
from dastrax.errors import CorruptData, DastraxError, InvalidRequest

__all__ = ["complete_document", "normalize_document", "read_document", "select_table", "to_ns"]


def to_ns(value, what: str = "time") -> int:
    """ns since the epoch from a run-document time (see :func:`dastrax.core.times.to_ns`)."""
    return _to_ns(value, what, InvalidRequest, document=True)


def _subject(run_id: str | None, where) -> str:
    if where:
        return f"run document {where}"
    return "run document" if run_id is None else f"run document of run {run_id!r}"


def _times(run_id: str | None, doc, where, error: type[DastraxError]) -> dict:
    """``doc`` checked as a run document, with ``name``, ``start`` and ``end`` (int ns)."""
    subject = _subject(run_id, where)
    if not isinstance(doc, dict):
        raise error(
            f"{subject} must be a dict (a JSON object) with 'start' and 'end': got "
            f"{type(doc).__name__} {_short(doc)}"
        )
    out = dict(doc)
    out["name"] = run_id
    for field in ("start", "end"):
        if field not in out or out[field] is None:
            raise error(
                f"{subject} has no {field!r}: give ns since the epoch, a datetime, an ISO "
                "string or bson {'$date': ...}"
            )
        out[field] = _to_ns(out[field], f"{field!r} of {subject}", error, document=True)
    if out["end"] < out["start"]:
        raise error(f"{subject} ends ({out['end']}) before it starts ({out['start']})")
    livetime = out.get("livetime")
    if livetime is not None:
        if isinstance(livetime, dict) and "$numberDouble" in livetime:  # bson's JSON form
            livetime = livetime["$numberDouble"]
        try:
            livetime = float(livetime)
        except (TypeError, ValueError):
            livetime = None
        if livetime is None or isinstance(out["livetime"], bool) or not math.isfinite(livetime):
            raise error(
                f"'livetime' of {subject} must be a finite number of seconds: got "
                f"{out['livetime']!r}"
            )
        out["livetime"] = livetime
    return out


def _short(x, n: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= n else text[: n - 3] + "..."


def normalize_document(run_id: str, doc, where=None) -> dict:
    """A run document ready to store: checked, ``name`` set, ``start``/``end`` as int ns.

    Parameters
    ----------
    run_id
        The run the document is for; becomes its ``name``.
    doc
        The document as the user gives it (``start`` and ``end`` required).
    where
        The file or URL it will be written to, for error messages.

    Returns
    -------
    dict
        A JSON-encodable copy: datetimes (also nested ones) as int ns, numpy scalars and
        arrays as Python values, tuples as lists.

    Raises
    ------
    InvalidRequest
        If ``doc`` is not a dict, lacks ``start``/``end``, has a bad time or livetime, ends
        before it starts, or holds a value JSON cannot encode (naming the field).

    Examples
    --------
    >>> normalize_document("7", {"start": 0, "end": 10})
    {'start': 0, 'end': 10, 'name': '7'}
    """
    out = _times(run_id, doc, where, InvalidRequest)
    return {str(k): _jsonable(v, f"{k}", run_id) for k, v in out.items()}


def read_document(run_id: str, doc, where=None) -> dict:
    """A stored run document (as dastrax, strax or a user wrote it), checked and completed.

    Parameters
    ----------
    run_id
        The run id the document was found under (its file name); used as ``name``.
    doc
        The decoded JSON.
    where
        The file or URL it was read from, named by errors.

    Returns
    -------
    dict
        The document with ``start``/``end`` as int ns, ``livetime`` in s (end - start if
        absent) and ``mode``, ``source``, ``tags``, ``comments`` filled
        (:func:`complete_document`).

    Raises
    ------
    CorruptData
        Naming ``where``, if the document is valid JSON of the wrong shape: not an object,
        no ``start``/``end``, times that are no times, a livetime that is no number.

    Examples
    --------
    >>> read_document("3", {"start": {"$date": 0}, "end": 1000})["livetime"]
    1e-06
    """
    return complete_document(doc, run_id, where)


def _jsonable(x, field: str, run_id: str):
    if isinstance(x, dict):
        return {str(k): _jsonable(v, f"{field}.{k}", run_id) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v, f"{field}[{i}]", run_id) for i, v in enumerate(x)]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist(), field, run_id)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, (_dt.datetime, pd.Timestamp, np.datetime64)):
        return _to_ns(x, f"field {field!r} of run {run_id!r}")
    if isinstance(x, float) and not math.isfinite(x):
        raise InvalidRequest(
            f"field {field!r} of the run document of run {run_id!r} is {x!r}, which JSON "
            "cannot encode: give a finite number or None"
        )
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    try:
        json.dumps(x, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"field {field!r} of the run document of run {run_id!r} holds a "
            f"{type(x).__name__} ({_short(x)}), which JSON cannot encode: give strings, "
            "numbers, booleans, None, lists, dicts or datetimes"
        ) from None
    return x


def complete_document(doc: dict, run_id: str | None = None, where=None) -> dict:
    """A stored run document with every field readers expect (see :func:`read_document`).

    ``run_id`` defaults to the document's ``name``; without either, no ``name`` is set.
    Raises :class:`CorruptData` (naming ``where``) for documents of the wrong shape.
    """
    if run_id is None and isinstance(doc, dict) and doc.get("name") is not None:
        run_id = str(doc["name"])
    out = _times(run_id, doc, where, CorruptData)
    if run_id is None:
        out.pop("name")
    if out.get("livetime") is None:
        out["livetime"] = (out["end"] - out["start"]) / 1e9
    for field, default in (("mode", ""), ("source", ""), ("tags", []), ("comments", [])):
        out.setdefault(field, default)
    return out


def _join(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value)
    return "" if value is None else str(value)


def _number(run_id: str) -> float:
    try:
        return float(int(run_id))
    except ValueError:
        return float("nan")


def _tags(doc) -> set[str]:
    tags = doc.get("tags") or []
    if not isinstance(tags, (list, tuple)):
        tags = [tags]
    return {str(t.get("name", t)) if isinstance(t, dict) else str(t) for t in tags}


def select_table(
    docs: list[dict], run_mode=None, include_tags=None, exclude_tags=None
) -> pd.DataFrame:
    """The ``select_runs`` DataFrame of ``docs``.

    ``docs`` is a list of run documents, or a dict ``{run_id: document}`` (then ``name`` comes
    from the run id); documents are completed with :func:`complete_document` first, so a
    document without ``name`` or ``livetime`` is accepted.
    """
    import fnmatch

    if isinstance(docs, dict):
        docs = [complete_document(doc, run_id) for run_id, doc in docs.items()]
    else:
        docs = [complete_document(doc) for doc in docs]
    rows = []
    for doc in docs:
        tags = _tags(doc)
        modes = doc.get("mode")
        modes = set(modes) if isinstance(modes, (list, tuple)) else {modes}
        if run_mode is not None and not any(fnmatch.fnmatch(str(m), run_mode) for m in modes):
            continue
        if include_tags is not None:
            wanted = [include_tags] if isinstance(include_tags, str) else list(include_tags)
            if not any(fnmatch.fnmatch(t, w) for t in tags for w in wanted):
                continue
        if exclude_tags is not None:
            unwanted = [exclude_tags] if isinstance(exclude_tags, str) else list(exclude_tags)
            if any(fnmatch.fnmatch(t, w) for t in tags for w in unwanted):
                continue
        rows.append(
            {
                "name": doc.get("name", ""),
                "number": _number(doc.get("name", "")),
                "mode": _join(doc.get("mode")),
                "source": _join(doc.get("source")),
                "tags": _join(doc.get("tags")),
                # a timedelta, as strax's; rounded to the ns (3e-08 s is 30 ns, not 29)
                "livetime": pd.Timedelta(round(float(doc["livetime"]) * 1e9), unit="ns"),
                "start": pd.Timestamp(int(doc["start"]), unit="ns", tz="UTC"),
                "end": pd.Timestamp(int(doc["end"]), unit="ns", tz="UTC"),
            }
        )
    columns = ["name", "number", "mode", "source", "tags", "livetime", "start", "end"]
    return pd.DataFrame(rows, columns=columns)

"""Run documents: normalising what users write, filling what readers expect, and the
``select_runs`` table."""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from .errors import InvalidRequest

__all__ = ["complete_document", "normalize_document", "select_table", "to_ns"]


def to_ns(value, what: str = "time") -> int:
    """ns since the epoch from an int, a datetime (naive = UTC), a Timestamp or datetime64."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{what} must be ns since the epoch or a datetime: got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (_dt.datetime, pd.Timestamp, np.datetime64, str)):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return int(ts.value)
    if isinstance(value, dict) and "$date" in value:  # bson's JSON form
        return int(value["$date"]) * 1_000_000
    raise InvalidRequest(f"{what} must be ns since the epoch or a datetime: got {value!r}")


def normalize_document(run_id: str, doc: dict) -> dict:
    """A run document ready to store: ``name`` set, ``start``/``end`` as int ns."""
    if not isinstance(doc, dict):
        raise InvalidRequest(f"run document of {run_id!r} must be a dict: got {type(doc).__name__}")
    out = dict(doc)
    out["name"] = run_id
    for field in ("start", "end"):
        if field not in out:
            raise InvalidRequest(f"run document of {run_id!r} needs {field!r} (ns or datetime)")
        out[field] = to_ns(out[field], f"{field} of run {run_id!r}")
    if out["end"] < out["start"]:
        raise InvalidRequest(
            f"run document of {run_id!r} ends ({out['end']}) before it starts ({out['start']})"
        )
    return _jsonable(out)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (_dt.datetime, pd.Timestamp)):
        return to_ns(x)
    return x


def complete_document(doc: dict) -> dict:
    """A stored run document with every field readers expect."""
    out = dict(doc)
    out["start"], out["end"] = int(out["start"]), int(out["end"])
    if out.get("livetime") is None:
        out["livetime"] = (out["end"] - out["start"]) / 1e9
    out["livetime"] = float(out["livetime"])
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
    """The ``select_runs`` DataFrame of ``docs`` (already completed)."""
    import fnmatch

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
                "name": doc["name"],
                "number": _number(doc["name"]),
                "mode": _join(doc.get("mode")),
                "source": _join(doc.get("source")),
                "tags": _join(doc.get("tags")),
                "livetime": pd.Timedelta(float(doc["livetime"]), unit="s"),
                "start": pd.Timestamp(int(doc["start"]), unit="ns", tz="UTC"),
                "end": pd.Timestamp(int(doc["end"]), unit="ns", tz="UTC"),
            }
        )
    columns = ["name", "number", "mode", "source", "tags", "livetime", "start", "end"]
    return pd.DataFrame(rows, columns=columns)

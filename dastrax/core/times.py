"""Validation of times, time ranges and chunk sizes: the one place that turns what users give
into int64 ns since the epoch, or refuses it with a :mod:`dastrax.errors` error.

Accepted everywhere: Python and numpy integers, integral floats (Python or numpy), datetimes
(naive ones are UTC), pandas Timestamps and numpy datetime64. Accepted only in run-document
fields (``document=True``): ISO 8601 strings and bson's JSON form ``{"$date": ...}`` (an int of
ms since the epoch, an ISO string, or ``{"$numberLong": "<ms>"}``). Refused: fractional and
non-finite floats, booleans, NaT, other strings (``"09"`` is not a time) and values outside
int64.
"""

from __future__ import annotations

import datetime as _dt
import math
from numbers import Real

import numpy as np
import pandas as pd

from dastrax.errors import DastraxError, InvalidRequest

__all__ = ["chunk_size_mb", "time_range", "to_ns", "to_ns_array"]

_INT64 = np.iinfo(np.int64)


def _refuse(error: type[DastraxError], what: str, value, why: str) -> DastraxError:
    return error(f"{what} must be {why}: got {value!r} ({type(value).__name__})")


def _from_integer(value: int, what: str, error) -> int:
    if not _INT64.min <= value <= _INT64.max:
        raise error(f"{what} is outside the int64 range of ns since the epoch: got {value!r}")
    return value


def _from_datetime(value, what: str, error) -> int:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise error(f"{what} is not a valid date and time: got {value!r} ({e})") from None
    if ts is pd.NaT:
        raise error(f"{what} is a missing date (NaT): give a date and time or ns since the epoch")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def _from_bson(value: dict, what: str, error) -> int:
    date = value["$date"]
    if isinstance(date, dict) and set(date) == {"$numberLong"}:
        date = date["$numberLong"]
        try:
            date = int(date)
        except (TypeError, ValueError):
            raise error(
                f"{what}: bson $numberLong must be an integer string: got {date!r}"
            ) from None
    if isinstance(date, str):
        return _from_iso(date, what, error)
    if isinstance(date, bool) or not isinstance(date, (int, np.integer)):
        raise error(
            f"{what}: bson {{'$date': ...}} must hold ms since the epoch or an ISO string: "
            f"got {date!r}"
        )
    return _from_integer(int(date) * 1_000_000, what, error)


def _from_iso(text: str, what: str, error) -> int:
    try:
        parsed = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise error(
            f"{what} is not an ISO 8601 date and time (like '2026-01-31T12:00:00Z'): got {text!r}"
        ) from None
    return _from_datetime(parsed, what, error)


def to_ns(
    value,
    what: str = "time",
    error: type[DastraxError] = InvalidRequest,
    document: bool = False,
) -> int:
    """ns since the epoch (a Python int) from a time given in any accepted form.

    Parameters
    ----------
    value
        An integer (Python or numpy), an integral float, a datetime (naive = UTC), a pandas
        Timestamp or a numpy datetime64; with ``document=True`` also an ISO 8601 string or
        bson's ``{"$date": ms | "ISO string" | {"$numberLong": "ms"}}``.
    what
        What the value is, for the error message (e.g. ``"start of run '3'"``).
    error
        The :class:`dastrax.errors.DastraxError` subclass to raise.
    document
        Whether the value comes from a run document field (strings and bson dates allowed).

    Returns
    -------
    int
        ns since the epoch.

    Raises
    ------
    DastraxError
        ``error``, naming ``what``, for booleans, fractional or non-finite numbers, strings
        (unless ``document``), NaT and values outside int64.

    Examples
    --------
    >>> to_ns(4.0), to_ns(np.int32(7))
    (4, 7)
    >>> to_ns({"$date": 1000}, document=True)
    1000000000
    """
    if isinstance(value, (bool, np.bool_)):
        raise _refuse(error, what, value, "ns since the epoch or a datetime, not a boolean")
    if isinstance(value, (int, np.integer)):
        return _from_integer(int(value), what, error)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise _refuse(error, what, value, "a finite number of ns since the epoch")
        if not float(value).is_integer():
            raise _refuse(error, what, value, "a whole number of ns (times are int64 ns)")
        return _from_integer(int(value), what, error)
    if isinstance(value, (_dt.datetime, pd.Timestamp, np.datetime64)):
        return _from_datetime(value, what, error)
    if isinstance(value, _dt.date):
        raise _refuse(error, what, value, "a datetime (with a time of day), not a date alone")
    if document and isinstance(value, str):
        return _from_iso(value, what, error)
    if document and isinstance(value, dict) and set(value) == {"$date"}:
        return _from_bson(value, what, error)
    if isinstance(value, Real) and not isinstance(value, str):  # fractions, decimals
        whole = int(math.trunc(value))
        if value != whole:
            raise _refuse(error, what, value, "a whole number of ns (times are int64 ns)")
        return _from_integer(whole, what, error)
    why = "ns since the epoch (an integer) or a datetime"
    if document:
        why += ", an ISO 8601 string or bson {'$date': ...}"
    raise _refuse(error, what, value, why)


def to_ns_array(values, what: str = "time", error: type[DastraxError] = InvalidRequest):
    """An int64 array of ns from an array of times; NaN, inf and fractions refused.

    Parameters
    ----------
    values
        An array-like of integers, integral floats or datetime64.
    what
        What the values are, for the error message (e.g. ``"time of rows"``).
    error
        The error class to raise.

    Returns
    -------
    numpy.ndarray
        The values as int64.

    Raises
    ------
    DastraxError
        ``error``, naming ``what`` and the first bad value and its position.

    Examples
    --------
    >>> to_ns_array([1.0, 2.0]).tolist()
    [1, 2]
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > _INT64.max:
            raise error(f"{what} holds values outside int64: max {arr.max()}")
        return arr.astype(np.int64)
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            i = int(np.flatnonzero(np.isnat(arr))[0])
            raise error(f"{what} holds a missing date (NaT) at position {i}")
        return arr.astype("datetime64[ns]").astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if not bad.any():
            bad = arr != np.round(arr)
        if not bad.any():
            bad = (arr < _INT64.min) | (arr >= 2.0**63)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise error(
                f"{what} must be whole, finite ns within int64: got {arr.flat[i]!r} at position {i}"
            )
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise error(f"{what} must be ns since the epoch, not booleans")
    return np.array([to_ns(v, what, error) for v in arr.ravel()], np.int64).reshape(arr.shape)


def time_range(value) -> tuple[int, int]:
    """A ``time_range=`` argument as ``(start, end)`` int ns, checked.

    Parameters
    ----------
    value
        A pair ``(start, end)`` of times in any form :func:`to_ns` accepts (no strings).

    Returns
    -------
    tuple of int
        ``(start, end)`` in ns, ``end >= start``.

    Raises
    ------
    InvalidRequest
        If ``value`` is not a pair, either time is refused by :func:`to_ns`, or the range ends
        before it starts.

    Examples
    --------
    >>> time_range((0, 4.0))
    (0, 4)
    """
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 2:
        raise InvalidRequest(
            f"time_range must be a pair (start_ns, end_ns): got {value!r} ({type(value).__name__})"
        )
    start = to_ns(value[0], "start of time_range")
    end = to_ns(value[1], "end of time_range")
    if end < start:
        raise InvalidRequest(f"time_range {(start, end)} ends before it starts")
    return start, end


def chunk_size_mb(value, what: str = "chunk_target_size_mb") -> int | float:
    """A chunk target size in MB, checked: a positive, finite number.

    Parameters
    ----------
    value
        An int or float (Python or numpy).
    what
        The option's name, for the error message.

    Returns
    -------
    int or float
        The value as a Python number.

    Raises
    ------
    InvalidRequest
        For booleans, non-numbers, zero, negative, NaN and infinite values.

    Examples
    --------
    >>> chunk_size_mb(np.float64(2.5))
    2.5
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok or not math.isfinite(value) or not value > 0:
        raise InvalidRequest(f"{what} must be a positive, finite number of MB: got {value!r}")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)

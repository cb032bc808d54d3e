"""What a load asks for, in strax's spellings too: keyword arguments normalised and
checked before anything is read or made."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dastrax.errors import InvalidRequest, InvalidRunName

if TYPE_CHECKING:
    from dastrax.core.rowfilter import Selection

__all__ = [
    "ALIASES",
    "LoadRequest",
    "accepts_aliases",
    "first_arguments",
    "load_request",
    "run_id_of",
    "run_ids_of",
]

#: strax's keyword -> dastrax's (accepted as aliases)
ALIASES = {
    "keep_columns": "columns",
    "selection_str": "selection",
    "progress_bar": "progress",
    "_check_lineage_per_run_id": "check_lineage",
    "target": "data_type",  # strax's key_for / is_stored / get_metadata
}
#: keywords of every load besides the aliases
KNOWN = (
    "columns",
    "time_range",
    "seconds_range",
    "time_within",
    "selection",
    "check_lineage",
    "progress",
    "version",
    "combining",
    "make",
    "add_run_id_field",
)


@dataclass
class LoadRequest:
    """A load's options, normalised."""

    columns: list[str] | None = None
    time_range: tuple[int, int] | None = None
    selection: str | Sequence[str] | Selection | None = None
    check_lineage: bool = True
    progress: bool | None = None
    version: int | None = None
    combining: bool = False
    make: bool | None = None
    add_run_id_field: bool = True


def load_request(
    run_ids: str | Sequence[str],
    kwargs: dict[str, Any],
    run_start: Callable[[str], int] | None = None,
) -> LoadRequest:
    """Normalise the keyword arguments of ``get_array`` & co.

    ``seconds_range`` (seconds since the run's start; one run id) and ``time_within`` (a
    row or array whose ``time``/``endtime`` give the range) become ``time_range``; strax's
    names (``keep_columns``, ``selection_str``, ``progress_bar``) are accepted; an unknown
    keyword is refused naming the dastrax spelling closest to it.
    """
    given: dict[str, Any] = {}
    for k, v in kwargs.items():
        name = ALIASES.get(k, k)
        if name not in KNOWN:
            close = difflib.get_close_matches(name, [*KNOWN, *ALIASES], n=1)
            hint = f"; did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
            raise InvalidRequest(f"unexpected argument {k!r}{hint} (loads take {', '.join(KNOWN)})")
        if name in given and given[name] is not None and v is not None:
            raise InvalidRequest(f"{k!r} and {name!r} given both: give one")
        if v is not None or name not in given:
            given[name] = v
    req = LoadRequest(
        **{k: given[k] for k in ("selection", "progress", "version") if k in given},
        columns=_columns(given.get("columns")),
        check_lineage=True if given.get("check_lineage") is None else given["check_lineage"],
        combining=bool(given.get("combining") or False),
        make=None if given.get("make") is None else bool(given["make"]),
        add_run_id_field=given.get("add_run_id_field") is not False,
    )
    ranges = [k for k in ("time_range", "seconds_range", "time_within") if given.get(k) is not None]
    if len(ranges) > 1:
        raise InvalidRequest(f"give one of {', '.join(ranges)}, not several")
    if given.get("time_range") is not None:
        req.time_range = given["time_range"]
    elif given.get("seconds_range") is not None:
        if not isinstance(run_ids, str) or run_start is None:
            raise InvalidRequest("seconds_range needs one run id (seconds since its start)")
        try:
            s, e = (float(x) for x in given["seconds_range"])
        except (TypeError, ValueError):
            raise InvalidRequest(
                f"seconds_range must be (start_s, end_s): got {given['seconds_range']!r}"
            ) from None
        t0 = run_start(run_ids)
        req.time_range = (t0 + round(s * 1e9), t0 + round(e * 1e9))
    elif given.get("time_within") is not None:
        req.time_range = _within(given["time_within"])
    return req


def _decoded(run_id: str | bytes) -> str:
    """A ``bytes`` run id as text (as strax does); anything else unchanged."""
    if not isinstance(run_id, bytes):
        return run_id
    try:
        return run_id.decode()
    except UnicodeDecodeError:
        raise InvalidRunName(
            f"run id {run_id!r} is bytes that are not UTF-8 text: pass the run id as a str"
        ) from None


def run_id_of(run_id: str | bytes) -> str:
    """One run id as a string: ``bytes`` decoded (as strax does); anything else unchanged
    (refused where it is validated)."""
    return _decoded(run_id)


def run_ids_of(
    run_id_or_ids: str | bytes | Sequence[str] | np.ndarray,
) -> str | Sequence[str]:
    """Run ids as strings: ``bytes`` decoded (as strax does), in lists too."""
    if isinstance(run_id_or_ids, bytes):
        return _decoded(run_id_or_ids)
    if isinstance(run_id_or_ids, (list, tuple)):
        return [_decoded(r) for r in run_id_or_ids]
    if isinstance(run_id_or_ids, np.ndarray):
        return [_decoded(r) if isinstance(r, bytes) else str(r) for r in run_id_or_ids.tolist()]
    return run_id_or_ids


def first_arguments(
    run_id_or_ids: str | bytes | Sequence[str] | np.ndarray | None,
    targets: str | Sequence[str] | None,
    kwargs: dict[str, Any],
) -> tuple[str | Sequence[str], str | Sequence[str]]:
    """``(run ids, targets)`` of a load or make, given positionally or in strax's keyword
    spelling ``run_id=..., targets=...`` (``run_id`` taken out of ``kwargs``)."""
    if "run_id" in kwargs:
        run_id = kwargs.pop("run_id")
        if run_id_or_ids is not None:
            raise InvalidRequest(
                "the run id is given twice (positionally and as run_id=): give it once"
            )
        run_id_or_ids = run_id
    if run_id_or_ids is None:
        raise InvalidRequest("no run id given: pass it first, or as run_id=...")
    if targets is None:
        raise InvalidRequest("no data type given: pass the targets second, or as targets=...")
    return run_ids_of(run_id_or_ids), targets


def _columns(columns: object) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        return [columns]
    if not isinstance(columns, (list, tuple)) or not all(isinstance(c, str) for c in columns):
        raise InvalidRequest(f"columns: give a column name or a list of them, not {columns!r:.100}")
    return list(columns)


def _within(row: Any) -> tuple[int, int]:
    try:
        names = row.dtype.names if hasattr(row, "dtype") else tuple(row.keys())
        time = np.asarray(row["time"]).min()
        if "endtime" in names:
            end = np.asarray(row["endtime"]).max()
        else:
            end = (
                np.asarray(row["time"]) + np.asarray(row["length"]) * np.asarray(row["dt"])
            ).max()
    except (KeyError, ValueError, TypeError, AttributeError, IndexError):
        raise InvalidRequest(
            "time_within takes a row or array with 'time' and 'endtime' (or 'length', 'dt')"
        ) from None
    return int(time), int(end)


def accepts_aliases[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Let ``func`` (a method with explicit keyword arguments) take strax's spellings of
    them (:data:`ALIASES`: ``keep_columns`` for ``columns`` & co.) — the one mechanism
    for every call that has them, so ``help()``, ``inspect.signature`` and IDEs show the
    real names. An unknown keyword is refused (:class:`InvalidRequest`) naming the
    spelling closest to it.

    Examples
    --------
    >>> @accepts_aliases
    ... def load(self, run_id, *, columns=None):
    ...     return columns
    >>> load(None, "0", keep_columns=["area"])
    ['area']
    >>> str(inspect.signature(load))
    '(self, run_id, *, columns=None)'
    """
    sig = inspect.signature(func)
    names = [n for n, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    aliases = {a: n for a, n in ALIASES.items() if n in names}

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for alias in [k for k in kwargs if k not in names]:
            if alias in aliases:
                name = aliases[alias]
                if kwargs.get(name) is not None and kwargs[alias] is not None:
                    raise InvalidRequest(f"{alias!r} and {name!r} given both: give one")
                value = kwargs.pop(alias)
                if value is not None or name not in kwargs:
                    kwargs[name] = value
            elif not takes_any:
                public = [n for n in names if n != "self"]
                close = difflib.get_close_matches(alias, [*public, *aliases], n=1)
                hint = f"; did you mean {aliases.get(close[0], close[0])!r}?" if close else ""
                raise InvalidRequest(
                    f"{func.__name__}() got an unexpected argument {alias!r}{hint} "
                    f"(it takes {', '.join(public)})"
                )
        return func(*args, **kwargs)

    return wrapper

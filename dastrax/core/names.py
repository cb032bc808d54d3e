"""Validation of run ids and superrun names (SEMANTICS.md, "Run ids")."""

from __future__ import annotations

import re

from dastrax.errors import InvalidRunName

_REGULAR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*")

#: The longest run id or superrun name, in characters (run ids are ASCII, so also bytes).
#: File systems allow names of 255 bytes. Stored data is written in a temporary folder
#: ``.tmp-<run_id>-<data_type>-<10-char hash>-<32 hex>`` (run id + data type + 50), and run
#: documents through ``<run_id>.json.tmp-<pid>-<32 hex>-<host name>`` (run id + about 50 + the
#: host name, up to 64). 128 keeps both within 255 bytes for data type names up to 77
#: characters.
MAX_RUN_ID_LENGTH = 128

__all__ = [
    "MAX_RUN_ID_LENGTH",
    "is_superrun_id",
    "validate_regular_run_id",
    "validate_run_id",
    "validate_superrun_name",
]


def is_superrun_id(run_id: str) -> bool:
    """Whether ``run_id`` names a superrun (starts with ``_``)."""
    return isinstance(run_id, str) and run_id.startswith("_")


def _check(run_id, what: str) -> str:
    if not isinstance(run_id, str):
        raise InvalidRunName(f"{what} must be a string: got {run_id!r} ({type(run_id).__name__})")
    body = run_id[1:] if run_id.startswith("_") else run_id
    if not run_id or not body:
        raise InvalidRunName(f"{what} must not be empty: got {run_id!r}")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise InvalidRunName(
            f"{what} {run_id[:40]}... is {len(run_id)} characters long: the maximum is "
            f"{MAX_RUN_ID_LENGTH} (names of stored files must fit the file system); use a "
            "shorter name"
        )
    if ".." in run_id or not _REGULAR.fullmatch(body):
        raise InvalidRunName(
            f"invalid {what} {run_id!r}: use letters, digits, '_' and '.' only "
            "(no '-', '/', whitespace or '..'), starting with a letter or digit "
            "(superruns: '_' then the same)"
        )
    return run_id


def validate_run_id(run_id) -> str:
    """Return ``run_id`` if it is a valid regular run id or superrun id, else raise."""
    return _check(run_id, "run id")


def validate_regular_run_id(run_id) -> str:
    """Return ``run_id`` if it is a valid *regular* run id (no leading ``_``)."""
    _check(run_id, "run id")
    if run_id.startswith("_"):
        raise InvalidRunName(
            f"run id {run_id!r} starts with '_', which is reserved for superruns: "
            "define superruns with Context.define_run"
        )
    return run_id


def validate_superrun_name(name) -> str:
    """Return ``name`` if it is a valid superrun name, else raise :class:`InvalidRunName`."""
    if isinstance(name, str) and name and not name.startswith("_"):
        raise InvalidRunName(f"superrun names must start with '_': got {name!r} (try '_{name}')")
    return _check(name, "superrun name")


def validate_targets(targets) -> list[str]:
    """``targets`` (a data type name, or a list or tuple of them) as a list of distinct
    names; :class:`~dastrax.errors.InvalidRequest` for anything else."""
    from dastrax.errors import InvalidRequest

    if isinstance(targets, str):
        targets = [targets]
    elif isinstance(targets, (list, tuple)) or (
        hasattr(targets, "tolist") and not isinstance(targets, (bytes, dict))
    ):
        targets = list(targets.tolist() if hasattr(targets, "tolist") else targets)
    else:
        raise InvalidRequest(
            "targets: give a data type name (e.g. 'peaks') or a list of them, not "
            f"{type(targets).__name__} {targets!r:.100}"
        )
    bad = [t for t in targets if not isinstance(t, str) or not t.strip()]
    if bad:
        raise InvalidRequest(f"targets must be data type names (strings), not {bad!r:.200}")
    if not targets:
        raise InvalidRequest("no target data type given")
    return list(dict.fromkeys(targets))


def validate_data_type(data_type) -> str:
    """``data_type`` if it is a data type name (a non-empty string);
    :class:`~dastrax.errors.InvalidRequest` otherwise."""
    from dastrax.errors import InvalidRequest

    if not isinstance(data_type, str) or not data_type.strip():
        raise InvalidRequest(
            f"a data type is named by a string (e.g. 'peaks'), not {type(data_type).__name__} "
            f"{data_type!r:.100}"
        )
    return data_type

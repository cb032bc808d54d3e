"""The one table of settings: name, type, default, validation and help of every context
option and configuration-file key. Context options, the configuration file, the command
line flags, ``--help`` and the README's table are all read from :data:`SETTINGS`.

Examples
--------
>>> SETTINGS["chunk_target_size_mb"].default
200
>>> validate("progress", "yes")
Traceback (most recent call last):
...
dastrax.errors.ConfigError: progress must be true or false; got 'yes'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dastrax.errors import ConfigError, DastraxError

__all__ = ["SETTINGS", "Setting", "context_defaults", "markdown_table", "validate"]


@dataclass(frozen=True)
class Setting:
    """One setting."""

    name: str
    type: str  # as shown to users: "bool", "number", "string", ...
    default: Any
    help: str
    check: Callable[[Any], Any]  # returns the normalised value, raises ConfigError
    context: bool = True  # a context option (Context(**options), set_context_config)
    flag: str | None = None  # the command-line flag that sets it, if any

    def validate(self, value, where: str | None = None):
        try:
            return self.check(value)
        except ConfigError as e:
            if where:
                raise ConfigError(f"{where}: {e}") from None
            raise


def _bool(name):
    def check(value):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false; got {value!r}")
        return value

    return check


def _chunk_size(value):
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    from dastrax.core.times import chunk_size_mb

    try:
        return chunk_size_mb(value)
    except DastraxError as e:
        raise ConfigError(str(e)) from None


def _forbidden(value):
    """A tuple of data types (a string: one data type, or ``"*"`` for all)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"forbid_creation_of must be a data type or a list of them ('*': all); got {value!r}"
        )
    return tuple(value)


def _scheduler(value):
    if value is None or value == "auto":
        return "auto"
    from dastrax.core.scheduling import validate_scheduler

    try:
        return validate_scheduler(value)
    except DastraxError as e:
        raise ConfigError(str(e)) from None


def _compressor(value):
    from dastrax.storage import normalize_compressor

    try:
        normalize_compressor(value)
    except DastraxError as e:
        raise ConfigError(str(e)) from None
    return value


def _storage(value):
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(s, (str, os.PathLike)) and str(s) for s in value)
    ):
        raise ConfigError(f"storage: give a directory or URL, or a list of them; got {value!r}")
    return [str(s) if "://" in str(s) else os.path.expanduser(str(s)) for s in value]


def _storage_options(value):
    if not isinstance(value, dict):
        raise ConfigError(f"storage_options must be a table of fsspec options; got {value!r}")
    return dict(value)


def _plugins(value):
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"plugins must be a list of 'package.module:Class' names; got {value!r}")
    return list(value)


def _config(value):
    if not isinstance(value, dict):
        raise ConfigError(f"config must be a table of plugin option values; got {value!r}")
    return dict(value)


_S = Setting
#: every setting, by name
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        _S(
            "storage",
            "path, URL or list",
            "./dastrax_data",
            "where data and run documents are stored; reads search a list in order",
            _storage,
            context=False,
            flag="--storage",
        ),
        _S(
            "storage_options",
            "table",
            {},
            "fsspec options of the storage URLs (credentials, endpoint_url...)",
            _storage_options,
            context=False,
        ),
        _S(
            "scheduler",
            "string",
            "auto",
            "auto | threads | processes | sync | local-cluster | a scheduler address; auto: "
            "dask's own choice (dask.config 'scheduler', an active client, else threads)",
            _scheduler,
            flag="--scheduler",
        ),
        _S(
            "chunk_target_size_mb",
            "number",
            200,
            "uncompressed MB per stored superrun chunk",
            _chunk_size,
            flag="--chunk-target-size-mb",
        ),
        _S(
            "compressor",
            "string or table",
            "blosc-lz4",
            "blosc-lz4 | blosc-zstd | zstd | none | {name = 'blosc', cname = ..., clevel = ...}",
            _compressor,
        ),
        _S("progress", "bool", True, "show progress bars", _bool("progress"), flag="--progress"),
        _S(
            "write_superruns",
            "bool",
            False,
            "make(superrun) persists the superrun too",
            _bool("write_superruns"),
            flag="--write-superruns",
        ),
        _S(
            "use_per_run_defaults",
            "bool",
            False,
            "options take their default_per_run values",
            _bool("use_per_run_defaults"),
        ),
        _S(
            "allow_incomplete",
            "bool",
            False,
            "loads of a superrun skip subruns whose data is not stored (a warning names them) "
            "instead of making it, unless make=True; a Dataset's attrs give skipped_subruns "
            "and the livetime loaded; nothing stored at all still raises DataNotAvailable",
            _bool("allow_incomplete"),
        ),
        _S(
            "forbid_creation_of",
            "list",
            (),
            "data types that loads and make never create (raise DataNotAvailable instead); "
            "'*': all",
            _forbidden,
        ),
        _S(
            "plugins",
            "list",
            [],
            "plugins to register, as 'package.module:Class'",
            _plugins,
            context=False,
        ),
        _S("config", "table", {}, "plugin option values", _config, context=False),
    ]
}


def validate(name: str, value, where: str | None = None):
    """``value`` of setting ``name``, normalised; :class:`ConfigError` if invalid."""
    return SETTINGS[name].validate(value, where)


def check_context_options(options: dict, also: tuple[str, ...] = ()) -> dict:
    """Context options, validated: an unknown name or a bad scheduler raises
    :class:`ConfigError` (naming the closest of the options and of ``also``, e.g. the
    Context's own keyword arguments); any other bad value
    :class:`~dastrax.errors.InvalidRequest` (a request that makes no sense), each naming
    the option."""
    import difflib

    from dastrax.errors import InvalidRequest

    known = context_defaults()
    unknown = sorted(set(options) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*also, *known], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown context option{'s' * (len(unknown) > 1)} "
            f"{', '.join(map(repr, unknown))}: {hint}the context options are "
            f"{', '.join(sorted(known))}"
            + (f" (and the keyword arguments {', '.join(also)})" if also else "")
        )
    checked = {}
    for name, value in options.items():
        try:
            checked[name] = validate(name, value)
        except ConfigError as e:
            if name == "scheduler":
                raise
            raise InvalidRequest(str(e)) from None
    return checked


def context_defaults() -> dict[str, Any]:
    """The context options and their defaults."""
    return {s.name: s.default for s in SETTINGS.values() if s.context}


def markdown_table() -> str:
    """The README's table of settings."""
    rows = ["| setting | type | default | flag | what |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS.values():
        default = "unset" if s.default is None else repr(s.default).replace("|", "\\|")
        what = s.help.replace("|", "\\|")
        rows.append(f"| `{s.name}` | {s.type} | `{default}` | {s.flag or ''} | {what} |")
    return "\n".join(rows)

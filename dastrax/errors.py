"""Exceptions and warnings raised by dastrax.

Every error is a subclass of :class:`DastraxError`; each message names the run, data
type, key or file concerned and says what to do about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "ADVICE",
    "ConfigError",
    "CorruptData",
    "DastraxError",
    "DataNotAvailable",
    "InvalidRequest",
    "InvalidRunName",
    "LineageMismatch",
    "PluginError",
    "RunMetadataNotAvailable",
    "RunNotFound",
    "SuperrunDefinitionError",
    "UnknownConfigWarning",
    "WriteAborted",
    "WriteConflict",
    "advice",
    "advice_language",
]


class DastraxError(Exception):
    """Base class of every error dastrax raises on purpose."""


class DataNotAvailable(DastraxError, KeyError):
    """The requested data is not stored (and was not to be made)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RunNotFound(DataNotAvailable):
    """A load names a run id that nothing knows: no run document and no stored data, in a
    storage that keeps run documents of other runs (a typo, until shown otherwise)."""


class RunMetadataNotAvailable(DastraxError, KeyError):
    """A run (or superrun) has no run document."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidRunName(DastraxError, ValueError):
    """A run id or superrun name is not allowed."""


class SuperrunDefinitionError(DastraxError, ValueError):
    """A superrun definition is inconsistent (overlaps, cycles, ranges outside runs...)."""


class LineageMismatch(DastraxError):
    """Stored data was made with a different lineage than the one requested."""


class CorruptData(DastraxError, OSError):
    """Stored bytes are damaged, missing or truncated."""


class ConfigError(DastraxError, ValueError):
    """A configuration value or file is invalid."""


class PluginError(DastraxError):
    """A plugin failed or returned data that breaks its contract."""


class InvalidRequest(DastraxError, ValueError):
    """A request (targets, columns, time range, chunk size...) makes no sense."""


class WriteConflict(DastraxError):
    """Another writer holds the data being written; retry once it has finished."""


class WriteAborted(DastraxError):
    """A write was aborted (its writer's :meth:`~dastrax.storage.GroupWriter.abort` ran,
    e.g. because another task of the same make or persist failed): nothing of it is
    stored. Raised by writes and commits that come after the abort; make the data
    again."""


class UnknownConfigWarning(UserWarning):
    """A config key is not an option of any registered plugin."""


# --------------------------------------------------------------------------------------
# advice in the caller's language
# --------------------------------------------------------------------------------------
#: One source of each piece of advice an error gives: ``{name: (python, command line)}``.
#: The command line's text may depend on the subcommand: then it is a dict
#: ``{subcommand or None (any other): text}``. Texts are ``str.format`` templates.
ADVICE: dict[str, tuple[str, str | dict[str | None, str]]] = {
    "overwrite": ("pass overwrite=True", "pass --overwrite"),
    "redefine": ("pass overwrite=True to redefine it", "pass --overwrite to redefine it"),
    "persist_again": (
        "persist it again with overwrite=True",
        "persist it again with 'dastrax persist {run} -t {data_type} --overwrite'",
    ),
    "make": (
        "make it with st.make({run!r}, {data_type!r}) or load with make=True",
        {
            "persist": "pass --make to make it first",
            "make": "leave out --no-make to make it",
            None: "make it with 'dastrax make {run} -t {data_type}'",
        },
    ),
    "make_unknown": (
        "to make data for a new run id anyway, pass make=True or call "
        "st.make({run!r}, {data_type!r}); or write its run document first with "
        "st.write_run_metadata({run!r}, {{'start': ..., 'end': ...}})",
        "to make data for a new run id anyway, run 'dastrax make {run} -t {data_type}'",
    ),
    "define": (
        "define it with st.define_run({run!r}, [...])",
        "define it with 'dastrax define {run} RUN...'",
    ),
    "write_run_document": (
        "write one with st.write_run_metadata({run!r}, {{'start': ..., 'end': ...}})",
        "write one in Python with st.write_run_metadata({run!r}, {{'start': ..., "
        "'end': ...}}), or check --storage",
    ),
    "other_options": (
        "give the options they were made with, e.g. st.set_config({{'OPTION': VALUE}})",
        "give the options they were made with, e.g. --set OPTION=VALUE",
    ),
    "set_option": (
        "set it with st.set_config({{{option!r}: ...}})",
        "set it with --set {option}=VALUE",
    ),
    "check_lineage": (
        "pass check_lineage=False to load it anyway",
        "load it in Python with check_lineage=False to use it anyway",
    ),
    "register": ("register its plugin with st.register(...)", "register its plugin"),
    "icechunk": (
        "use an IcechunkRepository: storage=dastrax.IcechunkRepository(path)",
        "use an IcechunkRepository: --storage icechunk://PATH",
    ),
    "storage_missing": (
        "check the path (or bucket), or write data there first (e.g. st.make(...))",
        "check --storage (or the configuration's storage), or write data there first "
        "(e.g. 'dastrax demo --storage PATH')",
    ),
}

_SPEAKER: dict[str, str | None] = {"language": "python", "command": None}


@contextlib.contextmanager
def advice_language(language: str, command: str | None = None) -> Iterator[None]:
    """Within this, :func:`advice` speaks ``language``: ``"python"`` (the API's
    keywords) or ``"cli"`` (the flags of ``command``, a ``dastrax`` subcommand).

    Examples
    --------
    >>> with advice_language("cli", "define"):
    ...     advice("overwrite")
    'pass --overwrite'
    >>> advice("overwrite")
    'pass overwrite=True'
    """
    if language not in ("python", "cli"):
        raise ValueError(f"advice language must be 'python' or 'cli': got {language!r}")
    before = dict(_SPEAKER)
    _SPEAKER.update(language=language, command=command)
    try:
        yield
    finally:
        _SPEAKER.update(before)


def advice(name: str, **fields) -> str:
    """The piece of advice ``name`` of :data:`ADVICE`, in the caller's language (see
    :func:`advice_language`), its template filled with ``fields``.

    Examples
    --------
    >>> advice("make", run="0", data_type="peaks")
    "make it with st.make('0', 'peaks') or load with make=True"
    """
    python, cli = ADVICE[name]
    if _SPEAKER["language"] == "cli":
        text = cli.get(_SPEAKER["command"], cli[None]) if isinstance(cli, dict) else cli
    else:
        text = python
    return text.format(**fields)

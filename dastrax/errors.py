"""Exceptions and warnings raised by dastrax.

Every error is a subclass of :class:`DastraxError`; each message names the run, data
type, key or file concerned and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorruptData",
    "DastraxError",
    "DataNotAvailable",
    "InvalidRequest",
    "InvalidRunName",
    "LineageMismatch",
    "PluginError",
    "RunMetadataNotAvailable",
    "SuperrunDefinitionError",
    "UnknownConfigWarning",
    "WriteAborted",
    "WriteConflict",
]


class DastraxError(Exception):
    """Base class of every error dastrax raises on purpose."""


class DataNotAvailable(DastraxError, KeyError):
    """The requested data is not stored (and was not to be made)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


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

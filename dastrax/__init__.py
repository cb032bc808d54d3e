"""dastrax: superruns of strax-style detector data on dask, zarr and xarray.

>>> import dastrax
>>> st = dastrax.Context(storage="./dastrax_data", register=[...])  # doctest: +SKIP
"""

from dastrax import _aliases, errors
from dastrax._version import __version__
from dastrax.context import Context
from dastrax.core.chunks import Chunk, endtime
from dastrax.core.lineage import DataKey
from dastrax.core.plugin import Option, Plugin
from dastrax.errors import (
    ConfigError,
    CorruptData,
    DastraxError,
    DataNotAvailable,
    InvalidRequest,
    InvalidRunName,
    LineageMismatch,
    PluginError,
    RunMetadataNotAvailable,
    RunNotFound,
    SuperrunDefinitionError,
    WriteAborted,
    WriteConflict,
)
from dastrax.storage import DataDirectory, StorageFrontend, StoredGroup, ZarrDirectory

_aliases.install()

__all__ = [
    "Chunk",
    "ConfigError",
    "Context",
    "CorruptData",
    "DastraxError",
    "DataDirectory",
    "DataKey",
    "DataNotAvailable",
    "IcechunkRepository",
    "InvalidRequest",
    "InvalidRunName",
    "LineageMismatch",
    "Option",
    "Plugin",
    "PluginError",
    "RunMetadataNotAvailable",
    "RunNotFound",
    "StorageFrontend",
    "StoredGroup",
    "StraxDirectory",
    "SuperrunDefinitionError",
    "WriteAborted",
    "WriteConflict",
    "ZarrDirectory",
    "__version__",
    "endtime",
    "errors",
]


def __getattr__(name: str) -> type[StorageFrontend]:
    # optional frontends (their libraries are imported only when used)
    if name in ("StraxDirectory", "IcechunkRepository"):
        from dastrax import storage

        return getattr(storage, name)
    raise AttributeError(f"module 'dastrax' has no attribute {name!r}")

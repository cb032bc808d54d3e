"""dastrax: superruns of strax-style detector data on dask, zarr and xarray.

>>> import dastrax
>>> st = dastrax.Context(storage="./dastrax_data", register=[...])  # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import errors  # noqa: E402
from .chunks import Chunk  # noqa: E402
from .context import Context  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    CorruptData,
    DastraxError,
    DataNotAvailable,
    InvalidRequest,
    InvalidRunName,
    LineageMismatch,
    PluginError,
    RunMetadataNotAvailable,
    SuperrunDefinitionError,
)
from .lineage import DataKey  # noqa: E402
from .plugin import Option, Plugin, endtime  # noqa: E402
from .storage import ZarrDirectory  # noqa: E402

__all__ = [
    "Chunk",
    "ConfigError",
    "Context",
    "CorruptData",
    "DastraxError",
    "DataKey",
    "DataNotAvailable",
    "InvalidRequest",
    "InvalidRunName",
    "LineageMismatch",
    "Option",
    "Plugin",
    "PluginError",
    "RunMetadataNotAvailable",
    "SuperrunDefinitionError",
    "ZarrDirectory",
    "__version__",
    "endtime",
    "errors",
]

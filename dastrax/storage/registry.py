"""Frontends found by URL scheme, as xarray finds its backends: the built-in ones, and
those third parties register in the entry point group ``dastrax.storage``.

An entry point's name is a URL scheme, its value a :class:`StorageFrontend` subclass (or
any callable) taking the URL (with the ``<scheme>://`` prefix) and keyword arguments::

    [project.entry-points."dastrax.storage"]
    mystore = "my_package.storage:MyFrontend"
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from dastrax.errors import ConfigError

__all__ = ["BUILTIN", "frontend_for", "schemes"]

#: scheme -> "module:Class" of the built-in frontends (imported when used)
BUILTIN = {
    "": "dastrax.storage.zarr.directory:ZarrDirectory",
    "file": "dastrax.storage.zarr.directory:ZarrDirectory",
    "memory": "dastrax.storage.zarr.memory:MemoryDirectory",
    "icechunk": "dastrax.storage.icechunk.repository:IcechunkRepository",
    "strax": "dastrax.storage.strax.directory:StraxDirectory",
}

#: schemes that keep their prefix (the frontend is an fsspec one); others lose it
_KEEP_PREFIX = {"file", "memory"}


def _load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def schemes() -> dict[str, str]:
    """Every known scheme and what serves it (entry points override built-ins)."""
    out = dict(BUILTIN)
    for ep in entry_points(group="dastrax.storage"):
        out[ep.name] = ep.value
    return out


def frontend_for(url, **kwargs):
    """The storage frontend for ``url``: a local path or ``file://`` URL, ``memory://``,
    ``icechunk://PATH_OR_URL``, ``strax://PATH``, a scheme registered in the entry point
    group ``dastrax.storage``, or any other fsspec URL (``s3://``, ``gs://``...: a
    :class:`~dastrax.storage.ZarrDirectory`).

    Raises
    ------
    ConfigError
        The scheme's frontend cannot be imported.

    Examples
    --------
    >>> frontend_for("memory://doc-example").url
    'memory://doc-example'
    """
    url = os.fspath(url) if isinstance(url, os.PathLike) else str(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    known = schemes()
    spec = known.get(scheme, known[""])
    if scheme in known and scheme not in _KEEP_PREFIX and scheme:
        url = url.split("://", 1)[1]
    try:
        cls = _load(spec) if isinstance(spec, str) else spec
    except ImportError as e:
        raise ConfigError(f"storage {url!r}: cannot import its frontend {spec}: {e}") from None
    return cls(url, **kwargs)

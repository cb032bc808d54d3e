"""zarr v3 groups on a local path or any fsspec URL (and ``memory://``)."""

from __future__ import annotations

from dastrax.storage.zarr.directory import DataDirectory, ZarrDirectory

__all__ = ["DataDirectory", "ZarrDirectory"]

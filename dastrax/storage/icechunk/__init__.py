"""zarr v3 groups in an icechunk repository: transactions, versions as snapshots."""

from __future__ import annotations

from dastrax.storage.icechunk.repository import IcechunkGroup, IcechunkRepository, IcechunkWriter

__all__ = ["IcechunkGroup", "IcechunkRepository", "IcechunkWriter"]

"""zarr v3 groups in an icechunk repository: transactions, versions as snapshots.

:class:`IcechunkRepository` (the frontend, :mod:`.repository`) with its parts: where a
repository is and its one open handle per process (:mod:`.location`), commits, rebases and
conflicts (:mod:`.commit`), sessions (:mod:`.base`), reading a committed group
(:class:`IcechunkGroup`, :mod:`.group`), writing one (:class:`IcechunkWriter`,
:mod:`.writer`), run documents (:mod:`.runs`) and their versions (:mod:`.versions`).
"""

from __future__ import annotations

from dastrax.storage.icechunk.group import IcechunkGroup
from dastrax.storage.icechunk.repository import IcechunkRepository
from dastrax.storage.icechunk.writer import IcechunkWriter

__all__ = ["IcechunkGroup", "IcechunkRepository", "IcechunkWriter"]

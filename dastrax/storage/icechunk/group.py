"""Reading a committed group of an icechunk repository, pinned to its snapshot."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import zarr

from dastrax.errors import CorruptData, DastraxError, DataNotAvailable
from dastrax.storage.abc import StoredGroup
from dastrax.storage.icechunk.location import Location, first_line, open_repo

#: zarr arrays open for reading in this process, by (location, snapshot, key, field)
_ARRAYS: dict[tuple[Location, str, str, str], zarr.Array] = {}
_ARRAYS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class IcechunkGroup(StoredGroup):
    """A committed group in an icechunk snapshot; picklable, reads that snapshot anywhere.

    Pinned to the snapshot it was found in: commits of others (even a delete of its key)
    do not change what it reads.
    """

    key: str
    meta: dict
    url: str
    location: Location
    snapshot_id: str

    def _array(self, name: str) -> zarr.Array:
        cache_key = (self.location, self.snapshot_id, self.key, name)
        arr = _ARRAYS.get(cache_key)
        if arr is None:
            repo = open_repo(self.location, create=False)
            if repo is None:
                raise DataNotAvailable(f"{self.key}: the repository {self.url} is gone")
            session = repo.readonly_session(snapshot_id=self.snapshot_id)
            arr = zarr.open_array(session.store, path=f"{self.key}/{name}", mode="r")
            with _ARRAYS_LOCK:
                if len(_ARRAYS) > 1024:
                    _ARRAYS.clear()
                _ARRAYS[cache_key] = arr
        return arr

    def read(
        self,
        field: str,
        lo: int,
        hi: int,
        index: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``[lo, hi)`` of column ``field`` (then ``[index]``), into ``out`` if given.

        Raises
        ------
        DataNotAvailable
            If ``field`` is not a column of the group.
        CorruptData
            If stored bytes are damaged or missing.
        """
        if field not in self.fields:
            raise DataNotAvailable(
                f"{self.key} in {self.url} has no column {field!r}; it has {list(self.fields)}"
            )
        try:
            values = np.asarray(self._array(field)[lo:hi])  # zarr's result for a slice
        except DastraxError:
            raise
        except Exception as e:
            raise CorruptData(
                f"{self.key}/{field} rows {lo}:{hi} in {self.url} (snapshot "
                f"{self.snapshot_id}) cannot be read: {first_line(e)}; the stored bytes are "
                f"damaged or missing: delete {self.key} and make it again"
            ) from None
        if index is not None:
            values = values[index]
        if out is None:
            return values
        out[...] = values
        return out

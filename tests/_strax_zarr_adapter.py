"""TEMPORARY: the old ZarrDirectory (``appender``/``metadata``) on the new storage protocol
(``writer``/``find``), for the import tests until the lead's ZarrDirectory speaks it.

:func:`zarr_dest` returns a plain ``ZarrDirectory`` as soon as it is a
:class:`dastrax.storage.base.StorageFrontend`; then this file can be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import dastrax
from dastrax.storage import base


def zarr_dest(path, readonly: bool = False):
    """A ZarrDirectory at ``path`` speaking the storage protocol."""
    z = dastrax.ZarrDirectory(str(path), readonly=readonly)
    if isinstance(z, base.StorageFrontend):
        return z
    return _OldZarr(z)


class _Group(base.StoredGroup):
    def __init__(self, root: str, key: str, meta: dict):
        self.key, self.url, self.meta = key, f"{root}/{key}", meta
        self._root = root

    def read(self, field, lo, hi, index=None, out=None):
        from dastrax.storage import read_block

        return read_block(self._root, f"{self.key}/{field}", lo, hi, index, out)


@dataclass(frozen=True)
class _Writer(base.GroupWriter):
    app: object

    @property
    def key(self):
        return self.app.key

    @property
    def chunk_rows(self):
        return self.app.chunk_rows

    def append(self, data, start, end, subruns=None, run_id=None):
        return _Writer(self.app.append(data, start, end, subruns=subruns, run_id=run_id))

    def create_arrays(self, base_rows, total_rows=0, extra=None, attributes=None, rows=None):
        return _Writer(self.app.create_arrays(base_rows, total_rows, extra, attributes, rows))

    def array(self, name):
        return self.app.array(name)

    def commit(self, meta):
        return self.app.commit(meta)

    def abort(self):
        self.app.abort()

    def with_rows(self, n):
        return _Writer(replace(self.app, n=n, written=n))


class _OldZarr(base.StorageFrontend):
    def __init__(self, z):
        self.z, self.url, self.readonly = z, z.url, z.readonly

    def find(self, key):
        if not self.z.has(key):
            return None
        return _Group(self.z.url, key, self.z.metadata(key))

    def keys(self, prefix=""):
        return self.z.keys(prefix)

    def writer(self, key, dtype, compressor=None, data_kind="rows"):
        return _Writer(self.z.appender(key, dtype, compressor, data_kind))

    def delete(self, key):
        self.z.delete(key)

    def run_metadata(self, run_id):
        return self.z.run_metadata(run_id)

    def write_run_metadata(self, run_id, doc):
        self.z.write_run_metadata(run_id, doc)

    def write_run_attachment(self, run_id, name, array):
        raise dastrax.errors.InvalidRequest("attachments: not in the old ZarrDirectory")

    def run_attachment(self, run_id, name):
        raise dastrax.errors.RunMetadataNotAvailable("attachments: not in the old ZarrDirectory")

    def delete_run_metadata(self, run_id):
        self.z.delete_run_metadata(run_id)

    def list_runs(self):
        return self.z.list_runs()

    def temporary_paths(self):
        return self.z.temporary_paths()

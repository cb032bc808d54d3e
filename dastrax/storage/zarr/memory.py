"""The memory frontend: a :class:`ZarrDirectory` in fsspec's in-process ``memory://``
filesystem — for tests and as the smallest worked example of a frontend (README,
"Extending dastrax"). It behaves as object stores do: no renames, the metadata document
written last is the commit. Data lives as long as the process."""

from __future__ import annotations

from dastrax.storage.zarr.directory import ZarrDirectory

__all__ = ["MemoryDirectory"]


class MemoryDirectory(ZarrDirectory):
    """zarr groups and run documents in ``memory://<name>``.

    Examples
    --------
    >>> d = MemoryDirectory("memory://example")
    >>> d.write_run_metadata("0", {"name": "0", "start": 0, "end": 10})
    >>> d.list_runs()
    ['0']
    """

    def __init__(
        self,
        url: str = "memory://dastrax",
        readonly: bool = False,
        provide_run_metadata: bool = True,
        storage_options: dict | None = None,
    ):
        if "://" not in str(url):
            url = f"memory://{url}"
        # (the arguments of ZarrDirectory's, in its order: pickled and copied alike)
        super().__init__(url, readonly, provide_run_metadata, storage_options)

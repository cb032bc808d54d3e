"""A stored group of a :class:`~dastrax.storage.ZarrDirectory`: a picklable handle that
reads row ranges of its columns, through zarr or (local files in dastrax's own layout)
the private fast path; damage is reported as CorruptData, deletion as DataNotAvailable."""

from __future__ import annotations

import contextlib
import functools
import os
import socket

import numpy as np
import zarr
import zarr.errors
from zarr.core.buffer import default_buffer_prototype

from dastrax.core.chunks import field_dtype
from dastrax.errors import ConfigError, CorruptData, DastraxError, DataNotAvailable
from dastrax.storage.abc import StoredGroup
from dastrax.storage.codecs import dtype_from_json
from dastrax.storage.zarr import _fastread
from dastrax.storage.zarr.layout import is_local, local_path, zarr_store

__all__ = ["ZarrGroup", "remote_error"]

#: whether local reads take the fast path (``DASTRAX_FASTREAD=0`` reads through zarr)
FASTREAD = os.environ.get("DASTRAX_FASTREAD", "1") not in ("0", "false", "no")


@functools.lru_cache(maxsize=8192)
def _open_array(root: str, path: str, options: tuple):
    return zarr.open_array(
        zarr_store(root, True, options),
        path=path,
        mode="r",
        config={"read_missing_chunks": False},
    )


#: what a reading-only handle keeps of the metadata document (see ``for_reading``)
_SUBRUN = np.dtype(np.int32)
_READ_KEYS = ("n_rows", "zarr_chunk_rows", "compressor", "dtype", "dastrax_version")


class ZarrGroup(StoredGroup):
    """Group ``key`` under ``root`` (a local directory or an fsspec URL).

    Parameters
    ----------
    root
        The storage directory's URL (an absolute path for local directories).
    key
        The stored key; the group is the folder ``root/key``.
    meta
        Its metadata document (group attributes ``["dastrax"]``), or None to read it
        with ``load()`` when first needed.
    storage_options
        fsspec options of ``root`` (travel with the handle to workers), as a sorted tuple
        of items.
    load
        A picklable callable returning the metadata document (when ``meta`` is None).
    """

    #: the keys of the metadata that reading needs, as an open index recorded them (set
    #: by :meth:`ZarrDirectory.handle`; not pickled)
    read_hint: dict | None = None

    def __init__(self, root: str, key: str, meta: dict | None, options: tuple = (), load=None):
        self.root = root
        self.key = key
        self._meta = meta
        self._load = load
        self.options = options
        self.url = root

    @property
    def meta(self) -> dict:
        """The metadata document; read when first needed by handles an open index made
        (``load()``: the document, checked against what the index recorded)."""
        if self._meta is None:
            self._meta = self._load()
        return self._meta

    @meta.setter
    def meta(self, value: dict) -> None:
        # (the ABC declares ``meta`` an attribute: a handle whose document is given)
        self._meta = value

    @property
    def dtype(self) -> np.dtype:
        """The structured dtype of its rows (worked out once per handle)."""
        found = self.__dict__.get("_dtype")
        if found is None:
            found = self.__dict__["_dtype"] = dtype_from_json(self.meta["dtype"])
        return found

    def __reduce__(self):
        args = (self.root, self.key, self._meta, self.options, self._load)
        dtype = self.__dict__.get("_dtype")
        if dtype is None:
            return (type(self), args)
        # the parsed dtype travels along (one object shared by a block's groups)
        return (_with_dtype, (type(self), args, dtype))

    @property
    def local(self) -> bool:
        return is_local(self.root)

    def _where(self, field: str) -> str:
        return f"{self.root.rstrip('/')}/{self.key}/{field}"

    def for_reading(self) -> ZarrGroup:
        """A handle that only reads rows: its metadata trimmed to what reading needs (no
        chunk table), so that a task's block of many small groups travels light."""
        meta = self._meta
        if meta is None:
            hint = getattr(self, "read_hint", None)
            if hint is None:
                return self
            meta = hint
        small = {k: meta[k] for k in _READ_KEYS if k in meta}
        clone = type(self)(self.root, self.key, small, self.options, None)
        with contextlib.suppress(KeyError, TypeError, ValueError):
            clone.__dict__["_dtype"] = self.dtype if self._meta is not None else None
        return clone

    def _layout(self, field: str, trust_meta: bool = True):
        """The fast path's layout of ``field``: from the group's metadata document where
        dastrax wrote the group (no file read), else from the array's ``zarr.json``."""
        if not (FASTREAD and self.local):
            return None
        root, path = local_path(self.root), f"{self.key}/{field}"
        meta = self._meta
        if trust_meta and meta is not None and "dastrax_version" in meta:
            known = self.__dict__.setdefault("_layouts", {})
            lay = known.get(field)
            if lay is not None:
                return lay
            try:
                rows = int(meta["zarr_chunk_rows"])
                n_rows = int(meta["n_rows"])
                comp = (meta.get("compressor") or {}).get("name") or "none"
                sub = _SUBRUN if field == "subrun" else field_dtype(self.dtype, field)
            except (KeyError, TypeError, ValueError):
                pass
            else:
                lay = _fastread.layout_of(root, path, (n_rows, *sub.shape), rows, sub.base, comp)
                known[field] = lay
                return lay
        return _fastread.layout(root, path)

    def read(self, field, lo, hi, index=None, out=None) -> np.ndarray:
        try:
            return self._read(field, lo, hi, index, out, True)
        except CorruptData:
            # the layout the metadata implies may not be the array's (rewritten through
            # zarr): read through the array's own document before reporting damage
            if self._meta is None or "dastrax_version" not in self._meta:
                raise
            return self._read(field, lo, hi, index, out, False)

    def _read(self, field, lo, hi, index, out, trust_meta) -> np.ndarray:
        lay = self._layout(field, trust_meta)
        if lay is not None:
            if hi > lay.shape[0]:
                raise CorruptData(
                    f"stored array {self._where(field)} holds {lay.shape[0]} rows, but its "
                    f"chunk table refers to rows up to {hi}; the store is damaged: delete it "
                    "and make the data again"
                )
            try:
                if index is None:
                    if out is None:
                        out = np.empty((hi - lo, *lay.inner), lay.dtype)
                    return _fastread.read_rows(lay, lo, hi, out)
                block = _fastread.read_rows(lay, lo, hi, np.empty((hi - lo, *lay.inner), lay.dtype))
            except CorruptData:
                self._check_not_deleted()
                raise
            return _into(block[index], out)
        if index is None and out is not None:
            return self._zarr_read(field, lo, hi, out=out)
        return _into(self._zarr_read(field, lo, hi, index), out)

    def _check_not_deleted(self) -> None:
        """A group that disappeared while being read was deleted, not damaged."""
        if self.local and not os.path.exists(os.path.join(local_path(self.root), self.key)):
            raise DataNotAvailable(
                f"{self.key} was deleted from {self.root} while being read (redefined or "
                "overwritten by another process); load again"
            )

    def _zarr_read(self, field: str, lo: int, hi: int, index=None, out=None) -> np.ndarray:
        """Rows ``[lo, hi)`` of ``field`` (then ``[index]``) through zarr; with ``out``,
        decoded by zarr straight into it (``get_basic_selection(out=...)``)."""
        path = f"{self.key}/{field}"
        try:
            arr = _open_array(self.root, path, self.options)
        except DastraxError:
            raise
        except (FileNotFoundError, zarr.errors.NodeNotFoundError, ValueError, KeyError) as e:
            _open_array.cache_clear()
            self._check_not_deleted()
            raise CorruptData(
                f"cannot open stored array {self._where(field)}: {e}. The store is damaged; "
                "delete it and make the data again"
            ) from e
        except Exception as e:  # noqa: BLE001 - botocore & co (e.g. on a dask worker)
            _open_array.cache_clear()
            if self.local:
                raise
            raise remote_error(self.root, f"opening {self._where(field)}", e) from e
        try:
            if out is not None:
                arr.get_basic_selection(
                    slice(lo, hi), out=default_buffer_prototype().nd_buffer.from_numpy_array(out)
                )
                return out
            data = arr[lo:hi]
        except zarr.errors.ChunkNotFoundError as e:
            self._check_not_deleted()
            raise CorruptData(
                f"missing chunk file {self._chunk_file(arr, field, lo, hi)}: the store is "
                "damaged; delete it and make the data again"
            ) from e
        except PermissionError as e:
            if self.local:
                raise CorruptData(f"cannot read {self._where(field)}: {e}") from e
            raise remote_error(self.root, f"reading {self._where(field)}", e) from e
        except (ValueError, RuntimeError, OSError, EOFError) as e:
            self._check_not_deleted()
            raise CorruptData(
                f"damaged chunk file {self._chunk_file(arr, field, lo, hi)}: {e}. "
                "Delete the store and make the data again"
            ) from e
        except DastraxError:
            raise
        except Exception as e:  # noqa: BLE001 - botocore & co (e.g. on a dask worker)
            if self.local:
                raise
            raise remote_error(self.root, f"reading {self._where(field)}", e) from e
        return data if index is None else data[index]

    def _chunk_file(self, arr, field: str, lo: int, hi: int) -> str:
        """The chunk file of ``field`` in rows ``[lo, hi)`` that fails to decode."""
        rows = arr.chunks[0]
        tail = "/0" * (arr.ndim - 1)
        for c in range(lo // rows, max(lo // rows + 1, -(-hi // rows))):
            try:
                arr[c * rows : min((c + 1) * rows, arr.shape[0])]
            except Exception:  # noqa: BLE001 - we are locating the damage
                return f"{self._where(field)}/c/{c}{tail}"
        return f"{self._where(field)} rows {lo}:{hi}"


def _with_dtype(cls, args, dtype):
    group = cls(*args)
    group.__dict__["_dtype"] = dtype
    return group


def _into(data: np.ndarray, out) -> np.ndarray:
    if out is None:
        return data
    out[...] = data
    return out


def remote_error(url: str, what: str, e: Exception) -> Exception:
    """An object store's error (missing credentials, access denied, no such bucket) as a
    dastrax error naming the URL, the host and what to do."""
    name = type(e).__name__
    where = f"{url} (on host {socket.gethostname()}, pid {os.getpid()})"
    if "Credentials" in name or "credential" in str(e).lower():
        return ConfigError(
            f"no credentials for {where} while {what}: {e}. Give them as storage_options "
            "(e.g. ZarrDirectory(url, storage_options={'key': ..., 'secret': ...})); they "
            "travel to dask workers with the data, environment variables do not"
        )
    if isinstance(e, PermissionError) or "AccessDenied" in str(e) or "Forbidden" in str(e):
        return ConfigError(f"access denied to {where} while {what}: {e}; check the credentials")
    if "NoSuchBucket" in str(e) or "bucket" in str(e).lower() and "not" in str(e).lower():
        return DataNotAvailable(f"the bucket of {where} does not exist ({what}): {e}")
    return CorruptData(f"error from storage {where} while {what}: {name}: {e}")

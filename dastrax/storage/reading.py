"""Reading row ranges of stored columns; damage is reported as CorruptData."""

from __future__ import annotations

import functools

import numpy as np
import zarr
import zarr.errors

from .. import fastread
from ..errors import (
    CorruptData,
)
from .layout import _zarr_store


@functools.lru_cache(maxsize=8192)
def _open_array(root: str, path: str):
    return zarr.open_array(
        _zarr_store(root, True), path=path, mode="r", config={"read_missing_chunks": False}
    )


def _chunk_file(root: str, path: str, arr, lo: int, hi: int) -> str:
    """The chunk file of ``path`` in rows ``[lo, hi)`` that fails to decode (or the range)."""
    rows = arr.chunks[0]
    tail = "/0" * (arr.ndim - 1)
    for c in range(lo // rows, max(lo // rows + 1, -(-hi // rows))):
        try:
            arr[c * rows : min((c + 1) * rows, arr.shape[0])]
        except Exception:  # noqa: BLE001 - we are locating the damage
            return f"{root.rstrip('/')}/{path}/c/{c}{tail}"
    return f"{root.rstrip('/')}/{path} rows {lo}:{hi}"


def read_block(root: str, path: str, lo: int, hi: int, index=None, out=None) -> np.ndarray:
    """Rows ``[lo, hi)`` of the zarr array at ``root/path``, then ``[index]`` if given.

    ``out``, if given, is filled and returned: an array of the result's shape, possibly a
    strided view such as a field of a structured array. Local arrays in dastrax's own
    layout are read by :mod:`dastrax.fastread` (chunks decompressed in place, no extra
    copy); others by zarr. Damaged or missing chunk files raise :class:`CorruptData`
    naming the file.
    """
    lay = fastread.layout(root, path)
    if lay is not None:
        if hi > lay.shape[0]:
            raise CorruptData(
                f"stored array {root.rstrip('/')}/{path} holds {lay.shape[0]} rows, but its "
                f"chunk table refers to rows up to {hi}; the store is damaged: delete it and "
                "make the data again"
            )
        if index is None:
            if out is None:
                out = np.empty((hi - lo, *lay.inner), lay.dtype)
            return fastread.read_rows(lay, lo, hi, out)
        block = fastread.read_rows(lay, lo, hi, np.empty((hi - lo, *lay.inner), lay.dtype))
        return _into(block[index], out)
    return _into(_zarr_block(root, path, lo, hi, index), out)


def _into(data: np.ndarray, out) -> np.ndarray:
    if out is None:
        return data
    out[...] = data
    return out


def _zarr_block(root: str, path: str, lo: int, hi: int, index=None) -> np.ndarray:
    try:
        arr = _open_array(root, path)
    except (FileNotFoundError, zarr.errors.NodeNotFoundError, ValueError, KeyError) as e:
        _open_array.cache_clear()
        raise CorruptData(
            f"cannot open stored array {root.rstrip('/')}/{path}: {e}. The store is damaged; "
            "delete it and make the data again"
        ) from e
    try:
        out = arr[lo:hi]
    except zarr.errors.ChunkNotFoundError as e:
        raise CorruptData(
            f"missing chunk file {_chunk_file(root, path, arr, lo, hi)}: the store is "
            "damaged; delete it and make the data again"
        ) from e
    except (ValueError, RuntimeError, OSError, EOFError) as e:
        raise CorruptData(
            f"damaged chunk file {_chunk_file(root, path, arr, lo, hi)}: {e}. "
            "Delete the store and make the data again"
        ) from e
    return out if index is None else out[index]

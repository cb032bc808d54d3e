"""The plain zarr + dask limits ``dastrax bench`` compares dastrax with (private): a
``from_zarr(...).compute()`` of stored arrays, and a chunk-aligned ``da.store`` into
arrays with the given codecs. Here because only the storage package touches zarr."""

from __future__ import annotations

import time

import numpy as np
import zarr

from dastrax.storage.codecs import make_codecs, normalize_compressor

__all__ = ["from_zarr_limit", "store_limit", "zarr_version"]


def zarr_version() -> str:
    return zarr.__version__


def from_zarr_limit(paths: list[str]) -> dict:
    """Seconds and bytes of ``dask.array.from_zarr(...).compute()`` of the arrays at
    ``paths`` (local folders), on dask's threaded scheduler."""
    import dask
    import dask.array as da
    import dask.threaded

    arrays = [zarr.open_array(p, mode="r") for p in paths]
    t0 = time.perf_counter()
    # dask's threaded scheduler given as a function: no distributed import in the timing
    out = dask.compute(*[da.from_zarr(a) for a in arrays], scheduler=dask.threaded.get)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": int(sum(a.nbytes for a in out)), "arrays": len(arrays)}


def store_limit(src: str, names: list[str], out_dir: str, compressor) -> dict:
    """Seconds of a plain chunk-aligned ``da.store`` of the columns ``names`` of the
    group at ``src`` (read into memory first) into new arrays under ``out_dir`` with the
    same chunks and the codecs of ``compressor``."""
    import dask
    import dask.array as da
    import dask.threaded

    columns = {n: zarr.open_array(f"{src}/{n}", mode="r") for n in names}
    data = {n: np.asarray(a[:]) for n, a in columns.items()}
    group = zarr.open_group(out_dir, mode="w")
    codecs = make_codecs(normalize_compressor(compressor))
    t0 = time.perf_counter()
    for n, a in data.items():
        chunks = columns[n].chunks
        target = group.create_array(
            n,
            shape=a.shape,
            chunks=chunks,
            dtype=a.dtype,
            compressors=codecs,
            fill_value=0,
            config={"write_empty_chunks": True},
        )
        # dask documents ``targets`` as anything supporting ``target[a:b] = ...`` (a zarr
        # array), but annotates them as numpy array-likes, which zarr arrays are not
        da.store(da.from_array(a, chunks=chunks), target, lock=False, compute=False).compute(  # type: ignore[arg-type]
            scheduler=dask.threaded.get
        )
    seconds = time.perf_counter() - t0
    nbytes = int(sum(a.nbytes for a in data.values()))
    rows = int(np.asarray(columns["time"].shape[0]))
    return {"seconds": seconds, "bytes": nbytes, "rows": rows}

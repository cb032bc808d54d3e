"""Writing a small group of dastrax's own zarr layout to a local folder in one go.

A run of a few rows costs zarr about 20 documents and chunk files, each through its
event loop (tens of ms a group). For a group whose rows are all in memory, this module
writes the same files directly: each array's ``zarr.json`` is zarr's own document for
that field (made once per field type by zarr in memory, then only its shape and chunk
shape set), its single chunk encoded with numcodecs as zarr's codecs do (``bytes``
little endian → blosc, zstd or nothing → ``crc32c``), and the group document with the
metadata and the consolidated metadata of its arrays. Reads go through zarr or
:mod:`._fastread` as for any other group.

Anything else (other codecs, remote stores) is left to zarr: :func:`write_group`
returns False and the caller writes through zarr.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np

from dastrax.core.chunks import field_dtype, field_names

__all__ = ["write_group"]

_TEMPLATES: dict[tuple, dict | None] = {}
_LOCK = threading.Lock()
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _template(base: np.dtype, inner: tuple, compressor: dict, dims: tuple) -> dict | None:
    """zarr's array document for a column of ``base`` values (rows of shape ``inner``)."""
    key = (base.str, inner, json.dumps(compressor, sort_keys=True), dims)
    with _LOCK:
        if key in _TEMPLATES:
            return _TEMPLATES[key]
    import zarr
    from zarr.storage import MemoryStore

    from dastrax.storage.codecs import make_codecs

    store = MemoryStore()
    zarr.create_array(
        store,
        shape=(1, *inner),
        chunks=(1, *inner),
        dtype=base,
        compressors=make_codecs(compressor),
        fill_value=0,
        dimension_names=list(dims),
        config={"write_empty_chunks": True},
    )
    doc = json.loads(store._store_dict["zarr.json"].to_bytes())
    names = [c["name"] for c in doc["codecs"]]
    ok = names[:1] == ["bytes"] and names[-1:] == ["crc32c"] and len(names) <= 3
    ok = ok and all(n in ("blosc", "zstd") for n in names[1:-1])
    found = doc if ok else None
    with _LOCK:
        _TEMPLATES[key] = found
    return found


def _encode(doc: dict, values: np.ndarray) -> bytes:
    """One chunk of ``values`` encoded with the codecs of ``doc``."""
    import google_crc32c

    raw = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    payload: bytes | memoryview = memoryview(raw).cast("B")
    for codec in doc["codecs"][1:-1]:
        cfg = codec.get("configuration") or {}
        if codec["name"] == "blosc":
            from numcodecs import Blosc

            payload = Blosc.from_config(
                {
                    "cname": cfg["cname"],
                    "clevel": cfg["clevel"],
                    "shuffle": _SHUFFLE[cfg["shuffle"]],
                    "blocksize": cfg.get("blocksize", 0),
                    "typesize": cfg.get("typesize", raw.dtype.itemsize),
                }
            ).encode(raw)
        else:
            from numcodecs import Zstd

            payload = Zstd(level=cfg.get("level", 0), checksum=cfg.get("checksum", False)).encode(
                payload
            )
    payload = bytes(payload)
    return payload + google_crc32c.value(payload).to_bytes(4, "little")


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_group(
    folder: str, dtype: np.dtype, data: np.ndarray, compressor: dict, kind: str, meta: dict
) -> bool:
    """Write the zarr group ``folder`` (a local directory): one array per field of
    ``dtype`` holding ``data`` in one chunk, and the group document with ``meta`` as
    attribute ``dastrax``. False (nothing written) where a codec is not one of ours."""
    n = len(data)
    docs, chunks = {}, {}
    for name in field_names(dtype):
        sub = field_dtype(dtype, name)
        dims = (kind, *(f"{name}_dim{i}" for i in range(1, sub.ndim + 1)))
        template = _template(sub.base, tuple(sub.shape), compressor, dims)
        if template is None:
            return False
        # (a copy of the template's parts that change; the rest is shared, only read)
        grid = template["chunk_grid"]
        config = {**grid["configuration"], "chunk_shape": [max(1, n), *sub.shape]}
        grid = {**grid, "configuration": config}
        doc = {**template, "shape": [n, *sub.shape], "chunk_grid": grid}
        docs[name] = doc
        if n:
            chunks[name] = _encode(doc, data[name])
    os.makedirs(folder, exist_ok=True)
    for name, doc in docs.items():
        adir = os.path.join(folder, name)
        cdir = os.path.join(adir, "c", *(["0"] * (len(doc["shape"]) - 1)))
        os.makedirs(cdir if name in chunks else adir, exist_ok=True)
        with open(os.path.join(adir, "zarr.json"), "w") as f:
            f.write(json.dumps(doc))
        if name in chunks:
            with open(os.path.join(cdir, "0"), "wb") as f:
                f.write(chunks[name])
    group = {
        "attributes": {"dastrax": meta},
        "zarr_format": 3,
        "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": docs},
        "node_type": "group",
    }
    # (json.dumps, not json.dump: the same text, by json's C encoder — json.dump encodes
    # in Python, piece by piece, several times slower for the chunk tables)
    with open(os.path.join(folder, "zarr.json"), "w") as f:
        f.write(json.dumps(group, default=_json_default))
    return True

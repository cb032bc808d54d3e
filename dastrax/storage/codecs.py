"""Codecs (compression, checksums) and the JSON form of structured dtypes."""

from __future__ import annotations

from typing import Any

import numpy as np
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from ..errors import (
    InvalidRequest,
)

DEFAULT_COMPRESSOR = {"name": "blosc", "cname": "lz4", "clevel": 5, "shuffle": "shuffle"}


def normalize_compressor(spec: Any) -> dict:
    """A compressor description as a dict: ``"blosc-lz4"``, ``"zstd"`` or a dict."""
    if spec is None:
        return dict(DEFAULT_COMPRESSOR)
    if isinstance(spec, str):
        name, _, cname = spec.partition("-")
        if name == "blosc":
            return {**DEFAULT_COMPRESSOR, "cname": cname or "lz4"}
        if name == "zstd":
            return {"name": "zstd", "level": 3}
        if name == "none":
            return {"name": "none"}
        raise InvalidRequest(
            f"unknown compressor {spec!r}: use 'blosc-lz4', 'blosc-zstd', 'zstd' or 'none'"
        )
    if isinstance(spec, dict) and spec.get("name", "blosc") in ("blosc", "zstd", "none"):
        return {**(DEFAULT_COMPRESSOR if spec.get("name", "blosc") == "blosc" else {}), **spec}
    raise InvalidRequest(f"unknown compressor {spec!r}: use a name or a dict with 'name'")


def make_codecs(spec: dict) -> list:
    """zarr codecs for a compressor description; always ending with a crc32c checksum."""
    spec = normalize_compressor(spec)
    if spec["name"] == "blosc":
        first = [BloscCodec(cname=spec["cname"], clevel=spec["clevel"], shuffle=spec["shuffle"])]
    elif spec["name"] == "zstd":
        first = [ZstdCodec(level=spec.get("level", 3))]
    else:
        first = []
    return [*first, Crc32cCodec()]


def dtype_to_json(dtype: np.dtype) -> list:
    """A structured dtype as JSON: ``[[name, title, base dtype str, shape], ...]``."""
    out = []
    for name in dtype.names:
        sub, _offset, *title = dtype.fields[name]
        out.append([name, title[0] if title else None, sub.base.str, list(sub.shape)])
    return out


def dtype_from_json(desc: list) -> np.dtype:
    """Inverse of :func:`dtype_to_json`."""
    fields = []
    for name, title, base, shape in desc:
        key = (title, name) if title else name
        fields.append((key, np.dtype(base), tuple(shape)) if shape else (key, np.dtype(base)))
    return np.dtype(fields)

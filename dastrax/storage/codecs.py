"""Codecs (compression, checksums) and the JSON form of structured dtypes."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from dastrax.core.chunks import field_names, fields_of
from dastrax.errors import InvalidRequest

DEFAULT_COMPRESSOR = {"name": "blosc", "cname": "lz4", "clevel": 5, "shuffle": "shuffle"}

#: the keys each compressor accepts, and their defaults
_KEYS = {
    "blosc": ("name", "cname", "clevel", "shuffle", "blocksize"),
    "zstd": ("name", "level", "checksum"),
    "none": ("name",),
}
_SHUFFLES = ("noshuffle", "shuffle", "bitshuffle")
_ZSTD_LEVELS = (-131072, 22)


def _blosc_cnames() -> list[str]:
    """Blosc compressors both zarr and this build of numcodecs' blosc can use."""
    from numcodecs import blosc

    available = set(blosc.list_compressors())
    return [c for c in ("lz4", "lz4hc", "blosclz", "zlib", "zstd", "snappy") if c in available]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _bad(spec, key: str, value, allowed: str) -> InvalidRequest:
    return InvalidRequest(f"compressor {spec!r}: {key!r} is {value!r}; allowed: {allowed}")


def _check(spec: dict, original) -> dict:
    """``spec`` if its codecs can be built, else :class:`InvalidRequest` naming the key."""
    name = spec["name"]
    for key in ("clevel", "level", "blocksize"):
        if key in spec and _is_int(spec[key]):
            spec[key] = int(spec[key])  # numpy integers: as Python ints, for JSON
    unknown = sorted(set(spec) - set(_KEYS[name]), key=str)
    if unknown:
        raise InvalidRequest(
            f"compressor {original!r}: unknown keys {unknown} for {name!r}; allowed keys are "
            f"{list(_KEYS[name])}"
        )
    if name == "blosc":
        cnames = _blosc_cnames()
        if spec["cname"] not in cnames:
            raise _bad(original, "cname", spec["cname"], f"{cnames}")
        if not _is_int(spec["clevel"]) or not 0 <= spec["clevel"] <= 9:
            raise _bad(original, "clevel", spec["clevel"], "an integer from 0 to 9")
        if spec["shuffle"] not in _SHUFFLES:
            raise _bad(original, "shuffle", spec["shuffle"], f"{list(_SHUFFLES)}")
        if "blocksize" in spec and (not _is_int(spec["blocksize"]) or spec["blocksize"] < 0):
            raise _bad(original, "blocksize", spec["blocksize"], "an integer >= 0 (0: automatic)")
    elif name == "zstd":
        lo, hi = _ZSTD_LEVELS
        if not _is_int(spec.get("level", 3)) or not lo <= spec.get("level", 3) <= hi:
            raise _bad(original, "level", spec.get("level"), f"an integer from {lo} to {hi}")
        if not isinstance(spec.get("checksum", False), bool):
            raise _bad(original, "checksum", spec["checksum"], "True or False")
    try:
        _build(spec)
    except (TypeError, ValueError) as e:
        raise InvalidRequest(f"compressor {original!r} cannot be built: {e}") from None
    return spec


def normalize_compressor(spec: Any) -> dict:
    """A compressor description as a dict, checked by building its codecs.

    Parameters
    ----------
    spec
        ``None`` (the default, blosc-lz4), a name (``"blosc-lz4"``, ``"blosc-zstd"``,
        ``"zstd"``, ``"none"``), or a dict with ``name`` and that compressor's keys (blosc:
        ``cname``, ``clevel``, ``shuffle``, ``blocksize``; zstd: ``level``, ``checksum``).

    Returns
    -------
    dict
        The full description (defaults filled).

    Raises
    ------
    InvalidRequest
        For unknown names or keys, or values the codec refuses; the message names the key and
        the allowed values.

    Examples
    --------
    >>> normalize_compressor("blosc-zstd")["cname"]
    'zstd'
    """
    if spec is None:
        return dict(DEFAULT_COMPRESSOR)
    if isinstance(spec, str):
        name, _, cname = spec.partition("-")
        if name == "blosc":
            return _check({**DEFAULT_COMPRESSOR, "cname": cname or "lz4"}, spec)
        if name in ("zstd", "none") and not cname:
            return {"name": "zstd", "level": 3} if name == "zstd" else {"name": "none"}
        raise InvalidRequest(
            f"unknown compressor {spec!r}: use 'blosc-lz4', 'blosc-zstd', 'zstd' or 'none'"
        )
    if isinstance(spec, dict):
        name = spec.get("name", "blosc")
        if name not in _KEYS:
            raise InvalidRequest(
                f"compressor {spec!r}: unknown name {name!r}; allowed: {list(_KEYS)}"
            )
        base = DEFAULT_COMPRESSOR if name == "blosc" else {}
        return _check({**base, **spec, "name": name}, spec)
    raise InvalidRequest(
        f"unknown compressor {spec!r}: use a name ('blosc-lz4', 'zstd', 'none') or a dict "
        "with 'name'"
    )


def _build(spec: dict) -> list:
    first: list[BloscCodec | ZstdCodec]
    if spec["name"] == "blosc":
        extra = {"blocksize": spec["blocksize"]} if "blocksize" in spec else {}
        first = [
            BloscCodec(cname=spec["cname"], clevel=spec["clevel"], shuffle=spec["shuffle"], **extra)
        ]
    elif spec["name"] == "zstd":
        extra = {"checksum": spec["checksum"]} if "checksum" in spec else {}
        first = [ZstdCodec(level=spec.get("level", 3), **extra)]
    else:
        first = []
    return [*first, Crc32cCodec()]


def make_codecs(spec: dict) -> list:
    """zarr codecs for a compressor description; always ending with a crc32c checksum."""
    return _build(normalize_compressor(spec))


def dtype_to_json(dtype: np.dtype) -> list:
    """A structured dtype as JSON: ``[[name, title, base dtype str, shape], ...]``."""
    out = []
    for name in field_names(dtype):
        sub, _offset, *title = fields_of(dtype)[name]
        out.append([name, title[0] if title else None, sub.base.str, list(sub.shape)])
    return out


def dtype_from_json(desc: list) -> np.dtype:
    """Inverse of :func:`dtype_to_json` (remembered: a superrun of many subruns asks it
    for the same description thousands of times)."""
    try:
        key = tuple((n, t, b, tuple(s) if s else ()) for n, t, b, s in desc)
    except (TypeError, ValueError):
        return _dtype_from_json(desc)
    return _dtype_cached(key)


@functools.lru_cache(maxsize=1024)
def _dtype_cached(desc: tuple) -> np.dtype:
    return _dtype_from_json(desc)


def _dtype_from_json(desc) -> np.dtype:
    fields = []
    for name, title, base, shape in desc:
        key = (title, name) if title else name
        fields.append((key, np.dtype(base), tuple(shape)) if shape else (key, np.dtype(base)))
    return np.dtype(fields)

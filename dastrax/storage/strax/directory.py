"""Reading strax's own ``DataDirectory`` layout: the data strax users already have.

strax (2.x) stores, in one directory::

    <run_id>-<data_type>-<lineage_hash>/           one folder per stored key
        <data_type>-<lineage_hash>-metadata.json    dtype (a Python repr), lineage, chunks
        <data_type>-<lineage_hash>-000000           one compressed file per non-empty chunk
    <run_id>-<data_type>-<lineage_hash>_temp/       being written (never read here)
    <name>_<subruns_hash>-<data_type>-<hash>/       a superrun strax stored itself
    <run_id>-metadata.json                          run documents (bson JSON)

A chunk file holds the chunk's whole rows, compressed as one buffer by the compressor
named in the metadata (``blosc``, ``zstd``, ``bz2`` or ``lz4`` frames). Empty chunks
have no file. :class:`StraxDirectory` serves all of it, read-only, on dastrax's storage
protocol: the key of a strax superrun is ``<name>-<data_type>-<hash>``, like dastrax's.
"""

from __future__ import annotations

import ast
import collections
import importlib
import json
import os
import re
import threading
from typing import NoReturn

import numpy as np

from dastrax.core.chunks import field_dtype, field_names
from dastrax.errors import CorruptData, DataNotAvailable, InvalidRequest, RunMetadataNotAvailable
from dastrax.storage.abc import GroupWriter, StorageFrontend, StoredGroup
from dastrax.storage.codecs import dtype_to_json

__all__ = ["StraxDirectory", "StraxGroup"]

#: decompressed chunks kept per process (bytes)
CACHE_BYTES = 256 * 10**6

_RUN_DOC_SUFFIX = "-metadata.json"
_SUPERRUN_FOLDER = re.compile(r"^(_.*)_([0-9a-z]{10})$")
_HASH = re.compile(r"^[0-9a-z]{10}$")

_cache: collections.OrderedDict = collections.OrderedDict()
_cache_bytes = 0
_cache_lock = threading.Lock()


def _decompressor(name: str, path: str):
    """A function bytes -> bytes for strax's compressor ``name``."""
    import numcodecs

    if name == "blosc":
        return numcodecs.Blosc().decode
    if name == "zstd":
        return numcodecs.Zstd().decode
    if name == "bz2":
        return numcodecs.BZ2().decode
    if name == "lz4":  # strax writes lz4 *frames*, which numcodecs' LZ4 codec does not read
        try:
            # (imported by name: lz4 is optional, and ships no type information)
            lz4_frame = importlib.import_module("lz4.frame")
        except ImportError:
            raise InvalidRequest(
                f"{path} is compressed with strax's 'lz4' (lz4 frames): install the 'lz4' "
                "package (pip install lz4) to read it"
            ) from None
        return lz4_frame.decompress
    raise CorruptData(
        f"{path} names the compressor {name!r}, which strax does not write: the metadata "
        "is damaged, or was written by another program"
    )


def _parse_dtype(text, path: str) -> np.dtype:
    """strax's dtype: the repr of a list of ``((title, name), type[, shape])``."""
    try:
        return np.dtype(ast.literal_eval(text) if isinstance(text, str) else text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        raise CorruptData(f"cannot read the dtype in {path} ({e}): the metadata is damaged") from e


def _chunk_table(md: dict, dtype: np.dtype) -> list[dict]:
    """dastrax's chunk table from strax's (chunks in ``chunk_i`` order; strax's forked
    savers may append them out of order)."""
    table: list[dict] = []
    row = 0
    for c in sorted(md.get("chunks") or [], key=lambda c: c["chunk_i"]):
        n = int(c["n"])
        table.append(
            {
                "chunk_i": len(table),
                "start": int(c["start"]),
                "end": int(c["end"]),
                "row_start": row,
                "n": n,
                "first_time": c.get("first_time") if n else None,
                "last_endtime": c.get("last_endtime") if n else None,
                "nbytes": int(c.get("nbytes", n * dtype.itemsize)),
                "run_id": c.get("run_id", md.get("run_id")),
                "subruns": c.get("subruns"),
                "filename": c.get("filename") if n else None,
                "last_time": c.get("last_time") if n else None,
            }
        )
        row += n
    return table


def _flat_subruns(table: list[dict]) -> list[str]:
    """The subrun ids of a strax superrun, in time order."""
    first: dict[str, int] = {}
    for c in table:
        for sub, rng in (c["subruns"] or {}).items():
            first[sub] = min(first.get(sub, rng["start"]), rng["start"])
    return sorted(first, key=lambda s: (first[s], s))


class StraxGroup(StoredGroup):
    """One stored strax folder, as a dastrax :class:`StoredGroup`; picklable.

    It holds the folder's path and metadata only; chunk files are opened (and their
    decompressed rows kept in a small per-process cache) when rows are read.

    Parameters
    ----------
    key
        The dastrax key ``run_id-data_type-lineage_hash`` (a superrun by its name).
    folder
        The strax folder.
    meta
        The metadata document (see :mod:`dastrax.storage.abc`), built by
        :meth:`StraxDirectory.find`.
    """

    def __init__(self, key: str, folder: str, meta: dict, strax_compressor: str):
        self.key = key
        self.folder = folder
        self.url = folder
        self.meta = meta
        self.strax_compressor = strax_compressor
        self._dtype: np.dtype | None = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_dtype"}

    def __setstate__(self, state):
        self.__dict__.update(state, _dtype=None)

    @property
    def dtype(self) -> np.dtype:
        """strax's dtype of the rows, field titles included."""
        if self._dtype is None:
            self._dtype = super().dtype
        return self._dtype

    def _rows_of_chunk(self, c: dict) -> np.ndarray:
        """The decompressed rows of chunk ``c`` (cached)."""
        global _cache_bytes
        dtype = self.dtype
        if not c["n"]:
            return np.empty(0, dtype)
        name = c["filename"] or f"{self.key.split('-', 1)[1]}-{c['chunk_i']:06d}"
        path = os.path.join(self.folder, name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise CorruptData(
                f"missing chunk file {path} (chunk {c['chunk_i']} of {self.key}, {c['n']} rows): "
                "the strax data is damaged; make it again with strax, or delete the folder"
            ) from None
        cache_key = (path, st.st_size, st.st_mtime_ns)
        with _cache_lock:
            rows = _cache.get(cache_key)
            if rows is not None:
                _cache.move_to_end(cache_key)
                return rows
        decode = _decompressor(self.strax_compressor, path)
        try:
            with open(path, "rb") as f:
                raw = f.read()
            data = decode(raw)
        except Exception as e:  # noqa: BLE001 - codecs raise anything on damaged bytes
            raise CorruptData(
                f"damaged chunk file {path} of {self.key} ({type(e).__name__}: {e}): cannot "
                f"decompress it with {self.strax_compressor}; make the data again with strax"
            ) from e
        nbytes = memoryview(data).nbytes
        if nbytes != c["n"] * dtype.itemsize:
            raise CorruptData(
                f"damaged chunk file {path} of {self.key}: it holds {nbytes} bytes, but its "
                f"metadata says {c['n']} rows of {dtype.itemsize} bytes; make the data again "
                "with strax"
            )
        rows = np.frombuffer(data, dtype)
        if "time" in field_names(dtype):
            want = (c["first_time"], c["last_time"])
            got = (int(rows["time"][0]), int(rows["time"][-1]))
            if any(w is not None and w != g for w, g in zip(want, got)):
                raise CorruptData(
                    f"damaged chunk file {path} of {self.key}: its first/last times {got} "
                    f"differ from its metadata's {want}; make the data again with strax"
                )
        with _cache_lock:
            _cache[cache_key] = rows
            _cache_bytes += rows.nbytes
            while _cache_bytes > CACHE_BYTES and len(_cache) > 1:
                _k, old = _cache.popitem(last=False)
                _cache_bytes -= old.nbytes
        return rows

    def _subrun_column(self, c: dict, rows: np.ndarray) -> np.ndarray:
        """The ``subrun`` column of a superrun's chunk: index into ``meta["subruns"]`` of
        the subrun whose ``[start, end)`` in the chunk's ``subruns`` holds each row."""
        flat = self.meta["subruns"]
        subs = sorted((rng["start"], flat.index(s)) for s, rng in (c["subruns"] or {}).items())
        out = np.zeros(len(rows), np.int32)
        if subs and len(rows):
            starts = np.array([s for s, _ in subs], np.int64)
            which = np.searchsorted(starts, rows["time"], side="right") - 1
            out[:] = np.array([i for _, i in subs], np.int32)[np.clip(which, 0, None)]
        return out

    def read(
        self,
        field: str,
        lo: int,
        hi: int,
        index: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``[lo, hi)`` of column ``field`` (then ``[index]``), decompressed from the
        strax chunk files covering them.

        Raises
        ------
        InvalidRequest
            ``field`` is not a column, or the rows are out of range.
        CorruptData
            A chunk file covering the rows is missing or damaged (named).
        """
        if field not in self.fields:
            raise InvalidRequest(
                f"{self.key} has no column {field!r}; its columns: {', '.join(self.fields)}"
            )
        n_rows = self.meta["n_rows"]
        if not 0 <= lo <= hi <= n_rows:
            raise InvalidRequest(f"rows [{lo}, {hi}) are outside {self.key}'s {n_rows} rows")
        parts = []
        for c in self.chunks:
            c0, c1 = c["row_start"], c["row_start"] + c["n"]
            if c1 <= lo or c0 >= hi or not c["n"]:
                continue
            rows = self._rows_of_chunk(c)
            sel = slice(max(lo, c0) - c0, min(hi, c1) - c0)
            if field == "subrun":
                parts.append(self._subrun_column(c, rows)[sel])
            else:
                parts.append(rows[field][sel])
        if parts:
            block = np.concatenate(parts) if len(parts) > 1 else parts[0]
        else:
            sub = np.dtype(np.int32) if field == "subrun" else field_dtype(self.dtype, field)
            block = np.empty((0, *sub.shape), sub.base)
        if index is not None:
            block = block[index]
        if out is None:
            return np.array(block)
        out[...] = block
        return out


class StraxDirectory(StorageFrontend):
    """strax's ``DataDirectory`` layout, read-only, as a dastrax storage frontend.

    Data strax wrote loads without its plugins being registered, rows and dtypes
    (field titles included) exactly strax's. strax superruns stored with
    ``write_superruns=True`` (folders ``<name>_<hash>-<type>-<hash>``) are served under
    the superrun's name, their chunks' ``subruns`` as strax stored them.

    Parameters
    ----------
    path
        The directory strax's ``DataDirectory`` wrote.
    lineage
        ``{data_type: lineage_hash}``: which lineage :meth:`choose` picks when several
        of a data type are stored.

    Raises
    ------
    InvalidRequest
        ``lineage`` is not a dict of data types to 10-character lineage hashes.

    Examples
    --------
    >>> d = StraxDirectory("strax_data", lineage={"peaks": "xia2iit6vb"})  # doctest: +SKIP
    >>> d.find("000000-peaks-xia2iit6vb").read("area", 0, 3)  # doctest: +SKIP
    array([42., 42., 42.], dtype=float32)
    """

    readonly = True
    provide_run_metadata = True

    def __init__(self, path: str | os.PathLike, lineage: dict | None = None):
        self.path = os.path.abspath(os.fspath(path))
        self.url = self.path
        lineage = dict(lineage or {})
        for data_type, h in lineage.items():
            if not isinstance(data_type, str) or not isinstance(h, str) or not _HASH.match(h):
                raise InvalidRequest(
                    f"lineage={{{data_type!r}: {h!r}}}: give {{data_type: lineage_hash}} with "
                    "strax's 10-character hashes, e.g. {'peaks': 'xia2iit6vb'}"
                )
        self.lineage = lineage

    def __reduce__(self):
        return (type(self), (self.path, self.lineage))

    # -- folders ----------------------------------------------------------------------
    def check_exists(self) -> None:
        """Raise :class:`DataNotAvailable` naming the path if it is not a directory."""
        if not os.path.isdir(self.path):
            raise DataNotAvailable(
                f"strax data directory {self.path} does not exist: give the folder strax's "
                "DataDirectory wrote"
            )

    def is_dastrax_storage(self) -> bool:
        """Whether the folder is dastrax's own storage (zarr groups, each with a
        ``zarr.json``), which strax never writes: then there is nothing to import."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return False
        return any(os.path.isfile(os.path.join(self.path, n, "zarr.json")) for n in names)

    def _folders(self) -> dict[str, list[str]]:
        """dastrax key -> strax folder names (several if a superrun name was stored with
        different subruns)."""
        try:
            names = os.listdir(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        out: dict[str, list[str]] = {}
        for name in names:
            parts = name.split("-")
            if len(parts) != 3 or name.endswith("_temp") or not _HASH.match(parts[2]):
                continue
            run_id, data_type, h = parts
            m = _SUPERRUN_FOLDER.match(run_id)
            if m:
                run_id = m.group(1)
            if not os.path.isdir(os.path.join(self.path, name)):
                continue
            out.setdefault(f"{run_id}-{data_type}-{h}", []).append(name)
        return out

    def _folders_of(self, key: str) -> list[str]:
        parts = key.split("-")
        if len(parts) != 3:
            return []
        if not key.startswith("_"):
            return [key] if os.path.isdir(os.path.join(self.path, key)) else []
        return sorted(self._folders().get(key, []))

    def _strax_metadata(self, folder: str) -> dict | None:
        """strax's metadata of ``folder``; None if the folder is incomplete (strax failed
        while writing it)."""
        prefix = folder.split("-", 1)[1]
        path = os.path.join(self.path, folder, f"{prefix}{_RUN_DOC_SUFFIX}")
        if not os.path.exists(path):
            old = os.path.join(self.path, folder, "metadata.json")  # strax's old layout
            path = old if os.path.exists(old) else path
        try:
            with open(path, encoding="utf-8") as f:
                md = json.load(f)
        except FileNotFoundError:
            raise CorruptData(
                f"strax folder {os.path.join(self.path, folder)} has no metadata file {path}"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorruptData(f"strax metadata {path} is damaged: {e}") from e
        if not isinstance(md, dict) or "chunks" not in md or "dtype" not in md:
            raise CorruptData(f"strax metadata {path} is damaged: no dtype or chunk table")
        if "exception" in md or "writing_ended" not in md:
            return None
        md["_path"] = path
        return md

    # -- stored data ------------------------------------------------------------------
    def find(self, key: str) -> StraxGroup | None:
        """The strax data stored under the dastrax ``key``, or None.

        Raises
        ------
        InvalidRequest
            A superrun name was stored by strax with different subruns (two folders).
        CorruptData
            Its metadata file is missing or damaged.
        """
        folders = self._folders_of(key)
        if not folders:
            return None
        if len(folders) > 1:
            raise InvalidRequest(
                f"{key} is stored by strax twice, with different subruns: "
                f"{', '.join(folders)} in {self.path}; move one of them away"
            )
        folder = folders[0]
        md = self._strax_metadata(folder)
        if md is None:
            return None
        return self._group(key, folder, md)

    def _group(self, key: str, folder: str, md: dict) -> StraxGroup:
        run_id, data_type, h = key.split("-")
        dtype = _parse_dtype(md["dtype"], md["_path"])
        table = _chunk_table(md, dtype)
        meta = {
            "run_id": run_id,
            "data_type": md.get("data_type", data_type),
            "data_kind": md.get("data_kind", data_type),
            "dtype": dtype_to_json(dtype),
            "lineage": md.get("lineage"),
            "lineage_hash": md.get("lineage_hash", h),
            "compressor": md.get("compressor"),
            "chunk_target_size_mb": md.get("chunk_target_size_mb"),
            "n_rows": sum(c["n"] for c in table),
            "chunks": table,
            "start": md.get("start"),
            "end": md.get("end"),
            "strax_version": md.get("strax_version"),
            "strax_folder": folder,
        }
        if run_id.startswith("_"):
            meta["subruns"] = _flat_subruns(table)
        return StraxGroup(key, os.path.join(self.path, folder), meta, str(md.get("compressor")))

    def keys(self, prefix: str = "") -> list[str]:
        """Keys (``run_id-data_type-lineage_hash``) of the complete strax data here."""
        out = []
        for key, folders in self._folders().items():
            if key.startswith(prefix):
                try:
                    complete = any(self._strax_metadata(f) is not None for f in folders)
                except CorruptData:
                    complete = True  # listed: reading it names the damage
                if complete:
                    out.append(key)
        return sorted(out)

    def find_data(self, run_id: str, data_type: str) -> list[StoredGroup]:
        """Every stored group of ``data_type`` of ``run_id``, whatever its lineage."""
        return list(self._groups(run_id, data_type))

    def _groups(self, run_id: str, data_type: str) -> list[StraxGroup]:
        groups = []
        for key in self.keys(f"{run_id}-{data_type}-"):
            if key.split("-")[:2] == [run_id, data_type]:
                group = self.find(key)
                if group is not None:
                    groups.append(group)
        return groups

    def choose(self, run_id: str, data_type: str, registered_hash: str | None = None) -> StraxGroup:
        """The one stored group of ``data_type`` of ``run_id`` to load.

        Chosen by this directory's ``lineage`` (if it names ``data_type``), else by
        ``registered_hash`` (the lineage of a registered plugin), else the only one
        stored.

        Parameters
        ----------
        run_id, data_type
            What to load.
        registered_hash
            The lineage hash a registered plugin would give it, if any.

        Returns
        -------
        StraxGroup

        Raises
        ------
        DataNotAvailable
            Nothing of it is stored, or not the chosen lineage (the stored ones named).
        InvalidRequest
            Several lineages are stored and none is chosen (they are named, and how to
            choose).
        """
        groups = self._groups(run_id, data_type)
        stored = {g.meta["lineage_hash"]: g for g in groups}
        listing = ", ".join(sorted(stored)) or "none"
        if data_type in self.lineage:
            want = self.lineage[data_type]
            if want not in stored:
                raise DataNotAvailable(
                    f"{data_type} of {run_id} with lineage {want} (chosen by lineage=) is not "
                    f"stored in {self.path}; stored lineages: {listing}"
                )
            return stored[want]
        if registered_hash is not None:
            if registered_hash in stored:
                return stored[registered_hash]
            raise DataNotAvailable(
                f"{data_type} of {run_id} is not stored in {self.path} with the registered "
                f"plugin's lineage {registered_hash}; stored lineages: {listing}. Choose one "
                f"with StraxDirectory(path, lineage={{{data_type!r}: '<hash>'}})"
            )
        if not groups:
            raise DataNotAvailable(f"{data_type} of {run_id} is not stored in {self.path}")
        if len(groups) > 1:
            raise InvalidRequest(
                f"{data_type} of {run_id} is stored in {self.path} with {len(groups)} "
                f"lineages: {listing}. Choose one with StraxDirectory(path, "
                f"lineage={{{data_type!r}: {sorted(stored)[0]!r}}}), or register the plugin "
                "with the options it was made with"
            )
        return groups[0]

    # -- run documents ----------------------------------------------------------------
    def _run_path(self, run_id: str) -> str:
        return os.path.join(self.path, f"{run_id}{_RUN_DOC_SUFFIX}")

    def run_metadata(self, run_id: str) -> dict:
        """The run document ``<run_id>-metadata.json`` as strax stored it (``name`` set
        from the file name if it has none).

        Raises
        ------
        RunMetadataNotAvailable
            There is no such file.
        CorruptData
            The file is not a JSON object (named).
        """
        path = self._run_path(run_id)
        if "-" in run_id or "/" in run_id or not os.path.isfile(path):
            raise RunMetadataNotAvailable(f"no run document of {run_id!r} in {self.path}")
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorruptData(f"run document {path} is not valid JSON: {e}") from e
        if not isinstance(doc, dict):
            raise CorruptData(f"run document {path} is not a JSON object")
        doc.setdefault("name", run_id)
        return doc

    def list_runs(self) -> list[str]:
        """Run ids (and superrun names) with a run document here, sorted."""
        try:
            names = os.listdir(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            n[: -len(_RUN_DOC_SUFFIX)]
            for n in names
            if n.endswith(_RUN_DOC_SUFFIX)
            and "-" not in n[: -len(_RUN_DOC_SUFFIX)]
            and os.path.isfile(os.path.join(self.path, n))
        )

    def run_attachment(self, run_id: str, name: str) -> np.ndarray:
        """strax stores no run attachments: always raises."""
        raise RunMetadataNotAvailable(f"strax stores no attachment {name!r} of {run_id!r}")

    # -- writes: refused --------------------------------------------------------------
    def _refuse(self, what: str) -> NoReturn:
        raise InvalidRequest(
            f"{self!r} is read-only (strax's own format): cannot {what}. Import it into "
            "dastrax storage with `dastrax import` to work on it"
        )

    def writer(
        self,
        key: str,
        dtype: np.dtype,
        compressor: dict | None = None,
        data_kind: str = "rows",
        overwrite: bool = False,
    ) -> GroupWriter:
        """Refused: read-only."""
        self._refuse(f"write {key}")

    def delete(self, key: str) -> None:
        """Refused: read-only."""
        self._refuse(f"delete {key}")

    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Refused: read-only."""
        self._refuse(f"write the run document of {run_id}")

    def create_run_metadata(self, run_id: str, doc: dict) -> bool:
        """Refused: read-only."""
        self._refuse(f"write the run document of {run_id}")

    def write_run_attachment(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Refused: read-only."""
        self._refuse(f"write attachment {name} of {run_id}")

    def delete_run_metadata(self, run_id: str) -> None:
        """Refused: read-only."""
        self._refuse(f"delete the run document of {run_id}")

    def __repr__(self) -> str:
        return f"StraxDirectory({self.path!r})"

"""The open index: a big superrun's resolved load kept on disk between sessions.

Opening a superrun of 10 000 subruns reads 10 000 run documents and 10 000 metadata
documents and cuts every stored chunk into pieces: about a second, every time, in every
fresh process. The index keeps what that produced — each subrun's group keys and row
counts, each piece's row range — as a few flat arrays in one file, and a later open
rebuilds the load from it in a few hundredths of a second, with handles that read a
group's metadata only if something needs it.

The index is valid while the storage's *change stamp* is what it was when the index was
written (:meth:`dastrax.storage.StorageFrontend.change_stamp`: locally, the modification
times of the directory and of its run documents' folder, which every commit, overwrite,
delete and run document write changes). A stamp younger than :data:`RACY_SECONDS` is not
trusted (a change in the same clock tick would not move it), so nothing is indexed right
after a write. Frontends that cannot tell cheaply (object stores) are never indexed.

``DASTRAX_OPEN_INDEX`` names the folder of the index files (default
``$XDG_CACHE_HOME/dastrax/open-index``, else ``~/.cache/dastrax/open-index``); ``0``
turns the index off.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dastrax._version import __version__
from dastrax.core.lineage import deterministic_hash
from dastrax.load.plan import Piece, Resolved, Source, pieces_for
from dastrax.storage import StorageList

__all__ = ["INDEX_ENV", "MANIFEST_ENV", "directory", "load", "manifests_on", "save"]

#: the environment variable naming the index folder (``0``: no index)
INDEX_ENV = "DASTRAX_OPEN_INDEX"
#: loads of fewer sources than this are not indexed (they open fast anyway)
MIN_SOURCES = 100
#: index files kept; the least recently written go first
MAX_FILES = 64
#: a change stamp younger than this (seconds) is not trusted
RACY_SECONDS = 2.0
#: the layout of index files; bumped when it changes
FORMAT = 1


#: the environment variable that turns manifests kept with the data off (``0``)
MANIFEST_ENV = "DASTRAX_MANIFESTS"


def manifests_on() -> bool:
    """Whether manifests of superrun loads are kept with the data (``DASTRAX_MANIFESTS``,
    default on)."""
    value = os.environ.get(MANIFEST_ENV, "1")
    return value.strip().lower() not in ("", "0", "off", "false", "no")


def directory() -> str | None:
    """The folder of index files, or None if the index is turned off."""
    value = os.environ.get(INDEX_ENV)
    if value is not None and value.strip().lower() in ("", "0", "off", "false", "no"):
        return None
    if value:
        return value
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dastrax", "open-index")


def cache_key(
    storage: StorageList,
    label: str,
    targets: Iterable[str],
    lineage_hashes: Iterable[str],
    flags: Iterable[object],
) -> str:
    """The file name (without suffix) of the index of one kind of load."""
    where = [(type(f).__name__, f.url, f.readonly, f.provide_run_metadata) for f in storage]
    return deterministic_hash(
        [FORMAT, __version__, where, label, list(targets), list(lineage_hashes), list(flags)]
    )


def _token_text(token: object) -> str:
    return json.dumps(token, default=str)


def load(folder: str, key: str, storage: StorageList, token: object) -> Resolved | None:
    """The load indexed under ``key`` if its stamp is ``token`` (a manifest: ``token``
    None, and every group and run document it names still what it was), else None (a
    damaged or outdated file is a miss, never an error)."""
    path = os.path.join(folder, f"{key}.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(bytes(z["head"]).decode())
            if head.get("format") != FORMAT or head.get("token") != _token_text(token):
                return None
            arrays = {name: z[name] for name in z.files if name != "head"}
        if token is None and not _unchanged(head, arrays, storage):
            return None
        return _rebuild(head, arrays, storage)
    except Exception:  # noqa: BLE001 - any unreadable index is only a miss
        return None


def _unchanged(head: dict[str, Any], a: dict[str, np.ndarray], storage: StorageList) -> bool:
    """Whether what a manifest names is as it was: each group's document (by signature),
    the run documents of the load's labels, and no stored copy of the superrun."""
    front = a["front"].tolist()
    now = storage.signatures(front, head["keys"])
    if now is None or now != a["sig"].tolist():
        return False
    if run_signatures(storage, head["labels_checked"]) != head["doc_sigs"]:
        return False
    absent = head["absent"]
    for f in storage:
        got = f.signatures(absent) if absent else []
        if got is None or any(x is not None for x in got):
            return False
    return True


def run_signatures(storage: StorageList, labels: Iterable[str]) -> list[list[list[Any] | None]]:
    """The signatures of the run documents of ``labels`` on every frontend."""
    return [[f.run_signature(label) for f in storage] for label in sorted(set(labels))]


def save(
    folder: str,
    key: str,
    res: Resolved,
    storage: StorageList,
    token: object,
    absent: Sequence[str] = (),
    doc_sigs: list[list[list[Any] | None]] | None = None,
) -> bool:
    """Write the index of ``res`` under ``key`` (atomically); whether it was written.

    ``token`` None writes a *manifest*: valid while each group's and run document's
    signature is what it was when the load read it and the keys ``absent`` (a stored
    copy of the superrun) are not stored. ``res`` gets its pieces (before any selection)
    as ``base_pieces``, so the load does not cut its chunks a second time."""
    fronts = {f.url: i for i, f in enumerate(storage)}
    sources = res.sources
    if any(
        g.url not in fronts or [t for t, _g in s.groups] != list(res.targets)
        for s in sources
        for _t, g in s.groups
    ):
        return False
    pieces = [p for s in sources for p in pieces_for(s)]
    res.base_pieces = pieces
    where = {id(s): i for i, s in enumerate(sources)}
    ranges = [s.ranges for s in sources]
    has_ranges = np.array([r is not None for r in ranges], bool)
    windows = [np.asarray(r, np.int64).reshape(-1, 2) for r in ranges if r is not None]
    indices = [p.index for p in pieces if p.index is not None]
    head: dict[str, Any] = {  # the index's JSON header
        "format": FORMAT,
        "token": _token_text(token),
        "subruns": list(res.subruns),
        "targets": list(res.targets),
        "kind": res.data_kind,
        "runs": [s.run_id for s in sources],
        "labels": [s.label for s in sources],
        "keys": [g.key for s in sources for _t, g in s.groups],
    }
    front = [fronts[g.url] for s in sources for _t, g in s.groups]
    sig = None
    if token is None:  # a manifest: the signatures of what this load read
        sig = storage.signatures(front, head["keys"], as_read=True)
        if sig is None or any(x is None for x in sig):
            return False
        labels = sorted({s.label for s in sources})
        now = run_signatures(storage, labels)
        if doc_sigs is None or doc_sigs != now:  # (redefined while being resolved)
            return False
        head["labels_checked"] = labels
        head["doc_sigs"] = now
        head["absent"] = list(absent)
        hints = _read_hints(sources, res.targets)
        if hints is None:
            return False
        head["hints"] = hints
    arrays: dict[str, np.ndarray] = {
        "head": np.frombuffer(json.dumps(head).encode(), np.uint8),
        "sig": np.array(sig if sig is not None else [], np.int64).reshape(-1, 3),
        "subrun": np.array([s.subrun for s in sources], np.int64),
        "stored": np.array([s.stored for s in sources], bool),
        "front": np.array(front, np.int32),
        "n_rows": np.array(
            [int(g.meta.get("n_rows", -1)) for s in sources for _t, g in s.groups], np.int64
        ),
        "has_ranges": has_ranges,
        "range_n": np.array([len(w) for w in windows], np.int64),
        "windows": np.concatenate(windows) if windows else np.empty((0, 2), np.int64),
        "pieces": np.array(
            [(where[id(p.source)], p.chunk_i, p.lo, p.hi, p.n, p.start, p.end) for p in pieces],
            np.int64,
        ).reshape(-1, 7),
        "has_index": np.array([p.index is not None for p in pieces], bool),
        "index_n": np.array([len(i) for i in indices], np.int64),
        "index": np.concatenate(indices).astype(np.int64) if indices else np.empty(0, np.int64),
    }
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{key}.npz")
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex}.npz"
    try:
        # allow_pickle named (numpy's default) so that **arrays cannot be taken for it
        np.savez(tmp, allow_pickle=True, **arrays)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        return False
    _evict(folder)
    return True


#: what a manifest's handles know of their groups without reading them (per target)
_HINT_KEYS = ("zarr_chunk_rows", "compressor", "dtype", "dastrax_version")


def _read_hints(sources: list[Source], targets: Sequence[str]) -> dict[str, dict[str, Any]] | None:
    """Per target, what reading its groups needs besides the row count (the same in every
    subrun's group, as dastrax writes them), or None where the groups differ."""
    out: dict[str, dict[str, Any]] = {}
    for s in sources:
        for t, g in s.groups:
            meta = g.meta
            mine = {k: meta.get(k) for k in _HINT_KEYS}
            if t not in out:
                out[t] = mine
            elif out[t] != mine:
                return None
    return out


def _evict(folder: str) -> None:
    """Keep the :data:`MAX_FILES` most recently written index files."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".npz")]
        if len(entries) <= MAX_FILES:
            return
        entries.sort(key=lambda e: e.stat().st_mtime)
        for e in entries[: len(entries) - MAX_FILES]:
            with contextlib.suppress(OSError):
                os.remove(e.path)
    except OSError:
        return


def _split(flat: np.ndarray, counts: np.ndarray, present: np.ndarray) -> list[np.ndarray | None]:
    """Per entry: its slice of ``flat`` (``counts`` long each, for present entries), or
    None where ``present`` is false."""
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    out: list[np.ndarray | None] = []
    j = 0
    for here in present.tolist():
        if here:
            out.append(flat[bounds[j] : bounds[j + 1]])
            j += 1
        else:
            out.append(None)
    return out


def _rebuild(head: dict[str, Any], a: dict[str, np.ndarray], storage: StorageList) -> Resolved:
    targets = head["targets"]
    n_t = len(targets)
    frontends = storage.frontends
    keys, front, n_rows = head["keys"], a["front"].tolist(), a["n_rows"].tolist()
    hints = head.get("hints") or {}
    kinds = [t for _s in head["runs"] for t in targets]
    handles = [
        frontends[f].handle(k, n, hint=_hint(hints.get(t), n))
        for f, k, n, t in zip(front, keys, n_rows, kinds)
    ]
    ranges = _split(a["windows"], a["range_n"], a["has_ranges"])
    sources = [
        Source(run, label, tuple(zip(targets, handles[i * n_t : (i + 1) * n_t])), sub, rng, st)
        for i, (run, label, sub, rng, st) in enumerate(
            zip(
                head["runs"],
                head["labels"],
                a["subrun"].tolist(),
                ranges,
                a["stored"].tolist(),
            )
        )
    ]
    index = _split(a["index"], a["index_n"], a["has_index"])
    pieces = [
        Piece(sources[s], ci, lo, hi, n, start, end, ix)
        for (s, ci, lo, hi, n, start, end), ix in zip(a["pieces"].tolist(), index)
    ]
    res = Resolved(sources, head["subruns"], targets, head["kind"])
    res.base_pieces = pieces
    return res


def _hint(common: dict[str, Any] | None, n_rows: int) -> dict[str, Any] | None:
    return None if common is None else {**common, "n_rows": n_rows}


def stamp_is_settled(newest: float) -> bool:
    """Whether a change stamp is old enough to be trusted (see :data:`RACY_SECONDS`)."""
    return newest <= time.time() - RACY_SECONDS

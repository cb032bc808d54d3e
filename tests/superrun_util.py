"""Expected rows and chunk tables of superrun tests, computed from the formulas in API.md
and the rules in SEMANTICS.md — independently of dastrax's own code paths."""

from __future__ import annotations

import os

import numpy as np

import dastrax

#: the runs of ``conftest.make_runs``: run i spans [20 i, 20 i + 10)
OFFSETS = {"0": 0, "1": 20, "2": 40}


def records_rows(offset=0, n_chunks=10, per_chunk=10, chunk_ns=1) -> np.ndarray:
    """The rows ``Records`` makes (API.md): ``time``, ``endtime``, ``channel``."""
    out = np.zeros(
        n_chunks * per_chunk, [("time", np.int64), ("endtime", np.int64), ("channel", np.int16)]
    )
    k = 0
    for i in range(n_chunks):
        start = offset + i * chunk_ns
        for j in range(per_chunk):
            t = start + (j * chunk_ns) // per_chunk
            out[k] = (t, t + 1, j)  # length 1, dt 1
            k += 1
    return out


def cut(rows: np.ndarray, ranges) -> np.ndarray:
    """Rows with ``start <= time`` and ``endtime <= end`` for one of ``ranges``."""
    keep = np.zeros(len(rows), bool)
    for s, e in ranges:
        keep |= (rows["time"] >= s) & (rows["endtime"] <= e)
    return rows[keep]


def expected(spec: dict, **records_config) -> np.ndarray:
    """Rows of a (flattened) superrun ``{run: "all" or ranges}`` of the make_runs runs."""
    parts = []
    for run, ranges in spec.items():
        rows = records_rows(OFFSETS[run], **records_config)
        parts.append(rows if ranges == "all" else cut(rows, ranges))
    out = np.concatenate(parts)
    return out[np.argsort(out["time"], kind="stable")]


def assert_rows(got: np.ndarray, want: np.ndarray, area=None):
    """``got`` (dastrax rows) has exactly the rows ``want`` (from :func:`expected`)."""
    assert len(got) == len(want), (len(got), len(want))
    np.testing.assert_array_equal(got["time"], want["time"])
    np.testing.assert_array_equal(dastrax.endtime(got), want["endtime"])
    if "channel" in got.dtype.names:
        np.testing.assert_array_equal(got["channel"], want["channel"])
    if area is not None:
        assert np.all(got["area"] == area)


def expected_chunk_table(
    time, end, row_bytes, target_mb, sr_start, sr_end, row_subrun, hulls
) -> list[dict]:
    """Stored chunks per SEMANTICS.md "Stored superruns", by a plain row-by-row loop.

    A chunk closes before the first row at which it holds at least the target's rows
    and every earlier row ends at or before that row's time.
    """
    per = max(1, int(target_mb * 1e6) // row_bytes)
    starts, reach = [0], None
    for k in range(1, len(time)):
        reach = end[k - 1] if reach is None else max(reach, end[k - 1])
        if k - starts[-1] >= per and reach <= time[k]:
            starts.append(k)
    stops = [*starts[1:], len(time)]
    table = []
    for i, (a, b) in enumerate(zip(starts, stops)):
        cs = sr_start if i == 0 else int(time[a])
        ce = sr_end if i == len(starts) - 1 else int(time[b])
        subs = {}
        for sub in dict.fromkeys(row_subrun[a:b]):
            hs, he = hulls[sub]
            subs[sub] = {"start": max(cs, hs), "end": min(ce, he)}
        table.append({"start": cs, "end": ce, "n": b - a, "subruns": subs})
    return table


# -- filesystem-level read detection (relatime: a read updates atime if atime <= mtime) --
def set_atimes_old(root) -> None:
    """Set the access time of every file below ``root`` to 0 (mtimes kept)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            os.utime(p, ns=(0, os.stat(p).st_mtime_ns))


def read_files(root) -> list[str]:
    """Files below ``root`` read since :func:`set_atimes_old` (relative paths)."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.stat(p).st_atime_ns > 0:
                out.append(os.path.relpath(p, root))
    return sorted(out)


def chunk_files(paths) -> list[str]:
    """The zarr chunk files (``<key>/<field>/c/...``) among ``paths``."""
    return [p for p in paths if "/c/" in p.replace(os.sep, "/")]

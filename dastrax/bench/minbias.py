"""``dastrax bench --minbias``: minimum-bias superruns next to the naive way (issue 10).

Three cases, each timed against "load all the subruns, mask the rows by time" in the
same run, through the public :class:`dastrax.Context` API only:

- ``random10``: windows around a random 10 % of the ``peaks`` rows of 10 subruns of 10
  chunks of 2 000 rows (244 MB); ``define``, ``open`` (``get_dataset``), ``load``
  (``get_array``), ``persist`` (``persist_superrun``), ``lazy_sum``
  (``get_dataset(...).area.sum().compute()``);
- ``clustered1``: 2 000 windows (1 %) in 2 of those 10 subruns;
- ``million``: 10^6 windows over 100 subruns of ``records`` (2·10^6 rows);
- ``selection`` (when ``get_array`` takes ``selection=``): a selection matching the rows
  of 5 % of the chunks, against a full load and mask.

Each load's rows are checked against the naive way's. Steps run in this process, one
after the other (page cache warm: every data set is loaded once before timing).

Examples
--------
>>> report = run_minbias("/tmp/mb", small=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from dastrax.bench import setup as bench
from dastrax.core.windows import union

__all__ = ["MINBIAS_TARGETS", "run_minbias"]

PEAKS = {"subruns": 10, "chunks": 10, "rows_per_chunk": 2_000}
SMALL_PEAKS = {"subruns": 3, "chunks": 4, "rows_per_chunk": 200}
MILLION = {"subruns": 100, "chunks": 4, "rows_per_chunk": 5_000, "windows": 1_000_000}
SMALL_MILLION = {"subruns": 10, "chunks": 2, "rows_per_chunk": 200, "windows": 2_000}

#: (case, step, the step it is compared with (or None: seconds), max ratio or seconds)
MINBIAS_TARGETS = [
    ("random10", "load", "naive", 1.0),
    ("random10", "open", "naive", 0.25),
    ("random10", "persist", "naive", 1.5),
    ("clustered1", "load", "naive", 0.5),
    ("million", "define", None, 5.0),
    ("million", "open", None, 2.0),
    ("selection", "load", "naive", 0.1),
]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _data(path: str, params: dict, target: str):
    """A bench context on ``path`` with ``params["subruns"]`` subruns of ``target`` made
    and their run documents written; the subrun ids."""
    p = {"storage": path, **params}
    st = bench.context(p)
    ids = [str(i) for i in range(params["subruns"])]
    st.make(ids, target)
    bench.write_run_documents(st, params, ids)
    return st, ids


def _intervals(st, ids, target) -> pd.DataFrame:
    df = st.get_df(ids, target, columns=["time", "length", "dt"])
    return pd.DataFrame(
        {
            "time": df["time"].to_numpy(),
            "endtime": df["time"].to_numpy() + df["length"].to_numpy() * df["dt"].to_numpy(),
            "run_id": df["run_id"].to_numpy(),
        }
    )


def _naive(st, ids, target, windows: np.ndarray):
    """Load every subrun whole and keep the rows inside the windows."""
    arr = st.get_array(ids, target)
    end = arr["time"] + arr["length"].astype(np.int64) * arr["dt"]
    j = np.searchsorted(windows[:, 0], arr["time"], side="right") - 1
    keep = (j >= 0) & (end <= windows[np.maximum(j, 0), 1])
    return arr[keep]


def _case(st, name, rows, ids, target, steps=("open", "load", "persist", "lazy_sum")):
    out: dict = {"windows": 0, "rows": 0}
    windows = union(rows["time"].to_numpy(), rows["endtime"].to_numpy())
    out["windows"] = len(windows)
    out["define"], doc = _timed(lambda: st.define_run(name, rows, overwrite=True))
    out["livetime_s"] = doc["livetime"]
    out["naive"], want = _timed(lambda: _naive(st, ids, target, windows))
    out["rows"] = len(want)
    if "open" in steps:
        out["open"], _ds = _timed(lambda: st.get_dataset(name, target))
    if "load" in steps:
        out["load"], got = _timed(lambda: st.get_array(name, target))
        out["rows_match"] = bool(
            len(got) == len(want) and np.array_equal(got["time"], want["time"])
        )
    if "lazy_sum" in steps:
        out["lazy_sum"], total = _timed(
            lambda: float(st.get_dataset(name, target).area.sum().compute())
        )
        out["rows_match"] = out.get("rows_match", True) and total == float(
            want["area"].astype(np.float64).sum()
        )
    if "persist" in steps:
        out["persist"], _keys = _timed(lambda: st.persist_superrun(name, target))
    return out


def _selection_case(st, ids, target) -> dict:
    meta = [st.get_metadata(r, target)["chunks"] for r in ids]
    chunks = [c for m in meta for c in m]
    cut = chunks[max(1, len(chunks) // 20) - 1]["end"]  # the first 5 % of the chunks
    expr = f"time < {int(cut)}"
    out: dict = {"selection": expr}

    def naive():
        arr = st.get_array(ids, target)
        return arr[arr["time"] < cut]

    out["naive"], want = _timed(naive)
    out["load"], got = _timed(lambda: st.get_array(ids, target, selection=expr))
    out["rows"] = len(want)
    out["rows_match"] = bool(len(got) == len(want) and np.array_equal(got["time"], want["time"]))
    return out


def _targets(cases: dict) -> list[dict]:
    out = []
    for case, step, limit, ratio in MINBIAS_TARGETS:
        got = cases.get(case) or {}
        if step not in got or (limit is not None and limit not in got):
            continue
        value = got[step] / got[limit] if limit is not None else got[step]
        out.append(
            {
                "case": case,
                "step": step,
                "against": limit or "seconds",
                "value": round(value, 3),
                "target": ratio,
                "met": bool(value <= ratio),
            }
        )
    return out


def run_minbias(storage_dir: str, echo=print, small: bool = False, seed: int = 0) -> dict:
    """Run the minimum-bias benchmark in ``storage_dir``; the report.

    Parameters
    ----------
    storage_dir : str
        Where the data is made (kept between runs: made once).
    echo : callable
        Progress lines.
    small : bool
        Tiny sizes, for a quick check.
    seed : int
        Seed of the random window choice.

    Returns
    -------
    dict
        ``{"cases": {case: {step: seconds, ..., "rows", "windows", "rows_match"}},
        "targets": [{case, step, against, value, target, met}]}``.
    """
    rng = np.random.default_rng(seed)
    cases: dict = {}
    peaks = SMALL_PEAKS if small else PEAKS
    st, ids = _data(os.path.join(storage_dir, "peaks"), peaks, "peaks")
    rows = _intervals(st, ids, "peaks")
    st.get_array(ids, "peaks")  # warm the page cache

    pick = np.sort(rng.choice(len(rows), len(rows) // 10, replace=False))
    echo(f"random10: {len(pick)} windows over {len(ids)} subruns")
    cases["random10"] = _case(st, "_mb_random10", rows.iloc[pick], ids, "peaks")

    two = rows[rows["run_id"].isin([ids[len(ids) // 3], ids[-1]])]
    pick = np.sort(rng.choice(len(two), len(rows) // 100, replace=False))
    echo(f"clustered1: {len(pick)} windows in 2 subruns")
    cases["clustered1"] = _case(
        st, "_mb_clustered1", two.iloc[pick], ids, "peaks", steps=("open", "load")
    )

    sel = _selection_case(st, ids, "peaks")
    if sel is not None:
        echo(f"selection: {sel['selection']}")
        cases["selection"] = sel

    million = SMALL_MILLION if small else MILLION
    stm, idm = _data(os.path.join(storage_dir, "million"), million, "records")
    rec = _intervals(stm, idm, "records")
    stm.get_array(idm, "records")
    n = min(million["windows"], len(rec))
    pick = np.sort(rng.choice(len(rec), n, replace=False))
    echo(f"million: {n} windows over {len(idm)} subruns")
    cases["million"] = _case(
        stm, "_mb_million", rec.iloc[pick], idm, "records", steps=("open", "load")
    )

    report = {"cases": cases, "targets": _targets(cases)}
    for t in report["targets"]:
        mark = "met" if t["met"] else "MISSED"
        echo(
            f"{t['case']:>10} {t['step']:<8} {t['value']:>8} (target <= {t['target']} "
            f"{'x ' + t['against'] if t['against'] != 'seconds' else 's'}): {mark}"
        )
    return report

"""Minimum bias: a superrun made only of the time around selected events.

A "minimum bias" data set keeps, from many runs, only short windows around interesting
events — here every 4th chunk's channel-0 peak of three dummy runs. The windows are
given to ``define_run`` as rows with ``time``, ``endtime`` and ``run_id``; the superrun is
opened lazily (nothing is read until numbers are asked for), a few waveforms are looked
at, and it is persisted as a run of its own. Every step asserts what it shows.

Usage::

    python examples/minimum_bias.py [STORAGE_DIR] [--chunks N] [--rows-per-chunk N]

``STORAGE_DIR`` defaults to a fresh temporary directory (removed afterwards).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

import numpy as np
import pandas as pd

import dastrax
from dastrax.testing.plugins import PeakClassification, Peaks, Records

RUNS = ["0", "1", "2"]
CHUNK_NS = 1_000  # each chunk of a run spans 1 µs
WINDOW_NS = 100  # keep this much before and after each selected event
SUPERRUN = "_minbias"
WAVEFORM_LENGTH = 200  # width of the `data` field of testutils.Peaks (its default)


def make_runs(st: dastrax.Context, n_chunks: int) -> dict[str, tuple[int, int]]:
    """Make peaks for three runs, 2 run-lengths apart, and write their run documents."""
    spans = {}
    run_ns = n_chunks * CHUNK_NS
    for i, run_id in enumerate(RUNS):
        offset = 1_700_000_000 * 10**9 + 2 * i * run_ns  # ns since the epoch (Nov 2023)
        st.set_config({"time_offset": offset})  # untracked: all runs share one lineage
        st.make(run_id, ["peaks", "peak_classification"])
        st.write_run_metadata(
            run_id, {"start": offset, "end": offset + run_ns, "mode": "background"}
        )
        spans[run_id] = (offset, offset + run_ns)
    st.set_config({"time_offset": 0})
    return spans


def select_events(peaks: np.ndarray, spans) -> pd.DataFrame:
    """The interesting events: channel-0 peaks of every 4th chunk, as rows with
    ``time``/``endtime``/``run_id`` of a window around each (inside its run)."""
    run_start = np.array([spans[r][0] for r in peaks["run_id"]])
    run_end = np.array([spans[r][1] for r in peaks["run_id"]])
    chunk_i = (peaks["time"] - run_start) // CHUNK_NS
    selected = (peaks["channel"] == 0) & (chunk_i % 4 == 0)
    assert selected.any() and (peaks["type"][selected] == 1).all()  # channel 0: type 1
    return pd.DataFrame(
        {
            "time": np.maximum(peaks["time"] - WINDOW_NS, run_start)[selected],
            "endtime": np.minimum(dastrax.endtime(peaks) + WINDOW_NS, run_end)[selected],
            "run_id": peaks["run_id"][selected],
        }
    )


def expected_rows(peaks: np.ndarray, windows: pd.DataFrame) -> np.ndarray:
    """What the superrun must hold: the peaks lying wholly inside a window of their run."""
    end = dastrax.endtime(peaks)
    keep = np.zeros(len(peaks), bool)
    for s, e, run_id in zip(windows["time"], windows["endtime"], windows["run_id"]):
        keep |= (peaks["run_id"] == run_id) & (peaks["time"] >= s) & (end <= e)
    return peaks[keep]


def main(storage_dir: str, n_chunks: int = 16, rows_per_chunk: int = 20) -> None:
    st = dastrax.Context(
        storage=storage_dir,
        register=[Records, Peaks, PeakClassification],
        config={"n_chunks": n_chunks, "recs_per_chunk": rows_per_chunk, "chunk_ns": CHUNK_NS},
        progress=False,
    )
    spans = make_runs(st, n_chunks)
    # every run's peaks, one array with a run_id field (for choosing events and checking)
    peaks = st.get_array(RUNS, ["peaks", "peak_classification"])
    windows = select_events(peaks, spans)
    print(f"selected {len(windows)} events in runs {', '.join(RUNS)}")

    # -- define the superrun from the rows: the union of their windows ----------------
    doc = st.define_run(SUPERRUN, windows)
    livetime_ns = int((windows["endtime"] - windows["time"]).sum())
    assert doc["livetime"] == livetime_ns / 1e9, doc["livetime"]  # the windows, not the span
    assert doc["start"] == windows["time"].min() and doc["end"] == windows["endtime"].max()
    print(f"defined {SUPERRUN}: livetime {doc['livetime'] * 1e6:.3g} µs out of {len(RUNS)} runs")

    # -- open it lazily: metadata only, one dask block per stored chunk (cut) ---------
    ds = st.get_dataset(SUPERRUN, ["peaks", "peak_classification"])
    assert ds["data"].chunks is not None  # dask-backed, nothing computed yet
    expected = expected_rows(peaks, windows)
    counts = [int(np.sum(expected["run_id"] == r)) for r in RUNS]
    assert ds.sizes["peaks"] == len(expected), (ds.sizes["peaks"], len(expected))
    assert ds.attrs["subruns"] == RUNS

    # -- look at the waveforms of a few rows ------------------------------------------
    few = ds.isel(peaks=slice(0, 3))
    waveforms = few["data"].values  # reads only the first block(s) of the `data` column
    assert waveforms.shape == (3, WAVEFORM_LENGTH), waveforms.shape
    np.testing.assert_array_equal(waveforms, expected["data"][:3])
    peak_sample = waveforms.argmax(axis=1)
    print(f"first 3 waveforms peak at samples {peak_sample.tolist()}")
    in_window = [
        any(s <= t < e for s, e in zip(windows["time"], windows["endtime"]))
        for t in few["time"].values
    ]
    assert all(in_window)

    # -- rows per subrun, from the `subrun` coordinate ----------------------------------
    per_subrun = np.bincount(ds["subrun"].values, minlength=len(RUNS))
    assert per_subrun.tolist() == counts, (per_subrun, counts)
    print("rows per subrun: " + ", ".join(f"{r}: {n}" for r, n in zip(RUNS, per_subrun)))

    # -- persist it: later loads read one store -----------------------------------------
    keys = st.persist_superrun(SUPERRUN, ["peaks", "peak_classification"])
    assert all(st.is_stored(SUPERRUN, t) for t in ("peaks", "peak_classification"))
    stored = st.get_array(SUPERRUN, ["peaks", "peak_classification"])
    for name in stored.dtype.names:
        np.testing.assert_array_equal(stored[name], expected[name], err_msg=name)
    assert (stored["type"] == 1 + stored["channel"] % 2).all()
    meta = st.get_metadata(SUPERRUN, "peaks")
    assert list(meta["subruns"]) == RUNS
    print(
        f"persisted {', '.join(map(str, keys))}: {len(stored)} rows in "
        f"{len(meta['chunks'])} chunk(s); it reads back the same rows"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage_dir", nargs="?", help="storage directory (default: a temp dir)")
    parser.add_argument("--chunks", type=int, default=16, help="chunks per run (16)")
    parser.add_argument("--rows-per-chunk", type=int, default=20, help="rows per chunk (20)")
    args = parser.parse_args()
    tmp = None if args.storage_dir else tempfile.mkdtemp(prefix="dastrax-minbias-")
    try:
        main(args.storage_dir or tmp, args.chunks, args.rows_per_chunk)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

"""A per-superrun quantity: a plugin computed once over the joined subruns of 10 runs.

``PeakRate`` allows superruns (strax 2's ``allow_superrun = True``) and needs the whole
run: a first pass counts the peaks (``summarize`` per chunk, ``combine`` to the total),
then every peak gets the run's peak rate — the count over the run's livetime, read from
the run document through ``self.run_metadata()``. Asked for a superrun, it computes once
over the 10 subruns joined, so every row holds the *superrun's* rate; with
``combining=True`` each subrun's own rate is concatenated instead. The superrun's result
is then stored (``persist_superrun``) and loaded back. Every step asserts what it shows.

Usage::

    python examples/superrun_plugin.py [STORAGE_DIR]

``STORAGE_DIR`` defaults to a fresh temporary directory (removed afterwards).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

import numpy as np

import dastrax
from dastrax.testing.plugins import Peaks, Records

RUNS = [str(i) for i in range(10)]
CHUNK_NS = 1_000  # each chunk of a run spans 1 µs


class PeakRate(dastrax.Plugin):
    """Every peak tagged with its run's peak rate [1/s] (its superrun's, over the join)."""

    provides = "peak_rate"
    depends_on = ("peaks",)
    data_kind = "peaks"
    __version__ = "0.1.0"
    allow_superrun = True  # asked for a superrun: computed once over the joined subruns
    needs_summary = True  # a first pass over the whole run before compute
    dtype = [
        ("time", np.int64),
        ("length", np.int32),
        ("dt", np.int16),
        ("rate", np.float64),
    ]

    def summarize(self, peaks, start, end):
        return len(peaks)  # one chunk's partial

    def combine(self, partials):
        return sum(partials)  # the run's (or superrun's) number of peaks

    def compute(self, peaks, start, end):
        if self.run_id.startswith("_"):
            livetime = self.run_metadata()["livetime"]  # the superrun's document
        else:
            livetime = 1e-9 * 10 * CHUNK_NS  # a regular run: its nominal 10 chunks
        out = np.zeros(len(peaks), self.dtype)
        for name in ("time", "length", "dt"):
            out[name] = peaks[name]
        out["rate"] = self.summary / livetime
        return out


def main(path: str) -> None:
    st = dastrax.Context(storage=path, register=[Records, Peaks, PeakRate], progress=False)
    st.set_config({"chunk_ns": CHUNK_NS, "recs_per_chunk": 20})
    nominal = 1e-9 * 10 * CHUNK_NS  # 10 chunks a run
    for i, run_id in enumerate(RUNS):
        st.set_config({"time_offset": i * 20 * CHUNK_NS})
        st.make(run_id, "peaks")
        start = i * 20 * CHUNK_NS
        # run i lost 5 i % of its time to dead time: its document's livetime says so
        doc = {"start": start, "end": start + 10 * CHUNK_NS, "livetime": nominal * (1 - i / 20)}
        st.write_run_metadata(run_id, doc)
    st.set_config({"time_offset": 0})
    doc = st.define_run("_ten_runs", RUNS)
    print(f"superrun _ten_runs: {len(RUNS)} subruns, livetime {doc['livetime']:.2e} s")

    over = st.get_array("_ten_runs", "peak_rate")
    n_peaks = len(st.get_array("_ten_runs", "peaks"))
    superrun_rate = n_peaks / doc["livetime"]
    assert np.allclose(over["rate"], superrun_rate)  # one value: the superrun's rate
    assert np.isclose(doc["livetime"], sum(nominal * (1 - i / 20) for i in range(10)))
    print(f"over the join: {n_peaks} peaks, rate {superrun_rate:.3e} /s on every row")

    concat = st.get_array("_ten_runs", "peak_rate", combining=True)
    per_run = np.unique(concat["rate"])
    assert len(per_run) == 1 and per_run[0] < superrun_rate  # per run: the nominal livetime
    print(f"combining=True: each subrun's own rate, {per_run[0]:.3e} /s (no dead time known)")

    assert st.key_for("_ten_runs", "peak_rate") not in st.persist_superrun(
        "_ten_runs", "peak_rate", combining=True
    )
    keys = st.persist_superrun("_ten_runs", "peak_rate")
    assert st.is_stored("_ten_runs", "peak_rate")
    again = st.get_array("_ten_runs", "peak_rate")
    assert np.array_equal(again, over)
    print(f"stored as {keys[0]} and loaded back: {len(again)} rows, same values")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", nargs="?", help="storage directory (default: a temp dir)")
    args = parser.parse_args()
    where = args.storage or tempfile.mkdtemp(prefix="dastrax-superrun-plugin-")
    try:
        main(where)
    finally:
        if args.storage is None:
            shutil.rmtree(where, ignore_errors=True)

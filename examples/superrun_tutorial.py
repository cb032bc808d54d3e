"""The strax superrun tutorial, as a dastrax script with assertions.

Three dummy runs ``"0"``, ``"1"``, ``"2"`` (each 10 ns long, 10 ns apart) are made, joined
into the superrun ``_superrun_test``, loaded lazily, persisted and loaded again.

Usage::

    python examples/superrun_tutorial.py [STORAGE_DIR]

``STORAGE_DIR`` defaults to a fresh temporary directory (removed afterwards).
"""

from __future__ import annotations

import shutil
import sys
import tempfile

import numpy as np

import dastrax
from dastrax.testutils import PeakClassification, Peaks, Records

SUPERRUN = "_superrun_test"
SUBRUNS = ["0", "1", "2"]
RUN_NS = 10  # each run spans 10 ns (Records defaults: 10 chunks of 1 ns)
SPACING = 20  # a run starts every 20 ns: 10 ns of run, 10 ns gap


def main(storage_dir: str) -> None:
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(storage_dir, provide_run_metadata=True)],
        register=[Records, Peaks, PeakClassification],
        config={"bonus_area": 42},
        progress=False,
    )
    st.set_context_config({"use_per_run_defaults": False})

    # -- three subruns with run documents ---------------------------------------------
    for i, run_id in enumerate(SUBRUNS):
        st.set_config({"time_offset": SPACING * i})  # untracked: same lineage for all
        peaks = st.get_array(run_id, "peaks")
        start, end = int(peaks["time"].min()), int(dastrax.endtime(peaks).max())
        assert (start, end) == (SPACING * i, SPACING * i + RUN_NS), (run_id, start, end)
        st.write_run_metadata(run_id, {"start": start, "end": end})
        assert st.is_stored(run_id, "peaks")
    st.set_config({"time_offset": 0})

    key = st.key_for("2", "peaks")
    assert str(key) == f"2-peaks-{key.lineage_hash}"
    assert key.lineage["peaks"][0] == "Peaks" and key.lineage["peaks"][2]["bonus_area"] == 42
    print("key of run 2's peaks:", key)

    # -- define the superrun ----------------------------------------------------------
    st.define_run(SUPERRUN, SUBRUNS)
    doc = st.run_metadata(SUPERRUN)
    assert doc["name"] == SUPERRUN
    assert doc["start"] == 0 and doc["end"] == 50, doc
    # the sum of the subruns' durations, not end - start of the superrun
    assert np.isclose(doc["livetime"], 3e-8), doc["livetime"]
    assert doc["sub_run_spec"] == {"0": "all", "1": "all", "2": "all"}, doc["sub_run_spec"]
    print("superrun document:", doc)

    runs = st.select_runs()
    assert list(runs["name"]) == [*SUBRUNS, SUPERRUN], list(runs["name"])
    assert np.isnan(runs.set_index("name").loc[SUPERRUN, "number"])

    # -- load it lazily (not stored) --------------------------------------------------
    assert not st.is_stored(SUPERRUN, "peaks")
    sub_runs = st.get_array(SUBRUNS, "peaks")
    superrun = st.get_array(SUPERRUN, "peaks")
    assert len(superrun) == len(sub_runs) == 300
    assert np.all(sub_runs["time"] == superrun["time"])
    assert np.all(superrun["area"] == 43)
    superrun = st.get_array(SUPERRUN, "peaks", _check_lineage_per_run_id=False)
    assert np.all(sub_runs["time"] == superrun["time"])

    # -- write it as a stored run -----------------------------------------------------
    st.set_context_config({"write_superruns": True})
    st.make(SUPERRUN, "peaks")
    assert st.is_stored(SUPERRUN, "peaks")
    again = st.get_array(SUPERRUN, "peaks", _check_lineage_per_run_id=False)
    for name in superrun.dtype.names:
        np.testing.assert_array_equal(again[name], superrun[name], err_msg=name)
    assert np.all(sub_runs["time"] == again["time"])

    available = st.select_runs(available=("peaks",)).set_index("name")["peaks_available"]
    assert available.to_dict() == {"0": True, "1": True, "2": True, SUPERRUN: True}

    # -- data not made yet is made through the superrun -------------------------------
    assert not st.is_stored(SUBRUNS[0], "peak_classification")
    st.make(SUPERRUN, "peak_classification")
    assert st.is_stored(SUPERRUN, "peak_classification")
    assert all(st.is_stored(r, "peak_classification") for r in SUBRUNS)
    classes = st.get_array(SUPERRUN, "peak_classification")
    np.testing.assert_array_equal(classes["time"], sub_runs["time"])
    np.testing.assert_array_equal(classes["type"], 1 + sub_runs["channel"] % 2)

    # -- chunks of the stored superrun know their subruns -----------------------------
    expected_subruns = {
        "0": {"start": 0, "end": 10},
        "1": {"start": 20, "end": 30},
        "2": {"start": 40, "end": 50},
    }
    chunks = list(st.get_iter(SUPERRUN, "peaks"))
    assert chunks, "no chunks"
    for chunk in chunks:
        assert chunk.run_id == SUPERRUN, chunk.run_id
    assert len(chunks) == 1  # 300 rows of about 1.2 kB: far below the 200 MB target
    chunk = chunks[-1]
    assert chunk.subruns == expected_subruns, chunk.subruns
    assert (chunk.start, chunk.end) == (0, 50)
    meta_chunks = st.get_metadata(SUPERRUN, "peaks")["chunks"]
    assert [c["subruns"] for c in meta_chunks] == [c.subruns for c in chunks]
    assert all(c["run_id"] == SUPERRUN for c in meta_chunks)
    print("chunk subruns:", chunk.subruns, "run_id:", chunk.run_id)
    print("superrun tutorial: all assertions passed")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        tmp = tempfile.mkdtemp(prefix="dastrax-tutorial-")
        try:
            main(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

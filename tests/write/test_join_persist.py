"""The persist of a superrun computed over its join (``allow_superrun``) on a real
ZarrDirectory: rows streamed through the writers' append buffer
(:func:`dastrax.storage.grid.buffer_rows`), whole zarr chunks written as they fill, the
rest at the end."""

from __future__ import annotations

import numpy as np

import dastrax
from dastrax.testing.plugins import Records, SuperrunPeaks

RUNS = ("0", "1", "2")
ROWS_A_RUN = 10 * 100  # 10 chunks of 100 records


def test_a_join_bigger_than_a_zarr_chunk_is_stored_row_for_row(tmp_path):
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(str(tmp_path / "data"))],
        register=[Records, SuperrunPeaks],
        config={"recs_per_chunk": 100},
        progress=False,
    )
    for i, run in enumerate(RUNS):
        st.set_config({"time_offset": 20 * i})
        st.make(run, "records")
        st.write_run_metadata(run, {"start": 20 * i, "end": 20 * i + 10})
    st.set_config({"time_offset": 0})
    st.define_run("_sr", list(RUNS))
    over = st.get_array("_sr", "peaks")  # computed over the join, not stored
    assert len(over) == len(RUNS) * ROWS_A_RUN

    (key,) = st.persist_superrun("_sr", "peaks", chunk_target_size_mb=0.5)
    meta = st.get_metadata("_sr", "peaks")
    assert meta["computed_over"] == "joined subruns"
    rows = meta["zarr_chunk_rows"]
    # several whole zarr chunks written while streaming (the last one by the flush)
    assert len(over) // rows >= 2
    assert sum(c["n"] for c in meta["chunks"]) == len(over)

    stored = st.get_array("_sr", "peaks")
    assert st.is_stored("_sr", "peaks") and key == st.key_for("_sr", "peaks")
    assert stored.dtype.names == over.dtype.names
    for name in over.dtype.names:
        np.testing.assert_array_equal(stored[name], over[name], err_msg=name)
    ds = st.get_dataset("_sr", "peaks", columns=["channel"])
    np.testing.assert_array_equal(ds.subrun.values, np.repeat(np.arange(len(RUNS)), ROWS_A_RUN))

"""The data of ``dastrax bench`` and its variants (``--minbias``, ``--extend``, the
allow_superrun benchmark): the bench's plugins (the testutils ones, runs spaced in time),
their configuration, a context on a storage directory, and making the subruns."""

from __future__ import annotations

import time

from dastrax.core.plugin import Option
from dastrax.testing.plugins import Peaks
from dastrax.testing.plugins import Records as _TestRecords

SUPERRUN = "_bench"
TARGET = "peaks"
#: the two scalar columns of the ``load_two_columns`` step
TWO_COLUMNS = ["area", "channel"]
#: rows of a tiny subrun in the scaling mode (about 244 kB: 1000 of them make 244 MB), in
#: TINY_CHUNKS chunks
TINY_ROWS = 200
TINY_CHUNKS = 2
#: time between the rows of a chunk, in ns (rows do not overlap: length 1, dt 1)
ROW_NS = 10
#: gap between subruns, in ns
GAP_NS = 1000
STEP_MARK = "DASTRAX-BENCH-STEP "

FULL = {"subruns": 10, "chunks": 10, "rows_per_chunk": 20_000}
SMALL = {"subruns": 3, "chunks": 4, "rows_per_chunk": 2_000}
SCALING_N = (1000, 5000, 10_000)
SMALL_SCALING_N = (10, 100)


class Records(_TestRecords):
    """:class:`dastrax.testing.plugins.Records` with run ``i`` starting at ``i * run_spacing``.

    Its lineage is that of ``testutils.Records`` (same class name, version and tracked
    options; ``run_spacing`` is untracked), so all subruns can be made in one ``make``
    call — in parallel, with different times — instead of one call per time offset.
    """

    run_spacing = Option(default=0, type=int, track=False, help="start of run i: i * this")

    def chunk_intervals(self, run_id):
        shift = int(run_id) * self.run_spacing
        return [(s + shift, e + shift) for s, e in super().chunk_intervals(run_id)]


# --------------------------------------------------------------------------------------
# the data
# --------------------------------------------------------------------------------------
def plugin_config(chunks: int, rows_per_chunk: int) -> dict:
    chunk_ns = rows_per_chunk * ROW_NS
    return {
        "n_chunks": chunks,
        "recs_per_chunk": rows_per_chunk,
        "chunk_ns": chunk_ns,
        "run_spacing": chunks * chunk_ns + GAP_NS,
    }


def context(params: dict, client=None):
    """The bench's context on ``params["storage"]`` (on ``client``'s cluster, if given)."""
    import dastrax

    extra = dict(params.get("context_config", {}))
    if client is not None:
        params = {**params, "scheduler": "auto"}
        extra["client"] = client
    return dastrax.Context(
        storage=params["storage"],
        register=[Records, Peaks],
        config={
            **params.get("plugin_options", {}),
            **plugin_config(params["chunks"], params["rows_per_chunk"]),
        },
        progress=False,
        scheduler=params.get("scheduler", "threads"),
        **extra,
    )


def write_run_documents(st, params: dict, ids) -> None:
    """Write the run documents of the subruns ``ids`` that have none (each spans its
    ``params["chunks"]`` chunks, runs ``run_spacing`` apart)."""
    cfg = plugin_config(params["chunks"], params["rows_per_chunk"])
    span = params["chunks"] * cfg["chunk_ns"]
    known = set(st.list_runs())
    for i, run_id in enumerate(ids):
        if run_id not in known:
            start = i * cfg["run_spacing"]
            st.write_run_metadata(run_id, {"start": start, "end": start + span})


def make_data(params: dict, timings: dict | None = None) -> float:
    """Make the subruns and define the superrun (unless already there), and remove a
    persisted copy of the superrun; seconds taken (``timings["make"]``: of ``make``)."""
    st = context(params)
    ids = [str(i) for i in range(params["subruns"])]
    t0 = time.perf_counter()
    st.make(ids, TARGET)
    if timings is not None:
        timings["make"] = time.perf_counter() - t0
    write_run_documents(st, params, ids)
    st.define_run(SUPERRUN, ids)
    # the unstored steps come first: a superrun persisted by an earlier run goes
    key = str(st.key_for(SUPERRUN, TARGET))
    if st.storage[0].has(key):
        st.storage[0].delete(key)
    return time.perf_counter() - t0

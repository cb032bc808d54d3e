"""A batch rechunking job on a dask cluster: persist a superrun with two worker processes.

Starts a ``distributed.LocalCluster`` with 2 worker processes (the same code runs on any
cluster: pass ``client=distributed.Client("tcp://scheduler:8786")`` instead), prints its
dashboard address, makes four subruns on the workers, defines a superrun of them and
persists it rechunked to a small chunk target size. Then it checks, on dask's local
threaded scheduler, that the stored superrun holds exactly the rows of its subruns.

The command-line equivalent of the job is::

    dastrax persist _week -t peaks --chunk-target-size-mb 0.2 --scheduler local-cluster

Usage::

    python examples/cluster_rechunk.py [STORAGE_DIR] [--chunks N] [--chunk-target-size-mb MB]

``STORAGE_DIR`` defaults to a fresh temporary directory (removed afterwards).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import distributed
import numpy as np

import dastrax
from dastrax.testing.plugins import PeakClassification, Peaks, Records

RUNS = ["100", "101", "102", "103"]
SUPERRUN = "_week"
CHUNK_NS = 1_000


def context(storage_dir: str, n_chunks: int, client=None) -> dastrax.Context:
    return dastrax.Context(
        storage=storage_dir,
        register=[Records, Peaks, PeakClassification],
        config={"n_chunks": n_chunks, "recs_per_chunk": 25, "chunk_ns": CHUNK_NS},
        client=client,
        progress=False,
    )


def main(storage_dir: str, n_chunks: int = 8, chunk_target_size_mb: float = 0.05) -> None:
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        print(f"LocalCluster with 2 worker processes; dashboard at {client.dashboard_link}")
        st = context(storage_dir, n_chunks, client=client)
        assert st.client is client

        # -- subruns, made on the workers -------------------------------------------------
        run_ns = n_chunks * CHUNK_NS
        for i, run_id in enumerate(RUNS):
            offset = 3 * i * run_ns
            st.set_config({"time_offset": offset})  # untracked: one lineage for all runs
            st.make(run_id, "peaks")
            st.write_run_metadata(run_id, {"start": offset, "end": offset + run_ns})
        st.set_config({"time_offset": 0})
        st.define_run(SUPERRUN, RUNS)

        # -- the batch job: rechunk and write the superrun on the cluster ------------------
        t0 = time.perf_counter()
        (key,) = st.persist_superrun(SUPERRUN, "peaks", chunk_target_size_mb=chunk_target_size_mb)
        elapsed = time.perf_counter() - t0
        meta = st.get_metadata(SUPERRUN, "peaks")
        rows = sum(c["n"] for c in meta["chunks"])
        mb = sum(c["nbytes"] for c in meta["chunks"]) / 1e6
        print(
            f"persisted {key}: {rows} rows in {len(meta['chunks'])} chunks "
            f"(target {chunk_target_size_mb} MB), {mb:.2f} MB in {elapsed:.2f} s"
        )
        on_cluster = st.get_array(SUPERRUN, "peaks")

    # -- check on the local threaded scheduler: the same rows as the subruns --------------
    local = context(storage_dir, n_chunks)
    assert local.client is None
    from_subruns = local.get_array(RUNS, "peaks")
    stored = local.get_array(SUPERRUN, "peaks")
    assert len(stored) == rows == len(from_subruns) == len(RUNS) * n_chunks * 25
    for name in stored.dtype.names:
        np.testing.assert_array_equal(stored[name], from_subruns[name], err_msg=name)
        np.testing.assert_array_equal(on_cluster[name], stored[name], err_msg=name)
    # chunks hold about the target size; each names the subruns whose rows it holds
    assert len(meta["chunks"]) > 1
    assert all(c["nbytes"] <= chunk_target_size_mb * 1e6 * 1.5 for c in meta["chunks"][:-1])
    named = [s for c in meta["chunks"] for s in c["subruns"]]
    assert list(dict.fromkeys(named)) == RUNS
    print(f"the stored superrun holds the {len(stored)} rows of its subruns, in order")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage_dir", nargs="?", help="storage directory (default: a temp dir)")
    parser.add_argument("--chunks", type=int, default=8, help="chunks per run (8)")
    parser.add_argument(
        "--chunk-target-size-mb", type=float, default=0.05, help="persisted chunk size (0.05)"
    )
    args = parser.parse_args()
    tmp = None if args.storage_dir else tempfile.mkdtemp(prefix="dastrax-cluster-")
    try:
        main(args.storage_dir or tmp, args.chunks, args.chunk_target_size_mb)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

"""On a real ``distributed.LocalCluster`` (2 worker processes): making, loading and
persisting give the rows of dask's threaded scheduler, and a worker killed mid-load is
survived."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import assert_same_rows
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

distributed = pytest.importorskip("distributed")

RUNS = ("0", "1", "2")
SPACING = 100
TARGETS = ["peaks", "peak_classification"]
SR_SPEC = {"0": "all", "1": [(101, 104), (106, 110)], "2": [(200, 205)]}


class SlowPeaks(Peaks):
    """Peaks that take ``sleep_s`` per chunk (untracked: same lineage as ``sleep_s=0``)."""

    sleep_s = dastrax.Option(default=0.0, track=False, help="seconds to sleep per chunk")

    def compute(self, records, start, end):
        time.sleep(self.sleep_s)
        return super().compute(records, start, end)


class OffsetRecords(Records):
    """Records whose runs 0, 1, 2 start 100 ns apart (per-run defaults of the untracked
    offset), so one ``make`` call makes all runs, in parallel, at their own times."""

    time_offset = dastrax.Option(
        default=0,
        default_per_run=[(r, SPACING * i) for i, r in enumerate(RUNS)],
        type=int,
        track=False,
        help="start of the run in ns",
    )


def context(path, **kwargs) -> dastrax.Context:
    """A context of runs of ``n_chunks`` chunks of ``chunk_ns`` ns at ``SPACING * i``."""
    config = kwargs.pop("config", {})
    return dastrax.Context(
        storage=str(path),
        register=[OffsetRecords, SlowPeaks, PeakClassification],
        config=config,
        use_per_run_defaults=True,
        progress=False,
        **kwargs,
    )


def write_run_documents(st, n_chunks: int, chunk_ns: int = 1) -> None:
    for i, run_id in enumerate(RUNS):
        st.write_run_metadata(
            run_id, {"start": SPACING * i, "end": SPACING * i + n_chunks * chunk_ns}
        )


@pytest.fixture(scope="module")
def client():
    """One LocalCluster for the module: 2 worker processes, 1 thread each. Not the
    default client, so contexts without ``client=`` really run on threads."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def made(client, tmp_path_factory):
    """Runs 0, 1, 2 made on the cluster (``cl``) and on threads (``th``), in two dirs,
    with the superrun ``_sr`` (ranges of all three) defined in both."""
    root = tmp_path_factory.mktemp("cluster")
    config = {"n_chunks": 5, "recs_per_chunk": 7, "chunk_ns": 2}
    cl = context(root / "cluster", client=client, config=config)
    th = context(root / "threads", config=config)
    for st in (cl, th):
        st.make(list(RUNS), TARGETS)  # all runs in one graph
        write_run_documents(st, 5, 2)
        st.define_run("_sr", SR_SPEC)
    return cl, th


def test_contexts_run_where_they_should(made, client):
    cl, th = made
    assert cl.client is client
    assert th.client is None


def test_making_on_the_cluster_equals_threads(made):
    cl, th = made
    for run_id in RUNS:
        for t in ["records", *TARGETS]:
            assert str(cl.key_for(run_id, t)) == str(th.key_for(run_id, t))
            assert cl.is_stored(run_id, t) and th.is_stored(run_id, t)
            m_cl, m_th = cl.get_metadata(run_id, t), th.get_metadata(run_id, t)
            assert [(c["start"], c["end"], c["n"]) for c in m_cl["chunks"]] == [
                (c["start"], c["end"], c["n"]) for c in m_th["chunks"]
            ]
        # read each store with the other scheduler too
        assert_same_rows(cl.get_array(run_id, TARGETS), th.get_array(run_id, TARGETS))
        assert_same_rows(th.new_context().get_array(run_id, "peaks"), cl.get_array(run_id, "peaks"))


def test_loading_a_superrun_on_the_cluster_equals_threads(made, client):
    cl, th = made
    assert not cl.is_stored("_sr", "peaks")
    on_cluster = cl.get_array("_sr", TARGETS)
    on_threads = th.get_array("_sr", TARGETS)
    assert len(on_cluster) > 0
    assert_same_rows(on_cluster, on_threads)

    ds = cl.get_dataset("_sr", TARGETS)
    area, subrun = client.compute([ds["area"].data, ds["subrun"].data], sync=True)
    np.testing.assert_array_equal(area, on_threads["area"])
    per_run = [
        len(th.get_array("_sr", "peaks", time_range=(SPACING * i, SPACING * (i + 1))))
        for i in range(3)
    ]
    np.testing.assert_array_equal(np.bincount(subrun, minlength=3), per_run)

    chunks = list(cl.get_iter("_sr", "peaks"))
    assert_same_rows(np.concatenate([c.data for c in chunks]), on_threads)
    assert {next(iter(c.subruns)) for c in chunks} == set(RUNS)


def test_per_subrun_reductions_on_the_cluster(made, client):
    """``groupby("subrun")`` needs no computed labels; on the cluster it gives numpy's
    per-subrun means, with blocks of any size (across subruns, or one a stored chunk)."""
    cl, th = made
    rows = th.get_array("_sr", "peaks")
    codes = th.get_dataset("_sr", "peaks").subrun.values
    want = np.bincount(codes, rows["channel"]) / np.bincount(codes)
    for chunks in ("auto", 4, "stored"):
        ds = cl.get_dataset("_sr", "peaks", chunks=chunks)
        means = client.compute(ds.channel.groupby("subrun").mean()).result()
        np.testing.assert_allclose(means.values, want)
        total = client.compute(ds.area.sum()).result()
        assert float(total) == float(rows["area"].sum())


def test_persisting_on_the_cluster_equals_threads(made):
    cl, th = made
    keys_cl = cl.persist_superrun("_sr", TARGETS, chunk_target_size_mb=0.01)
    keys_th = th.persist_superrun("_sr", TARGETS, chunk_target_size_mb=0.01)
    assert [str(k) for k in keys_cl] == [str(k) for k in keys_th]
    for t in TARGETS:
        chunks_cl = cl.get_metadata("_sr", t)["chunks"]
        chunks_th = th.get_metadata("_sr", t)["chunks"]
        assert len(chunks_cl) > 1
        assert chunks_cl == chunks_th
    stored_cl = cl.get_array("_sr", TARGETS)
    assert_same_rows(stored_cl, th.get_array("_sr", TARGETS))
    # and the stored superrun holds exactly the rows of the unstored load
    unstored = th.get_array(list(RUNS), TARGETS)
    keep = np.zeros(len(unstored), bool)
    for run_id, ranges in {**SR_SPEC, "0": [(0, 10)]}.items():
        for s, e in ranges:
            keep |= (
                (unstored["run_id"] == run_id)
                & (unstored["time"] >= s)
                & (dastrax.endtime(unstored) <= e)
            )
    assert_same_rows(stored_cl, unstored[keep])


def test_worker_killed_during_a_load(client, tmp_path):
    """A worker process is SIGKILLed while a superrun load makes its subruns' data (slow
    plugins): the nanny restarts it, distributed reruns the lost tasks, and the rows are
    those of the threaded scheduler."""
    n_chunks = 8
    cl = context(tmp_path / "cluster", client=client, config={"n_chunks": n_chunks})
    cl.set_config({"sleep_s": 0.25})
    th = context(tmp_path / "threads", config={"n_chunks": n_chunks})
    for st in (cl, th):
        write_run_documents(st, n_chunks)
        st.define_run("_slow", list(RUNS))
    expected = th.get_array("_slow", TARGETS)
    assert len(expected) == 3 * n_chunks * 10
    assert str(cl.key_for("_slow", "peaks")) == str(th.key_for("_slow", "peaks"))
    assert not cl.is_stored("0", "peaks")

    pids = client.run(os.getpid)
    result: dict = {}

    def load():
        try:
            result["rows"] = cl.get_array("_slow", TARGETS)
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = e

    thread = threading.Thread(target=load)
    thread.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
        if busy:
            victim = busy[0]
        else:
            time.sleep(0.02)
    assert victim is not None, "no task ever ran on the cluster"
    assert thread.is_alive(), "the load finished before a worker could be killed"
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert "error" not in result, repr(result.get("error"))
    assert_same_rows(result["rows"], expected)
    assert all(cl.is_stored(r, t) for r in RUNS for t in TARGETS)

    # the nanny restarted the killed worker: two workers again, one a new process
    client.wait_for_workers(2, timeout=60)
    new_pids = set(client.run(os.getpid).values())
    assert pids[victim] not in new_pids
    assert len(new_pids) == 2


@pytest.mark.parametrize("round_", range(5))
def test_worker_killed_during_make(tmp_path, round_):
    """Issue 13: a worker SIGKILLed while ``make`` streams chunks into zarr (after the
    first arrays were created, so the append tasks that created them are rerun on the
    other worker): the make finishes with the rows of the threaded scheduler. A fresh
    2-process LocalCluster each round."""
    # chunks of 2000 peaks (2.4 MB): a whole zarr chunk in the first chunk, so arrays are
    # created by the first append tasks, long before the commits
    config = {"n_chunks": 8, "recs_per_chunk": 2000, "chunk_ns": 2000}
    th = context(tmp_path / "threads", config=config)
    th.make(list(RUNS), TARGETS)
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        cl = context(tmp_path / "cluster", client=client, config=config)
        cl.set_config({"sleep_s": 0.3})
        pids = client.run(os.getpid)
        result: dict = {}

        def make():
            try:
                cl.make(list(RUNS), TARGETS)
            except BaseException as e:  # noqa: BLE001 - reported below
                result["error"] = e

        thread = threading.Thread(target=make)
        thread.start()
        root = tmp_path / "cluster"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until some group has its arrays
            if list(root.glob(".tmp-*/group/time/zarr.json")):
                break
            time.sleep(0.01)
        busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
        assert busy and thread.is_alive(), "the make finished before a worker could be killed"
        os.kill(pids[busy[round_ % len(busy)]], signal.SIGKILL)
        thread.join(timeout=240)
        assert not thread.is_alive()
        assert "error" not in result, repr(result.get("error"))
        for r in RUNS:
            assert_same_rows(cl.get_array(r, TARGETS), th.get_array(r, TARGETS))


def test_a_multi_output_plugin_on_the_cluster_equals_threads(client, tmp_path):
    """strax-style plugins (a string depends_on, ``compute(self, records)``, three
    outputs of three data kinds) made on worker processes: the same rows as on threads,
    each output stored as its own data type."""
    from strax_suite.plugins import EvenOddSplit
    from strax_suite.plugins import Records as StraxRecords

    got = {}
    for where, kwargs in (("cluster", {"client": client}), ("threads", {})):
        st = dastrax.Context(
            storage=str(tmp_path / where),
            register=[StraxRecords, EvenOddSplit],
            progress=False,
            **kwargs,
        )
        st.make(["0", "1"], "rec_count")
        assert all(st.is_stored(r, t) for r in "01" for t in ("even_recs", "odd_recs"))
        got[where] = [st.get_array(["0", "1"], t) for t in ("even_recs", "odd_recs", "rec_count")]
    for a, b in zip(got["cluster"], got["threads"]):
        assert len(a) and np.array_equal(a, b)

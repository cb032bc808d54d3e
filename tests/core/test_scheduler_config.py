"""The default scheduler ("auto") follows dask's own rules: ``dask.config.set(scheduler=...)``
and an active distributed client decide where a context's tasks run."""

from __future__ import annotations

import threading

import dask
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

distributed = pytest.importorskip("distributed")

_lock = threading.Lock()


class RecordingPeaks(Peaks):
    """Peaks that record where each chunk was computed: (thread id, worker address)."""

    seen: list[tuple[int, str | None]] = []

    def compute(self, records, start, end):
        try:
            worker = distributed.get_worker().address
        except ValueError:
            worker = None
        with _lock:
            RecordingPeaks.seen.append((threading.get_ident(), worker))
        return super().compute(records, start, end)


@pytest.fixture
def st(tmp_path):
    RecordingPeaks.seen = []
    ctx = dastrax.Context(
        storage=str(tmp_path / "data"),
        register=[Records, RecordingPeaks, PeakClassification],
        progress=False,
    )
    assert ctx.context_config["scheduler"] == "auto"
    return ctx


def test_dask_config_sync_runs_tasks_in_the_calling_thread(st):
    with dask.config.set(scheduler="sync"):
        st.make("0", "peaks")
        arr = st.get_array("1", "peak_classification")  # makes records, peaks of run 1
    assert len(arr) == 100
    assert len(RecordingPeaks.seen) == 20  # 10 chunks of each run
    assert {ident for ident, _w in RecordingPeaks.seen} == {threading.get_ident()}
    assert {w for _i, w in RecordingPeaks.seen} == {None}


def test_without_configuration_tasks_run_on_dask_threads(st):
    st.make("0", "peaks")
    assert len(RecordingPeaks.seen) == 10
    assert threading.get_ident() not in {ident for ident, _w in RecordingPeaks.seen}


def test_dask_config_threads_and_synchronous_spellings(st):
    with dask.config.set(scheduler="synchronous"):
        st.make("0", "peaks")
    assert {ident for ident, _w in RecordingPeaks.seen} == {threading.get_ident()}
    RecordingPeaks.seen = []
    with dask.config.set(scheduler="threads"):
        st.make("1", "peaks")
    assert len(RecordingPeaks.seen) == 10
    assert threading.get_ident() not in {ident for ident, _w in RecordingPeaks.seen}


def test_an_active_client_runs_the_tasks(st):
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        workers = set(client.scheduler_info()["workers"])
        assert st.client is client
        st.make("0", "peaks")
        arr = st.get_array("1", "peaks")
    assert len(arr) == 100
    assert len(RecordingPeaks.seen) == 20
    assert {w for _i, w in RecordingPeaks.seen} <= workers
    assert None not in {w for _i, w in RecordingPeaks.seen}
    assert st.client is None  # the client is closed: back to dask's local schedulers


def test_a_failed_compute_returns_only_after_its_running_tasks_finished(tmp_path):
    """dask's threaded scheduler raises at the first failed task while others still run;
    dastrax waits for them, so that a writer's abort never races a write (a write after
    the abort would leave a temporary folder behind)."""
    import threading

    import dask

    from dastrax.core.scheduling import Scheduler
    from dastrax.errors import DastraxError

    started = threading.Event()
    done = tmp_path / "done"

    def slow():
        started.set()
        import time

        time.sleep(0.5)
        done.write_text("written")
        return 1

    def failing():
        started.wait(5)
        raise DastraxError("this task fails")

    with dask.config.set(num_workers=2), pytest.raises(DastraxError, match="fails"):
        Scheduler("threads").compute(dask.delayed(slow)(), dask.delayed(failing)())
    assert done.exists()  # the slow task had finished when the error came

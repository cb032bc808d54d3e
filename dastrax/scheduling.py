"""Where and how dask graphs run: the threaded scheduler by default, or a distributed
client; with dask's and distributed's own progress bars."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import dask

__all__ = ["Scheduler"]

LOCAL_SCHEDULERS = ("threads", "sync", "synchronous", "processes")


class Scheduler:
    """Runs dask collections on the configured scheduler.

    Parameters
    ----------
    scheduler
        ``"threads"`` (default), ``"processes"``, ``"sync"``, ``"local-cluster"`` (start a
        ``distributed.LocalCluster``), or a scheduler address like ``"tcp://host:8786"``.
    client
        A ``distributed.Client`` to use; it wins over ``scheduler``.
    """

    def __init__(self, scheduler: str | None = "threads", client: Any = None):
        self._client = client
        self.scheduler = scheduler or "threads"
        self._owned = None
        if client is None and self.scheduler not in LOCAL_SCHEDULERS:
            self._client = self._start_client(self.scheduler)

    def _start_client(self, spec: str):
        import distributed

        if spec in ("local-cluster", "localcluster", "cluster"):
            cluster = distributed.LocalCluster(
                n_workers=min(4, os.cpu_count() or 1), threads_per_worker=1, processes=True
            )
            self._owned = cluster
            client = distributed.Client(cluster)
            print(
                f"dastrax: started a LocalCluster; dashboard at {client.dashboard_link}",
                file=sys.stderr,
            )
            return client
        return distributed.Client(spec)

    @property
    def client(self):
        """The distributed client in use: the given one, or an active default one."""
        if self._client is not None:
            return self._client
        if self.scheduler in ("threads",):
            if "distributed" not in sys.modules:
                return None  # no client can be active; importing distributed costs ~0.5 s
            try:
                import distributed

                return distributed.default_client()
            except (ImportError, ValueError):
                return None
        return None

    @property
    def in_process(self) -> bool:
        """Whether tasks run in this process and may write into shared memory."""
        return self.client is None and self.scheduler != "processes"

    @property
    def n_workers(self) -> int:
        client = self.client
        if client is not None:
            try:
                return max(1, sum(client.nthreads().values()))
            except Exception:  # noqa: BLE001 - a cluster that is going away
                return 1
        return os.cpu_count() or 1

    def compute(self, *collections, progress: bool = False, label: str = "") -> tuple:
        """Compute dask collections (delayed, arrays...) and return their results."""
        client = self.client
        if client is not None:
            futures = client.compute(list(collections))
            if progress:
                _distributed_progress(futures, label)
            return tuple(client.gather(futures))
        with _local_progress(progress, label):
            return dask.compute(*collections, scheduler=_local_get(self.scheduler))

    def iter_ordered(
        self, items: Sequence, window: int | None = None, progress: bool = False, label: str = ""
    ) -> Iterator:
        """Compute delayed ``items`` a window at a time, yielding results in order.

        Memory stays bounded by the window whatever the number of items.
        """
        window = window or 2 * self.n_workers
        client = self.client
        if client is not None:
            futures = []
            it = iter(items)
            for item in it:
                futures.append(client.compute(item))
                if len(futures) >= window:
                    break
            while futures:
                fut = futures.pop(0)
                result = fut.result()
                for item in it:
                    futures.append(client.compute(item))
                    break
                yield result
            return
        for i in range(0, len(items), window):
            with _local_progress(progress and i == 0 and len(items) <= window, label):
                yield from dask.compute(
                    *items[i : i + window], scheduler=_local_get(self.scheduler)
                )

    def close(self) -> None:
        if self._owned is not None:
            self._client.close()
            self._owned.close()
            self._owned = None

    def __repr__(self) -> str:
        client = self.client
        if client is not None:
            return f"<Scheduler distributed {client.scheduler.address}>"
        return f"<Scheduler {self.scheduler}>"


def _local_get(name: str):
    """dask's local scheduler function for ``name``.

    Given as a function, dask does not look for a distributed client (which imports
    ``distributed``, about 0.5 s in a fresh process).
    """
    if name == "threads":
        import dask.threaded

        return dask.threaded.get
    if name in ("sync", "synchronous"):
        import dask.local

        return dask.local.get_sync
    if name == "processes":
        import dask.multiprocessing

        return dask.multiprocessing.get
    return name


@contextlib.contextmanager
def _local_progress(progress: bool, label: str):
    if not progress:
        yield
        return
    from dask.diagnostics import ProgressBar

    if label:
        print(label, file=sys.stderr)
    with ProgressBar(minimum=1.0, out=sys.stderr):
        yield


def _distributed_progress(futures, label: str) -> None:
    import distributed

    if label:
        print(label, file=sys.stderr)
    # progress is cosmetic: the result still comes if the bar fails
    with contextlib.suppress(Exception):
        distributed.progress(futures, notebook=_in_notebook(), multi=False)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:  # noqa: BLE001
        return False


def validate_scheduler(value) -> str:
    """``value`` if it names a scheduler (see :class:`Scheduler`), else ConfigError."""
    from .errors import ConfigError

    names = (*LOCAL_SCHEDULERS, "local-cluster")
    if isinstance(value, str) and (value.strip() in names or ":" in value):
        return value.strip()
    raise ConfigError(
        f"unknown scheduler {value!r}: give one of {', '.join(names)} or a scheduler address "
        "like 'tcp://host:8786'"
    )

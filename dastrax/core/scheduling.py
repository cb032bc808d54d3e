"""Where and how dask graphs run: dask's own choice by default (an explicit client, dask's
``scheduler`` config, an active distributed client, else threads), a named local scheduler,
a ``LocalCluster``, or a scheduler address; with dask's and distributed's progress bars."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import dask

from dastrax.errors import ConfigError

if TYPE_CHECKING:  # (imported when a client is started: it costs ~0.5 s)
    import distributed

__all__ = ["SCHEDULER_NAMES", "Scheduler", "validate_scheduler"]

LOCAL_SCHEDULERS = ("threads", "sync", "synchronous", "processes")
CLUSTER_NAMES = ("local-cluster", "localcluster", "cluster")
#: every scheduler name :class:`Scheduler` accepts besides addresses
SCHEDULER_NAMES = ("auto", *LOCAL_SCHEDULERS, *CLUSTER_NAMES)
#: dask's names of its local schedulers (``dask.config.set(scheduler=...)``)
_DASK_LOCAL = {
    "threads": "threads",
    "threading": "threads",
    "sync": "sync",
    "synchronous": "sync",
    "single-threaded": "sync",
    "processes": "processes",
    "multiprocessing": "processes",
}
_ADDRESS = re.compile(
    r"(?:tcp|tls|ucx|ws|wss)://[^\s/]+(?::\d{1,5})?"
    r"|inproc://\S+"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):\d{1,5}"
)


def validate_scheduler(spec) -> str:
    """A scheduler spec, checked before anything is started or registered.

    Parameters
    ----------
    spec
        ``None`` or ``"auto"`` (dask's choice), ``"threads"``, ``"processes"``, ``"sync"`` /
        ``"synchronous"``, ``"local-cluster"``, or a scheduler address: ``tcp://host:port``,
        ``tls://...``, ``inproc://...``, or ``host:port``.

    Returns
    -------
    str
        The spec, stripped; ``"auto"`` for ``None``.

    Raises
    ------
    ConfigError
        Naming the value and the allowed ones.

    Examples
    --------
    >>> validate_scheduler(None), validate_scheduler("tcp://10.0.0.1:8786")
    ('auto', 'tcp://10.0.0.1:8786')
    """
    if spec is None:
        return "auto"
    if isinstance(spec, str):
        text = spec.strip()
        if text in SCHEDULER_NAMES or _ADDRESS.fullmatch(text):
            return text
    raise ConfigError(
        f"unknown scheduler {spec!r}: give one of {list(SCHEDULER_NAMES)} or a scheduler "
        "address like 'tcp://host:8786', 'host:8786' or 'inproc://...'"
    )


class Scheduler:
    """Runs dask collections on the configured scheduler.

    Parameters
    ----------
    scheduler
        ``None`` or ``"auto"`` (default): follow dask's rules at each call: the given
        ``client``, else ``dask.config.get("scheduler")`` if set, else an active distributed
        default client, else threads. Or ``"threads"``, ``"processes"``, ``"sync"``,
        ``"local-cluster"`` (start a ``distributed.LocalCluster``), or a scheduler address like
        ``"tcp://host:8786"``.
    client
        A ``distributed.Client`` to use; it wins over ``scheduler``.
    timeout
        How long to try to connect to a scheduler address (default: distributed's
        ``distributed.comm.timeouts.connect``).

    Raises
    ------
    ConfigError
        For an unknown scheduler spec (before anything is started), or an address that cannot
        be reached; a failed start leaves no client registered.

    Examples
    --------
    >>> Scheduler("sync").in_process
    True
    """

    def __init__(self, scheduler: str | None = None, client: Any = None, timeout=None):
        self.scheduler = validate_scheduler(scheduler)
        self._client = client
        self._owned: distributed.LocalCluster | None = None
        self._started = None  # a client this object started (closed by close())
        if client is None and self.scheduler not in ("auto", *LOCAL_SCHEDULERS):
            self._client = self._start_client(self.scheduler, timeout)
            self._started = self._client
            print(f"dastrax: dashboard at {self.dashboard_link}", file=sys.stderr)

    def _start_client(self, spec: str, timeout):
        import distributed

        before = _default_client()
        config_before = dask.config.get("scheduler", None)
        cluster: distributed.LocalCluster | None = None
        try:
            if spec in CLUSTER_NAMES:
                cluster = distributed.LocalCluster(
                    n_workers=min(4, os.cpu_count() or 1), threads_per_worker=1, processes=True
                )
                client = distributed.Client(cluster)
                self._owned = cluster
                return client
            return distributed.Client(spec, **({} if timeout is None else {"timeout": timeout}))
        except Exception as e:  # noqa: BLE001 - distributed raises OSError, ValueError, ...
            _forget_failed(before, config_before)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
            if spec in CLUSTER_NAMES:
                advice = (
                    "LocalCluster workers are new processes: run scripts under "
                    "`if __name__ == '__main__':`, or use scheduler='threads'"
                )
                raise ConfigError(
                    f"could not start a LocalCluster ({type(e).__name__}: {e}); {advice}"
                ) from e
            raise ConfigError(
                f"could not connect to the dask scheduler at {spec} ({type(e).__name__}: {e}); "
                "check that it is running at that address, or use scheduler='threads'"
            ) from e

    def _resolve(self) -> tuple[Any, str | Any]:
        """``(client, None)`` or ``(None, local scheduler name or get function)`` in use."""
        if self._client is not None:
            return self._client, None
        if self.scheduler != "auto":
            return None, self.scheduler
        configured = dask.config.get("scheduler", None)
        if isinstance(configured, str):
            if configured in _DASK_LOCAL:
                return None, _DASK_LOCAL[configured]
            if configured in ("dask.distributed", "distributed"):
                client = _default_client()
                if client is not None:
                    return client, None
            else:
                raise ConfigError(
                    f"dask.config 'scheduler' is {configured!r}, which dastrax cannot use: set "
                    f"one of {sorted(_DASK_LOCAL)} or 'dask.distributed'"
                )
        elif configured is not None:
            if hasattr(configured, "compute") and hasattr(configured, "gather"):
                return configured, None  # dask.config.set(scheduler=client)
            if callable(configured):
                return None, configured  # a get function
        client = _default_client()
        if client is not None:
            return client, None
        return None, "threads"

    @property
    def client(self) -> distributed.Client | None:
        """The distributed client in use: the given or started one, or (``"auto"``) an active
        default one; None on a local scheduler."""
        return self._resolve()[0]

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard address of the distributed scheduler in use; None on local ones."""
        client = self.client
        return None if client is None else client.dashboard_link

    @property
    def in_process(self) -> bool:
        """Whether tasks run in this process and may write into shared memory."""
        client, local = self._resolve()
        if client is not None:
            return False
        return local in ("threads", "sync", "synchronous") or local in _in_process_gets()

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
        client, local = self._resolve()
        if client is not None:
            futures = client.compute(list(collections))
            if progress:
                _distributed_progress(futures, label)
            return tuple(client.gather(futures))
        with _local_progress(progress, label):
            if local == "threads" and dask.config.get("pool", None) is None:
                return _compute_on_threads(collections)
            return dask.compute(*collections, scheduler=_local_get(local))

    def iter_ordered(
        self, items: Sequence, window: int | None = None, progress: bool = False, label: str = ""
    ) -> Iterator:
        """Compute delayed ``items`` a window at a time, yielding results in order.

        Memory stays bounded by the window whatever the number of items.
        """
        window = window or 2 * self.n_workers
        client, local = self._resolve()
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
                yield from dask.compute(*items[i : i + window], scheduler=_local_get(local))

    def close(self) -> None:
        """Close the client and cluster this scheduler started (not a given one)."""
        if self._started is not None:
            with contextlib.suppress(Exception):
                self._started.close()
            self._started = None
            self._client = None
        if self._owned is not None:
            with contextlib.suppress(Exception):
                self._owned.close()
            self._owned = None

    def __repr__(self) -> str:
        client = self.client
        if client is not None:
            return f"<Scheduler distributed {client.scheduler.address}>"
        _client, local = self._resolve()
        return f"<Scheduler {local if isinstance(local, str) else self.scheduler}>"


def _default_client():
    """distributed's active default client, or None (without importing distributed)."""
    if "distributed" not in sys.modules:
        return None  # no client can be active; importing distributed costs ~0.5 s
    try:
        import distributed

        return distributed.default_client()
    except (ImportError, ValueError):
        return None


def _forget_failed(before, config_before) -> None:
    """Close a client that failed to start but registered itself as the default (distributed
    does so on construction), and restore dask's ``scheduler`` config."""
    for _ in range(8):  # several may be left by a failed cluster start
        current = _default_client()
        if current is None or current is before:
            break
        with contextlib.suppress(Exception):
            current.close(timeout=2)
    if dask.config.get("scheduler", None) != config_before:
        dask.config.set(scheduler=config_before)


def _in_process_gets() -> tuple:
    gets = []
    if "dask.threaded" in sys.modules:
        gets.append(sys.modules["dask.threaded"].get)
    if "dask.local" in sys.modules:
        gets.append(sys.modules["dask.local"].get_sync)
    return tuple(gets)


def _compute_on_threads(collections: tuple[Any, ...]) -> tuple[Any, ...]:
    """``dask.compute`` on dask's threads, in a pool of this call's own.

    When a task fails, dask raises at once while the tasks already running go on; here
    the error comes only once they have finished, so that what the caller does next (a
    writer's abort removing its folder) never races a task still writing into it.
    """
    import dask.threaded

    pool = ThreadPoolExecutor(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    try:
        return tuple(dask.compute(*collections, scheduler=dask.threaded.get, pool=pool))
    finally:
        pool.shutdown(wait=True)


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


def _shows_progress() -> bool:
    """Progress bars go to stderr, and only where someone watches: a terminal or a
    notebook (never escape codes into a redirected output or a log file)."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or _in_notebook()


@contextlib.contextmanager
def _local_progress(progress: bool, label: str):
    if not progress or not _shows_progress():
        yield
        return
    from dask.diagnostics import ProgressBar

    if label:
        print(label, file=sys.stderr)
    with ProgressBar(minimum=1.0, out=sys.stderr):
        yield


def _distributed_progress(futures, label: str) -> None:
    import distributed

    if not _shows_progress():
        return
    if label:
        print(label, file=sys.stderr)
    # progress is cosmetic: the result still comes if the bar fails; distributed's text
    # bar writes to stdout, which is the command's output: send it to stderr
    with contextlib.suppress(Exception), contextlib.redirect_stdout(sys.stderr):
        distributed.progress(futures, notebook=_in_notebook(), multi=False)


def _in_notebook() -> bool:
    try:
        # (imported by name: IPython is optional, and not always typed)
        get_ipython = importlib.import_module("IPython").get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:  # noqa: BLE001
        return False

"""The Context: strax's user-facing API, a thin façade that wires plugins (registry),
storage, run documents (catalog), the resolver, the maker, the persister and the
scheduler together. It holds no algorithm of its own."""

from __future__ import annotations

import copy
import fnmatch
import os
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from dastrax.config import settings
from dastrax.config.files import load_config
from dastrax.core.chunks import Chunk
from dastrax.core.lineage import DataKey
from dastrax.core.names import (
    is_superrun_id,
    validate_data_type,
    validate_superrun_name,
    validate_targets,
)
from dastrax.core.plugins import PluginRegistry
from dastrax.core.scheduling import Scheduler
from dastrax.errors import DataNotAvailable, InvalidRequest, LineageMismatch
from dastrax.load import versions
from dastrax.load.requests import (
    LoadRequest,
    accepts_aliases,
    first_arguments,
    load_request,
    run_id_of,
    run_ids_of,
)
from dastrax.load.resolver import MissingData, Resolver
from dastrax.runs.catalog import Catalog
from dastrax.storage import StorageFrontend, StorageList, normalize_compressor
from dastrax.ui import display, introspect
from dastrax.write import join as joined
from dastrax.write.make import make_runs, plan_run

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr
    from distributed import Client

    from dastrax.core.plugin import Plugin
    from dastrax.load.plan import Resolved

__all__ = ["Context"]

#: where data is: a frontend, a path or URL, or a list of them
type StorageSpec = (
    StorageFrontend | str | os.PathLike[str] | Sequence[StorageFrontend | str | os.PathLike[str]]
)
#: a superrun's definition: run ids, ``{run_id: "all" or [(start, end), ...]}``, or rows
type SuperrunData = (
    Sequence[str] | Mapping[str, str | Sequence[tuple[int, int]]] | np.ndarray | pd.DataFrame
)

#: when a load makes data (the ``make`` keyword), said once for every load's docstring
MAKE_RULE = (
    "by default missing data of runs that exist (with a run document or any stored "
    "data) is made and stored first; a run id with neither, in a storage that keeps run "
    "documents of other runs, raises RunNotFound and nothing is written"
)

#: the keywords every load takes, documented once (numpydoc)
LOAD_PARAMETERS = """\
run_id_or_ids : str or list of str
    A run id, a superrun id (``"_name"``, or ``"_name@N"`` for version N), or a list
    of them (concatenated in order); ``bytes`` are decoded. ``run_id=`` (strax's
    keyword spelling) is the same.
targets : str or list of str
    Data type(s), all of one data kind (merged column-wise); ``targets=`` works too.
columns : list of str, optional
    Load only these fields (plus ``time`` and the end fields), reading only their
    columns. ``keep_columns=`` (strax's spelling) is accepted.
time_range : (int, int), optional
    ``(start, end)`` in ns since the epoch: rows with ``start <= time`` and
    ``endtime <= end``; no chunk outside it is read.
seconds_range : (float, float), optional
    A time range in seconds since the run's start (one run id).
time_within : numpy record or array, optional
    A row or rows whose ``time`` and ``endtime`` (or ``length``, ``dt``) give the
    time range.
selection : str or list of str, optional
    Keep the rows where the expression (``"area > 100 & channel < 3"``; a list is
    AND-ed) is true; chunks whose stored minima/maxima cannot match are not read.
    ``selection_str=`` (strax's spelling) is accepted.
check_lineage : bool, default True
    Compare the lineage stored with each run's data with the one requested (else
    ``LineageMismatch``); False skips it. ``_check_lineage_per_run_id=`` is
    accepted.
version : int, optional
    Load a superrun as version N defined it (IcechunkRepository only).
combining : bool, default False
    For plugins that allow superruns: concatenate the subruns' data instead of
    computing over the join.
make : bool or None, default None
    Whether data that is not stored is made first. None: made for runs that exist
    (a run document or stored data), RunNotFound for a run id nothing knows in a
    storage with run documents; False: never (DataNotAvailable); True: always, even
    for a new run id. Types named by the context option ``forbid_creation_of`` are
    never made (DataNotAvailable).
progress : bool, optional
    Show a progress bar while making or loading (stderr, on a terminal only);
    default: the context option ``progress``. ``progress_bar=`` is accepted.
run_id : str or list of str, optional
    strax's keyword spelling of ``run_id_or_ids``."""

#: the errors every load may raise (numpydoc)
LOAD_RAISES = """\
RunNotFound
    A run id with no run document and no stored data, in a storage that keeps run
    documents of other runs (with ``make=None``); the closest known ids are named.
DataNotAvailable
    The storage location does not exist; or data is not stored and ``make=False``
    (naming the lineages that are stored); or a data type nothing provides.
RunMetadataNotAvailable
    A superrun that is not defined.
InvalidRequest
    No run id or targets, targets of several data kinds, an unknown column or
    keyword, a bad time range or selection, ``version`` on a storage without
    versions, or ``combining=True`` for a regular run.
InvalidRunName
    A run id that is not allowed.
LineageMismatch
    Stored data of another lineage (with ``check_lineage=True``)."""


def _load_doc[F: Callable[..., Any]](func: F) -> F:
    """Fill a load's docstring: ``{parameters}``, ``{raises}``, ``{make_rule}``."""
    pad = " " * 8

    def block(text: str) -> str:
        return textwrap.indent(text, pad).lstrip()

    func.__doc__ = (func.__doc__ or "").format(
        parameters=block(LOAD_PARAMETERS), raises=block(LOAD_RAISES), make_rule=MAKE_RULE
    )
    return func


def _load_kwargs(local: dict[str, Any], *drop: str) -> dict[str, Any]:
    """A load's keyword arguments from its ``locals()``."""
    skip = {"self", "run_id_or_ids", "targets", "run_id", "__class__", *drop}
    return {k: v for k, v in local.items() if k not in skip}


def _given(run_id: str | Sequence[str] | None) -> dict[str, str | Sequence[str]]:
    """strax's ``run_id=`` keyword, for :func:`~dastrax.load.requests.first_arguments`."""
    return {} if run_id is None else {"run_id": run_id}


def _names(run_id_or_ids: str | Sequence[str]) -> list[str]:
    if isinstance(run_id_or_ids, str):
        return [run_id_or_ids]
    if isinstance(run_id_or_ids, (list, tuple)):
        return [r for r in run_id_or_ids if isinstance(r, str)]
    return []


class Context:
    """Where data is stored, which plugins make it, and how it is loaded.

    Parameters
    ----------
    storage
        A storage frontend (:class:`ZarrDirectory`, ...), a path or URL, or a list of
        them. Reads search them in order; writes go to the first writable one.
    register
        Plugin classes to register.
    config
        Plugin option values, ``{option name: value}``.
    client
        A ``distributed.Client`` to run on; by default dask's own choice (its
        ``scheduler`` setting, an active client, else the threaded scheduler).
    **context_config
        Context options (:data:`dastrax.config.settings.SETTINGS`): ``write_superruns``,
        ``use_per_run_defaults``, ``chunk_target_size_mb``, ``allow_incomplete``,
        ``progress``, ``compressor``, ``scheduler``.

    Raises
    ------
    ConfigError
        An unknown or invalid context option.

    Examples
    --------
    >>> import tempfile, dastrax
    >>> from dastrax.testutils import Records, Peaks
    >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
    ...                      progress=False)
    >>> len(st.get_array("0", "peaks"))
    100
    """

    def __init__(
        self,
        storage: StorageSpec | None = None,
        register: type[Plugin] | Sequence[type[Plugin]] | None = None,
        config: dict[str, Any] | None = None,
        client: Client | None = None,
        **context_config: Any,
    ) -> None:
        self._storage = StorageList(storage)
        self._catalog = Catalog(self._storage)
        self._registry = PluginRegistry()
        self._resolver = Resolver(self._registry, self._storage, self._catalog)
        self.context_config = settings.context_defaults()
        self._client = client
        self._scheduler_obj: Scheduler | None = None
        checked = settings.check_context_options(
            context_config, also=("storage", "register", "config", "client")
        )
        self.set_context_config(checked)
        if register:
            self.register(register)
        if config:
            self.set_config(config)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> Context:
        """A context from a TOML configuration file (see ``conf/dastrax.toml``).

        Parameters
        ----------
        path : str, optional
            The file; default ``$DASTRAX_CONFIG``, else the packaged defaults.
        **overrides
            Settings that override the file (``storage=...``, ``scheduler=...``,
            ``config={...}``; ``client=`` a ``distributed.Client``).

        Returns
        -------
        Context

        Raises
        ------
        ConfigError
            A file that does not exist or cannot be read, an unknown key, an invalid value,
            a plugin that cannot be imported, or a plugin option (``[config]``) that no
            registered plugin has.

        Examples
        --------
        >>> st = dastrax.Context.from_config(storage=str(tmp / "from_config"), progress=False)
        >>> sorted(st.show_config()["option"])[:3]
        ['bonus_area', 'chunk_ns', 'n_channels']
        """
        client = overrides.pop("client", None)
        return cls(**load_config(path, **overrides).context_kwargs(client))

    # -- configuration ----------------------------------------------------------------
    @property
    def storage(self) -> list[StorageFrontend]:
        """The storage frontends, in search order; assignable, as in strax
        (``st.storage = [dastrax.DataDirectory(path)]``)."""
        return self._storage.frontends

    @storage.setter
    def storage(self, value: StorageSpec | None) -> None:
        self._storage = StorageList(value)
        self._catalog = Catalog(self._storage)
        self._resolver = Resolver(self._registry, self._storage, self._catalog)

    @property
    def config(self) -> dict[str, Any]:
        """The plugin option values set on this context."""
        return self._registry.config

    def register(self, plugin_cls: type[Plugin] | Sequence[type[Plugin]]) -> None:
        """Register a plugin class, or a list of them.

        Parameters
        ----------
        plugin_cls : type or list of type
            :class:`dastrax.Plugin` subclasses; a later one providing the same data type
            replaces the earlier.

        Returns
        -------
        None

        Raises
        ------
        PluginError
            Not a plugin class, or a plugin breaking its contract (no ``provides``,
            dependencies that make a cycle...).

        Examples
        --------
        >>> from dastrax.testutils import PeakClassification
        >>> st.register(PeakClassification)
        >>> "peak_classification" in st.search_field("type")["data_type"].tolist()
        True
        """
        self._registry.register(plugin_cls)

    def set_config(self, config: dict[str, Any]) -> None:
        """Update plugin option values.

        Each value is checked against the ``type`` of every registered option of that name
        now (an option without ``type`` whose default is a number takes only numbers). A key
        that is no option of any registered plugin is kept but warns
        (:class:`~dastrax.errors.UnknownConfigWarning`, pointing at the caller's line, naming
        the closest option); in configuration files and on the command line it is an error.

        Parameters
        ----------
        config : dict
            ``{option name: value}``.

        Returns
        -------
        None

        Raises
        ------
        ConfigError
            ``config`` is not a dict, or a value has the wrong type.

        Examples
        --------
        >>> st.set_config({"bonus_area": 2})
        >>> float(st.get_array("0", "peaks", make=True)["area"][0])
        3.0
        >>> st.set_config({"bonus_area": 0})
        """
        self._registry.set_config(config)

    def set_context_config(self, context_config: dict[str, Any]) -> None:
        """Update context options (see the class docstring); each is validated.

        Parameters
        ----------
        context_config : dict
            ``{option: value}``: ``write_superruns``, ``use_per_run_defaults``,
            ``chunk_target_size_mb``, ``allow_incomplete``, ``progress``, ``compressor``,
            ``scheduler``.

        Returns
        -------
        None

        Raises
        ------
        ConfigError
            An unknown option (naming the closest) or a bad scheduler.
        InvalidRequest
            A value that makes no sense (e.g. a non-positive chunk size).

        Examples
        --------
        >>> st.set_context_config({"chunk_target_size_mb": 50})
        >>> st.context_config["chunk_target_size_mb"]
        50
        """
        checked = settings.check_context_options(context_config)
        self.context_config.update(checked)
        self._registry.use_per_run_defaults = bool(self.context_config["use_per_run_defaults"])
        if "scheduler" in checked:
            self._scheduler_obj = None

    def new_context(self, **context_config: Any) -> Context:
        """A copy of this context with some context options changed (same storage, plugins
        and plugin options; this context is not changed).

        Parameters
        ----------
        **context_config
            Context options, as for :meth:`set_context_config`.

        Returns
        -------
        Context

        Raises
        ------
        ConfigError
            An unknown option or a bad scheduler.
        InvalidRequest
            A value that makes no sense.

        Examples
        --------
        >>> writing = st.new_context(write_superruns=True)
        >>> writing.context_config["write_superruns"], st.context_config["write_superruns"]
        (True, False)
        """
        new = copy.copy(self)
        new._registry = copy.deepcopy(self._registry)
        new._resolver = Resolver(new._registry, new._storage, new._catalog)
        new.context_config = dict(self.context_config)
        new.set_context_config(context_config)
        return new

    @property
    def _scheduler(self) -> Scheduler:
        if self._scheduler_obj is None:
            name = self.context_config["scheduler"]
            self._scheduler_obj = Scheduler(None if name == "auto" else name, self._client)
        return self._scheduler_obj

    @property
    def client(self) -> Client | None:
        """The distributed client in use, or None on dask's local schedulers."""
        return self._scheduler.client

    def _progress(self, progress: bool | None) -> bool:
        return bool(self.context_config["progress"] if progress is None else progress)

    # -- keys -------------------------------------------------------------------------
    @accepts_aliases
    def key_for(self, run_id: str, data_type: str, combining: bool = False) -> DataKey:
        """The key naming ``data_type`` of ``run_id``: ``run_id-data_type-lineage_hash``.

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        data_type : str
            A registered data type (or one stored with its lineage).
        combining : bool, default False
            Superruns only: the key of the concatenated subruns' data, not of the data
            computed over their join (plugins that allow superruns).

        Returns
        -------
        DataKey
            ``str(key)``, ``.lineage`` (dict) and ``.lineage_hash`` (10 characters).

        Raises
        ------
        InvalidRunName
            A run id that is not allowed.
        DataNotAvailable
            A data type that no registered plugin provides and that is not stored.
        RunMetadataNotAvailable
            A superrun that is not defined.
        InvalidRequest
            ``combining=True`` for a regular run.

        Examples
        --------
        >>> key = st.key_for("0", "peaks")
        >>> str(key).startswith("0-peaks-"), len(key.lineage_hash)
        (True, 10)
        """
        run_id = run_id_of(run_id)
        data_type = validate_data_type(data_type)
        _check_combining(run_id, combining)
        if combining:
            return self._resolver.key(run_id, data_type)
        return joined.key(self._resolver, run_id, data_type)

    @accepts_aliases
    def is_stored(self, run_id: str, data_type: str, combining: bool = False) -> bool:
        """Whether complete, committed data of exactly this lineage is stored. Never makes
        data; False where the storage does not exist (yet).

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        data_type : str
            The data type.
        combining : bool, default False
            Superruns only: of the concatenated form (see :meth:`key_for`).

        Returns
        -------
        bool

        Raises
        ------
        InvalidRunName
            A run id that is not allowed.
        DataNotAvailable
            A data type that no registered plugin provides and that is not stored.

        Examples
        --------
        >>> st.is_stored("0", "peaks"), st.is_stored("7", "peaks")
        (True, False)
        """
        self._check_readable(strict=False)  # (nothing is stored where nothing is)
        try:
            return self._resolver.find(self.key_for(run_id, data_type, combining)) is not None
        except LineageMismatch:
            return False

    @accepts_aliases
    def get_metadata(self, run_id: str, data_type: str) -> dict[str, Any]:
        """The stored metadata of ``data_type`` of ``run_id``; never makes data.

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        data_type : str
            The data type.

        Returns
        -------
        dict
            ``key, data_type, data_kind, dtype, lineage, lineage_hash, compressor,
            chunk_target_size_mb, chunks`` (each chunk: ``chunk_i, start, end, n,
            first_time, last_endtime, nbytes, run_id, subruns``).

        Raises
        ------
        DataNotAvailable
            The data is not stored, or the storage does not exist.
        InvalidRunName
            A run id that is not allowed.

        Examples
        --------
        >>> meta = st.get_metadata("0", "peaks")
        >>> meta["data_kind"], sum(c["n"] for c in meta["chunks"])
        ('peaks', 100)
        """
        self._check_readable()
        return introspect.metadata(self._resolver, self.key_for(run_id_of(run_id), data_type))

    # -- making -----------------------------------------------------------------------
    def _make(
        self, requests: list[tuple[str, list[str]]], progress: bool | None = None
    ) -> list[str]:
        cfg, services = self.context_config, (self._registry, self._storage, self._scheduler)
        compressor = normalize_compressor(cfg["compressor"])
        size, progress = cfg["chunk_target_size_mb"], self._progress(progress)
        self._refuse_forbidden(requests)
        return make_runs(*services, requests, compressor, size, progress)

    def _refuse_forbidden(self, requests: list[tuple[str, list[str]]]) -> None:
        """``DataNotAvailable`` if making ``requests`` would create a data type of the
        context option ``forbid_creation_of``."""
        forbidden = set(self.context_config["forbid_creation_of"])
        if not forbidden:
            return
        for run_id, targets in requests:
            work = plan_run(self._registry, self._storage, run_id, targets)
            for dt in work.compute if work is not None else ():
                if "*" in forbidden or dt in forbidden:
                    raise DataNotAvailable(
                        f"{dt} of run {run_id!r} is not stored, and the context option "
                        f"forbid_creation_of={tuple(sorted(forbidden))} forbids making it; "
                        "make it with a context that allows it"
                    )

    @accepts_aliases
    def make(
        self,
        run_id_or_ids: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        *,
        progress: bool | None = None,
        combining: bool = False,
        run_id: str | Sequence[str] | None = None,
    ) -> None:
        """Make and store what is missing of ``targets`` (all runs in parallel).

        An explicit ``make`` always makes: also for a run id that has no run document
        and no stored data (loads refuse such ids, see :meth:`get_array`). For a
        superrun, its subruns' data is made; with the context option
        ``write_superruns``, the superrun is persisted too.

        Parameters
        ----------
        run_id_or_ids : str or list of str
            Run id(s); superruns make their subruns' data.
        targets : str or list of str
            Data type(s) to make; their dependencies are made (and stored) as needed.
        progress : bool, optional
            Show a progress bar (on stderr, on a terminal); default: the context
            option ``progress``. ``progress_bar=`` (strax's spelling) is accepted.
        combining : bool, default False
            For superruns of plugins that allow superruns: make the concatenation of
            the subruns' data instead of the data computed over the join.
        run_id : str or list of str, optional
            strax's keyword spelling of the first argument (``make(run_id=...,
            targets=...)``).

        Returns
        -------
        None

        Raises
        ------
        InvalidRunName
            A run id that is not allowed.
        DataNotAvailable
            A data type no registered plugin provides.
        RunMetadataNotAvailable
            A superrun that is not defined.
        PluginError
            A plugin failed or returned data breaking its contract.
        InvalidRequest
            No run id or no targets given, or ``combining=True`` for a regular run.

        Examples
        --------
        >>> import tempfile, dastrax
        >>> from dastrax.testutils import Records, Peaks
        >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
        ...                      progress=False)
        >>> st.make(["0", "1"], "peaks")
        >>> st.is_stored("1", "peaks")
        True
        """
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, _given(run_id))
        _check_combining(run_id_or_ids, combining)
        targets = validate_targets(targets)
        requests, superruns = joined.make_requests(
            self._resolver, run_id_or_ids, targets, combining
        )
        self._make(requests, progress)
        if self.context_config["write_superruns"]:
            for r in superruns:
                for kind_targets in introspect.by_kind(self._resolver, targets).values():
                    self.persist_superrun(r, kind_targets, progress=progress, combining=combining)

    # -- loading ----------------------------------------------------------------------
    def _load(
        self,
        run_id_or_ids: str | Sequence[str],
        targets: str | Sequence[str],
        kwargs: dict[str, Any],
    ) -> tuple[Resolved | joined.JoinLoad, LoadRequest]:
        targets = validate_targets(targets)
        make = kwargs.get("make")
        self._check_readable(make is False or any(is_superrun_id(r) for r in _names(run_id_or_ids)))
        run_id_or_ids, version = versions.split_version(run_id_or_ids, kwargs.pop("version", None))
        res = (  # (a version pins one superrun name: split_version refuses anything else)
            versions.pinned(self._resolver, run_id_or_ids, version)
            if version is not None and isinstance(run_id_or_ids, str)
            else self._resolver
        )
        req = load_request(run_id_or_ids, kwargs, lambda r: res.catalog.run_metadata(r)["start"])
        _check_combining(run_id_or_ids, req.combining)
        if req.columns is not None and req.check_lineage:
            introspect.check_columns(self._registry, targets, req.columns)
        incomplete = bool(self.context_config["allow_incomplete"])
        load = self._planned(
            lambda: joined.resolve(res, self._scheduler, run_id_or_ids, targets, req, incomplete)
        )
        return load, req

    def _planned[T](self, plan: Callable[[], T]) -> T:
        """``plan()``, and where it finds data to be made first (:class:`MissingData`):
        make it, then plan again — a load or a persist is planned from what is stored,
        never by a plan calling back into the maker. A join over several data kinds may
        find one kind missing after another; data a round made that is still missing
        (deleted meanwhile) is :class:`DataNotAvailable`."""
        made: set[tuple[str, str]] = set()
        while True:
            try:
                return plan()
            except MissingData as missing:
                wanted = {(r, t) for r, ts in missing.requests for t in ts}
                if wanted <= made:
                    raise DataNotAvailable(
                        "made but still not stored (deleted meanwhile by another process?): "
                        + ", ".join(f"{t} of run {r!r}" for r, t in sorted(wanted))
                        + "; load again"
                    ) from None
                self._make(missing.requests, missing.progress)
                made |= wanted

    def _check_readable(self, strict: bool = True) -> None:
        """Refuse a storage location that does not exist (naming it) on a call that
        reads it; ``strict=False`` (a load that may make data, of regular run ids) lets
        a location that does not exist yet be created by the write that follows."""
        try:
            self._storage.check_readable()
        except DataNotAvailable:
            if strict:
                raise

    @accepts_aliases
    @_load_doc
    def get_dataset(
        self,
        run_id_or_ids: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        *,
        columns: Sequence[str] | None = None,
        time_range: tuple[int, int] | None = None,
        seconds_range: tuple[float, float] | None = None,
        time_within: np.void | np.ndarray | None = None,
        selection: str | Sequence[str] | None = None,
        check_lineage: bool = True,
        version: int | None = None,
        combining: bool = False,
        make: bool | None = None,
        progress: bool | None = None,
        chunks: str | int = "auto",
        run_id: str | Sequence[str] | None = None,
    ) -> xr.Dataset:
        """A **lazy** ``xarray.Dataset`` of ``targets`` (one data kind).

        One dask-backed variable per field (field titles as ``long_name``/``units``),
        the row dimension named after the data kind, and a ``subrun`` coordinate
        indexing ``ds.attrs["subruns"]`` (in memory and indexed: ``ds.groupby("subrun")``
        groups lazily, ``ds.sel(subrun=k)`` gives subrun ``k``'s rows with their exact int64
        times). The rows are read only when computed; data that is not stored is made
        first, as the ``make`` parameter says ({make_rule}).

        Parameters
        ----------
        {parameters}
        chunks : "auto", "stored" or int, default "auto"
            The dask blocks: ``"auto"`` about dask's ``array.chunk-size`` of rows each,
            across stored chunks and subruns; ``"stored"`` one block per stored chunk;
            an int, rows per block; a size such as ``"64MiB"``.

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        {raises}

        Examples
        --------
        >>> import tempfile, dastrax
        >>> from dastrax.testutils import Records, Peaks
        >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
        ...                      progress=False)
        >>> st.make(["0", "1"], "peaks")
        >>> for run in ("0", "1"):
        ...     st.write_run_metadata(run, {{"start": 0, "end": 10}})
        >>> ds = st.get_dataset(["0", "1"], "peaks", columns=["area"])
        >>> int(ds.sizes["peaks"]), float(ds.area.sum())
        (200, 200.0)
        """
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, _given(run_id))
        kwargs = _load_kwargs(locals(), "chunks")
        res, req = self._load(run_id_or_ids, targets, kwargs)
        return res.dataset(req.columns, run_id_or_ids, chunks)

    @accepts_aliases
    @_load_doc
    def get_array(
        self,
        run_id_or_ids: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        *,
        columns: Sequence[str] | None = None,
        time_range: tuple[int, int] | None = None,
        seconds_range: tuple[float, float] | None = None,
        time_within: np.void | np.ndarray | None = None,
        selection: str | Sequence[str] | None = None,
        check_lineage: bool = True,
        version: int | None = None,
        combining: bool = False,
        make: bool | None = None,
        progress: bool | None = None,
        add_run_id_field: bool = True,
        run_id: str | Sequence[str] | None = None,
    ) -> np.ndarray:
        """``targets`` of one or several runs as one numpy structured array.

        Several run ids are concatenated in order, with an extra ``run_id`` field;
        several targets of one data kind are merged column-wise. Data that is not stored
        is made (and stored) first, as the ``make`` parameter says ({make_rule}).

        Parameters
        ----------
        {parameters}
        add_run_id_field : bool, default True
            With several run ids (a list), add the ``run_id`` field; False leaves it out.

        Returns
        -------
        numpy.ndarray
            A structured array, rows in time order (run by run).

        Raises
        ------
        {raises}

        Examples
        --------
        >>> import tempfile, dastrax
        >>> from dastrax.testutils import Records, Peaks
        >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
        ...                      progress=False)
        >>> arr = st.get_array("0", "peaks", columns=["area"], time_range=(0, 5))
        >>> len(arr), arr.dtype.names
        (50, ('time', 'length', 'dt', 'area'))
        """
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, _given(run_id))
        kwargs = _load_kwargs(locals(), "add_run_id_field")
        res, req = self._load(run_id_or_ids, targets, kwargs)
        labels = not isinstance(run_id_or_ids, str) and add_run_id_field
        return res.array(self._scheduler, req.columns, labels, self._progress(req.progress))

    @accepts_aliases
    @_load_doc
    def get_df(
        self,
        run_id_or_ids: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        *,
        columns: Sequence[str] | None = None,
        time_range: tuple[int, int] | None = None,
        seconds_range: tuple[float, float] | None = None,
        time_within: np.void | np.ndarray | None = None,
        selection: str | Sequence[str] | None = None,
        check_lineage: bool = True,
        version: int | None = None,
        combining: bool = False,
        make: bool | None = None,
        progress: bool | None = None,
        add_run_id_field: bool = True,
        run_id: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Like :meth:`get_array`, as a pandas DataFrame (multi-dimensional fields such
        as waveforms are left out). Data that is not stored is made first, as the
        ``make`` parameter says ({make_rule}).

        Parameters
        ----------
        {parameters}
        add_run_id_field : bool, default True
            With several run ids (a list), add the ``run_id`` column; False leaves it out.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        {raises}

        Examples
        --------
        >>> import tempfile, dastrax
        >>> from dastrax.testutils import Records, Peaks
        >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
        ...                      progress=False)
        >>> st.get_df("0", "peaks", selection="channel < 3").shape
        (30, 5)
        """
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, _given(run_id))
        arr = self.get_array(run_id_or_ids, targets, **_load_kwargs(locals()))
        return pd.DataFrame({n: arr[n] for n in arr.dtype.names or () if arr[n].ndim == 1})

    @accepts_aliases
    @_load_doc
    def get_iter(
        self,
        run_id_or_ids: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        *,
        columns: Sequence[str] | None = None,
        time_range: tuple[int, int] | None = None,
        seconds_range: tuple[float, float] | None = None,
        time_within: np.void | np.ndarray | None = None,
        selection: str | Sequence[str] | None = None,
        check_lineage: bool = True,
        version: int | None = None,
        combining: bool = False,
        make: bool | None = None,
        progress: bool | None = None,
        run_id: str | Sequence[str] | None = None,
    ) -> Iterator[Chunk]:
        """Iterate over :class:`Chunk` s of ``targets``: one per stored chunk (cut to the
        time range and the superrun's ranges), in time order. Data that is not stored is
        made first, when the iterator is created, as the ``make`` parameter says
        ({make_rule}).

        Parameters
        ----------
        {parameters}

        Returns
        -------
        iterator of Chunk
            Each with ``.data``, ``.start``, ``.end``, ``.run_id``, ``.subruns``,
            ``.data_type``.

        Raises
        ------
        {raises}

        Examples
        --------
        >>> import tempfile, dastrax
        >>> from dastrax.testutils import Records, Peaks
        >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
        ...                      progress=False)
        >>> [len(c.data) for c in st.get_iter("0", "peaks")][:3]
        [10, 10, 10]
        """
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, _given(run_id))
        res, req = self._load(run_id_or_ids, targets, _load_kwargs(locals()))
        return res.iter_chunks(self._scheduler, req.columns)

    # -- runs -------------------------------------------------------------------------
    def write_run_metadata(self, run_id: str, doc: dict[str, Any]) -> None:
        """Write the run document of regular run ``run_id`` (replacing one stored).

        Parameters
        ----------
        run_id : str
            A regular run id (superrun documents come from :meth:`define_run`).
        doc : dict
            ``start`` and ``end`` (ns since the epoch as ints, or datetimes; naive ones are
            UTC) and any other fields: ``livetime`` (s; default end - start), ``mode``,
            ``source``, ``tags``, ``comments``...

        Returns
        -------
        None

        Raises
        ------
        InvalidRunName
            A run id that is not allowed, or a superrun id.
        RunMetadataNotAvailable
            A document without ``start``/``end``, or with times that are no times.
        InvalidRequest
            No writable storage keeps run documents.

        Examples
        --------
        >>> st.write_run_metadata("3", {"start": 60, "end": 70, "mode": "kr83m"})
        >>> st.run_metadata("3")["livetime"]
        1e-08
        """
        self._catalog.write_run_metadata(run_id, doc)

    def run_metadata(
        self, run_id: str, projection: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The run document of ``run_id`` (superruns: as made by :meth:`define_run`).

        Parameters
        ----------
        run_id : str
            A run or superrun id (``bytes`` are decoded).
        projection : str or list of str, optional
            Only these fields, as strax's ``run_metadata(run_id, projection=...)``.

        Returns
        -------
        dict
            ``name``, ``start`` and ``end`` (int ns since the epoch), ``livetime`` (float
            seconds), ``mode``, ``source``, ``tags``, ``comments``, the document's other
            fields; superruns add ``sub_run_spec``.

        Raises
        ------
        RunMetadataNotAvailable
            No run document (a superrun that is not defined).
        DataNotAvailable
            The storage does not exist.
        InvalidRunName
            A run id that is not allowed.

        Examples
        --------
        >>> doc = st.run_metadata("1")
        >>> doc["start"], doc["end"], doc["livetime"]
        (20, 30, 1e-08)
        """
        self._check_readable()
        doc = self._catalog.run_metadata(run_id_of(run_id))
        if projection is None:
            return doc
        fields = [projection] if isinstance(projection, str) else list(projection)
        return {k: doc[k] for k in fields if k in doc}

    def define_run(
        self, name: str, data: SuperrunData, from_run: str | None = None, overwrite: bool = False
    ) -> dict[str, Any]:
        """Define superrun ``name`` from runs, time ranges, or rows; return its document.

        The same spec again is a no-op; a different one needs ``overwrite=True``.
        Subruns may be superruns (flattened); the same stretch of data may not appear
        twice.

        Parameters
        ----------
        name : str
            The superrun's name; it must start with ``_``.
        data : list, dict, numpy record array or pandas.DataFrame
            A list of run ids (each whole); a dict ``{run_id: "all" or [(start, end),
            ...]}`` of ns time ranges; or rows with ``time`` and ``endtime`` (or
            ``length``, ``dt``) and ``run_id`` (or ``from_run=``), whose intervals make
            the superrun (minimum bias).
        from_run : str, optional
            The run all rows come from, when they have no ``run_id``.
        overwrite : bool, default False
            Redefine an existing superrun with another spec (deleting its stored data).

        Returns
        -------
        dict
            The superrun's run document (``start``, ``end``, ``livetime`` = the sum of
            its ranges' durations, merged ``mode``/``source``/``tags``/``comments``,
            ``sub_run_spec``).

        Raises
        ------
        InvalidRunName
            A name without the leading ``_``, or a bad run id.
        RunMetadataNotAvailable
            A subrun without a run document.
        SuperrunDefinitionError
            Overlapping ranges, ranges outside a subrun, a cycle, or another spec without
            ``overwrite=True``.
        DataNotAvailable
            The storage does not exist.

        Examples
        --------
        >>> st.define_run("_first_two", ["0", "1"])["livetime"]
        2e-08
        >>> st.define_run("_middle", {"1": [(22, 26)]})["livetime"]
        4e-09
        """
        self._check_readable()
        doc = self._catalog.define(name, data, from_run, overwrite)
        self._resolver.write_manifest(name)
        return doc

    def extend_superrun(
        self, name: str, data: SuperrunData, from_run: str | None = None
    ) -> dict[str, Any]:
        """Add subruns to superrun ``name``; returns the new document.

        A persisted superrun keeps its stored chunks: the next :meth:`persist_superrun`
        appends only the new rows. On an IcechunkRepository it is a new version.

        Parameters
        ----------
        name : str
            A defined superrun.
        data : list, dict, numpy record array or pandas.DataFrame
            The new subruns, in the forms of :meth:`define_run`; they must not overlap the
            superrun.
        from_run : str, optional
            The run all rows come from, when they have no ``run_id``.

        Returns
        -------
        dict
            The extended superrun's run document.

        Raises
        ------
        RunMetadataNotAvailable
            The superrun is not defined, or a new subrun has no run document.
        SuperrunDefinitionError
            A new subrun overlaps the superrun.
        DataNotAvailable
            The storage does not exist.

        Examples
        --------
        >>> _ = st.define_run("_growing", ["0"])
        >>> sorted(st.extend_superrun("_growing", ["2"])["sub_run_spec"])
        ['0', '2']
        """
        self._check_readable()
        doc = self._catalog.extend(name, data, from_run)
        self._resolver.write_manifest(name)
        return doc

    def superrun_versions(self, name: str) -> pd.DataFrame:
        """The versions of superrun ``name``: every definition, redefinition and extension
        (IcechunkRepository); load one with ``version=N`` or ``"name@N"``.

        Parameters
        ----------
        name : str
            A superrun.

        Returns
        -------
        pandas.DataFrame
            ``version, time, commit, subruns, livetime, stored``.

        Raises
        ------
        InvalidRequest
            The storage keeps no versions (not an IcechunkRepository).
        RunMetadataNotAvailable
            The superrun was never defined.
        DataNotAvailable
            The storage does not exist.

        Examples
        --------
        >>> st.superrun_versions("_first_two")  # a ZarrDirectory keeps no versions
        Traceback (most recent call last):
        ...
        dastrax.errors.InvalidRequest: ...
        """
        self._check_readable()
        return versions.superrun_versions(self._resolver, name)

    def list_runs(self) -> list[str]:
        """Every run id with a run document, superruns included.

        Returns
        -------
        list of str

        Raises
        ------
        DataNotAvailable
            The storage does not exist.

        Examples
        --------
        >>> st.list_runs()[:3]
        ['0', '1', '2']
        """
        self._check_readable()
        return self._catalog.list_runs()

    def select_runs(
        self,
        available: str | Sequence[str] = (),
        run_mode: str | None = None,
        include_tags: str | Sequence[str] | None = None,
        exclude_tags: str | Sequence[str] | None = None,
        run_id: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """A table of the runs: one row per run document, superruns included.

        Parameters
        ----------
        available : str or sequence of str, optional
            Data types: adds a ``<type>_available`` column, true where the data of the
            current lineage is stored.
        run_mode : str, optional
            Only runs of this mode (glob pattern).
        include_tags : str or list of str, optional
            Only runs with one of these tags (glob patterns).
        exclude_tags : str or list of str, optional
            Leave out runs with one of these tags.
        run_id : str or list of str, optional
            Only the runs matching it: a run id or pattern such as ``"0*"``, or a list
            of them, as in strax.

        Returns
        -------
        pandas.DataFrame
            ``name, number, mode, source, tags, livetime`` (a timedelta, as strax's),
            ``start`` and ``end`` (UTC timestamps), and the availability columns.

        Raises
        ------
        DataNotAvailable
            The storage does not exist.

        Examples
        --------
        >>> table = st.select_runs(available="peaks")
        >>> row = table.set_index("name").loc["0"]
        >>> row["livetime"].total_seconds(), bool(row["peaks_available"])
        (1e-08, True)
        """
        self._check_readable()
        table = self._catalog.select_runs(run_mode, include_tags, exclude_tags)
        if run_id is not None:
            given = [run_id] if isinstance(run_id, (str, bytes)) else list(run_id)
            patterns = [str(p) for p in run_ids_of(given)]
            keep = [any(fnmatch.fnmatchcase(str(n), p) for p in patterns) for n in table["name"]]
            table = table[keep].reset_index(drop=True)
        for dt in (available,) if isinstance(available, str) else available:
            table[f"{dt}_available"] = [self.is_stored(r, dt) for r in table["name"]]
        return table

    def scan_runs(self) -> pd.DataFrame:
        """strax's run table: one row per run with a run document (as
        :meth:`select_runs`) and per run id that has only stored data (its ``name``;
        other columns empty), sorted by name.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        DataNotAvailable
            The storage does not exist (the error names it).

        Examples
        --------
        >>> st.scan_runs()["name"].tolist()[:3]
        ['0', '1', '2']
        """
        self._check_readable()
        table = self._catalog.select_runs(None, None, None)
        known = set(table["name"])
        extra = sorted(r for r in self._stored_run_ids() if r not in known)
        if extra:
            table = pd.concat([table, pd.DataFrame({"name": extra})], ignore_index=True)
        return table.sort_values("name", kind="stable").reset_index(drop=True)

    def _stored_run_ids(self) -> set[str]:
        out: set[str] = set()
        for f in self._storage:
            try:
                keys = f.keys("")
            except DataNotAvailable:
                continue
            out.update(k.split("-", 1)[0] for k in keys if k.count("-") == 2)
        return out

    def list_available(self, target: str) -> list[str]:
        """The run ids (of :meth:`scan_runs`) whose ``target`` of the current lineage is
        stored, as strax's ``list_available``.

        Parameters
        ----------
        target : str
            A data type.

        Returns
        -------
        list of str

        Raises
        ------
        DataNotAvailable
            The storage does not exist.

        Examples
        --------
        >>> st.list_available("peaks")[:3]
        ['0', '1', '2']
        """
        return [r for r in self.scan_runs()["name"] if self.is_stored(r, target)]

    @accepts_aliases
    def persist_superrun(
        self,
        name: str,
        targets: str | Sequence[str],
        chunk_target_size_mb: float | None = None,
        *,
        progress: bool | None = None,
        overwrite: bool = False,
        make: bool = True,
        combining: bool = False,
    ) -> list[DataKey]:
        """Rechunk superrun ``name``'s ``targets`` and store them as a run of their own.

        Several targets of one data kind share chunk boundaries. Later loads of the
        superrun read that store alone. Streams: memory stays bounded by a few chunks
        per worker.

        Parameters
        ----------
        name : str
            A defined superrun (``"_..."``).
        targets : str or list of str
            Data type(s) of one data kind.
        chunk_target_size_mb : float, optional
            Uncompressed MB (10^6 bytes) per stored chunk; default: the context option.
        progress : bool, optional
            Show a progress bar (stderr, on a terminal); default: the context option.
            ``progress_bar=`` is accepted.
        overwrite : bool, default False
            Replace a stored copy; the old one goes only once the new one is committed.
        make : bool, default True
            Make missing subrun data first; False refuses (``DataNotAvailable`` naming
            the lineages that are stored).
        combining : bool, default False
            For plugins that allow superruns: store the concatenation of the subruns'
            data (under a key of its own) instead of the data computed over the join.

        Returns
        -------
        list of DataKey
            The keys written (or found stored).

        Raises
        ------
        InvalidRunName
            ``name`` is not a superrun name.
        RunMetadataNotAvailable
            The superrun is not defined.
        LineageMismatch
            Its subruns' lineages differ (one store, one lineage).
        DataNotAvailable
            Missing subrun data with ``make=False``.
        InvalidRequest
            Targets of several data kinds; a non-positive chunk size; a partly stored
            superrun without ``overwrite``.

        Examples
        --------
        >>> import tempfile, dastrax
        >>> from dastrax.testutils import Records, Peaks
        >>> st = dastrax.Context(storage=tempfile.mkdtemp(), register=[Records, Peaks],
        ...                      progress=False)
        >>> st.make("0", "peaks")
        >>> st.set_config({"time_offset": 10})  # run 1 follows run 0
        >>> st.make("1", "peaks")
        >>> st.write_run_metadata("0", {"start": 0, "end": 10})
        >>> st.write_run_metadata("1", {"start": 10, "end": 20})
        >>> _ = st.define_run("_both", ["0", "1"])
        >>> [str(k).split("-")[:2] for k in st.persist_superrun("_both", "peaks")]
        [['_both', 'peaks']]
        """
        validate_superrun_name(name)
        self._check_readable()
        targets = validate_targets(targets)
        size = self.context_config["chunk_target_size_mb"]
        size = settings.check_context_options(
            {"chunk_target_size_mb": size if chunk_target_size_mb is None else chunk_target_size_mb}
        )
        compressor = normalize_compressor(self.context_config["compressor"])
        return self._planned(
            lambda: joined.persist_superrun(
                *(self._resolver, self._scheduler, name, targets, size["chunk_target_size_mb"]),
                *(compressor, self._progress(progress)),
                overwrite=overwrite,
                make=make,
                combining=combining,
            )
        )

    # -- strax's introspection --------------------------------------------------------
    def check_superrun(self) -> list[tuple[str, str]]:
        """Data types that cannot be asked for a superrun without ``combining=True``: their
        plugin does not allow superruns but depends on one that does.

        Returns
        -------
        list of (str, str)
            ``(data_type, allowing dependency)`` pairs.

        Raises
        ------
        DataNotAvailable
            A registered plugin depends on a data type nothing provides.

        Examples
        --------
        >>> st.check_superrun()
        []
        """
        return joined.conflicts(self._registry)

    def show_config(self, data_type: str | None = None) -> pd.DataFrame:
        """The options of the registered plugins (of ``data_type`` and its dependencies).

        Parameters
        ----------
        data_type : str, optional
            Only the options that apply to this type; default all plugins.

        Returns
        -------
        pandas.DataFrame
            ``option, default, current, applies_to, help``.

        Raises
        ------
        DataNotAvailable
            A data type no registered plugin provides.

        Examples
        --------
        >>> int(st.show_config("peaks").set_index("option").loc["bonus_area", "default"])
        0
        """
        return introspect.show_config(self._registry, data_type)

    def search_field(self, pattern: str) -> pd.DataFrame:
        """Fields of the registered data types whose name matches ``pattern``.

        Parameters
        ----------
        pattern : str
            A glob pattern (``"area*"``).

        Returns
        -------
        pandas.DataFrame
            ``field, data_type`` and the fields' ``Data type`` and ``Comment``.

        Raises
        ------
        DataNotAvailable
            A registered plugin depends on a data type nothing provides.

        Examples
        --------
        >>> st.search_field("area*")["field"].tolist()
        ['area', 'area_per_channel']
        """
        return introspect.search_field(self._registry, pattern)

    def data_info(self, data_type: str) -> pd.DataFrame:
        """The fields of ``data_type``.

        Parameters
        ----------
        data_type : str
            A registered data type.

        Returns
        -------
        pandas.DataFrame
            ``Field name, Data type, Comment`` (the field's title), as strax's.

        Raises
        ------
        DataNotAvailable
            A data type no registered plugin provides.

        Examples
        --------
        >>> st.data_info("peaks")["Field name"].tolist()[:3]
        ['time', 'length', 'dt']
        """
        return introspect.data_info(self._registry, data_type)

    def lineage(self, run_id: str, data_type: str) -> dict[str, Any]:
        """The lineage of ``data_type`` of ``run_id``: ``{data_type: (plugin class name,
        version, {tracked option: value})}`` over the type and its dependencies.

        Parameters
        ----------
        run_id : str
            A run or superrun id.
        data_type : str
            The data type.

        Returns
        -------
        dict

        Raises
        ------
        InvalidRunName
            A run id that is not allowed.
        DataNotAvailable
            A data type no registered plugin provides and that is not stored.

        Examples
        --------
        >>> sorted(st.lineage("0", "peaks"))
        ['peaks', 'records']
        """
        return self.key_for(run_id, data_type).lineage

    # -- display ----------------------------------------------------------------------
    def __repr__(self) -> str:
        return display.context_repr(self)

    def _repr_html_(self) -> str:
        return display.context_html(self)

    def superrun_summary(self, name: str) -> pd.DataFrame:
        """A table of superrun ``name``'s flattened subruns.

        Parameters
        ----------
        name : str
            A defined superrun.

        Returns
        -------
        pandas.DataFrame
            ``run_id, whole, n_ranges, ranges, start, end, livetime`` (seconds); the total
            livetime in ``.attrs["livetime"]``.

        Raises
        ------
        RunMetadataNotAvailable
            The superrun is not defined.

        Examples
        --------
        >>> st.superrun_summary("_first_two")["run_id"].tolist()
        ['0', '1']
        """
        return display.superrun_table(self, name)

    def show_superrun(self, name: str, targets: Sequence[str] = ()) -> display.SuperrunView:
        """A view of a superrun for notebooks: its subruns, ranges and what is stored (HTML in
        Jupyter, text elsewhere).

        Parameters
        ----------
        name : str
            A defined superrun.
        targets : sequence of str, optional
            Data types whose stored state to show.

        Returns
        -------
        SuperrunView

        Raises
        ------
        RunMetadataNotAvailable
            The superrun is not defined.

        Examples
        --------
        >>> print(repr(st.show_superrun("_first_two", ["peaks"])).splitlines()[0])
        <superrun _first_two: 2 subruns, ... livetime 2e-08 s>
        """
        return display.SuperrunView(self, name, targets)


def _check_combining(run_id_or_ids: str | Sequence[str], combining: bool) -> None:
    """``combining=True`` is for superruns: refused for a regular run, as strax does."""
    if not combining:
        return
    runs = [run_id_or_ids] if isinstance(run_id_or_ids, str) else list(run_id_or_ids)
    regular = [r for r in runs if isinstance(r, str) and not is_superrun_id(r)]
    if regular:
        raise InvalidRequest(
            f"combining=True concatenates the subruns of a superrun, but {regular[0]!r} is a "
            "regular run; drop combining=True"
        )

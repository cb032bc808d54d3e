"""The Context: strax's user-facing API, a thin façade that wires plugins (registry),
storage, run documents (catalog), the resolver, the maker, the persister and the
scheduler together. It holds no algorithm of its own."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd

from . import display, introspect, joined, settings, versions
from .catalog import Catalog
from .chunks import Chunk
from .config import load_config
from .errors import DataNotAvailable, InvalidRequest, LineageMismatch
from .lineage import DataKey
from .names import is_superrun_id, validate_data_type, validate_superrun_name, validate_targets
from .processing import make_runs, plan_run
from .registry import PluginRegistry
from .requests import first_arguments, load_request, run_ids_of
from .resolver import Resolver
from .scheduling import Scheduler
from .storage import StorageList, normalize_compressor

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr

__all__ = ["Context"]


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
        Context options (:data:`dastrax.settings.SETTINGS`): ``write_superruns``,
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
        self, storage=None, register=None, config: dict | None = None, client=None, **context_config
    ):
        self._storage = StorageList(storage)
        self._catalog = Catalog(self._storage)
        self._registry = PluginRegistry()
        self._resolver = Resolver(self._registry, self._storage, self._catalog, self._make)
        self.context_config = settings.context_defaults()
        self._client = client
        self._scheduler_obj: Scheduler | None = None
        self.set_context_config(context_config)
        if register:
            self.register(register)
        if config:
            self.set_config(config)

    @classmethod
    def from_config(cls, path: str | None = None, **overrides) -> Context:
        """A context from a TOML configuration file (see ``conf/dastrax.toml``); ``path``
        defaults to ``$DASTRAX_CONFIG``, then the packaged defaults; keyword arguments
        override the file (``storage=...``, ``scheduler=...``)."""
        client = overrides.pop("client", None)
        return cls(**load_config(path, **overrides).context_kwargs(client))

    # -- configuration ----------------------------------------------------------------
    @property
    def storage(self) -> list:
        """The storage frontends, in search order; assignable, as in strax
        (``st.storage = [dastrax.DataDirectory(path)]``)."""
        return self._storage.frontends

    @storage.setter
    def storage(self, value) -> None:
        self._storage = StorageList(value)
        self._catalog = Catalog(self._storage)
        self._resolver = Resolver(self._registry, self._storage, self._catalog, self._make)

    @property
    def config(self) -> dict:
        """The plugin option values set on this context."""
        return self._registry.config

    def register(self, plugin_cls) -> None:
        """Register a plugin class, or a list of them."""
        self._registry.register(plugin_cls)

    def set_config(self, config: dict) -> None:
        """Update plugin option values (checked against the options' types now)."""
        self._registry.set_config(config)

    def set_context_config(self, context_config: dict) -> None:
        """Update context options (see the class docstring); each is validated."""
        checked = settings.check_context_options(context_config)
        self.context_config.update(checked)
        self._registry.use_per_run_defaults = bool(self.context_config["use_per_run_defaults"])
        if "scheduler" in checked:
            self._scheduler_obj = None

    def new_context(self, **context_config) -> Context:
        """A copy of this context with some context options changed."""
        new = copy.copy(self)
        new._registry = copy.deepcopy(self._registry)
        new._resolver = Resolver(new._registry, new._storage, new._catalog, new._make)
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
    def client(self):
        """The distributed client in use, or None on dask's local schedulers."""
        return self._scheduler.client

    def _progress(self, progress) -> bool:
        return bool(self.context_config["progress"] if progress is None else progress)

    # -- keys -------------------------------------------------------------------------
    def key_for(self, run_id: str, data_type: str, combining: bool = False) -> DataKey:
        """The key naming ``data_type`` of ``run_id``: ``run_id-data_type-lineage_hash``;
        with ``combining=True`` (superruns only) the key of the concatenated subruns'
        data, not of the data computed over their join."""
        run_id = run_ids_of(run_id)
        data_type = validate_data_type(data_type)
        _check_combining(run_id, combining)
        if combining:
            return self._resolver.key(run_id, data_type)
        return joined.key(self._resolver, run_id, data_type)

    def is_stored(self, run_id: str, data_type: str, combining: bool = False) -> bool:
        """Whether complete, committed data of exactly this lineage is stored (with
        ``combining=True``: of the concatenated form, see :meth:`key_for`)."""
        try:
            return self._resolver.find(self.key_for(run_id, data_type, combining)) is not None
        except LineageMismatch:
            return False

    def get_metadata(self, run_id: str, data_type: str) -> dict:
        """The stored metadata of ``data_type`` of ``run_id``; never makes data
        (:class:`DataNotAvailable` if it is not stored)."""
        return introspect.metadata(self._resolver, self.key_for(run_ids_of(run_id), data_type))

    # -- making -----------------------------------------------------------------------
    def _make(self, requests: list[tuple[str, list[str]]], progress=None) -> list[str]:
        cfg, services = self.context_config, (self._registry, self._storage, self._scheduler)
        compressor = normalize_compressor(cfg["compressor"])
        size, progress = cfg["chunk_target_size_mb"], self._progress(progress)
        self._refuse_forbidden(requests)
        return make_runs(*services, requests, compressor, size, progress)

    def _refuse_forbidden(self, requests) -> None:
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

    def make(
        self,
        run_id_or_ids=None,
        targets=None,
        progress=None,
        combining: bool = False,
        run_id=None,
    ) -> None:
        """Make and store what is missing of ``targets`` (all runs in parallel); for a
        superrun, its subruns' data (and with ``write_superruns``, the superrun too).
        strax's spelling ``make(run_id=..., targets=...)`` works too."""
        kw = {} if run_id is None else {"run_id": run_id}
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, kw)
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
    def _load(self, run_id_or_ids, targets, kwargs):
        targets = validate_targets(targets)
        run_id_or_ids, version = versions.split_version(run_id_or_ids, kwargs.pop("version", None))
        res = versions.pinned(self._resolver, run_id_or_ids, version) if version else self._resolver
        req = load_request(run_id_or_ids, kwargs, lambda r: res.catalog.run_metadata(r)["start"])
        _check_combining(run_id_or_ids, req.combining)
        if req.columns is not None and req.check_lineage:
            introspect.check_columns(self._registry, targets, req.columns)
        return joined.resolve(res, self._scheduler, run_id_or_ids, targets, req), req

    def get_dataset(
        self,
        run_id_or_ids=None,
        targets=None,
        columns=None,
        time_range=None,
        chunks="auto",
        **kwargs,
    ) -> xr.Dataset:
        """A **lazy** ``xarray.Dataset`` of ``targets`` (one data kind): one dask-backed
        variable per field (titles as ``long_name``/``units``), the row dimension named
        after the data kind, and a ``subrun`` coordinate indexing ``ds.attrs["subruns"]``
        (in memory and indexed: ``ds.groupby("subrun")`` groups lazily, ``ds.sel(subrun=k)``
        gives subrun ``k``'s rows). Only metadata is read. ``chunks``: ``"auto"`` (dask
        blocks of about dask's ``array.chunk-size`` of rows, across stored chunks and
        subruns), an int of rows, or ``"stored"`` (one block per stored piece).

        Examples
        --------
        >>> ds = st.get_dataset("_kr_feb2019", "peaks")          # doctest: +SKIP
        >>> ds.area.groupby("subrun").mean().compute()           # doctest: +SKIP
        >>> ds.sel(subrun=0).time                                # doctest: +SKIP
        """
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, kwargs)
        kwargs.update(columns=columns, time_range=time_range)
        res, req = self._load(run_id_or_ids, targets, kwargs)
        return joined.dataset(res, req.columns, run_id_or_ids, chunks)

    def get_array(
        self, run_id_or_ids=None, targets=None, columns=None, time_range=None, **kwargs
    ) -> np.ndarray:
        """``targets`` of one or several runs as one numpy structured array: several run
        ids concatenated in order with an extra ``run_id`` field (unless
        ``add_run_id_field=False``); several targets of one data kind merged column-wise.
        Takes strax's ``keep_columns``, ``seconds_range``, ``time_within``, and
        ``run_id=..., targets=...`` too."""
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, kwargs)
        kwargs.update(columns=columns, time_range=time_range)
        res, req = self._load(run_id_or_ids, targets, kwargs)
        labels = not isinstance(run_id_or_ids, str) and req.add_run_id_field
        return joined.array(self._scheduler, res, req.columns, labels, self._progress(req.progress))

    def get_df(self, run_id_or_ids=None, targets=None, columns=None, time_range=None, **kwargs):
        """Like :meth:`get_array`, as a pandas DataFrame (multi-dimensional fields left out)."""
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, kwargs)
        arr = self.get_array(run_id_or_ids, targets, columns, time_range, **kwargs)
        return pd.DataFrame({n: arr[n] for n in arr.dtype.names if arr[n].ndim == 1})

    def get_iter(
        self, run_id_or_ids=None, targets=None, columns=None, time_range=None, **kwargs
    ) -> Iterator[Chunk]:
        """Iterate over :class:`Chunk` s: one per stored chunk (cut to ranges)."""
        run_id_or_ids, targets = first_arguments(run_id_or_ids, targets, kwargs)
        kwargs.update(columns=columns, time_range=time_range)
        res, req = self._load(run_id_or_ids, targets, kwargs)
        return joined.iter_chunks(self._scheduler, res, req.columns)

    # -- runs -------------------------------------------------------------------------
    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write the run document of regular run ``run_id`` (``start``/``end`` required)."""
        self._catalog.write_run_metadata(run_id, doc)

    def run_metadata(self, run_id: str, projection=None) -> dict:
        """The run document of ``run_id`` (superruns: as made by :meth:`define_run`);
        with ``projection`` (a field name or a list of them) only those fields, as
        strax's ``run_metadata(run_id, projection=...)``."""
        doc = self._catalog.run_metadata(run_ids_of(run_id))
        if projection is None:
            return doc
        fields = [projection] if isinstance(projection, str) else list(projection)
        return {k: doc[k] for k in fields if k in doc}

    def define_run(
        self, name: str, data, from_run: str | None = None, overwrite: bool = False
    ) -> dict:
        """Define superrun ``name`` from runs, time ranges, or rows; return its document.

        ``data`` is a list of run ids; a dict ``{run_id: "all" or [(start, end), ...]}``;
        or a record array / DataFrame with ``time`` and ``endtime`` (or ``length``, ``dt``)
        and ``run_id`` (or ``from_run=``), whose intervals make the superrun.

        Examples
        --------
        >>> st.define_run("_kr_feb2019", ["0", "1", "2"])              # doctest: +SKIP
        >>> st.define_run("_middle", {"1": [(22, 26)]})                 # doctest: +SKIP
        """
        doc = self._catalog.define(name, data, from_run, overwrite)
        self._resolver.write_manifest(name)
        return doc

    def extend_superrun(self, name: str, data, from_run: str | None = None) -> dict:
        """Add subruns to superrun ``name`` (the forms of :meth:`define_run`; they must not
        overlap it); returns the new document. A persisted superrun keeps its stored
        chunks: the next :meth:`persist_superrun` appends only the new rows."""
        doc = self._catalog.extend(name, data, from_run)
        self._resolver.write_manifest(name)
        return doc

    def superrun_versions(self, name: str) -> pd.DataFrame:
        """The versions of superrun ``name`` (IcechunkRepository): ``version, time,
        commit, subruns, livetime, stored``; load one with ``version=N`` or ``"name@N"``."""
        return versions.superrun_versions(self._resolver, name)

    def list_runs(self) -> list[str]:
        """Every run id with a run document, superruns included."""
        return self._catalog.list_runs()

    def select_runs(
        self, available=(), run_mode=None, include_tags=None, exclude_tags=None, run_id=None
    ) -> pd.DataFrame:
        """A DataFrame with one row per run (superruns included) and availability columns;
        ``run_id`` (a run id or pattern such as ``"0*"``, or a list of them) keeps the
        runs it matches, as in strax."""
        table = self._catalog.select_runs(run_mode, include_tags, exclude_tags)
        if run_id is not None:
            patterns = [run_id] if isinstance(run_id, (str, bytes)) else list(run_id)
            patterns = [str(p) for p in run_ids_of(patterns)]
            keep = [any(fnmatch.fnmatchcase(str(n), p) for p in patterns) for n in table["name"]]
            table = table[keep].reset_index(drop=True)
        for dt in (available,) if isinstance(available, str) else available:
            table[f"{dt}_available"] = [self.is_stored(r, dt) for r in table["name"]]
        return table

    def scan_runs(self) -> pd.DataFrame:
        """strax's run table: one row per run with a run document (as
        :meth:`select_runs`) and per run id that has only stored data (its ``name``;
        other columns empty), sorted by name.

        Raises
        ------
        DataNotAvailable
            The storage path does not exist (the error names it).

        Examples
        --------
        >>> st.make("0", "peaks")                                   # doctest: +SKIP
        >>> st.scan_runs()["name"].tolist()                         # doctest: +SKIP
        ['0']
        """
        self._storage.check_exists()
        table = self._catalog.select_runs(None, None, None)
        known = set(table["name"])
        extra = sorted(r for r in self._stored_run_ids() if r not in known)
        if extra:
            table = pd.concat([table, pd.DataFrame({"name": extra})], ignore_index=True)
        return table.sort_values("name", kind="stable").reset_index(drop=True)

    def _stored_run_ids(self) -> set[str]:
        out = set()
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

        Examples
        --------
        >>> st.list_available("peaks")                              # doctest: +SKIP
        ['0']
        """
        return [r for r in self.scan_runs()["name"] if self.is_stored(r, target)]

    def persist_superrun(
        self,
        name: str,
        targets,
        chunk_target_size_mb: float | None = None,
        progress: bool | None = None,
        overwrite: bool = False,
        make: bool = True,
        combining: bool = False,
    ) -> list[DataKey]:
        """Rechunk superrun ``name``'s ``targets`` and store them as a run of their own;
        returns the keys written. Several targets of one data kind share chunk boundaries.
        ``overwrite=True`` replaces a stored copy (the old one goes only once the new one
        is committed); ``make=False`` refuses missing subrun data instead of making it.
        Refuses (``LineageMismatch``) subruns whose lineages differ."""
        validate_superrun_name(name)
        targets = validate_targets(targets)
        size = self.context_config["chunk_target_size_mb"]
        size = settings.check_context_options(
            {"chunk_target_size_mb": size if chunk_target_size_mb is None else chunk_target_size_mb}
        )
        compressor = normalize_compressor(self.context_config["compressor"])
        return joined.persist_superrun(
            *(self._resolver, self._scheduler, name, targets, size["chunk_target_size_mb"]),
            *(compressor, self._progress(progress)),
            overwrite=overwrite,
            make=make,
            combining=combining,
        )

    # -- strax's introspection --------------------------------------------------------
    def check_superrun(self) -> list[tuple[str, str]]:
        """``(data_type, allowing dependency)`` pairs refused for superruns (joined.conflicts)."""
        return joined.conflicts(self._registry)

    def show_config(self, data_type: str | None = None) -> pd.DataFrame:
        """Options of the plugins (of ``data_type`` and its dependencies): option,
        default, current value, applies_to, help."""
        return introspect.show_config(self._registry, data_type)

    def search_field(self, pattern: str) -> pd.DataFrame:
        """Fields of registered data types whose name matches ``pattern`` (glob)."""
        return introspect.search_field(self._registry, pattern)

    def data_info(self, data_type: str) -> pd.DataFrame:
        """The fields of ``data_type``: name, data type, comment (its title)."""
        return introspect.data_info(self._registry, data_type)

    def lineage(self, run_id: str, data_type: str) -> dict:
        """The lineage of ``data_type`` of ``run_id``."""
        return self.key_for(run_id, data_type).lineage

    # -- display ----------------------------------------------------------------------
    def __repr__(self) -> str:
        return display.context_repr(self)

    def _repr_html_(self) -> str:
        return display.context_html(self)

    def superrun_summary(self, name: str) -> pd.DataFrame:
        """A table of superrun ``name``'s flattened subruns: ranges and livetime."""
        return display.superrun_table(self, name)

    def show_superrun(self, name: str, targets=()):
        """An HTML view of a superrun for notebooks (subruns, ranges, what is stored)."""
        return display.SuperrunView(self, name, targets)


def _check_combining(run_id_or_ids, combining: bool) -> None:
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

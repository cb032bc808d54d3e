"""The Context: strax's user-facing API, as a thin façade over registry, storage,
superruns, loader, persist and scheduler."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import loader, persist, runs
from .chunks import Chunk
from .errors import (
    ConfigError,
    DataNotAvailable,
    InvalidRequest,
    LineageMismatch,
    RunMetadataNotAvailable,
    SuperrunDefinitionError,
)
from .lineage import DataKey
from .names import is_superrun_id, validate_regular_run_id, validate_run_id, validate_superrun_name
from .processing import make_runs
from .registry import PluginRegistry
from .scheduling import Scheduler
from .sources import Resolver
from .storage import StorageList, normalize_compressor
from .superruns import flatten_arrays, normalize_spec, require_docs, superrun_document

__all__ = ["Context"]

CONTEXT_DEFAULTS: dict[str, Any] = {
    "write_superruns": False,
    "use_per_run_defaults": False,
    "chunk_target_size_mb": 200,
    "allow_incomplete": False,
    "progress": True,
    "compressor": "blosc-lz4",
    "scheduler": "threads",
}


class Context:
    """Where data is stored, which plugins make it, and how it is loaded.

    Parameters
    ----------
    storage
        A :class:`ZarrDirectory`, a path/URL, or a list of them. Reads search them in
        order; writes go to the first writable one.
    register
        Plugin classes to register.
    config
        Plugin option values, ``{option name: value}``.
    client
        A ``distributed.Client`` to run on; by default dask's threaded scheduler (or an
        active client).
    **context_config
        Context options: ``write_superruns`` (False), ``use_per_run_defaults`` (False),
        ``chunk_target_size_mb`` (200), ``allow_incomplete`` (False), ``progress`` (True),
        ``compressor`` ("blosc-lz4"), ``scheduler`` ("threads").

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
        self._registry = PluginRegistry()
        self._resolver = Resolver(self)
        self.context_config = dict(CONTEXT_DEFAULTS)
        self._client = client
        self._scheduler_obj: Scheduler | None = None
        self.set_context_config(context_config)
        if register:
            self.register(register)
        if config:
            self.set_config(config)

    @classmethod
    def from_config(cls, path: str | None = None, **overrides) -> Context:
        """A context from a TOML configuration file (see ``conf/dastrax.toml``).

        ``path`` defaults to ``$DASTRAX_CONFIG``, then the packaged default. Keyword
        arguments override the file (e.g. ``storage=...``, ``scheduler=...``).
        """
        from .config import context_from_config

        return context_from_config(path, **overrides)

    # -- configuration ----------------------------------------------------------------
    @property
    def storage(self) -> list:
        """The storage frontends, in search order."""
        return self._storage.frontends

    @property
    def config(self) -> dict:
        """The plugin option values set on this context."""
        return self._registry.config

    def register(self, plugin_cls) -> None:
        """Register a plugin class, or a list of them."""
        self._registry.register(plugin_cls)

    def set_config(self, config: dict) -> None:
        """Update plugin option values."""
        if not isinstance(config, dict):
            raise ConfigError(f"set_config takes a dict: got {type(config).__name__}")
        self._registry.config.update(config)
        self._registry._warned -= set(config)

    def set_context_config(self, context_config: dict) -> None:
        """Update context options (see the class docstring)."""
        unknown = set(context_config) - set(CONTEXT_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"unknown context options {sorted(unknown)}: known are {sorted(CONTEXT_DEFAULTS)}"
            )
        if "chunk_target_size_mb" in context_config:
            _check_chunk_size(context_config["chunk_target_size_mb"])
        if "compressor" in context_config:
            normalize_compressor(context_config["compressor"])
        self.context_config.update(context_config)
        self._registry.use_per_run_defaults = bool(self.context_config["use_per_run_defaults"])
        if "scheduler" in context_config:
            self._scheduler_obj = None

    def new_context(self, **context_config) -> Context:
        """A copy of this context with some context options changed."""
        new = copy.copy(self)
        new._registry = copy.deepcopy(self._registry)
        new._resolver = Resolver(new)
        new.context_config = dict(self.context_config)
        new.set_context_config(context_config)
        return new

    @property
    def _scheduler(self) -> Scheduler:
        if self._scheduler_obj is None:
            self._scheduler_obj = Scheduler(self.context_config["scheduler"], self._client)
        return self._scheduler_obj

    @property
    def client(self):
        """The distributed client in use, or None on dask's local scheduler."""
        return self._scheduler.client

    def _compressor(self) -> dict:
        return normalize_compressor(self.context_config["compressor"])

    def _progress(self, progress) -> bool:
        return bool(self.context_config["progress"] if progress is None else progress)

    # -- keys -------------------------------------------------------------------------
    def key_for(self, run_id: str, data_type: str) -> DataKey:
        """The key naming ``data_type`` of ``run_id``: ``run_id-data_type-lineage_hash``."""
        validate_run_id(run_id)
        if is_superrun_id(run_id):
            return self._resolver.superrun_key(run_id, data_type)
        return self._registry.key(run_id, data_type)

    def is_stored(self, run_id: str, data_type: str) -> bool:
        """Whether complete, committed data of exactly this lineage is stored."""
        try:
            key = self.key_for(run_id, data_type)
        except LineageMismatch:
            return False
        return self._storage.find(str(key)) is not None

    def get_metadata(self, run_id: str, data_type: str) -> dict:
        """The stored metadata of ``data_type`` of ``run_id``; never makes data."""
        key = self.key_for(run_id, data_type)
        found = self._storage.find(str(key))
        if found is None:
            raise DataNotAvailable(
                f"{data_type} of run {run_id!r} ({key}) is not stored; make it with "
                f"st.make({run_id!r}, {data_type!r})"
            )
        meta = {k: v for k, v in found[1].items() if not k.startswith("_")}
        meta["chunks"] = [{k: v for k, v in c.items() if k != "row_start"} for c in meta["chunks"]]
        meta["key"] = str(key)
        return meta

    # -- making -----------------------------------------------------------------------
    def _make_regular(self, requests: list[tuple[str, list[str]]], progress=None) -> list[str]:
        return make_runs(
            self._registry,
            self._storage,
            self._scheduler,
            requests,
            self._compressor(),
            self.context_config["chunk_target_size_mb"],
            self._progress(progress),
        )

    def make(self, run_id_or_ids, targets, progress: bool | None = None) -> None:
        """Make and store what is missing of ``targets`` (all runs in parallel).

        For a superrun, its subruns' data is made; with the context option
        ``write_superruns`` the superrun is then persisted too.
        """
        run_ids = [run_id_or_ids] if isinstance(run_id_or_ids, str) else list(run_id_or_ids)
        targets = [targets] if isinstance(targets, str) else list(targets)
        for t in targets:
            self._registry.plugin_class(t)
        requests: dict[str, list[str]] = {}
        superruns = []
        for r in run_ids:
            validate_run_id(r)
            if is_superrun_id(r):
                superruns.append(r)
                for sub, _ranges in self._resolver.flat(r):
                    requests.setdefault(sub, []).extend(targets)
            else:
                requests.setdefault(r, []).extend(targets)
        self._make_regular([(r, list(dict.fromkeys(t))) for r, t in requests.items()], progress)
        if self.context_config["write_superruns"]:
            for r in superruns:
                for kind_targets in self._by_kind(targets).values():
                    self.persist_superrun(r, kind_targets, progress=progress)

    def _by_kind(self, targets: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in targets:
            out.setdefault(self._registry.data_kind(t), []).append(t)
        return out

    # -- loading ----------------------------------------------------------------------
    def _resolve(self, run_id_or_ids, targets, time_range, check_lineage, kwargs, columns=None):
        check_lineage = kwargs.pop("_check_lineage_per_run_id", check_lineage)
        if kwargs:
            raise InvalidRequest(f"unexpected arguments {sorted(kwargs)}")
        if columns is not None and check_lineage:
            _check_columns(self._registry, targets, columns)  # before anything is made
        return self._resolver.resolve(run_id_or_ids, targets, time_range, check_lineage)

    def get_dataset(
        self,
        run_id_or_ids,
        targets,
        columns=None,
        time_range=None,
        check_lineage: bool = True,
        **kwargs,
    ) -> xr.Dataset:
        """A **lazy** ``xarray.Dataset`` of ``targets`` (one data kind).

        One dask-backed variable per field, the row dimension named after the data kind,
        one dask block per stored chunk (cut at time-range edges), and a ``subrun``
        coordinate indexing ``ds.attrs["subruns"]``. Only metadata is read (plus the
        time and end columns of chunks that ranges cut).

        Examples
        --------
        >>> ds = st.get_dataset("_kr_feb2019", "peaks")          # doctest: +SKIP
        >>> ds.area.where(ds.subrun == 0).mean().compute()       # doctest: +SKIP
        """
        res = self._resolve(run_id_or_ids, targets, time_range, check_lineage, kwargs, columns)
        pieces = [p for s in res.sources for p in loader.pieces_for(s)]
        cols = (
            loader.column_dtypes(res.sources, columns)
            if res.sources
            else self._empty_columns(res.targets, columns)
        )
        kind = res.data_kind
        data_vars = {}
        for name, (dt, sub) in cols.items():
            dims = [kind] + [f"{name}_dim{i}" for i in range(1, sub.ndim + 1)]
            data_vars[name] = xr.Variable(dims, loader.dask_column(pieces, name, dt, sub))
        subrun = xr.Variable([kind], loader.dask_subrun(pieces))
        ids = run_id_or_ids if isinstance(run_id_or_ids, str) else list(run_id_or_ids)
        return xr.Dataset(
            data_vars,
            coords={"subrun": subrun},
            attrs={
                "run_id": ids,
                "data_types": res.targets,
                "data_kind": kind,
                "subruns": res.subruns,
            },
        )

    def _empty_columns(self, targets, columns):
        dtype = self._registry.plugin(targets[0], "0").dtype
        return {
            n: (targets[0], dtype.fields[n][0])
            for n in dtype.names
            if columns is None or n in columns
        }

    def get_array(
        self,
        run_id_or_ids,
        targets,
        columns=None,
        time_range=None,
        check_lineage: bool = True,
        progress: bool | None = None,
        **kwargs,
    ) -> np.ndarray:
        """``targets`` of one or several runs as one numpy structured array.

        Several run ids are concatenated in order with an extra ``run_id`` field; several
        targets of one data kind are merged column-wise.
        """
        res = self._resolve(run_id_or_ids, targets, time_range, check_lineage, kwargs, columns)
        labels = not isinstance(run_id_or_ids, str)
        return _assemble(self, res, columns, labels, self._progress(progress))

    def get_df(
        self,
        run_id_or_ids,
        targets,
        columns=None,
        time_range=None,
        check_lineage: bool = True,
        progress: bool | None = None,
        **kwargs,
    ) -> pd.DataFrame:
        """Like :meth:`get_array`, as a pandas DataFrame (multi-dimensional fields left out)."""
        arr = self.get_array(
            run_id_or_ids, targets, columns, time_range, check_lineage, progress, **kwargs
        )
        return pd.DataFrame({n: arr[n] for n in arr.dtype.names if arr[n].ndim == 1})

    def get_iter(
        self,
        run_id_or_ids,
        targets,
        columns=None,
        time_range=None,
        check_lineage: bool = True,
        **kwargs,
    ) -> Iterator[Chunk]:
        """Iterate over :class:`Chunk` s: one per stored chunk (cut to ranges)."""
        res = self._resolve(run_id_or_ids, targets, time_range, check_lineage, kwargs, columns)
        if not res.sources:
            return iter(())
        cols = loader.column_dtypes(res.sources, columns)
        dtype = np.dtype([(n, sub) for n, (_dt, sub) in cols.items()])
        pieces = [p for s in res.sources for p in loader.pieces_for(s)]
        return _iter_chunks(self, pieces, cols, dtype, "+".join(res.targets))

    # -- runs -------------------------------------------------------------------------
    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write the run document of regular run ``run_id`` (``start``/``end`` required)."""
        validate_regular_run_id(run_id)
        self._storage.run_metadata_writer(run_id).write_run_metadata(
            run_id, runs.normalize_document(run_id, doc)
        )

    def run_metadata(self, run_id: str) -> dict:
        """The run document of ``run_id`` (superruns: as made by :meth:`define_run`)."""
        validate_run_id(run_id)
        try:
            doc = self._storage.run_metadata(run_id)
        except RunMetadataNotAvailable:
            if is_superrun_id(run_id):
                raise RunMetadataNotAvailable(
                    f"superrun {run_id} is not defined; define it with "
                    f"st.define_run({run_id!r}, [...])"
                ) from None
            raise
        return runs.complete_document(doc)

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
        >>> st.define_run("_minbias", events, from_run="2")             # doctest: +SKIP
        """
        validate_superrun_name(name)
        if from_run is not None:
            validate_run_id(from_run)
        spec = normalize_spec(data, from_run)
        require_docs(spec, self.run_metadata, name)
        flat = flatten_arrays(spec, self.run_metadata, (name,))
        writer = self._storage.run_metadata_writer()
        # compact specs need run attachments (storage protocol); without them, store JSON
        compact = hasattr(writer, "write_run_attachment")
        doc, attachments = superrun_document(
            name, spec, flat, self.run_metadata, compact_above=1000 if compact else None
        )
        try:
            old = self._storage.run_metadata(name)
        except RunMetadataNotAvailable:
            old = None
        if old is not None:
            if old.get("sub_run_spec") == doc["sub_run_spec"]:
                return runs.complete_document(old)
            if not overwrite:
                raise SuperrunDefinitionError(
                    f"superrun {name!r} is already defined with another spec "
                    f"{old.get('sub_run_spec')}; pass overwrite=True to redefine it (this "
                    "deletes its stored data)"
                )
            self._storage.run_metadata_writer(name)  # refused if hidden by read-only storage
            for frontend in self._storage:
                if not frontend.readonly:
                    for key in frontend.keys(f"{name}-"):
                        frontend.delete(key)
        for attachment, array in attachments.items():
            writer.write_run_attachment(name, attachment, array)
        writer.write_run_metadata(name, doc)
        return runs.complete_document(doc)

    def list_runs(self) -> list[str]:
        """Every run id with a run document, superruns included."""
        return self._storage.list_runs()

    def select_runs(
        self, available=(), run_mode=None, include_tags=None, exclude_tags=None
    ) -> pd.DataFrame:
        """A DataFrame with one row per run (superruns included) and availability columns."""
        if isinstance(available, str):
            available = (available,)
        docs = [self.run_metadata(r) for r in self.list_runs()]
        table = runs.select_table(docs, run_mode, include_tags, exclude_tags)
        for dt in available:
            table[f"{dt}_available"] = [self.is_stored(r, dt) for r in table["name"]]
        return table

    def persist_superrun(
        self,
        name: str,
        targets,
        chunk_target_size_mb: float | None = None,
        progress: bool | None = None,
    ) -> list[DataKey]:
        """Rechunk superrun ``name``'s ``targets`` and store them as a run of their own.

        Returns the keys written. Several targets of one data kind share chunk boundaries.
        Refuses (``LineageMismatch``) subruns whose lineages differ.
        """
        validate_superrun_name(name)
        targets = [targets] if isinstance(targets, str) else list(dict.fromkeys(targets))
        self._registry.same_kind(targets)
        size = (
            self.context_config["chunk_target_size_mb"]
            if chunk_target_size_mb is None
            else chunk_target_size_mb
        )
        _check_chunk_size(size)
        self.run_metadata(name)
        return persist.persist_superrun(self, name, targets, size, self._progress(progress))

    # -- display ----------------------------------------------------------------------
    def __repr__(self) -> str:
        plugins = ", ".join(sorted(self._registry.plugins)) or "none"
        where = ", ".join(f.url for f in self._storage) or "no storage"
        return f"<dastrax.Context storage=[{where}] data types=[{plugins}] {self._scheduler}>"

    def _repr_html_(self) -> str:
        from .display import context_html

        return context_html(self)

    def superrun_summary(self, name: str) -> pd.DataFrame:
        """A table of superrun ``name``'s flattened subruns: ranges and livetime."""
        from .display import superrun_table

        return superrun_table(self, name)

    def show_superrun(self, name: str, targets=()):
        """An HTML view of a superrun for notebooks (subruns, ranges, what is stored)."""
        from .display import SuperrunView

        return SuperrunView(self, name, targets)


def _check_columns(registry, targets, columns) -> None:
    """Refuse ``columns`` that no plugin of ``targets`` provides (stored data of the
    requested lineage has exactly the plugins' fields)."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    names = [n for t in targets for n in registry.plugin(t, "0").dtype.names]
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise InvalidRequest(
            f"unknown columns {unknown} for {', '.join(targets)}: available are "
            f"{list(dict.fromkeys(names))}"
        )


def _check_chunk_size(size) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not size > 0:
        raise InvalidRequest(f"chunk_target_size_mb must be a positive number: got {size!r}")


def _run_id_width(res) -> int:
    return max([len(s.label) for s in res.sources] + [1])


def _assemble(ctx: Context, res, columns, labels: bool, progress: bool) -> np.ndarray:
    """The numpy result of a load: allocated once, filled by the scheduler's tasks."""
    cols = (
        loader.column_dtypes(res.sources, columns)
        if res.sources
        else ctx._empty_columns(res.targets, columns)
    )
    fields = [(n, sub) for n, (_dt, sub) in cols.items()]
    if labels:
        fields.append(("run_id", f"<U{_run_id_width(res)}"))
    dtype = np.dtype(fields)
    pieces = [p for s in res.sources for p in loader.pieces_for(s)]
    return loader.assemble(
        ctx._scheduler, pieces, cols, dtype, labels, progress, f"loading {'+'.join(res.targets)}"
    )


def _iter_chunks(ctx, pieces, cols, dtype, data_type) -> Iterator[Chunk]:
    import dask

    tasks = [
        dask.delayed(loader.read_task, pure=False)(loader.Opaque([p]), cols, dtype, False)
        for p in pieces
    ]
    for p, data in zip(pieces, ctx._scheduler.iter_ordered(tasks)):
        if p.source.stored:  # the stored chunk's subruns, cut like the chunk itself
            subruns, run_id = _cut_subruns(p.subruns, p.start, p.end), p.source.run_id
        elif is_superrun_id(p.source.label):  # a subrun's chunk, as part of the superrun
            subruns = {p.source.run_id: {"start": p.start, "end": p.end}}
            run_id = p.source.label
        else:
            subruns, run_id = None, p.source.run_id
        yield Chunk(data, p.start, p.end, run_id, data_type, subruns)


def _cut_subruns(subruns: dict | None, start: int, end: int) -> dict | None:
    """``subruns`` of a stored chunk restricted to ``[start, end)`` (a time range's cut)."""
    if subruns is None:
        return None
    out = {}
    for sub, r in subruns.items():
        s, e = max(r["start"], start), min(r["end"], end)
        if s < e:
            out[sub] = {"start": s, "end": e}
    return out

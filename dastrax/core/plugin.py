"""Plugins and their options: what turns one data type into another, chunk by chunk."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from dastrax.core.chunks import endtime
from dastrax.errors import ConfigError, PluginError, RunMetadataNotAvailable, advice

__all__ = ["Option", "Plugin", "endtime"]

#: the default of an option that has none (it must be set in the config)
NO_DEFAULT = object()
_NO_DEFAULT = NO_DEFAULT


class Option:
    """A configurable value of a plugin.

    Parameters
    ----------
    default
        Value used when the context config does not set it.
    default_per_run
        ``[(run_id, value), ...]``: used only when the context option
        ``use_per_run_defaults`` is on. A run takes the value of the last entry whose
        run id is at or before it (integers compared as integers).
    track
        Whether the value is part of the lineage (and so of the storage key).
    type
        A type (or tuple of types) the value must have. Without it, an option whose
        default is a number takes only numbers (``int`` or ``float``).
    help
        What the option does.

    Examples
    --------
    >>> class Peaks(Plugin):
    ...     bonus_area = Option(default=0, help="added to every area")
    """

    def __init__(
        self,
        default: Any = _NO_DEFAULT,
        default_per_run: list[tuple[str, Any]] | None = None,
        track: bool = True,
        type: type | tuple[type, ...] | None = None,  # noqa: A002 - strax's name
        help: str = "",  # noqa: A002
    ):
        self.default = default
        self.default_per_run = [tuple(x) for x in default_per_run] if default_per_run else None
        self.track = track
        self.type = type
        self.help = help
        self.name: str = ""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return instance.config[self.name]

    def __repr__(self) -> str:
        return f"Option({self.name!r}, default={self.default!r}, track={self.track})"

    def resolve(self, run_id: str, config: dict, use_per_run_defaults: bool, plugin: str):
        """The value of this option for ``run_id``, with its precedence rules applied."""
        if self.name in config:
            value = config[self.name]
        elif use_per_run_defaults and self.default_per_run:
            value = per_run_default(self.default_per_run, run_id, self.default)
            if value is _NO_DEFAULT:
                raise ConfigError(
                    f"option {self.name!r} of plugin {plugin} has no value for run {run_id!r}: "
                    "add it to default_per_run or set it with set_config"
                )
        elif self.default is not _NO_DEFAULT:
            value = self.default
        else:
            raise ConfigError(
                f"option {self.name!r} of plugin {plugin} has no default: "
                f"{advice('set_option', option=self.name)}"
            )
        return self.check(value, plugin)

    def check(self, value, plugin: str = ""):
        """``value`` if it has the option's ``type`` (numpy integers count as ``int``,
        numpy floats as ``float``), else :class:`ConfigError`."""
        expected = self.type if self.type is not None else _type_of_default(self.default)
        if expected is None or _has_type(value, expected):
            return value
        of = f" of plugin {plugin}" if plugin else ""
        raise ConfigError(
            f"option {self.name!r}{of} must be of type {_type_name(expected)}: got {value!r} "
            f"({type(value).__name__})"
        )


def _type_of_default(default):
    """The types an option without ``type`` takes: numbers, if its default is one."""
    import numbers

    if isinstance(default, numbers.Real) and not isinstance(default, bool):
        return (int, float)
    return None


def _has_type(value, types) -> bool:
    import numbers

    types = types if isinstance(types, tuple) else (types,)
    for t in types:
        if isinstance(value, bool) and t is not bool:
            continue
        if t is int and isinstance(value, numbers.Integral):
            return True
        if t is float and isinstance(value, numbers.Real):
            return True
        if isinstance(value, t):
            return True
    return False


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(getattr(t, "__name__", str(t)) for t in types)


def _at_or_before(a: str, b: str) -> bool:
    """``a <= b`` as run ids: as integers when both are integers, else as strings."""
    try:
        return int(a) <= int(b)
    except (TypeError, ValueError):
        return str(a) <= str(b)


def per_run_default(entries, run_id: str, default=_NO_DEFAULT):
    """The value of ``default_per_run`` entries for ``run_id`` (see :class:`Option`)."""
    value = default
    for start_run, v in entries:
        if _at_or_before(str(start_run), run_id):
            value = v
    return value


class Plugin:
    """Base class of everything that produces a data type.

    Subclasses set ``provides``, ``depends_on``, optionally ``data_kind`` (defaults, as in
    strax, to the first dependency's kind; to ``provides`` for a source plugin),
    ``__version__``, a ``dtype`` (class attribute or ``infer_dtype``), and ``compute``.
    Source plugins (``depends_on = ()``) also define ``chunk_intervals``.

    ``allow_superrun = True`` (strax 2's flag): asked for a superrun, the plugin computes
    once over the superrun's joined subruns, with ``run_id`` = the superrun and its run
    document in :meth:`run_metadata` (SEMANTICS.md, "Plugins that allow superruns").

    A plugin whose result depends on the whole run (or superrun) sets
    ``needs_summary = True`` and defines :meth:`summarize` (one chunk's partial) and
    :meth:`combine` (the partials, in time order, to one value): dastrax runs a first pass
    of ``summarize`` tasks, one per chunk, then ``combine``, and sets the result as
    ``self.summary`` before ``compute`` runs on each chunk — a dask reduction, on
    threads and on a cluster alike, with no state carried between chunks.

    ``compute`` receives one chunk: the dependencies' rows for ``[start, end)`` as keyword
    arguments named by data kind (several dependencies of one kind merged column-wise),
    and, as strax introspects its signature, ``start`` and ``end`` if it names them (or
    takes ``**kwargs``) and ``chunk_i`` if it names it. It returns a structured array of
    exactly ``dtype`` (or a dict ``{field: values}``), sorted by ``time``, inside
    ``[start, end)``.

    As in strax, ``depends_on`` may be one string, and ``data_kind`` defaults to the data
    kind of the first dependency (to ``provides`` for a source plugin). A plugin may
    provide several data types (strax's multi-output plugins): ``provides = ("a", "b")``,
    ``data_kind`` and ``dtype`` dicts keyed by data type (or ``infer_dtype`` returning
    one), and ``compute`` returning ``{"a": rows, "b": rows}``; each output is a data type
    of its own (own key, lineage and storage), and making one makes them all.

    Examples
    --------
    >>> import numpy as np, dastrax
    >>> class Doubled(dastrax.Plugin):
    ...     provides = "doubled"
    ...     depends_on = ("records",)
    ...     dtype = [("time", np.int64), ("endtime", np.int64), ("x", np.int16)]
    ...     def compute(self, records, start, end):
    ...         out = np.zeros(len(records), self.dtype)
    ...         out["time"] = records["time"]
    ...         out["endtime"] = dastrax.endtime(records)
    ...         out["x"] = 2 * records["channel"]
    ...         return out
    """

    provides: ClassVar[str | tuple[str, ...]] = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    #: set on the class; the registry sets each instance's to the kind it resolved
    data_kind: str | dict | None = None
    __version__: ClassVar[str] = "0.0.0"
    dtype: Any = None
    #: computed once over a superrun's joined subruns (strax 2's ``allow_superrun``)
    allow_superrun: ClassVar[bool] = False
    #: needs a first pass over the whole run: :meth:`summarize`, then :meth:`combine`
    needs_summary: ClassVar[bool] = False
    #: what :meth:`compute_takes` found, remembered on each class
    _compute_takes: ClassVar[tuple[bool, bool]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # strax's spellings: one dependency as a string, outputs as a list
        deps = vars(cls).get("depends_on")
        if isinstance(deps, str):
            cls.depends_on = (deps,)
        elif isinstance(deps, list):
            cls.depends_on = tuple(deps)
        provides = vars(cls).get("provides")
        if isinstance(provides, list):
            cls.provides = tuple(provides)
        if isinstance(cls.provides, tuple) and len(cls.provides) == 1:
            cls.provides = cls.provides[0]

    def __init__(self, run_id: str, config: dict[str, Any]):
        self.run_id = run_id
        self.config = config
        #: the value :meth:`combine` gave, for plugins with ``needs_summary``
        self.summary: Any = None
        self._run_doc: dict | None = None
        dtype = self.infer_dtype() if type(self).dtype is None else type(self).dtype
        if self.multi_output():
            if not isinstance(dtype, dict) or set(dtype) != set(self.provides):
                raise ConfigError(
                    f"plugin {type(self).__name__} provides {list(self.provides)}: its dtype "
                    "(or infer_dtype()) must be a dict with one dtype per data type provided"
                )
            self.dtype = {dt: to_numpy_dtype(dtype[dt]) for dt in self.provides}
        else:
            self.dtype = to_numpy_dtype(dtype)

    @classmethod
    def multi_output(cls) -> bool:
        """Whether the plugin provides several data types (``provides`` a tuple)."""
        return isinstance(cls.provides, tuple)

    @classmethod
    def outputs(cls) -> tuple[str, ...]:
        """The data types the plugin provides.

        Returns
        -------
        tuple of str

        Examples
        --------
        >>> from dastrax.testutils import Peaks
        >>> Peaks.outputs()
        ('peaks',)
        """
        return cls.provides if isinstance(cls.provides, tuple) else (cls.provides,)

    def dtype_for(self, data_type: str) -> np.dtype:
        """The dtype of ``data_type`` (one of :meth:`outputs`), as strax's ``dtype_for``.

        Parameters
        ----------
        data_type : str
            One of the plugin's outputs.

        Returns
        -------
        numpy.dtype

        Examples
        --------
        >>> from dastrax.testutils import PeakClassification
        >>> PeakClassification("0", {}).dtype_for("peak_classification").names
        ('time', 'length', 'dt', 'type')
        """
        return self.dtype[data_type] if isinstance(self.dtype, dict) else self.dtype

    # -- class-level description ------------------------------------------------------
    @classmethod
    def options(cls) -> dict[str, Option]:
        """All options of the plugin, by name (inherited ones included).

        Returns
        -------
        dict of str to Option

        Examples
        --------
        >>> from dastrax.testutils import Peaks
        >>> sorted(Peaks.options())
        ['bonus_area', 'n_channels', 'waveform_length']
        """
        found: dict[str, Option] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Option):
                    found[name] = value
        return found

    @classmethod
    def kind(cls, data_type: str | None = None) -> str:
        """The data kind of what the plugin provides, as set on the class: ``data_kind``
        or ``provides``. The registry's ``data_kind`` applies strax's default (the first
        dependency's kind).

        Parameters
        ----------
        data_type : str, optional
            For a multi-output plugin, the output; default its first.

        Returns
        -------
        str

        Examples
        --------
        >>> from dastrax.testutils import PeakClassification
        >>> PeakClassification.kind()
        'peaks'
        """
        dt = data_type or cls.outputs()[0]
        if isinstance(cls.data_kind, dict):
            return cls.data_kind.get(dt) or dt
        return cls.data_kind or dt

    @classmethod
    def compute_takes(cls) -> tuple[bool, bool]:
        """What ``compute`` takes besides its inputs, from its signature as strax reads
        it (``**kwargs`` takes ``start`` and ``end``).

        Returns
        -------
        (bool, bool)
            Whether it takes ``start`` and ``end``, and whether it takes ``chunk_i``.

        Raises
        ------
        ConfigError
            ``compute`` takes only one of ``start`` and ``end``.

        Examples
        --------
        >>> from dastrax.testutils import Peaks
        >>> Peaks.compute_takes()
        (True, False)
        """
        memo = cls.__dict__.get("_compute_takes")
        if memo is not None:
            return memo
        params: Mapping[str, inspect.Parameter]
        try:
            params = inspect.signature(cls.compute).parameters
        except (TypeError, ValueError):
            params = {}
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if ("start" in params) != ("end" in params):
            raise ConfigError(
                f"compute of plugin {cls.__name__} takes only one of start and end: "
                "take both, or neither"
            )
        out = ("start" in params or var_kw, "chunk_i" in params)
        cls._compute_takes = out
        return out

    def infer_dtype(self):
        """The output dtype, when it is not a class attribute ``dtype``; called once per
        plugin instance, with its options set (``self.config``).

        Returns
        -------
        numpy.dtype or list
            Anything ``numpy.dtype`` takes; fields may have titles
            (``(("Integral [PE]", "area"), np.float32)``).

        Raises
        ------
        ConfigError
            The plugin defines neither ``dtype`` nor ``infer_dtype``.

        Examples
        --------
        >>> from dastrax.testutils import Peaks
        >>> peaks = Peaks("0", {"n_channels": 3, "waveform_length": 2, "bonus_area": 0})
        >>> peaks.dtype["area_per_channel"]
        dtype(('<f4', (3,)))
        """
        raise ConfigError(f"plugin {type(self).__name__} defines neither a dtype nor infer_dtype()")

    # -- per-chunk work ---------------------------------------------------------------
    def chunk_intervals(self, run_id: str) -> list[tuple[int, int]]:
        """Source plugins: the ``[start, end)`` intervals of the run's chunks (independent, so
        computed in parallel).

        Parameters
        ----------
        run_id : str
            The (regular) run.

        Returns
        -------
        list of (int, int)
            In time order, not overlapping.

        Raises
        ------
        ConfigError
            A source plugin that does not define it.

        Examples
        --------
        >>> from dastrax.testutils import Records
        >>> Records("0", {"n_chunks": 3, "recs_per_chunk": 1, "chunk_ns": 5, "time_offset": 100}
        ...         ).chunk_intervals("0")
        [(100, 105), (105, 110), (110, 115)]
        """
        raise ConfigError(
            f"source plugin {type(self).__name__} must define chunk_intervals(run_id)"
        )

    def compute(self, *args, **kwargs):  # pragma: no cover - always overridden
        """One chunk of output: the dependencies' rows for ``[start, end)`` in, a structured
        array of exactly ``self.dtype`` out, sorted by ``time``, inside ``[start, end)``.

        Parameters
        ----------
        *args, **kwargs
            The dependencies' rows as keyword arguments named by data kind (several
            dependencies of one kind merged column-wise), then ``start`` and ``end`` (ns);
            source plugins get only ``start`` and ``end``. A plugin may leave out
            ``start``/``end`` or ask for ``chunk_i`` (strax's introspection).

        Returns
        -------
        numpy.ndarray
            (multi-output plugins: a dict ``{data_type: array}``).

        Raises
        ------
        ConfigError
            A plugin that does not define it.

        Examples
        --------
        >>> import numpy as np
        >>> from dastrax.testutils import Records, Peaks
        >>> cfg = {"n_chunks": 1, "recs_per_chunk": 2, "chunk_ns": 2, "time_offset": 0}
        >>> records = Records("0", cfg).compute(0, 2)
        >>> peaks = Peaks("0", {"bonus_area": 1, "n_channels": 2, "waveform_length": 2})
        >>> peaks.compute(records=records, start=0, end=2)["area"].tolist()
        [2.0, 2.0]
        """
        raise ConfigError(f"plugin {type(self).__name__} must define compute()")

    # -- whole-run plugins ------------------------------------------------------------
    def summarize(self, start: int, end: int, **inputs) -> Any:
        """One chunk's partial of the run's summary (``needs_summary`` plugins); by default
        nothing (None).

        Parameters
        ----------
        start, end : int
            The chunk's interval (ns).
        **inputs
            The dependencies' rows, as :meth:`compute` gets them.

        Returns
        -------
        object
            Anything picklable; :meth:`combine` gets them all, in time order.

        Examples
        --------
        >>> import numpy as np
        >>> class Mean(Plugin):
        ...     provides, depends_on, needs_summary = "centered", ("peaks",), True
        ...     dtype = [("time", np.int64), ("endtime", np.int64), ("area", np.float32)]
        ...     def summarize(self, start, end, peaks):
        ...         return float(peaks["area"].sum()), len(peaks)
        ...     def combine(self, partials):
        ...         total, n = map(sum, zip(*partials))
        ...         return total / max(n, 1)
        >>> Mean("0", {}).combine([(4.0, 2), (2.0, 2)])
        1.5
        """
        return None

    def combine(self, partials: list) -> Any:
        """The run's summary from the chunks' partials (from :meth:`summarize`), in time
        order; it becomes ``self.summary`` before :meth:`compute` runs on each chunk. By
        default the list of partials itself.

        Parameters
        ----------
        partials : list
            One partial per chunk, in time order.

        Returns
        -------
        object

        Examples
        --------
        >>> from dastrax.testutils import Peaks
        >>> Peaks("0", {"bonus_area": 0, "n_channels": 1, "waveform_length": 1}).combine([1, 2])
        [1, 2]
        """
        return partials

    def run_metadata(self) -> dict:
        """The run document of the superrun this plugin computes over (``allow_superrun``
        plugins asked for a superrun): its ``livetime``, ``sub_run_spec``, ...

        Returns
        -------
        dict

        Raises
        ------
        RunMetadataNotAvailable
            The plugin is not computing over a superrun.

        Examples
        --------
        >>> import numpy as np
        >>> class Rate(Plugin):
        ...     provides, depends_on, allow_superrun = "rate", ("peaks",), True
        ...     dtype = [("time", np.int64), ("endtime", np.int64), ("rate", np.float64)]
        ...     def compute(self, peaks, start, end):
        ...         out = np.zeros(1, self.dtype)
        ...         out["time"], out["endtime"] = start, end
        ...         out["rate"] = len(peaks) / self.run_metadata()["livetime"]
        ...         return out
        >>> Rate("0", {}).run_metadata()
        Traceback (most recent call last):
        ...
        dastrax.errors.RunMetadataNotAvailable: ...
        """
        if self._run_doc is None:
            raise RunMetadataNotAvailable(
                f"plugin {type(self).__name__} for run {self.run_id!r} is not computing over "
                "a superrun, so no run document was given to it; read run documents with "
                "st.run_metadata(run_id)"
            )
        return dict(self._run_doc)


def to_numpy_dtype(spec) -> np.dtype:
    """A numpy dtype from a dtype or a list of fields, taking strax's ``(name, type,
    comment)`` triples as ``((comment, name), type)``."""
    if isinstance(spec, list):
        spec = [
            ((f[2], f[0]), f[1])
            if isinstance(f, tuple) and len(f) == 3 and isinstance(f[2], str)
            else f
            for f in spec
        ]
    try:
        return np.dtype(spec)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"not a valid dtype: {spec!r} ({e})") from None


def call_compute(plugin: Plugin, inputs: dict, start: int, end: int, chunk_i: int):
    """``plugin.compute`` on one chunk, with the arguments its signature asks for."""
    takes_range, takes_chunk_i = type(plugin).compute_takes()
    kwargs = dict(inputs)
    if takes_range:
        kwargs.update(start=start, end=end)
    if takes_chunk_i:
        kwargs["chunk_i"] = chunk_i
    return plugin.compute(**kwargs)


def as_rows(result, dtype: np.dtype, name: str, where: str) -> np.ndarray:
    """``result`` as rows of ``dtype``: arrays as they are, a dict ``{field: values}``
    made into a structured array (strax's ``dict_to_rec``)."""
    if not isinstance(result, dict):
        return result
    if not result:
        return np.zeros(0, dtype)
    first = np.asarray(next(iter(result.values())))
    out = np.zeros(len(first) if first.ndim else 1, dtype)
    try:
        for k, v in result.items():
            out[k] = v
    except (KeyError, ValueError, TypeError) as e:
        raise PluginError(
            f"plugin {name} returned a dict on {where} that does not fit its dtype: {e!r}"
        ) from e
    return out


class OutputView(Plugin):
    """One output of a multi-output plugin, as a plugin of its own: the registry
    registers one (:func:`output_view`) per data type the plugin provides. Views of one
    plugin made together share one instance of it (:func:`link_views`), whose
    ``compute`` runs once per chunk for all of them."""

    _multi: ClassVar[type[Plugin]]
    #: the one data type of the multi-output plugin that this view stands for
    provides: ClassVar[str]

    def __init__(self, run_id: str, config: dict[str, Any], inner: Plugin | None = None):
        self.inner = inner if inner is not None else self._multi(run_id, config)
        self.run_id = run_id
        self.config = config
        self.dtype = self.inner.dtype_for(self.provides)

    @classmethod
    def options(cls) -> dict[str, Option]:
        return cls._multi.options()

    @classmethod
    def compute_takes(cls) -> tuple[bool, bool]:
        return cls._multi.compute_takes()

    @property
    def summary(self):
        return self.inner.summary

    @summary.setter
    def summary(self, value):
        self.inner.summary = value

    @property
    def _run_doc(self):
        return self.inner._run_doc

    @_run_doc.setter
    def _run_doc(self, value):
        self.inner._run_doc = value

    def chunk_intervals(self, run_id):
        return self.inner.chunk_intervals(run_id)

    def summarize(self, start, end, **inputs):
        return self.inner.summarize(start, end, **inputs)

    def combine(self, partials):
        return self.inner.combine(partials)

    def compute(self, **kwargs):
        return self.inner.compute(**kwargs)[self.provides]


def output_view(cls: type[Plugin], data_type: str) -> type[OutputView]:
    """The single-output plugin class standing for output ``data_type`` of ``cls``."""
    kind = cls.data_kind.get(data_type) if isinstance(cls.data_kind, dict) else cls.data_kind
    static = cls.dtype.get(data_type) if isinstance(cls.dtype, dict) else None
    return type(
        cls.__name__,
        (OutputView,),
        {
            "_multi": cls,
            "provides": data_type,
            "depends_on": tuple(cls.depends_on),
            "data_kind": kind,
            "dtype": static,
            "__version__": cls.__version__,
            "allow_superrun": cls.allow_superrun,
            "needs_summary": cls.needs_summary,
            "__module__": cls.__module__,
            "__doc__": cls.__doc__,
        },
    )


def link_views(plugins: dict[str, Plugin]) -> dict[str, Plugin]:
    """Make the views of one multi-output plugin among ``plugins`` share one instance."""
    shared: dict[type, Plugin] = {}
    for p in plugins.values():
        if isinstance(p, OutputView):
            first = shared.setdefault(type(p)._multi, p.inner)
            p.inner = first
    return plugins


def chunk_rows(plugin: Plugin, inputs: dict, start, end, chunk_i, done: dict, where: str):
    """The rows ``plugin`` gives for one chunk. The views of a multi-output plugin
    share the one ``compute`` call: ``done`` (one dict per chunk) keeps its result."""
    if isinstance(plugin, OutputView):
        key = id(plugin.inner)
        if key not in done:
            done[key] = call_compute(plugin.inner, inputs, start, end, chunk_i)
        result = done[key]
        if not isinstance(result, dict) or plugin.provides not in result:
            got = sorted(result) if isinstance(result, dict) else type(result).__name__
            raise PluginError(
                f"plugin {type(plugin).__name__} provides {list(plugin._multi.outputs())}: "
                f"its compute must return a dict with each of them, got {got} on {where}"
            )
        result = result[plugin.provides]
    else:
        result = call_compute(plugin, inputs, start, end, chunk_i)
    return as_rows(result, plugin.dtype, type(plugin).__name__, where)

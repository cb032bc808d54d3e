"""Plugins and their options: what turns one data type into another, chunk by chunk."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .chunks import endtime
from .errors import ConfigError, RunMetadataNotAvailable, advice

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

    Subclasses set ``provides``, ``depends_on``, optionally ``data_kind`` (defaults to
    ``provides``), ``__version__``, a ``dtype`` (class attribute or ``infer_dtype``), and
    ``compute``. Source plugins (``depends_on = ()``) also define ``chunk_intervals``.

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
    then ``start`` and ``end``; source plugins get only ``start`` and ``end``. It returns
    a structured array of exactly ``dtype``, sorted by ``time``, inside ``[start, end)``.

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

    provides: ClassVar[str] = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    data_kind: ClassVar[str | None] = None
    __version__: ClassVar[str] = "0.0.0"
    dtype: Any = None
    #: computed once over a superrun's joined subruns (strax 2's ``allow_superrun``)
    allow_superrun: ClassVar[bool] = False
    #: needs a first pass over the whole run: :meth:`summarize`, then :meth:`combine`
    needs_summary: ClassVar[bool] = False

    def __init__(self, run_id: str, config: dict[str, Any]):
        self.run_id = run_id
        self.config = config
        #: the value :meth:`combine` gave, for plugins with ``needs_summary``
        self.summary: Any = None
        self._run_doc: dict | None = None
        dtype = self.infer_dtype() if type(self).dtype is None else type(self).dtype
        self.dtype = np.dtype(dtype)

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
    def kind(cls) -> str:
        """The data kind of what the plugin provides (``data_kind``, else ``provides``).

        Returns
        -------
        str

        Examples
        --------
        >>> from dastrax.testutils import PeakClassification
        >>> PeakClassification.kind()
        'peaks'
        """
        return cls.data_kind or cls.provides

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

"""Registered plugins and their configuration: which plugin makes which data type, with
which option values for a given run, and the resulting lineage."""

from __future__ import annotations

import copy
import difflib
import json
import os
import warnings
from typing import Any

from dastrax.core.lineage import DataKey, _jsonable, deterministic_hash
from dastrax.core.plugin import OutputView, Plugin, link_views, output_view
from dastrax.errors import ConfigError, DataNotAvailable, InvalidRequest, UnknownConfigWarning

__all__ = ["PluginRegistry"]

#: the dastrax package: warnings point at the first line outside it (the user's)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class PluginRegistry:
    """Plugins by the data type they provide, plus the plugin config (option values)."""

    def __init__(self) -> None:
        self.plugins: dict[str, type[Plugin]] = {}
        self.config: dict[str, Any] = {}
        self.use_per_run_defaults = False
        self._warned: set[str] = set()
        self._lineage_memo: dict[tuple, tuple] = {}
        self._config_last: tuple | None = None
        self._flat_last: tuple | None = None
        self._shape_last: tuple | None = None

    def register(self, plugin_cls) -> None:
        """Register a plugin class (or a list of them)."""
        if isinstance(plugin_cls, (list, tuple)):
            for p in plugin_cls:
                self.register(p)
            return
        if not (isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin)):
            raise ConfigError(f"can only register dastrax.Plugin subclasses: got {plugin_cls!r}")
        outputs = plugin_cls.outputs()
        for provides in outputs:
            if not provides or not isinstance(provides, str) or "-" in provides or "/" in provides:
                raise ConfigError(
                    f"plugin {plugin_cls.__name__} must set `provides` to a data type name "
                    f"(or a tuple of them) without '-' or '/': got {plugin_cls.provides!r}"
                )
        plugin_cls.compute_takes()  # ConfigError for a compute taking start without end
        for provides in outputs:
            # as strax: a multi-output plugin one of whose outputs another plugin now
            # provides is deregistered whole
            old = self.plugins.get(provides)
            if isinstance(old, type) and issubclass(old, OutputView):
                for dt in old._multi.outputs():
                    if (
                        self.plugins.get(dt) is not None
                        and getattr(self.plugins[dt], "_multi", None) is old._multi
                    ):
                        del self.plugins[dt]
        for provides in outputs:
            if plugin_cls.multi_output():
                self.plugins[provides] = output_view(plugin_cls, provides)
            else:
                self.plugins[provides] = plugin_cls

    def siblings(self, data_type: str) -> list[str]:
        """The other data types the plugin of ``data_type`` provides (multi-output)."""
        cls = self.plugins.get(data_type)
        if not (isinstance(cls, type) and issubclass(cls, OutputView)):
            return []
        return [
            dt
            for dt in cls._multi.outputs()
            if dt != data_type and getattr(self.plugins.get(dt), "_multi", None) is cls._multi
        ]

    def plugin_class(self, data_type: str) -> type[Plugin]:
        try:
            return self.plugins[data_type]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.plugins)) or "none"
            raise DataNotAvailable(
                f"unknown data type {data_type!r}: no registered plugin provides it "
                f"(registered: {known}); register its plugin with st.register(...)"
            ) from None

    def data_kind(self, data_type: str) -> str:
        """The data kind of ``data_type``: its plugin's ``data_kind``, else (strax's
        default) the kind of its first dependency, else the data type itself."""
        seen = []
        dt = data_type
        while True:
            cls = self.plugin_class(dt)
            kind = cls.data_kind.get(dt) if isinstance(cls.data_kind, dict) else cls.data_kind
            if kind:
                return kind
            if not cls.depends_on or cls.depends_on[0] not in self.plugins or dt in seen:
                return dt
            seen.append(dt)
            dt = cls.depends_on[0]

    def dependencies(self, data_type: str) -> list[str]:
        """``data_type`` and everything it depends on, dependencies first."""
        order: list[str] = []

        def visit(dt, stack):
            if dt in stack:
                raise ConfigError(f"plugins depend on each other in a cycle: {' -> '.join(stack)}")
            if dt in order:
                return
            for dep in self.plugin_class(dt).depends_on:
                visit(dep, (*stack, dt))
            order.append(dt)

        visit(data_type, ())
        return order

    def set_config(self, config: dict) -> None:
        """Update option values, each checked against the ``type`` of every registered
        option of that name (:class:`ConfigError` naming the option)."""
        if not isinstance(config, dict):
            raise ConfigError(f"set_config takes a dict: got {type(config).__name__}")
        for key, value in config.items():
            for cls in self.plugins.values():
                opt = cls.options().get(key)
                if opt is not None:
                    opt.check(value, cls.__name__)
        self.config.update(config)
        self._warned -= set(config)
        if self.plugins:
            self.check_config()

    def check_config(self) -> None:
        """Warn (once per key) about config keys that no registered plugin has, with the
        closest option names."""
        known = {name for p in self.plugins.values() for name in p.options()}
        for key in self.config:
            if key not in known and key not in self._warned:
                self._warned.add(key)
                close = difflib.get_close_matches(key, sorted(known), n=2)
                hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
                warnings.warn(
                    f"config key {key!r} is not an option of any registered plugin; "
                    f"it does nothing.{hint}",
                    UnknownConfigWarning,
                    skip_file_prefixes=(_PACKAGE_DIR,),
                )

    def options_for(self, data_type: str, run_id: str) -> dict[str, Any]:
        cls = self.plugin_class(data_type)
        return {
            name: opt.resolve(run_id, self.config, self.use_per_run_defaults, cls.__name__)
            for name, opt in cls.options().items()
        }

    def plugin(self, data_type: str, run_id: str) -> Plugin:
        """An instance of ``data_type``'s plugin configured for (regular) run ``run_id``."""
        cls = self.plugin_class(data_type)
        try:
            plugin = cls(run_id, self.options_for(data_type, run_id))
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(
                f"plugin {cls.__name__} could not be set up for run {run_id!r}: {e}"
            ) from e
        plugin.data_kind = self.data_kind(data_type)
        return plugin

    def plugins_for(self, data_types, run_id: str) -> dict[str, Plugin]:
        """Instances of the plugins of ``data_types`` for ``run_id``; the outputs of one
        multi-output plugin share one instance (one ``compute`` a chunk for all)."""
        return link_views({dt: self.plugin(dt, run_id) for dt in data_types})

    def lineage(self, data_type: str, run_id: str) -> dict:
        """``{data_type: (class name, version, {tracked option: value})}`` over the type and
        every type it depends on, for regular run ``run_id``.

        Remembered per data type (and per run only where per-run defaults apply) until the
        config or the registered plugins change: opening a superrun asks it of every
        subrun, thousands of times with the same answer.
        """
        token = self._lineage_token()
        memo_key = (data_type, run_id if token[0] else None)
        hit = self._lineage_memo.get(memo_key)
        if hit is not None and hit[0] == token:
            return {dt: (n, v, dict(opts)) for dt, (n, v, opts) in hit[1].items()}
        out = self._lineage(data_type, run_id)
        if len(self._lineage_memo) > 100_000:
            self._lineage_memo.clear()
        self._lineage_memo[memo_key] = (token, out)
        return {dt: (n, v, dict(opts)) for dt, (n, v, opts) in out.items()}

    def lineage_per_run(self) -> bool:
        """Whether lineages may differ between runs (per-run defaults in use)."""
        return bool(self._lineage_token()[0])

    def _lineage_token(self) -> tuple:
        """What lineages depend on besides the run: (per-run?, config, plugins)."""
        plugins = tuple(
            (dt, id(cls), str(cls.__version__)) for dt, cls in sorted(self.plugins.items())
        )
        shape = (self.use_per_run_defaults, plugins)
        if self._shape_last is None or self._shape_last[0] != shape:
            per_run = self.use_per_run_defaults and any(
                opt.default_per_run
                for cls in self.plugins.values()
                for opt in cls.options().values()
            )
            self._shape_last = (shape, per_run)
        return (self._shape_last[1], self._config_token(), plugins)

    def _config_token(self) -> str:
        """The config as canonical JSON, redone only when the config changed (compared
        as a tuple of items where the values allow, else value by value)."""
        try:
            flat = tuple(sorted((k, type(v), v) for k, v in self.config.items()))
            hash(flat)
        except TypeError:
            flat = None
        if flat is not None and self._flat_last is not None and self._flat_last[0] == flat:
            return self._flat_last[1]
        token = self._config_token_deep()
        self._flat_last = None if flat is None else (flat, token)
        return token

    def _config_token_deep(self) -> str:
        last = self._config_last
        if last is not None and _same(last[0], self.config):
            return last[1]
        token = json.dumps(self.config, sort_keys=True, default=_jsonable)
        try:
            self._config_last = (copy.deepcopy(self.config), token)
        except Exception:  # noqa: BLE001 - values that cannot be copied: no shortcut
            self._config_last = None
        return token

    def _lineage(self, data_type: str, run_id: str) -> dict:
        self.check_config()
        out = {}
        for dt in self.dependencies(data_type):
            cls = self.plugin_class(dt)
            opts = self.options_for(dt, run_id)
            tracked = {k: v for k, v in sorted(opts.items()) if cls.options()[k].track}
            out[dt] = (cls.__name__, str(cls.__version__), tracked)
        return out

    def key(self, run_id: str, data_type: str) -> DataKey:
        """The storage key of ``data_type`` for regular run ``run_id``."""
        lineage = self.lineage(data_type, run_id)
        token = self._lineage_token()
        memo_key = ("hash", data_type, run_id if token[0] else None)
        hit = self._lineage_memo.get(memo_key)
        if hit is not None and hit[0] == token:
            lineage_hash = hit[1]
        else:
            lineage_hash = deterministic_hash(lineage)
            self._lineage_memo[memo_key] = (token, lineage_hash)
        return DataKey(run_id, data_type, lineage_hash, lineage)

    def same_kind(self, targets: list[str]) -> str:
        """The one data kind of ``targets``; refuses targets of different kinds."""
        kinds = {t: self.data_kind(t) for t in targets}
        if len(set(kinds.values())) != 1:
            raise InvalidRequest(
                f"targets of different data kinds cannot be combined in one call: {kinds}; "
                "load them separately"
            )
        return next(iter(kinds.values()))


def _same(a, b) -> bool:
    """Whether two config values are equal and of the same types throughout (1 and 1.0,
    equal in Python, are different options in a lineage)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. arrays: not known to be the same
        return False

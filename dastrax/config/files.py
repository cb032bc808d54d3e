"""Configuration files: the TOML settings read by the command line and by
:meth:`dastrax.Context.from_config`.

Settings come from, later winning:

1. the packaged defaults (``dastrax/config/dastrax.toml``, identical to the repository's
   ``conf/dastrax.toml``),
2. the file given as ``path`` (``--config FILE`` on the command line), else the file named
   by the ``DASTRAX_CONFIG`` environment variable — it needs only the keys it changes,
3. overrides: keyword arguments of :func:`load_config` / ``Context.from_config``, or
   command-line flags. ``None`` means "not given".

Keys (all optional in a user's file) are those of :data:`dastrax.config.settings.SETTINGS`:
``storage``, ``storage_options``, ``scheduler``, ``chunk_target_size_mb``, ``compressor``,
``progress``, ``write_superruns``, ``use_per_run_defaults``, ``allow_incomplete``,
``plugins`` (``"module:Class"`` names) and ``config`` (plugin option values).

Examples
--------
>>> from dastrax.config import load_config
>>> load_config(scheduler="processes").scheduler
'processes'
"""

from __future__ import annotations

import difflib
import importlib
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dastrax.config.settings import SETTINGS
from dastrax.errors import ConfigError, DastraxError

if TYPE_CHECKING:
    from dastrax.core.plugin import Plugin

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_VAR",
    "Settings",
    "config_path",
    "import_plugin",
    "load_config",
]

#: the packaged defaults (the repository's conf/dastrax.toml is an identical copy)
DEFAULT_CONFIG_PATH = Path(__file__).with_name("dastrax.toml")
#: environment variable naming a configuration file
ENV_VAR = "DASTRAX_CONFIG"


class Settings:
    """Validated settings (attributes named as in :data:`dastrax.config.settings.SETTINGS`), and
    the file(s) they came from."""

    def __init__(self, values: dict, sources: tuple[str, ...] = (), origins=None):
        self.values = dict(values)
        self.sources = sources
        #: where each setting came from, for error messages
        self.origins = dict(origins or {})

    def __getattr__(self, name: str):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"Settings({self.values!r})"

    def context_options(self) -> dict:
        """The context options (keyword arguments of :class:`dastrax.Context`)."""
        return {k: v for k, v in self.values.items() if SETTINGS[k].context}

    def _where(self, key: str) -> str:
        return self.origins.get(key, f"configuration key {key!r}")

    def check_plugin_options(self, plugins: list[type[Plugin]]) -> None:
        """Refuse (:class:`ConfigError`, naming where it was given) a plugin option that
        none of ``plugins`` has: in a configuration file or on the command line a typo is
        an error, not a warning (in Python, :meth:`dastrax.Context.set_config` warns)."""
        if not plugins:
            return
        known = sorted({name for p in plugins for name in p.options()})
        for key in self.config:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=2)
                hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
                raise ConfigError(
                    f"{self._where('config')}: {key!r} is not an option of any plugin "
                    f"({', '.join(p.__name__ for p in plugins)}); {hint}"
                    f"the options are {', '.join(known)}"
                )

    def context_kwargs(self, client=None) -> dict:
        """The keyword arguments of :class:`dastrax.Context` for these settings
        (storage frontends made from the URLs, plugin classes imported)."""
        from dastrax.storage import frontend_for

        plugins = [
            p if isinstance(p, type) else import_plugin(p, self._where("plugins"))
            for p in self.plugins
        ]
        self.check_plugin_options(plugins)
        options = self.storage_options or {}
        try:
            storage = [
                frontend_for(s, storage_options=options) if options else frontend_for(s)
                for s in self.storage
            ]
        except DastraxError as e:
            raise ConfigError(f"{self._where('storage')}: {e}") from None
        return {
            "storage": storage,
            "register": plugins,
            "config": dict(self.config),
            "client": client,
            **self.context_options(),
        }


def config_path(path: str | os.PathLike | None = None) -> Path:
    """The configuration file to read: ``path``, else ``$DASTRAX_CONFIG``, else the
    packaged defaults. A named file that does not exist raises :class:`ConfigError`."""
    if path is not None and str(path) != "":
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"configuration file {str(p)!r} does not exist")
        return p
    env = os.environ.get(ENV_VAR, "")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(
                f"configuration file {env!r} (from ${ENV_VAR}) does not exist; fix or unset "
                f"{ENV_VAR}"
            )
        return p
    return DEFAULT_CONFIG_PATH


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"configuration file {str(path)!r} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read configuration file {str(path)!r}: {e}") from None


def load_config(
    path: str | os.PathLike | None = None, _origin: str = "keyword argument", **overrides
) -> Settings:
    """The validated settings: packaged defaults < the file < ``overrides``.

    ``path`` defaults to ``$DASTRAX_CONFIG`` (see :func:`config_path`). Overrides whose
    value is ``None`` are ignored; a ``config`` override is merged into the file's plugin
    options. Raises :class:`ConfigError` naming the file and key of any invalid value.
    ``_origin`` names where overrides come from in error messages (``"command line"``
    makes them read as ``--option``).
    """
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    sources = []
    chosen = config_path(path)
    files = [DEFAULT_CONFIG_PATH]
    if chosen.resolve() != DEFAULT_CONFIG_PATH.resolve():
        files.append(chosen)
    for f in files:
        data = _read(f)
        _check_keys(data, f"configuration file {str(f)!r}")
        for key, value in data.items():
            if key == "config" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}
            merged[key] = value
            origin[key] = f"configuration file {str(f)!r}: key {key!r}"
        sources.append(str(f))
    given = {k: v for k, v in overrides.items() if v is not None}
    _check_keys(given, _origin)
    for key, value in given.items():
        if key == "config" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = {**merged[key], **value}
        merged[key] = value
        if _origin == "command line":
            flag = "set" if key == "config" else key.replace("_", "-")
            origin[key] = f"command line option --{flag}"
        else:
            origin[key] = f"{_origin} {key}="
    return _validate(merged, origin, tuple(sources))


def import_plugin(spec: str, where: str = "configuration key 'plugins'") -> type:
    """The plugin class named by ``"package.module:Class"``; ``where`` names the setting
    in error messages."""
    from dastrax.core.plugin import Plugin

    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError(f"{where}: plugins are named 'package.module:Class', got {spec!r}")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"{where}: cannot import module {module_name!r} for plugin {spec!r}: {e}"
        ) from None
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"{where}: module {module_name!r} has no {attr!r} (plugin {spec!r})"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise ConfigError(f"{where}: {spec!r} is not a dastrax.Plugin subclass")
    return cls


def _check_keys(data: dict, where: str) -> None:
    for key in data:
        if key not in SETTINGS:
            close = difflib.get_close_matches(key, list(SETTINGS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}; {hint}known keys are {', '.join(SETTINGS)}"
            )


def _validate(merged: dict, origin: dict, sources: tuple[str, ...]) -> Settings:
    values = {}
    for name, setting in SETTINGS.items():
        value = merged.get(name, setting.default)
        where = origin.get(name, f"configuration key {name!r}")
        values[name] = setting.validate(value, where)
    for p in values["plugins"]:
        if not isinstance(p, type):
            import_plugin(p, origin.get("plugins", "configuration key 'plugins'"))
    return Settings(values, sources, origin)

"""Configuration files: the TOML settings read by the command line and by
:meth:`dastrax.Context.from_config`.

Settings come from, later winning:

1. the packaged defaults (``dastrax/dastrax.toml``, identical to the repository's
   ``conf/dastrax.toml``),
2. the file given as ``path`` (``--config FILE`` on the command line), else the file named
   by the ``DASTRAX_CONFIG`` environment variable — it needs only the keys it changes,
3. overrides: keyword arguments of :func:`load_config` / ``Context.from_config``, or
   command-line flags. ``None`` means "not given".

Keys (all optional in a user's file):

``storage``
    a directory or fsspec URL, or a list of them.
``scheduler``
    ``"threads"``, ``"processes"``, ``"local-cluster"`` or a scheduler address.
``chunk_target_size_mb``
    positive number.
``compressor``
    a name (``"blosc-lz4"``, ``"zstd"``, ...) or a table with ``name``.
``progress``, ``write_superruns``, ``use_per_run_defaults``, ``allow_incomplete``
    booleans (context options).
``plugins``
    list of ``"module:Class"`` plugins to register.
``config``
    table of plugin option values.

Examples
--------
>>> from dastrax.config import load_config
>>> load_config(scheduler="processes").scheduler
'processes'
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, DastraxError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_VAR",
    "Settings",
    "config_path",
    "context_from_config",
    "import_plugin",
    "load_config",
]

#: the packaged defaults (the repository's conf/dastrax.toml is an identical copy)
DEFAULT_CONFIG_PATH = Path(__file__).with_name("dastrax.toml")
#: environment variable naming a configuration file
ENV_VAR = "DASTRAX_CONFIG"

#: scheduler names besides addresses (anything with a ':' is taken as an address)
SCHEDULERS = ("threads", "processes", "sync", "synchronous", "local-cluster")
_BOOL_KEYS = ("progress", "write_superruns", "use_per_run_defaults", "allow_incomplete")
KNOWN_KEYS = (
    "storage",
    "scheduler",
    "chunk_target_size_mb",
    "compressor",
    *_BOOL_KEYS,
    "plugins",
    "config",
)


@dataclass(frozen=True)
class Settings:
    """Validated settings, and the file(s) they came from."""

    storage: list[str]
    scheduler: str
    chunk_target_size_mb: float
    compressor: Any
    progress: bool
    write_superruns: bool
    use_per_run_defaults: bool
    allow_incomplete: bool
    plugins: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    #: where each setting came from, for error messages
    origins: dict = field(default_factory=dict, repr=False, compare=False)

    def context_options(self) -> dict:
        """The context options (keyword arguments of :class:`dastrax.Context`)."""
        return {
            "scheduler": self.scheduler,
            "chunk_target_size_mb": self.chunk_target_size_mb,
            "compressor": self.compressor,
            **{k: getattr(self, k) for k in _BOOL_KEYS},
        }

    def _where(self, key: str) -> str:
        return self.origins.get(key, f"configuration key {key!r}")

    def context(self, client=None):
        """A :class:`dastrax.Context` with these settings (plugins registered)."""
        from .context import Context
        from .storage import ZarrDirectory

        plugins = [
            p if isinstance(p, type) else import_plugin(p, self._where("plugins"))
            for p in self.plugins
        ]
        try:
            storage = [ZarrDirectory(s) for s in self.storage]
        except DastraxError:
            raise
        except Exception as e:  # fsspec: unknown protocol, missing driver...
            raise ConfigError(
                f"{self._where('storage')}: cannot use storage {self.storage!r}: {e}"
            ) from e
        return Context(
            storage=storage,
            register=plugins,
            config=dict(self.config),
            client=client,
            **self.context_options(),
        )


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
            origin[key] = f"command line option --{key.replace('_', '-')}"
        else:
            origin[key] = f"{_origin} {key}="
    return _validate(merged, origin, tuple(sources))


def context_from_config(path: str | os.PathLike | None = None, client=None, **overrides):
    """A :class:`dastrax.Context` from a configuration file plus ``overrides``.

    Examples
    --------
    >>> import tempfile
    >>> st = context_from_config(storage=tempfile.mkdtemp(), progress=False)
    >>> sorted(st._registry.plugins)
    ['peak_classification', 'peaks', 'records']
    """
    return load_config(path, **overrides).context(client=client)


def import_plugin(spec: str, where: str = "configuration key 'plugins'") -> type:
    """The plugin class named by ``"package.module:Class"``; ``where`` names the setting
    in error messages."""
    from .plugin import Plugin

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
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}; {hint}known keys are {', '.join(KNOWN_KEYS)}"
            )


def _validate(merged: dict, origin: dict, sources: tuple[str, ...]) -> Settings:
    def bad(key: str, what: str) -> ConfigError:
        return ConfigError(f"{origin.get(key, f'configuration key {key!r}')}: {what}")

    storage = merged.get("storage")
    if isinstance(storage, (str, os.PathLike)):
        storage = [storage]
    if (
        not isinstance(storage, (list, tuple))
        or not storage
        or not all(isinstance(s, (str, os.PathLike)) and str(s) for s in storage)
    ):
        raise bad("storage", f"give a directory or URL, or a list of them; got {storage!r}")
    storage = [str(s) if "://" in str(s) else os.path.expanduser(str(s)) for s in storage]

    scheduler = merged.get("scheduler")
    if not isinstance(scheduler, str) or not (scheduler.strip() in SCHEDULERS or ":" in scheduler):
        raise bad(
            "scheduler",
            "give 'threads', 'processes', 'local-cluster' or a scheduler address like "
            f"'tcp://host:8786'; got {scheduler!r}",
        )

    size = merged.get("chunk_target_size_mb")
    if isinstance(size, str):
        with contextlib.suppress(ValueError):
            size = float(size)
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not size > 0:
        raise bad("chunk_target_size_mb", f"must be a positive number of MB; got {size!r}")

    compressor = merged.get("compressor")
    from .storage import normalize_compressor

    try:
        normalize_compressor(compressor)
    except DastraxError as e:
        raise bad("compressor", str(e)) from None

    flags = {}
    for key in _BOOL_KEYS:
        value = merged.get(key)
        if not isinstance(value, bool):
            raise bad(key, f"must be true or false; got {value!r}")
        flags[key] = value

    plugins = merged.get("plugins", [])
    if not isinstance(plugins, (list, tuple)):
        raise bad("plugins", f"must be a list of 'package.module:Class' names; got {plugins!r}")
    for p in plugins:
        if not isinstance(p, type):
            import_plugin(p, origin.get("plugins", "configuration key 'plugins'"))

    config = merged.get("config", {})
    if not isinstance(config, dict):
        raise bad("config", f"must be a table of plugin option values; got {config!r}")

    return Settings(
        storage=storage,
        scheduler=scheduler.strip(),
        chunk_target_size_mb=size,
        compressor=compressor,
        plugins=list(plugins),
        config=dict(config),
        sources=sources,
        origins=dict(origin),
        **flags,
    )

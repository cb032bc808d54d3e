"""The options every command line subcommand shares (``--storage``, ``--scheduler``,
``--config``, ``--set``, ``--debug``) and the context made from them: used by
:mod:`dastrax.cli` and by ``dastrax bench``."""

from __future__ import annotations

import functools
import tomllib
from functools import cached_property

import click

from dastrax.config.files import load_config

__all__ = ["CONTEXT_SETTINGS", "Env", "with_env"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Env:
    """The settings of one command invocation and the context made from them (lazily)."""

    def __init__(self, storage, scheduler, config_file, sets, **overrides):
        self.config_file = config_file
        self.overrides = {"storage": storage, "scheduler": scheduler, **overrides}
        if sets:
            self.overrides["config"] = dict(sets)

    @cached_property
    def settings(self):
        return load_config(self.config_file, _origin="command line", **self.overrides)

    @cached_property
    def ctx(self):
        from dastrax.context import Context

        return Context(**self.settings.context_kwargs())

    def close(self) -> None:
        ctx = self.__dict__.get("ctx")
        if ctx is not None and ctx._scheduler_obj is not None:
            ctx._scheduler_obj.close()

    def where(self) -> str:
        return ", ".join(f.url for f in self.ctx.storage)


def _parse_set(_ctx, _param, values) -> list[tuple[str, object]]:
    out = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected OPTION=VALUE, got {item!r}", param_hint="--set")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        out.append((key.strip(), parsed))
    return out


def with_env(*env_options):
    """Add the common options to a subcommand and hand it an :class:`Env` as ``env``.

    ``env_options`` names keyword arguments of the command that are settings overrides
    too (e.g. ``chunk_target_size_mb``); they are passed on to the command as well.
    """

    def decorate(f):
        @click.option(
            "--debug", is_flag=True, help="Show the full traceback of an error (also: --debug)."
        )
        @click.option(
            "--set",
            "sets",
            multiple=True,
            metavar="OPTION=VALUE",
            callback=_parse_set,
            help="Set a plugin option, e.g. --set bonus_area=42 (repeatable).",
        )
        @click.option(
            "--config",
            "config_file",
            metavar="FILE",
            help="Configuration file (TOML). Default: $DASTRAX_CONFIG, else the packaged defaults.",
        )
        @click.option(
            "--scheduler",
            metavar="threads|processes|local-cluster|ADDRESS",
            help="Where to compute: dask's threads or processes, a new LocalCluster (prints "
            "its dashboard address), or a distributed scheduler address.",
        )
        @click.option(
            "--storage",
            metavar="PATH_OR_URL",
            help="Storage directory or fsspec URL (default from the configuration: "
            "./dastrax_data).",
        )
        @functools.wraps(f)
        def wrapper(storage, scheduler, config_file, sets, debug, **kwargs):
            extra = {k: kwargs[k] for k in env_options if k in kwargs}
            env = Env(storage, scheduler, config_file, sets, **extra)
            try:
                return f(env=env, **kwargs)
            finally:
                env.close()

        return wrapper

    return decorate

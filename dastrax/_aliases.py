"""The import paths modules had before the package was organised in layers.

``import dastrax.loader`` (or ``from dastrax.testutils import Peaks``) still works: the old
name is bound to the module at its new place (the same module object, so settings made
through either name are seen through both). :data:`ALIASES` is the table; nothing else in
dastrax uses the old names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

#: old module path -> the module at its new place
ALIASES = {
    "dastrax.bench_allow": "dastrax.bench.allow",
    "dastrax.bench_extend": "dastrax.bench.extend",
    "dastrax.bench_minbias": "dastrax.bench.minbias",
    "dastrax.bench_setup": "dastrax.bench.setup",
    "dastrax.catalog": "dastrax.runs.catalog",
    "dastrax.chunks": "dastrax.core.chunks",
    "dastrax.cli_env": "dastrax.cli.env",
    "dastrax.convert": "dastrax.write.strax_import",
    "dastrax.display": "dastrax.ui.display",
    "dastrax.introspect": "dastrax.ui.introspect",
    "dastrax.joined": "dastrax.write.join",
    "dastrax.lineage": "dastrax.core.lineage",
    "dastrax.loader": "dastrax.load.plan",
    "dastrax.names": "dastrax.core.names",
    "dastrax.openindex": "dastrax.load.openindex",
    "dastrax.persist": "dastrax.write.persist",
    "dastrax.plugin": "dastrax.core.plugin",
    "dastrax.processing": "dastrax.write.make",
    "dastrax.registry": "dastrax.core.plugins",
    "dastrax.requests": "dastrax.load.requests",
    "dastrax.resolver": "dastrax.load.resolver",
    "dastrax.scheduling": "dastrax.core.scheduling",
    "dastrax.selection": "dastrax.core.rowfilter",
    "dastrax.settings": "dastrax.config.settings",
    "dastrax.superruns": "dastrax.runs.superruns",
    "dastrax.testutils": "dastrax.testing.plugins",
    "dastrax.times": "dastrax.core.times",
    "dastrax.versions": "dastrax.load.versions",
    "dastrax.wholerun": "dastrax.core.wholerun",
    "dastrax.windows": "dastrax.core.windows",
    "dastrax.storage._fastread": "dastrax.storage.zarr._fastread",
    "dastrax.storage._fastwrite": "dastrax.storage.zarr._fastwrite",
    "dastrax.storage.base": "dastrax.storage.abc",
    "dastrax.storage.layout": "dastrax.storage.zarr.layout",
    "dastrax.storage.memory": "dastrax.storage.zarr.memory",
    "dastrax.storage.zarr_directory": "dastrax.storage.zarr.directory",
    "dastrax.storage.zarr_group": "dastrax.storage.zarr.group",
    "dastrax.storage.zarr_writer": "dastrax.storage.zarr.writer",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module at its new place."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ALIASES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a placeholder module; exec_module swaps in the real one

    def exec_module(self, module: types.ModuleType) -> None:
        # the import system returns what sys.modules holds under the name after this
        sys.modules[module.__name__] = importlib.import_module(ALIASES[module.__name__])


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())

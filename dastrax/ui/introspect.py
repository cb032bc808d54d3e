"""strax's introspection of a context (show_config, search_field, data_info) and the
small request helpers of the façade: what make is asked, which columns exist."""

from __future__ import annotations

import fnmatch
from typing import Any

import pandas as pd

from dastrax.core.names import is_superrun_id, validate_run_id
from dastrax.core.plugin import NO_DEFAULT
from dastrax.core.plugins import PluginRegistry
from dastrax.errors import InvalidRequest
from dastrax.load.resolver import Resolver
from dastrax.storage import StoredGroup

__all__ = ["check_columns", "data_info", "make_requests", "search_field", "show_config"]


def public_metadata(group: StoredGroup) -> dict:
    """``get_metadata``'s view of a stored group: its document, without row offsets."""
    meta = {k: v for k, v in group.meta.items() if not k.startswith("_")}
    meta["chunks"] = [{k: v for k, v in c.items() if k != "row_start"} for c in meta["chunks"]]
    meta["key"] = group.key
    return meta


def metadata(resolver: Resolver, key) -> dict:
    """``get_metadata`` of ``key``: :class:`DataNotAvailable` (naming what is stored) if
    it is not stored; it never makes data."""
    group = resolver.find(key)
    if group is None:
        raise resolver.not_stored({key.run_id: [key.data_type]}, {(key.run_id, key.data_type): key})
    return public_metadata(group)


def make_requests(resolver: Resolver, run_id_or_ids, targets: list[str]):
    """``([(run_id, targets), ...], superruns)`` for ``make``: superruns become their
    subruns; unknown data types are refused before anything is made."""
    run_ids = [run_id_or_ids] if isinstance(run_id_or_ids, str) else list(run_id_or_ids)
    for t in targets:
        resolver.registry.plugin_class(t)
    requests: dict[str, list[str]] = {}
    superruns = []
    for r in run_ids:
        validate_run_id(r)
        if is_superrun_id(r):
            superruns.append(r)
            for sub, _ranges in resolver.flat(r):
                requests.setdefault(sub, []).extend(targets)
        else:
            requests.setdefault(r, []).extend(targets)
    return [(r, list(dict.fromkeys(t))) for r, t in requests.items()], superruns


def by_kind(resolver: Resolver, targets: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in targets:
        out.setdefault(resolver.data_kind(t), []).append(t)
    return out


def check_columns(registry: PluginRegistry, targets, columns) -> None:
    """Refuse ``columns`` that no plugin of ``targets`` provides (before anything is
    made). Targets no registered plugin provides are checked once loaded."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    if any(t not in registry.plugins for t in targets):
        return
    names = [n for t in targets for n in registry.plugin(t, "0").dtype.names]
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise InvalidRequest(
            f"unknown columns {unknown} for {', '.join(targets)}: available are "
            f"{list(dict.fromkeys(names))}"
        )


def show_config(registry: PluginRegistry, data_type: str | None = None) -> pd.DataFrame:
    """One row per option of the plugins of ``data_type`` and its dependencies (or of
    every registered plugin): ``option, default, current, applies_to, track, help``."""
    types = registry.dependencies(data_type) if data_type else sorted(registry.plugins)
    rows: dict[str, dict[str, Any]] = {}
    for dt in types:
        cls = registry.plugin_class(dt)
        for name, opt in cls.options().items():
            row = rows.setdefault(
                name,
                {
                    "option": name,
                    "default": None if opt.default is NO_DEFAULT else opt.default,
                    "current": registry.config.get(name, opt.default),
                    "applies_to": [],
                    "track": opt.track,
                    "help": opt.help,
                },
            )
            row["applies_to"].append(dt)
    table = pd.DataFrame(
        list(rows.values()),
        columns=["option", "default", "current", "applies_to", "track", "help"],
    )
    table["applies_to"] = [tuple(a) for a in table["applies_to"]]
    return table


def search_field(registry: PluginRegistry, pattern: str) -> pd.DataFrame:
    """Fields whose name matches ``pattern`` (a glob; plain text matches anywhere)."""
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    rows = []
    for dt in sorted(registry.plugins):
        for _, field in data_info(registry, dt).iterrows():
            if fnmatch.fnmatch(field["Field name"], glob):
                rows.append({"field": field["Field name"], "data_type": dt, **dict(field)})
    return pd.DataFrame(rows, columns=["field", "data_type", "Field name", "Data type", "Comment"])


def data_info(registry: PluginRegistry, data_type: str) -> pd.DataFrame:
    """The fields of ``data_type`` as strax shows them: ``Field name, Data type,
    Comment`` (the field's title)."""
    dtype = registry.plugin(data_type, "0").dtype
    rows = []
    for name in dtype.names:
        sub, _off, *title = dtype.fields[name]
        shape = f"[{','.join(map(str, sub.shape))}]" if sub.shape else ""
        rows.append(
            {
                "Field name": name,
                "Data type": f"{sub.base.name}{shape}",
                "Comment": title[0] if title else "",
            }
        )
    return pd.DataFrame(rows, columns=["Field name", "Data type", "Comment"])

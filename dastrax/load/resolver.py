"""From what the user asks (run ids, superruns, targets, a time range) to the stored
groups to read: superruns flattened, keys found, lineages checked, missing data made."""

from __future__ import annotations

import contextlib
import difflib
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from dastrax.core import times
from dastrax.core.lineage import DataKey, canonical, deterministic_hash
from dastrax.core.names import is_superrun_id, validate_run_id
from dastrax.core.plugins import PluginRegistry
from dastrax.core.windows import as_windows, intersect
from dastrax.errors import (
    DataNotAvailable,
    InvalidRequest,
    LineageMismatch,
    RunMetadataNotAvailable,
    RunNotFound,
    advice,
)
from dastrax.load import openindex
from dastrax.load.plan import Resolved, Source, gc_paused
from dastrax.runs.catalog import Catalog
from dastrax.runs.superruns import flat_fingerprint, superrun_document
from dastrax.storage import StorageList, StoredGroup

__all__ = ["MissingData", "PartialResolved", "Resolved", "Resolver", "intersect_ranges"]

#: where a snapshot keeps the lineage memo (beside run ids and flattened superruns)
_KEYS = ("lineage keys",)
#: warnings point at the first line outside the package (the user's call)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Entry(NamedTuple):
    """One source of a load, planned."""

    label: str  # the run id asked for
    run: str  # the run read: the label itself, or a subrun of it
    ranges: np.ndarray | None  # (k, 2) windows to read, or None for everything
    subrun: int  # index of its (first) subrun in the load's subrun list
    keys: dict[str, DataKey] | None  # a stored superrun's key of each target, else None


@dataclass
class PartialResolved(Resolved):
    """A load that skipped subruns whose data is missing (the context option
    ``allow_incomplete``): ``skipped`` ``{superrun: [subrun, ...]}`` and ``documents``
    ``{superrun: its run document as if defined without them}``
    (:meth:`Resolver.loaded_document`). The subrun list stays the superrun's (row codes
    keep their meaning); the skipped subruns have no rows."""

    skipped: dict[str, list[str]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def extra_attrs(self, run_id: str | Sequence[str] | None) -> dict[str, object]:
        """The skipped subruns and the livetime loaded (:func:`incomplete_attrs`)."""
        return incomplete_attrs(list(self.documents.values()), run_id)


def incomplete_attrs(
    documents: list[dict], run_id: str | Sequence[str] | None
) -> dict[str, object]:
    """The attributes of a load that skipped subruns (``allow_incomplete``):
    ``skipped_subruns``, and for a load of one superrun the ``livetime`` (s) of the
    subruns it holds."""
    attrs: dict[str, object] = {
        "skipped_subruns": [s for d in documents for s in d["skipped_subruns"]]
    }
    if isinstance(run_id, str) and len(documents) == 1:
        attrs["livetime"] = documents[0]["livetime"]
    return attrs


def intersect_ranges(ranges, time_range):
    """``ranges`` (or everything, if None) cut to ``time_range`` (or left, if None), as
    ``(k, 2)`` windows."""
    if time_range is None:
        return None if ranges is None else as_windows(ranges)
    window = as_windows([time_range])
    return window if ranges is None else intersect(as_windows(ranges), window)


class MissingData(Exception):  # noqa: N818 - a signal between layers, not an error
    """A plan found data that is to be made first: ``requests`` as
    ``[(run_id, [data_type, ...]), ...]``. The façade makes them and plans again
    (:meth:`dastrax.Context._planned`); it never reaches a user."""

    def __init__(self, requests: list[tuple[str, list[str]]], progress: bool = False) -> None:
        super().__init__(requests)
        self.requests = requests
        self.progress = progress


class Resolver:
    """Resolves loads over a registry, storage and catalog.

    Parameters
    ----------
    registry
        The registered plugins and their configuration (lineages, keys).
    storage
        The frontends data is found in.
    catalog
        Run documents and superrun definitions.
    open_index
        Whether big superruns are opened through the open index
        (:mod:`dastrax.load.openindex`).
    """

    def __init__(
        self,
        registry: PluginRegistry,
        storage: StorageList,
        catalog: Catalog,
        open_index: bool = True,
    ):
        self.open_index = open_index
        self.registry = registry
        self.storage = storage
        self.catalog = catalog

    # -- keys -------------------------------------------------------------------------
    def flat(self, run_id: str) -> list[tuple[str, object]]:
        """The flattened definition of superrun ``run_id``."""
        return self.catalog.flat(run_id)

    def key(self, run_id: str, data_type: str) -> DataKey:
        """The key of ``data_type`` of ``run_id`` (regular runs and superruns).

        A data type that no registered plugin provides is looked up among the stored
        keys (strax's data, imported data): its lineage is the one stored beside it.
        """
        validate_run_id(run_id)
        if is_superrun_id(run_id):
            return self.superrun_key(run_id, data_type)
        return self.regular_key(run_id, data_type)

    def regular_key(self, run_id: str, data_type: str) -> DataKey:
        if data_type in self.registry.plugins:
            base = self._key_base
            if base is None:
                return self.registry.key(run_id, data_type)
            if data_type not in base:
                base[data_type] = self.registry.key(run_id, data_type)
            key = base[data_type]
            return DataKey(run_id, data_type, key.lineage_hash, key.lineage)
        group = self.stored_only(run_id, data_type)
        meta = group.meta
        stored = DataKey.parse(group.key, meta.get("lineage") or {})
        return DataKey(run_id, data_type, stored.lineage_hash, stored.lineage)

    def stored_only(self, run_id: str, data_type: str) -> StoredGroup:
        """The one stored group of an unregistered ``data_type`` of ``run_id``."""
        found = self.storage.find_data(run_id, data_type)
        if not found:
            known = ", ".join(sorted(self.registry.plugins)) or "none"
            raise DataNotAvailable(
                f"unknown data type {data_type!r} for run {run_id!r}: no registered plugin "
                f"provides it (registered: {known}) and none is stored; "
                f"{advice('register')}"
            )
        if len(found) > 1:
            choose = found[0].choose_hint
            raise InvalidRequest(
                f"{data_type} of run {run_id!r} is stored with several lineages "
                f"({', '.join(g.key for g in found)}); register the plugin that made the "
                f"one you want{choose}"
            )
        return found[0]

    def data_kind(self, data_type: str, run_id: str | None = None) -> str:
        if data_type in self.registry.plugins or run_id is None:
            return self.registry.data_kind(data_type)
        run = run_id
        if is_superrun_id(run_id):
            run = self.flat(run_id)[0][0]
        return self.stored_only(run, data_type).meta.get("data_kind", data_type)

    def same_kind(self, targets: list[str], run_id: str | None = None) -> str:
        """The one data kind of ``targets``; refuses targets of different kinds."""
        kinds = {t: self.data_kind(t, run_id) for t in targets}
        if len(set(kinds.values())) != 1:
            raise InvalidRequest(
                f"targets of different data kinds cannot be combined in one call: {kinds}; "
                "load them separately"
            )
        return next(iter(kinds.values()))

    def superrun_key(self, run_id: str, data_type: str, flat=None) -> DataKey:
        """Key of superrun ``run_id``'s stored ``data_type``; subruns must share a lineage.

        Each distinct lineage is canonicalised and hashed once, however many subruns."""
        flat = flat if flat is not None else self.flat(run_id)
        lineages: dict[str, tuple[str, object]] = {}
        for sub, _ranges in flat:
            key = self.regular_key(sub, data_type)
            lineages.setdefault(key.lineage_hash, (sub, key.lineage))
        if len(lineages) > 1:
            detail = ", ".join(f"{sub}: {h}" for h, (sub, _) in lineages.items())
            raise LineageMismatch(
                f"subruns of superrun {run_id!r} have different lineages for {data_type!r} "
                f"({detail}), e.g. from per-run defaults; one store holds one lineage, so "
                "it cannot be stored as one superrun (it can still be loaded)"
            )
        lineage = canonical(next(iter(lineages.values()))[1])
        h = deterministic_hash({"lineage": lineage, "superrun": flat_fingerprint(flat)})
        return DataKey(run_id, data_type, h, lineage)

    # -- the load ---------------------------------------------------------------------
    def resolve(self, *args, **kwargs) -> Resolved:
        """Sources for loading ``targets`` of ``run_ids`` (see :meth:`_resolve`).

        The cyclic garbage collector is paused meanwhile: a superrun of thousands of
        subruns creates hundreds of thousands of long-lived metadata objects, and the
        collections they trigger cost more than the work (1.5 s against 0.8 s for 10 000
        subruns)."""
        with gc_paused(), self.snapshot():
            return self._indexed(*args, **kwargs)

    @property
    def _key_base(self) -> dict[str, DataKey] | None:
        """This thread's lineage memo (see :meth:`snapshot`), or None."""
        memo = self.catalog._snapshot
        return None if memo is None else memo.get(_KEYS)

    @contextlib.contextmanager
    def snapshot(self):
        """Within this (in this thread), run documents are read once
        (:meth:`Catalog.snapshot`) and, where lineages do not depend on the run, each data
        type's lineage is worked out once (a superrun of N subruns asks it N times or
        more): the memo lives in the catalog's snapshot."""
        with self.catalog.snapshot():
            memo = self.catalog._snapshot
            if _KEYS not in memo and not self.registry.lineage_per_run():
                memo[_KEYS] = {}
            yield

    def _indexed(
        self, run_ids, targets, time_range=None, check_lineage=True, make=True, **kwargs
    ) -> Resolved:
        """:meth:`_resolve` through the open index (:mod:`dastrax.load.openindex`) where it
        applies: a whole superrun of registered types, lineages the same for every run,
        storage with a change stamp. A valid index is the load; otherwise the load is
        resolved and, if big and the storage unchanged meanwhile, indexed."""
        folder = openindex.directory() if self.open_index else None
        manifests = self.storage.manifest_folder() if openindex.manifests_on() else None
        names = [targets] if isinstance(targets, str) else list(dict.fromkeys(targets))
        if (
            (folder is None and manifests is None)
            or not isinstance(run_ids, str)
            or not is_superrun_id(run_ids)
            or time_range is not None
            or not names
            or any(t not in self.registry.plugins for t in names)
            or self.registry.lineage_per_run()
        ):
            return self._resolve(run_ids, targets, time_range, check_lineage, make, **kwargs)
        if manifests is not None:
            return self._manifested(manifests, run_ids, names, check_lineage, make, **kwargs)
        before = None if folder is None else self.storage.change_stamp()
        if folder is None or before is None:
            return self._resolve(run_ids, targets, time_range, check_lineage, make, **kwargs)
        hashes = [self.registry.key(run_ids, t).lineage_hash for t in names]
        flags = [check_lineage, kwargs.get("stored", True)]
        key = openindex.cache_key(self.storage, run_ids, names, hashes, flags)
        settled = openindex.stamp_is_settled(before[1])
        if settled:
            res = openindex.load(folder, key, self.storage, before[0])
            if res is not None:
                return res
        res = self._resolve(run_ids, targets, time_range, check_lineage, make, **kwargs)
        # (a load that skipped missing subruns is not the superrun's: never indexed)
        if settled and len(res.sources) >= openindex.MIN_SOURCES and _complete(res):
            after = self.storage.change_stamp()
            if after is not None and after[0] == before[0]:
                openindex.save(folder, key, res, self.storage, before[0])
        return res

    def _manifested(self, folder, label, targets, check_lineage, make, **kwargs) -> Resolved:
        """:meth:`_resolve` of a whole superrun through its *manifest*, kept with the data
        (:mod:`dastrax.load.openindex`): valid while every group and run document it names is
        the one it read (checked by signature, file by file) and no stored copy of the
        superrun has appeared; else resolved afresh and, if big, written again."""
        hashes = [self.registry.key(label, t).lineage_hash for t in targets]
        flags = [check_lineage, kwargs.get("stored", True), "manifest"]
        key = openindex.cache_key(self.storage, label, targets, hashes, flags)
        res = openindex.load(folder, key, self.storage, None)
        if res is not None:
            return res
        docs = openindex.run_signatures(self.storage, [label])
        res = self._resolve(label, targets, None, check_lineage, make, **kwargs)
        if (
            len(res.sources) >= openindex.MIN_SOURCES
            and not any(s.stored for s in res.sources)
            and _complete(res)
        ):
            keys = self._superrun_keys(label, targets, self.flat(label)) or {}
            absent = [str(k) for k in keys.values()]
            openindex.save(folder, key, res, self.storage, None, absent, docs)
        return res

    def write_manifest(self, label: str) -> list[str]:
        """Write the manifests of superrun ``label``'s loads of every registered data type
        all of whose subruns' data is stored (after a definition: the next open in any
        process then reads one file); the data types indexed."""
        if not openindex.manifests_on() or self.storage.manifest_folder() is None:
            return []
        if self.registry.lineage_per_run():
            return []
        flat = self.flat(label)
        if len(flat) < openindex.MIN_SOURCES:
            return []
        done = []
        for t in sorted(self.registry.plugins):
            first = self.storage.find(str(self.regular_key(flat[0][0], t)))
            if first is None:  # (not made for these runs: nothing to index)
                continue
            try:
                with gc_paused(), self.snapshot():
                    self._indexed(label, [t], make=False)
            except (DataNotAvailable, LineageMismatch):
                continue
            done.append(t)
        return done

    def _resolve(
        self,
        run_ids: str | Sequence[str] | np.ndarray,
        targets: str | Sequence[str],
        time_range: object = None,
        check_lineage: bool = True,
        make: bool | None = True,
        progress: bool = False,
        stored: bool = True,
        from_subrun: int = 0,
        incomplete: bool = False,
    ) -> Resolved:
        """Sources for loading ``targets`` of ``run_ids``, making what is missing
        (unless ``make`` is False: then missing data raises :class:`DataNotAvailable`
        naming the lineages that are stored; ``None``, a load's default, makes only data
        of runs that exist, else raises :class:`RunNotFound`). With ``stored=False`` superruns are
        loaded from their subruns even where they are stored; with ``from_subrun``, a
        superrun's first subruns are listed but not resolved (an extension's persist
        reads their rows from the old copy). With ``incomplete`` (the context option
        ``allow_incomplete``; not with ``make=True``), subruns of a superrun whose data is
        missing are skipped, with a warning, instead of made (see :meth:`_skip_missing`):
        the result is then a :class:`PartialResolved`."""
        targets = [targets] if isinstance(targets, str) else list(dict.fromkeys(targets))
        if not targets:
            raise InvalidRequest("no target data type given")
        runs = _run_list(run_ids)
        window = None if time_range is None else times.time_range(time_range)
        kind = self.same_kind(targets, runs[0])
        plan, subruns = self._plan(runs, targets, window, stored, from_subrun)
        keys, found, missing = self._look_up(plan, targets)
        documents: dict[str, dict[str, Any]] = {}
        if missing and incomplete and make is not True:
            plan, missing, documents = self._skip_missing(plan, missing, keys)
        if missing:  # made all runs together
            self._make_missing(missing, keys, make, progress)
        sources = self._sources(plan, targets, keys, found, check_lineage)
        dtype = None
        if not sources and targets[0] in self.registry.plugins:
            dtype = self.registry.plugin(targets[0], "0").dtype
        if not documents:
            return Resolved(sources, subruns, targets, kind, dtype)
        skipped = {label: list(doc["skipped_subruns"]) for label, doc in documents.items()}
        return PartialResolved(
            sources, subruns, targets, kind, dtype, skipped=skipped, documents=documents
        )

    def _plan(
        self,
        runs: list[str],
        targets: list[str],
        time_range: tuple[int, int] | None,
        stored: bool,
        from_subrun: int,
    ) -> tuple[list[_Entry], list[str]]:
        """One entry per source of the load, in order, and the flattened subrun list."""
        plan: list[_Entry] = []
        subruns: list[str] = []
        for label in runs:
            if is_superrun_id(label):
                self._plan_superrun(label, targets, time_range, stored, from_subrun, plan, subruns)
            else:
                plan.append(
                    _Entry(label, label, intersect_ranges(None, time_range), len(subruns), None)
                )
                subruns.append(label)
        return plan, subruns

    def _plan_superrun(
        self,
        label: str,
        targets: list[str],
        time_range: tuple[int, int] | None,
        stored: bool,
        from_subrun: int,
        plan: list[_Entry],
        subruns: list[str],
    ) -> None:
        """Add superrun ``label`` to ``plan`` and ``subruns``: its stored copy (if
        ``stored`` and every target has one), else those of its subruns that have
        something in the time range (all of them listed in ``subruns``)."""
        flat = self.flat(label)
        keys = self._superrun_keys(label, targets, flat)
        groups = [self.find(k, flat) for k in keys.values()] if keys else []
        present = [g for g in groups if g is not None] if stored else []
        if keys and present and len(present) == len(groups):
            plan.append(
                _Entry(label, label, intersect_ranges(None, time_range), len(subruns), keys)
            )
            subruns.extend(present[0].meta["subruns"])
            return
        first = len(subruns) + from_subrun
        for sub, spec in flat:
            if len(subruns) < first:
                subruns.append(sub)
                continue
            ranges = None if _is_all(spec) else spec
            cut = intersect_ranges(ranges, time_range)
            if self._touches(cut, ranges, sub, time_range) or self._rows_touch(
                sub, targets, time_range
            ):
                # (stored data is looked at whatever its run document says: rows
                # may lie outside it, e.g. documents in seconds and rows in ns)
                plan.append(_Entry(label, sub, cut, len(subruns), None))
            subruns.append(sub)

    def _look_up(
        self, plan: list[_Entry], targets: list[str]
    ) -> tuple[dict[tuple[str, str], DataKey], dict[str, StoredGroup], dict[str, list[str]]]:
        """``(keys, found, missing)`` of the runs read: the key of each ``(run, target)``,
        the stored groups found by key, and ``{run: [target, ...]}`` not stored."""
        keys: dict[tuple[str, str], DataKey] = {}
        found: dict[str, StoredGroup] = {}
        missing: dict[str, list[str]] = {}
        for entry in plan:
            if entry.keys:
                continue
            for t in targets:
                key = keys.setdefault((entry.run, t), self.regular_key(entry.run, t))
                group = self.storage.find(str(key))
                if group is None:
                    missing.setdefault(entry.run, []).append(t)
                else:
                    found[str(key)] = group
        return keys, found, missing

    def _make_missing(
        self,
        missing: dict[str, list[str]],
        keys: dict[tuple[str, str], DataKey],
        make: bool | None,
        progress: bool,
    ) -> None:
        """Hand ``missing`` (all runs together) to the caller to be made, as ``make`` says
        (:class:`MissingData`), or refuse it."""
        if make is False:
            raise self.not_stored(missing, keys)
        if make is None:  # a load: runs nothing knows are typos (SEMANTICS.md)
            self.refuse_unknown(missing)
        raise MissingData(list(missing.items()), progress)

    def _skip_missing(
        self,
        plan: list[_Entry],
        missing: dict[str, list[str]],
        keys: dict[tuple[str, str], DataKey],
    ) -> tuple[list[_Entry], dict[str, list[str]], dict[str, dict[str, Any]]]:
        """``allow_incomplete``: the subruns of superruns whose data is missing are left
        out of ``plan`` (a run also asked for by itself is made as usual), with a
        :class:`UserWarning` per superrun naming them and the data types.

        Returns the plan, what is still to be made, and ``{superrun: its document
        without the skipped subruns}`` (:meth:`loaded_document`).

        Raises
        ------
        DataNotAvailable
            A superrun none of whose subruns in the load has its data stored.
        """
        direct = {e.run for e in plan if not is_superrun_id(e.label)}
        skip = {run for run in missing if run not in direct}
        skipped: dict[str, list[str]] = {}
        kept: list[_Entry] = []
        for entry in plan:
            if is_superrun_id(entry.label) and entry.run in skip:
                skipped.setdefault(entry.label, []).append(entry.run)
            else:
                kept.append(entry)
        documents = {}
        for label, subs in skipped.items():
            gone = {s: missing[s] for s in subs}
            if not any(e.label == label for e in kept):
                error = self.not_stored(gone, keys)
                raise DataNotAvailable(
                    f"superrun {label!r}: none of its {len(subs)} subrun(s) in this load has "
                    f"its data stored, and allow_incomplete=True does not make it: {error}"
                )
            documents[label] = self.loaded_document(label, subs)
            self._warn_skipped(label, gone, documents[label]["livetime"])
        return kept, {r: ts for r, ts in missing.items() if r not in skip}, documents

    def _warn_skipped(self, label: str, gone: dict[str, list[str]], loaded: float) -> None:
        """The warning of a load that skips the subruns ``gone`` of superrun ``label``
        (``{subrun: [missing data type, ...]}``), holding ``loaded`` s of livetime."""
        types = ", ".join(dict.fromkeys(t for ts in gone.values() for t in ts))
        subs = list(gone)
        shown = ", ".join(repr(s) for s in subs[:10]) + (
            f" and {len(subs) - 10} more" if len(subs) > 10 else ""
        )
        total = self.catalog.run_metadata(label).get("livetime")
        of_total = f" of {total:.6g} s" if isinstance(total, (int, float)) else ""
        warnings.warn(
            f"superrun {label!r}: {types} is missing for {len(subs)} of its "
            f"{len(self.flat(label))} subruns ({shown}); allow_incomplete=True skips them "
            f"(nothing is made): the load holds the rest, livetime {loaded:.6g} s{of_total}",
            UserWarning,
            skip_file_prefixes=(_PACKAGE,),
        )

    def loaded_document(self, label: str, skipped: Iterable[str]) -> dict:
        """Superrun ``label``'s run document as if defined without the subruns
        ``skipped`` (an ``allow_incomplete`` load's): ``start``/``end`` their hull and
        ``livetime`` their sum (as :meth:`dastrax.Context.define_run` computes them), and
        ``skipped_subruns``."""
        left_out = list(dict.fromkeys(skipped))
        gone = set(left_out)
        flat = [(run, ranges) for run, ranges in self.flat(label) if run not in gone]
        spec = {r: v if isinstance(v, str) else as_windows(v).tolist() for r, v in flat}
        doc, _attachments = superrun_document(
            label, spec, flat, self.catalog.run_metadata, compact_above=None
        )
        doc["skipped_subruns"] = left_out
        return doc

    def _sources(
        self,
        plan: list[_Entry],
        targets: list[str],
        keys: dict[tuple[str, str], DataKey],
        found: dict[str, StoredGroup],
        check_lineage: bool,
    ) -> list[Source]:
        """The sources of ``plan``: each entry's stored groups, their lineage checked."""
        sources = []
        wanted: dict[str, object] = {}  # canonical lineage of each distinct requested hash
        for entry in plan:
            groups = []
            for t in targets:
                key = entry.keys[t] if entry.keys else keys[(entry.run, t)]
                group = found.get(str(key)) or self.find(key)
                if group is None:
                    raise DataNotAvailable(f"{key} is not stored and could not be made")
                if key.lineage_hash not in wanted:
                    wanted[key.lineage_hash] = canonical(key.lineage)
                if check_lineage:
                    _check_lineage(entry.run, t, key, group, wanted[key.lineage_hash])
                groups.append((t, group))
            sources.append(
                Source(
                    entry.run,
                    entry.label,
                    tuple(groups),
                    entry.subrun,
                    entry.ranges,
                    bool(entry.keys),
                )
            )
        return sources

    def refuse_unknown(self, missing: dict[str, list[str]]) -> None:
        """Raise :class:`RunNotFound` for the first run of ``missing`` that has no run
        document and no stored data, if the storage keeps run documents of other runs
        (where it keeps none, e.g. scratch work or strax's tests, loads make as before)."""
        known: list[str] | None = None
        for run, types in missing.items():
            if is_superrun_id(run) or self._run_exists(run):
                continue
            if known is None:
                known = self.storage.list_runs()
            if not known:
                return
            regular = [r for r in known if not is_superrun_id(r)] or known
            close = difflib.get_close_matches(run, regular, n=3, cutoff=0.3)
            shown = ", ".join(repr(r) for r in (close or sorted(regular)[:3]))
            where = ", ".join(f.url for f in self.storage)
            raise RunNotFound(
                f"run {run!r} is not known: it has no run document and no stored data in "
                f"{where}, which holds run documents of {len(known)} other run"
                f"{'s' * (len(known) != 1)} ({'closest' if close else 'e.g.'}: {shown}); "
                f"nothing was made. Check the run id; "
                f"{advice('make_unknown', run=run, data_type=types[0])}"
            )

    def _run_exists(self, run: str) -> bool:
        """Whether ``run`` has a run document or any stored data."""
        try:
            self.catalog.run_metadata(run)
            return True
        except RunMetadataNotAvailable:
            pass
        return any(k.count("-") == 2 for f in self.storage for k in f.keys(f"{run}-"))

    def not_stored(self, missing: dict[str, list[str]], keys) -> DataNotAvailable:
        """The error for data that is not stored and is not to be made: it names the
        lineages of that data type that *are* stored (e.g. made with other options)."""
        run, ts = next(iter(missing.items()))
        t = ts[0]
        others = [g.key for g in self.storage.find_data(run, t)]
        stored = (
            f"stored are {', '.join(others)} (other options or versions: {advice('other_options')})"
            if others
            else f"no lineage of {t} of run {run!r} is stored"
        )
        more = sum(len(v) for v in missing.values()) - 1
        also = f" (and {more} more missing)" if more else ""
        return DataNotAvailable(
            f"{t} of run {run!r} ({keys[(run, t)]}) is not stored{also}; {stored}. "
            f"{_sentence(advice('make', run=run, data_type=t))}"
        )

    def _superrun_keys(self, label, targets, flat) -> dict | None:
        """The superrun's key of each target, or None if its subruns' lineages differ."""
        try:
            return {t: self.superrun_key(label, t, flat) for t in targets}
        except LineageMismatch:
            return None

    def find(self, key: DataKey, flat=None) -> StoredGroup | None:
        """The stored group of ``key``; for a superrun also one that strax stored itself
        (its key carries the plain lineage hash of its subruns, not dastrax's hash of
        lineage and spec) if it holds exactly the superrun's subruns."""
        group = self.storage.find(str(key))
        if group is not None or not is_superrun_id(key.run_id):
            return group
        flat = flat if flat is not None else self.flat(key.run_id)
        plain = self.regular_key(flat[0][0], key.data_type).lineage_hash
        group = self.storage.find(f"{key.run_id}-{key.data_type}-{plain}")
        if group is None or not (
            "strax_version" in group.meta
            or (group.meta.get("imported_from") or {}).get("format") == "strax"
        ):
            return None
        return group if list(group.meta.get("subruns") or []) == [s for s, _ in flat] else None

    def _rows_touch(self, run: str, targets, time_range) -> bool:
        """Whether ``run``'s stored rows reach into ``time_range`` (its document may say
        otherwise: e.g. a document in seconds, rows in ns)."""
        if time_range is None:
            return False
        group = self.storage.find(str(self.regular_key(run, targets[0])))
        chunks = [c for c in (group.chunks if group is not None else []) if c.get("n")]
        return bool(chunks) and (
            min(c["first_time"] for c in chunks) < time_range[1]
            and max(c["last_endtime"] for c in chunks) > time_range[0]
        )

    def _touches(self, cut, ranges, sub, time_range) -> bool:
        """Whether a subrun has anything inside the time range (so must be loaded)."""
        if time_range is None:
            return True
        if ranges is not None:
            return bool(len(cut))
        try:
            doc = self.catalog.run_metadata(sub)
        except RunMetadataNotAvailable:
            return True
        return doc["start"] < time_range[1] and doc["end"] > time_range[0]


def _check_lineage(run: str, t: str, key: DataKey, group: StoredGroup, wanted: object) -> None:
    """Refuse stored ``group`` of ``key`` if its lineage is not the ``wanted`` one."""
    stored_lineage = group.meta.get("lineage")
    if stored_lineage != wanted and canonical(stored_lineage) != wanted:
        raise LineageMismatch(
            f"stored {t} of run {run!r} ({key}) was made with lineage "
            f"{deterministic_hash(canonical(stored_lineage))}, but "
            f"lineage {deterministic_hash(canonical(key.lineage))} is requested; "
            f"make it again, or {advice('check_lineage')}"
        )


def _complete(res: Resolved) -> bool:
    """Whether ``res`` loads every subrun (skipped none for ``allow_incomplete``)."""
    return not isinstance(res, PartialResolved)


def _is_all(ranges) -> bool:
    return isinstance(ranges, str) and ranges == "all"


def _run_list(run_ids) -> list[str]:
    if isinstance(run_ids, str):
        runs = [run_ids]
    elif isinstance(run_ids, (list, tuple)) or hasattr(run_ids, "tolist"):
        runs = [str(r) if hasattr(r, "dtype") else r for r in run_ids]
    else:
        runs = [validate_run_id(run_ids)]
    if not runs:
        raise InvalidRequest("no run id given")
    for r in runs:
        validate_run_id(r)
    return runs


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]

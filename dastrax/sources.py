"""From what the user asks (run ids, superruns, targets, a time range) to the stored
groups to read: superruns flattened, keys found, lineages checked, missing data made."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DataNotAvailable, InvalidRequest, LineageMismatch, RunMetadataNotAvailable
from .lineage import DataKey, canonical, deterministic_hash
from .loader import Source
from .names import is_superrun_id, validate_run_id
from .superruns import flatten

__all__ = ["Resolved", "Resolver"]


@dataclass
class Resolved:
    """The sources of a load, in order, and the flattened list of subrun ids."""

    sources: list[Source]
    subruns: list[str]
    targets: list[str]
    data_kind: str


def intersect_ranges(ranges, time_range):
    """``ranges`` (or everything, if None) cut to ``time_range`` (or left, if None)."""
    if time_range is None:
        return None if ranges is None else tuple(tuple(r) for r in ranges)
    ts, te = time_range
    if ranges is None:
        return ((ts, te),)
    out = []
    for s, e in ranges:
        s, e = max(s, ts), min(e, te)
        if s < e:
            out.append((s, e))
    return tuple(out)


class Resolver:
    """Resolves loads for a context (it needs its registry, storage and maker)."""

    def __init__(self, context):
        self.ctx = context

    # -- superrun definitions ---------------------------------------------------------
    def flat(self, run_id: str) -> list[tuple[str, object]]:
        """The flattened definition of superrun ``run_id``."""
        doc = self.ctx.run_metadata(run_id)
        return flatten(doc["sub_run_spec"], self.ctx.run_metadata, (run_id,))

    def superrun_key(self, run_id: str, data_type: str, flat=None) -> DataKey:
        """Key of superrun ``run_id``'s stored ``data_type``; subruns must share a lineage."""
        flat = flat if flat is not None else self.flat(run_id)
        registry = self.ctx._registry
        lineages = {}
        for sub, _ranges in flat:
            lin = canonical(registry.lineage(data_type, sub))
            lineages.setdefault(deterministic_hash(lin), (sub, lin))
        if len(lineages) > 1:
            detail = ", ".join(f"{sub}: {h}" for h, (sub, _) in lineages.items())
            raise LineageMismatch(
                f"subruns of superrun {run_id!r} have different lineages for {data_type!r} "
                f"({detail}), e.g. from per-run defaults; one store holds one lineage, so "
                "it cannot be stored as one superrun (it can still be loaded)"
            )
        lineage = next(iter(lineages.values()))[1]
        h = deterministic_hash({"lineage": lineage, "superrun": [[s, r] for s, r in flat]})
        return DataKey(run_id, data_type, h, lineage)

    # -- the load ---------------------------------------------------------------------
    def resolve(self, run_ids, targets, time_range=None, check_lineage=True, make=True) -> Resolved:
        """Sources for loading ``targets`` of ``run_ids``, making what is missing."""
        ctx = self.ctx
        if isinstance(targets, str):
            targets = [targets]
        targets = list(dict.fromkeys(targets))
        if not targets:
            raise InvalidRequest("no target data type given")
        kind = ctx._registry.same_kind(targets)
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
        if time_range is not None:
            time_range = _check_time_range(time_range)

        # one plan entry per source: (label, run, ranges, subrun index, stored superrun?)
        plan, subruns = [], []
        for label in runs:
            if is_superrun_id(label):
                flat = self.flat(label)
                keys = self._superrun_keys(label, targets, flat)
                stored = keys and all(ctx._storage.find(str(k)) for k in keys.values())
                if stored:
                    meta = ctx._storage.find(str(keys[targets[0]]))[1]
                    plan.append(
                        (label, label, intersect_ranges(None, time_range), len(subruns), True, keys)
                    )
                    subruns.extend(meta["subruns"])
                    continue
                for sub, ranges in flat:
                    ranges = None if ranges == "all" else ranges
                    cut = intersect_ranges(ranges, time_range)
                    if _touches(cut, ranges, sub, ctx, time_range):
                        plan.append((label, sub, cut, len(subruns), False, None))
                    subruns.append(sub)
            else:
                plan.append(
                    (label, label, intersect_ranges(None, time_range), len(subruns), False, None)
                )
                subruns.append(label)

        # make what is missing, all runs together
        keys = {}
        missing: dict[str, list[str]] = {}
        for _label, run, _ranges, _i, stored_sr, _keys in plan:
            if stored_sr:
                continue
            for t in targets:
                key = keys.setdefault((run, t), ctx._registry.key(run, t))
                if ctx._storage.find(str(key)) is None:
                    missing.setdefault(run, []).append(t)
        if missing:
            if not make:
                run, ts = next(iter(missing.items()))
                raise DataNotAvailable(
                    f"{ts[0]} of run {run!r} ({keys[(run, ts[0])]}) is not stored; "
                    "make it with st.make"
                )
            ctx._make_regular(list(missing.items()))

        sources = []
        for label, run, ranges, i, stored_sr, sr_keys in plan:
            groups = []
            for t in targets:
                key = sr_keys[t] if stored_sr else keys[(run, t)]
                found = ctx._storage.find(str(key))
                if found is None:
                    raise DataNotAvailable(f"{key} is not stored and could not be made")
                frontend, meta = found
                if check_lineage and canonical(meta.get("lineage")) != canonical(key.lineage):
                    raise LineageMismatch(
                        f"stored {t} of run {run!r} ({key}) was made with lineage "
                        f"{deterministic_hash(canonical(meta.get('lineage')))}, but lineage "
                        f"{deterministic_hash(canonical(key.lineage))} is requested; make it "
                        "again, or pass check_lineage=False to load it anyway"
                    )
                groups.append((t, frontend.url, str(key), meta))
            sources.append(Source(run, label, tuple(groups), i, ranges, stored_sr))
        return Resolved(sources, subruns, targets, kind)

    def _superrun_keys(self, label, targets, flat) -> dict | None:
        """The superrun's key of each target, or None if its subruns' lineages differ."""
        try:
            return {t: self.superrun_key(label, t, flat) for t in targets}
        except LineageMismatch:
            return None


def _touches(cut, ranges, sub, ctx, time_range) -> bool:
    """Whether a subrun has anything inside the time range (so must be loaded)."""
    if time_range is None:
        return True
    if ranges is not None:
        return bool(cut)
    try:
        doc = ctx.run_metadata(sub)
    except RunMetadataNotAvailable:
        return True
    return doc["start"] < time_range[1] and doc["end"] > time_range[0]


def _check_time_range(time_range):
    try:
        start, end = (int(x) for x in time_range)
    except (TypeError, ValueError):
        raise InvalidRequest(f"time_range must be (start_ns, end_ns): got {time_range!r}") from None
    if end < start:
        raise InvalidRequest(f"time_range {time_range!r} ends before it starts")
    return start, end

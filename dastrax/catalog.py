"""The run catalog: run documents read, checked and completed; superruns defined, flattened
and deleted — over the storage frontends, for the resolver and the context."""

from __future__ import annotations

import pandas as pd

from . import runs, superruns
from .errors import RunMetadataNotAvailable, SuperrunDefinitionError
from .names import (
    is_superrun_id,
    validate_regular_run_id,
    validate_run_id,
    validate_superrun_name,
)
from .storage import StorageList

__all__ = ["Catalog"]


class Catalog:
    """Run documents of a :class:`~dastrax.storage.StorageList`.

    Parameters
    ----------
    storage
        The frontends, in search order.
    """

    def __init__(self, storage: StorageList):
        self.storage = storage

    def run_metadata(self, run_id: str) -> dict:
        """The completed run document of ``run_id`` (superruns: their full spec)."""
        validate_run_id(run_id)
        try:
            doc, frontend = self.storage.run_metadata(run_id)
        except RunMetadataNotAvailable:
            if is_superrun_id(run_id):
                raise RunMetadataNotAvailable(
                    f"superrun {run_id} is not defined; define it with "
                    f"st.define_run({run_id!r}, [...])"
                ) from None
            raise
        where = _where(frontend, run_id)
        read = getattr(runs, "read_document", None)
        doc = read(run_id, doc, where) if read else runs.complete_document(doc)
        if "sub_run_spec" in doc and hasattr(superruns, "expand_spec"):
            doc["sub_run_spec"] = superruns.expand_spec(
                doc, lambda name: frontend.run_attachment(run_id, name)
            )
        return doc

    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write the document of regular run ``run_id`` (``start``/``end`` required)."""
        validate_regular_run_id(run_id)
        self.storage.run_metadata_writer(run_id).write_run_metadata(
            run_id, runs.normalize_document(run_id, doc)
        )

    def list_runs(self) -> list[str]:
        return self.storage.list_runs()

    def flat(self, run_id: str) -> list[tuple[str, object]]:
        """The flattened definition of superrun ``run_id``."""
        doc = self.run_metadata(run_id)
        return superruns.flatten(doc["sub_run_spec"], self.run_metadata, (run_id,))

    def define(self, name: str, data, from_run: str | None = None, overwrite: bool = False):
        """Define superrun ``name`` (see :meth:`dastrax.Context.define_run`)."""
        validate_superrun_name(name)
        if from_run is not None:
            validate_run_id(from_run)
        spec = superruns.normalize_spec(data, from_run)
        superruns.require_docs(spec, self.run_metadata, name)
        flat = superruns.flatten(spec, self.run_metadata, (name,))
        made = superruns.superrun_document(name, spec, flat, self.run_metadata)
        doc, attachments = made if isinstance(made, tuple) else (made, {})
        try:
            old = self.run_metadata(name)
        except RunMetadataNotAvailable:
            old = None
        if old is not None and _same_spec(old, doc, self) and not overwrite:
            return runs.complete_document(old)
        writer = self.storage.run_metadata_writer(name)
        if old is None:
            for att, array in attachments.items():
                writer.write_run_attachment(name, att, array)
            if writer.create_run_metadata(name, doc):
                return runs.complete_document(doc)
            old = self.run_metadata(name)  # another process defined it meanwhile
            if not _same_spec(old, doc, self):
                raise SuperrunDefinitionError(
                    f"superrun {name!r} was defined by another process at the same time with "
                    f"another spec; pass overwrite=True to redefine it"
                )
        if _same_spec(old, doc, self) and (not overwrite or _same_doc(old, doc)):
            return runs.complete_document(self.run_metadata(name))
        if not overwrite:
            raise SuperrunDefinitionError(
                f"superrun {name!r} is already defined with another spec "
                f"{_short(old.get('sub_run_spec'))}; pass overwrite=True to redefine it "
                "(this deletes its stored data)"
            )
        self.storage.delete_everywhere(f"{name}-")
        for att, array in attachments.items():
            writer.write_run_attachment(name, att, array)
        writer.write_run_metadata(name, doc)
        return runs.complete_document(self.run_metadata(name))

    def select_runs(self, run_mode=None, include_tags=None, exclude_tags=None) -> pd.DataFrame:
        docs = [self.run_metadata(r) for r in self.list_runs()]
        return runs.select_table(docs, run_mode, include_tags, exclude_tags)


def _where(frontend, run_id: str) -> str:
    path = getattr(frontend, "run_document_path", None)
    return path(run_id) if path is not None else f"{frontend.url} (run {run_id})"


def _same_spec(old: dict, new: dict, catalog: Catalog) -> bool:
    """Whether a stored superrun document defines the same superrun as ``new``."""
    a, b = old.get("sub_run_spec"), new.get("sub_run_spec")
    if a == b:
        return True
    try:
        return _plain(a) == _plain(b)
    except (TypeError, ValueError):
        return False


def _same_doc(old: dict, new: dict) -> bool:
    """Whether the fields derived from the subruns' documents are unchanged."""
    return all(old.get(k) == new.get(k) for k in ("start", "end", "livetime"))


def _plain(spec) -> dict:
    if not isinstance(spec, dict):
        return spec
    out = {}
    for run, ranges in spec.items():
        if hasattr(ranges, "tolist"):
            ranges = ranges.tolist()
        out[run] = ranges
    return out


def _short(spec, limit: int = 300) -> str:
    text = str(_plain(spec))
    return text if len(text) <= limit else text[:limit] + " ..."

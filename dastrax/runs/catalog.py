"""The run catalog: run documents read, checked and completed; superruns defined, flattened
and deleted — over the storage frontends, for the resolver and the context."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Any

import pandas as pd

from dastrax.core.names import (
    is_superrun_id,
    validate_regular_run_id,
    validate_run_id,
    validate_superrun_name,
)
from dastrax.errors import RunMetadataNotAvailable, SuperrunDefinitionError, advice
from dastrax.runs import documents as runs
from dastrax.runs import superruns
from dastrax.storage import StorageFrontend, StorageList, SupportsRunDocumentPath

#: frames in this folder are dastrax's: warnings point at the first frame outside it
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

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
        self._attachments: dict[tuple, object] = {}
        self._local = threading.local()  # each thread's snapshot (see snapshot())

    @property
    def _snapshot(self) -> dict | None:
        return getattr(self._local, "memo", None)

    @_snapshot.setter
    def _snapshot(self, memo: dict | None) -> None:
        self._local.memo = memo

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @contextlib.contextmanager
    def snapshot(self):
        """Within this (in this thread), each run document is read once: one operation
        (a persist, a load's resolution) sees one state of them, and a superrun of N
        subruns costs N document reads, not N for each step that needs them."""
        if self._snapshot is not None:
            yield
            return
        self._snapshot = {}
        try:
            yield
        finally:
            self._snapshot = None

    def _stored(self, run_id: str) -> tuple[dict, StorageFrontend]:
        """The run document of ``run_id`` as stored (checked), and its frontend."""
        memo = self._snapshot
        if memo is not None and run_id in memo:
            return memo[run_id]
        found = self._read(run_id)
        if memo is not None:
            memo[run_id] = found
        return found

    def _forget(self, run_id: str) -> None:
        if self._snapshot is not None:
            self._snapshot.clear()  # (flattened superruns depend on their subruns' docs)

    def _read(self, run_id: str) -> tuple[dict, StorageFrontend]:
        validate_run_id(run_id)
        try:
            doc, frontend = self.storage.run_metadata(run_id)
        except RunMetadataNotAvailable:
            if is_superrun_id(run_id):
                raise RunMetadataNotAvailable(
                    f"superrun {run_id} is not defined; {advice('define', run=run_id)}"
                ) from None
            raise
        return runs.read_document(run_id, doc, _where(frontend, run_id)), frontend

    def _attachment(self, run_id: str, name: str):
        """An attachment of ``run_id``'s document; remembered (a few), since names are
        content-addressed: a name always holds the same array."""
        frontend = self._stored(run_id)[1]
        key = (frontend.url, run_id, name)
        if key not in self._attachments:
            if len(self._attachments) >= 4:
                self._attachments.pop(next(iter(self._attachments)))
            self._attachments[key] = frontend.run_attachment(run_id, name)
        return self._attachments[key]

    def run_metadata(self, run_id: str) -> dict:
        """The completed run document of ``run_id``; a superrun's ``sub_run_spec`` in
        full (windows stored compactly beside the document as ``(k, 2)`` arrays)."""
        return self._expanded(self._stored(run_id)[0])

    def _expanded(self, doc: dict) -> dict:
        spec = doc.get("sub_run_spec")
        if isinstance(spec, dict) and any(isinstance(v, dict) for v in spec.values()):
            doc = dict(doc, sub_run_spec=superruns.expand_spec(doc, self._attachment))
        return doc

    def write_run_metadata(self, run_id: str, doc: dict) -> None:
        """Write the document of regular run ``run_id`` (``start``/``end`` required)."""
        validate_regular_run_id(run_id)
        doc = runs.normalize_document(run_id, doc)
        self._forget(run_id)
        self.storage.run_metadata_writer(run_id).write_run_metadata(run_id, doc)

    def warn_rows_outside(self, docs: dict[str, dict]) -> None:
        """Warn if stored rows of the runs ``{run_id: document}`` lie outside their
        document's ``[start, end)`` (e.g. a document in seconds, rows in ns): loads never
        lose them, but the documents' bounds and livetime say something else. Checked
        for up to 20 runs at a time (a big superrun's define does not read every subrun's
        metadata for it)."""
        if len(docs) > 20:
            return
        for frontend in self.storage:
            for run_id in docs:
                self._warn_run(frontend, run_id, docs[run_id])

    def _warn_run(self, frontend, run_id: str, doc: dict) -> None:
        for key in frontend.keys(f"{run_id}-"):
            if key.count("-") == 2:
                group = frontend.find(key)
                chunks = [c for c in (group.chunks if group else []) if c.get("n")]
                if not chunks:
                    continue
                first = min(c["first_time"] for c in chunks)
                last = max(c["last_endtime"] for c in chunks)
                if first < doc["start"] or last > doc["end"]:
                    warnings.warn(
                        f"rows of {key} lie in [{first}, {last}), outside run {run_id}'s "
                        f"document [start, end) = [{doc['start']}, {doc['end']}): check that "
                        "the document's start and end are in ns since the epoch",
                        UserWarning,
                        skip_file_prefixes=(_PACKAGE_DIR,),  # the user's line
                    )
                    return

    def list_runs(self) -> list[str]:
        return self.storage.list_runs()

    def flat(self, run_id: str) -> list[tuple[str, object]]:
        """The flattened definition of superrun ``run_id``: ``[(run, "all" or (k, 2)
        windows), ...]`` by start."""
        memo = self._snapshot
        if memo is not None and ("flat", run_id) in memo:
            return memo[("flat", run_id)]
        doc, _frontend = self._stored(run_id)
        flat = superruns.stored_flat(run_id, doc["sub_run_spec"], self._attachment)
        if flat is None:
            flat = superruns.flatten_arrays(
                doc["sub_run_spec"], self._doc, (run_id,), read_attachment=self._attachment
            )
        if memo is not None:
            memo[("flat", run_id)] = flat
        return flat

    def _doc(self, run_id: str) -> dict:
        return self._stored(run_id)[0]

    def extend(self, name: str, data, from_run: str | None = None) -> dict:
        """Add subruns to superrun ``name`` (see :meth:`dastrax.Context.extend_superrun`):
        a redefinition with the old spec plus the new subruns, keeping its stored data
        (a later persist appends the new rows)."""
        validate_superrun_name(name)
        old = self.run_metadata(name)["sub_run_spec"]
        new = superruns.normalize_spec(data, from_run)
        again = sorted(set(new) & set(old))
        if again:
            raise SuperrunDefinitionError(
                f"superrun {name!r} already holds {again}; extend it with other runs (the "
                "same data may not appear twice), or redefine it: "
                f"{advice('redefine')}"
            )
        return self.define(name, {**old, **new}, overwrite=True, keep_stored=True)

    def define(
        self,
        name: str,
        data,
        from_run: str | None = None,
        overwrite: bool = False,
        keep_stored: bool = False,
    ) -> dict[str, Any]:
        """Define superrun ``name`` (see :meth:`dastrax.Context.define_run`); with
        ``keep_stored``, a redefinition keeps the stored data of the old one."""
        validate_superrun_name(name)
        if from_run is not None:
            validate_run_id(from_run)
        spec = superruns.normalize_spec(data, from_run)
        superruns.require_docs(spec, self._doc, name)
        flat = superruns.flatten_arrays(spec, self._doc, (name,), self._attachment)
        doc, attachments = superruns.superrun_document(name, spec, flat, self._doc)
        self.warn_rows_outside({s: self._doc(s) for s, r in flat if isinstance(r, str)})
        old: dict | None
        try:
            old = self._stored(name)[0]
        except RunMetadataNotAvailable:
            old = None
        if (
            old is not None
            and superruns.same_spec(old["sub_run_spec"], doc["sub_run_spec"])
            and (not overwrite or _same_doc(old, doc))
        ):
            # the document as found (not read again: another process may have redefined
            # the superrun since)
            return runs.complete_document(self._expanded(old))
        if old is not None and not overwrite:
            raise SuperrunDefinitionError(
                f"superrun {name!r} is already defined with another spec "
                f"({_short(old.get('sub_run_spec'))}); {advice('redefine')} "
                "(this deletes its stored data)"
            )
        self._forget(name)
        writer = self.storage.run_metadata_writer(name)
        for att, array in attachments.items():  # content-addressed: a race writes the same
            writer.write_run_attachment(name, att, array)
        if old is None:
            if not writer.create_run_metadata(name, doc):
                theirs = self._stored(name)[0]  # another process defined it meanwhile
                if not superruns.same_spec(theirs["sub_run_spec"], doc["sub_run_spec"]):
                    raise SuperrunDefinitionError(
                        f"superrun {name!r} was defined by another process at the same "
                        f"time, with another spec; {advice('redefine')}"
                    )
            return _written(doc, attachments)
        if not keep_stored:
            self.storage.delete_everywhere(f"{name}-")
        writer.write_run_metadata(name, doc)
        return _written(doc, attachments)

    def select_runs(self, run_mode=None, include_tags=None, exclude_tags=None) -> pd.DataFrame:
        docs = [self.run_metadata(r) for r in self.list_runs()]
        return runs.select_table(docs, run_mode, include_tags, exclude_tags)


def _written(doc: dict, attachments: dict) -> dict:
    """The completed document as this call wrote it (not as read back: another process
    may have redefined the superrun since), its spec in full."""
    spec = doc["sub_run_spec"]
    if any(isinstance(v, dict) for v in spec.values()):
        doc = dict(doc, sub_run_spec=superruns.expand_spec(doc, lambda _r, k: attachments[k]))
    return runs.complete_document(doc)


def _where(frontend, run_id: str) -> str:
    if isinstance(frontend, SupportsRunDocumentPath):
        return frontend.run_document_path(run_id)
    return f"{frontend.url} (run {run_id})"


def _same_doc(old: dict, new: dict) -> bool:
    """Whether the fields derived from the subruns' documents are unchanged."""
    return all(old.get(k) == new.get(k) for k in ("start", "end", "livetime"))


def _short(spec, limit: int = 300) -> str:
    text = str(spec)
    return text if len(text) <= limit else text[:limit] + " ..."

"""Run documents in an icechunk repository: a group ``/runs/<run_id>`` per run, the
document in its ``attrs["run"]`` and each attachment an array beside it; every write one
commit (so each redefinition is a version: :mod:`.versions`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import icechunk
import numpy as np
import zarr
import zarr.errors

from dastrax.errors import CorruptData, InvalidRequest, RunMetadataNotAvailable, WriteConflict
from dastrax.storage.codecs import make_codecs, normalize_compressor
from dastrax.storage.icechunk.base import RepositoryBase
from dastrax.storage.icechunk.commit import root_group
from dastrax.storage.icechunk.location import first_line

#: the group holding the run documents (no storage key may be named so)
RUNS = "runs"
_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def run_group(session: icechunk.Session, run_id: str) -> zarr.Group | None:
    """The group of ``run_id``'s document in ``session``, or None."""
    try:
        return zarr.open_group(
            session.store, path=f"{RUNS}/{run_id}", mode="r", use_consolidated=False
        )
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return None


def check_run_id(run_id: str) -> None:
    """Raise :class:`InvalidRequest` unless ``run_id`` is a non-empty name without '/'."""
    if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id.startswith("."):
        raise InvalidRequest(f"{run_id!r} is not a run id: a non-empty name without '/'")


class RunDocuments(RepositoryBase):
    """The run documents of an ``IcechunkRepository`` (see the module docstring)."""

    def run_metadata(self, run_id: str) -> dict[str, Any]:
        """The run document of ``run_id``.

        Raises
        ------
        RunMetadataNotAvailable
            If there is none.
        """
        check_run_id(run_id)
        session = self._read_session()
        group = None if session is None else run_group(session, run_id)
        if group is None or "run" not in group.attrs:
            raise RunMetadataNotAvailable(f"no run document for run {run_id!r} in {self.url}")
        return run_document(group, self.url)

    def write_run_metadata(self, run_id: str, doc: dict[str, Any]) -> None:
        """Write the run document of ``run_id`` in one commit (a new version if it existed)."""
        self._put_run(run_id, doc, exclusive=False)

    def create_run_metadata(self, run_id: str, doc: dict[str, Any]) -> bool:
        """Write the run document only if there is none (exclusive across writers)."""
        return self._put_run(run_id, doc, exclusive=True)

    def _put_run(self, run_id: str, doc: dict[str, Any], exclusive: bool) -> bool:
        check_run_id(run_id)
        self.check_writable()
        doc = _json_doc(run_id, doc)
        verb = {"v": "define"}

        def change(root: zarr.Group) -> bool:
            path = f"{RUNS}/{run_id}"
            exists = path in root and "run" in root[path].attrs
            if exists and exclusive:
                return False
            verb["v"] = "redefine" if exists else "define"
            group = root.require_group(RUNS).require_group(run_id)
            group.attrs["run"] = doc
            return True

        info = {"op": "run_document", "run_id": run_id}
        try:
            return self._write(lambda: f"dastrax: {verb['v']} {run_id}", info, change)
        except WriteConflict:
            if exclusive:
                return False
            raise

    def write_run_attachment(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Store ``array`` beside the run document of ``run_id`` (one commit)."""
        check_run_id(run_id)
        if not isinstance(name, str) or not _NAME.match(name) or name == "run":
            raise InvalidRequest(
                f"attachment name {name!r} of run {run_id!r}: use letters, digits, '_' and '.'"
            )
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise InvalidRequest(
                f"attachment {name!r} of run {run_id!r} holds Python objects; store a numeric "
                "or fixed-width numpy array"
            )

        def change(root: zarr.Group) -> bool:
            group = root.require_group(RUNS).require_group(run_id)
            arr = group.create_array(
                name,
                shape=array.shape,
                dtype=array.dtype,
                chunks=array.shape or "auto",  # a 0-d array: zarr's one chunk
                compressors=make_codecs(normalize_compressor(None)),
                overwrite=True,
            )
            if array.size:
                arr[...] = array
            return True

        info = {"op": "attachment", "run_id": run_id, "name": name}
        self._write(f"dastrax: attach {name} to run {run_id}", info, change)

    def run_attachment(self, run_id: str, name: str) -> np.ndarray:
        """The array stored by :meth:`write_run_attachment`.

        Raises
        ------
        RunMetadataNotAvailable
            If there is none.
        """
        check_run_id(run_id)
        session = self._read_session()
        group = None if session is None else run_group(session, run_id)
        if group is None or name not in group.array_keys():
            raise RunMetadataNotAvailable(
                f"run {run_id!r} has no attachment {name!r} in {self.url}"
            )
        try:
            node = group[name]
            if not isinstance(node, zarr.Array):
                raise TypeError(f"{name} is a group")
            return np.asarray(node[...])  # a 0-d array too (zarr gives a numpy scalar)
        except Exception as e:
            raise CorruptData(
                f"attachment {name!r} of run {run_id!r} in {self.url} cannot be read: "
                f"{first_line(e)}; write it again"
            ) from None

    def delete_run_metadata(self, run_id: str) -> None:
        """Delete the run document of ``run_id`` and its attachments (one commit)."""
        check_run_id(run_id)
        if self._repo() is None:
            self.check_writable()
            return

        def change(root: zarr.Group) -> bool:
            runs = _subgroup(root, RUNS)
            if runs is None or run_id not in runs:
                return False
            del runs[run_id]
            return True

        info = {"op": "delete_run_document", "run_id": run_id}
        self._write(f"dastrax: delete run document {run_id}", info, change)

    def list_runs(self) -> list[str]:
        """Run ids with a run document, sorted."""
        session = self._read_session()
        if session is None:
            return []
        root = root_group(session.store)
        runs = None if root is None else _subgroup(root, RUNS)
        if runs is None:
            return []
        return sorted(k for k in runs.group_keys() if "run" in runs[k].attrs)


def run_document(group: zarr.Group, url: str) -> dict[str, Any]:
    """The run document in a run's group (a JSON object, as it was written).

    Raises
    ------
    CorruptData
        If what is there is not a JSON object.
    """
    doc = group.attrs["run"]
    if not isinstance(doc, Mapping):
        raise CorruptData(
            f"the run document {group.path} in {url} is not a JSON object but "
            f"{type(doc).__name__}; write it again"
        )
    return dict(doc)


def _subgroup(group: zarr.Group, name: str) -> zarr.Group | None:
    """The group ``name`` in ``group``, or None if there is none."""
    node = group.get(name)
    return node if isinstance(node, zarr.Group) else None


def _json_doc(run_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidRequest(f"the run document of {run_id!r} must be a dict, not {type(doc)}")
    try:
        out: dict[str, Any] = json.loads(json.dumps(doc))
    except (TypeError, ValueError) as e:
        raise InvalidRequest(f"the run document of {run_id!r} is not JSON: {e}") from None
    return out

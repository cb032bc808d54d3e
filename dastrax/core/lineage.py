"""Lineage: which plugins, versions and tracked options made a data type, and its hash."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dastrax.errors import InvalidRequest

__all__ = ["DataKey", "canonical", "deterministic_hash"]


def canonical(obj: Any) -> Any:
    """``obj`` as plain JSON values (tuples become lists), for comparing lineages."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_jsonable))


def _jsonable(x: object) -> object:
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, frozenset)):
        return sorted(x)
    return str(x)


def deterministic_hash(obj: Any, length: int = 10) -> str:
    """A digest of ``obj``'s canonical JSON: ``length`` lowercase base32 characters.

    >>> deterministic_hash({"b": 1, "a": (2, 3)}) == deterministic_hash({"a": [2, 3], "b": 1})
    True
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)
    digest = hashlib.sha1(text.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:length]


@dataclass(frozen=True)
class DataKey:
    """Names stored data: ``str(key) == f"{run_id}-{data_type}-{lineage_hash}"``."""

    run_id: str
    data_type: str
    lineage_hash: str
    #: ``{data_type: (plugin class name, version, {tracked option: value})}``
    lineage: dict[str, Any] = field(compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return f"{self.run_id}-{self.data_type}-{self.lineage_hash}"

    @classmethod
    def parse(cls, key: str, lineage: dict[str, Any] | None = None) -> DataKey:
        """The key named by ``"run_id-data_type-lineage_hash"`` (a stored group's name).

        Run ids and data types hold no ``-`` (run ids are checked when given), so a
        stored name splits in exactly three.

        Parameters
        ----------
        key : str
            A stored group's name.
        lineage : dict, optional
            Its lineage, if known (``{}`` otherwise).

        Returns
        -------
        DataKey

        Raises
        ------
        dastrax.errors.InvalidRequest
            If ``key`` is not three non-empty parts joined by ``-``.

        Examples
        --------
        >>> DataKey.parse("_kr-peaks-abcdefghij").data_type
        'peaks'
        """
        parts = key.split("-") if isinstance(key, str) else []
        if len(parts) != 3 or not all(parts):
            raise InvalidRequest(
                f"{key!r} is not the name of stored data: give run_id-data_type-lineage_hash"
            )
        return cls(parts[0], parts[1], parts[2], lineage or {})

"""The ``subrun`` coordinate of a lazy load, kept as runs of rows instead of one label a row.

A superrun's rows come subrun by subrun, so its ``subrun`` coordinate is a few runs of
equal labels: ``(labels, first rows)``, one pair per subrun. :class:`SubrunIndex` is an
xarray index over that run-length form (an :class:`xarray.indexes.CoordinateTransformIndex`,
as xarray's own ``RangeIndex``): opening a superrun costs nothing per row, the coordinate's
values are made only when something asks for them (``ds.subrun.values``, a groupby), and
``ds.sel(subrun=k)`` is a slice of rows found by a binary search over the subruns — exact
int64 times, no mask. Loads whose labels are not in increasing order (several runs given
out of order) keep a plain in-memory coordinate and xarray's ``PandasIndex``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from xarray import DataArray, Variable
from xarray.core.coordinate_transform import CoordinateTransform
from xarray.core.indexes import CoordinateTransformIndex, Index, PandasIndex
from xarray.core.indexing import IndexSelResult

from dastrax.errors import InvalidRequest

__all__ = ["SubrunIndex", "SubrunTransform", "runs_of"]

#: the coordinate's name
NAME = "subrun"
#: the dtype of its labels
DTYPE = np.dtype(np.int32)


def runs_of(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, lengths)`` with neighbouring runs of the same label merged and empty runs
    dropped (the row labels ``np.repeat(values, lengths)`` are unchanged)."""
    values = np.asarray(values, DTYPE)
    lengths = np.asarray(lengths, np.int64)
    keep = lengths > 0
    values, lengths = values[keep], lengths[keep]
    if len(values) < 2:
        return values, lengths
    first = np.empty(len(values), bool)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    if first.all():
        return values, lengths
    starts = np.flatnonzero(first)
    return values[starts], np.add.reduceat(lengths, starts)


class SubrunTransform(CoordinateTransform):
    """Row position → subrun label over runs of rows: ``labels[k]`` for the rows
    ``[starts[k], starts[k + 1])`` (labels strictly increasing)."""

    def __init__(self, labels: np.ndarray, lengths: np.ndarray, dim: str) -> None:
        self.labels = np.asarray(labels, DTYPE)
        self.lengths = np.asarray(lengths, np.int64)
        self.starts = np.zeros(len(self.lengths) + 1, np.int64)
        np.cumsum(self.lengths, out=self.starts[1:])
        super().__init__([NAME], {dim: int(self.starts[-1])}, dtype=DTYPE)

    @property
    def dim(self) -> str:
        return self.dims[0]

    @property
    def size(self) -> int:
        return self.dim_size[self.dim]

    def forward(self, dim_positions: dict[str, Any]) -> dict[Hashable, Any]:
        positions = np.asarray(dim_positions[self.dim])
        k = np.searchsorted(self.starts, positions, side="right") - 1
        return {NAME: self.labels[np.clip(k, 0, max(len(self.labels) - 1, 0))]}

    def reverse(self, coord_labels: dict[Hashable, Any]) -> dict[str, Any]:
        """The first row of each label (labels not present give -1)."""
        want = np.asarray(coord_labels[NAME])
        k = np.searchsorted(self.labels, want)
        found = (k < len(self.labels)) & (self.labels[np.minimum(k, len(self.labels) - 1)] == want)
        return {self.dim: np.where(found, self.starts[np.minimum(k, len(self.labels))], -1)}

    def generate_coords(self, dims: tuple[str, ...] | None = None) -> dict[Hashable, Any]:
        return {NAME: np.repeat(self.labels, self.lengths)}

    def equals(self, other: CoordinateTransform, **kwargs: Any) -> bool:
        return (
            isinstance(other, SubrunTransform)
            and self.dim == other.dim
            and np.array_equal(self.labels, other.labels)
            and np.array_equal(self.lengths, other.lengths)
        )

    def cut(self, lo: int, hi: int) -> SubrunTransform:
        """The rows ``[lo, hi)``."""
        edges = np.clip(self.starts, lo, hi)
        return SubrunTransform(self.labels, np.diff(edges), self.dim).merged()

    def merged(self) -> SubrunTransform:
        labels, lengths = runs_of(self.labels, self.lengths)
        if len(labels) == len(self.labels):
            return self
        return SubrunTransform(labels, lengths, self.dim)

    def rows_of(self, label: Any) -> tuple[int, int] | None:
        """The rows ``[lo, hi)`` of subrun ``label``, None where it has none."""
        try:
            want = int(label)
        except (TypeError, ValueError):
            return None
        if want != label:
            return None
        k = int(np.searchsorted(self.labels, want))
        if k == len(self.labels) or self.labels[k] != want:
            return None
        return int(self.starts[k]), int(self.starts[k + 1])


class SubrunIndex(CoordinateTransformIndex):
    """The index of a lazy load's ``subrun`` coordinate: runs of rows, not one label a row.

    ``sel`` of one label or a slice of labels (both ends included, as for any xarray index)
    gives a slice of rows; a list of labels gives those subruns' rows in that order. Other
    selections (``method=``, labels as DataArrays) go through a ``PandasIndex`` of the
    materialised labels, so they behave exactly as on an in-memory coordinate.

    Build one with :meth:`from_runs` and ``xarray.Coordinates.from_xindex``.
    """

    transform: SubrunTransform

    @classmethod
    def from_runs(cls, labels: np.ndarray, lengths: np.ndarray, dim: str) -> SubrunIndex | None:
        """The index of rows labelled ``np.repeat(labels, lengths)``, or None where the
        labels (neighbouring runs merged) are not strictly increasing."""
        labels, lengths = runs_of(labels, lengths)
        if len(labels) > 1 and not bool(np.all(labels[1:] > labels[:-1])):
            return None
        return cls(SubrunTransform(labels, lengths, dim))

    @classmethod
    def from_variables(
        cls, variables: Mapping[Any, Variable], *, options: Mapping[str, Any]
    ) -> SubrunIndex:
        raise InvalidRequest(  # (xarray's set_xindex asks this; the runs are not in the data)
            "a SubrunIndex is not built from a coordinate's values: dastrax's loads give it; "
            "build one with SubrunIndex.from_runs(labels, lengths, dim=...) and "
            "xarray.Coordinates.from_xindex"
        )

    @property
    def dim(self) -> str:
        return self.transform.dim

    def _pandas(self) -> PandasIndex:
        return PandasIndex(self.to_pandas_index(), self.dim, coord_dtype=DTYPE)

    def to_pandas_index(self) -> pd.Index:
        return pd.Index(self.transform.generate_coords()[NAME], name=NAME)

    def equals(self, other: Index, **kwargs: Any) -> bool:
        return isinstance(other, SubrunIndex) and self.transform.equals(other.transform)

    def isel(self, indexers: Mapping[Any, int | slice | np.ndarray | Variable]) -> Index | None:
        idxer = indexers[self.dim]
        if isinstance(idxer, slice):
            lo, hi, step = idxer.indices(self.transform.size)
            if step == 1:
                return type(self)(self.transform.cut(lo, max(lo, hi)))
            idxer = np.arange(lo, hi, step)
        if isinstance(idxer, Variable) and idxer.ndim != 1 or np.ndim(idxer) == 0:
            return None
        positions = np.asarray(idxer.values if isinstance(idxer, Variable) else idxer)
        values = self.transform.forward({self.dim: positions})[NAME]
        new_dim = idxer.dims[0] if isinstance(idxer, Variable) else self.dim
        return PandasIndex(pd.Index(values, name=NAME), new_dim, coord_dtype=DTYPE)

    def sel(
        self, labels: dict[Any, Any], method: Any = None, tolerance: Any = None
    ) -> IndexSelResult:
        label = labels[NAME]
        fast = method is None and tolerance is None and not isinstance(label, Variable | DataArray)
        if fast:
            found = self._rows(label)
            if found is not None:
                return IndexSelResult({self.dim: found})
        return self._pandas().sel(labels, method=method, tolerance=tolerance)

    def _rows(self, label: Any) -> slice | np.ndarray | None:
        """Rows of ``label`` (a label, a slice of labels, a list of labels), None where
        the plain index should decide (e.g. to raise its own error for a missing label)."""
        t = self.transform
        if isinstance(label, slice):
            if label.step is not None:
                return None
            lo = 0 if label.start is None else int(np.searchsorted(t.labels, label.start, "left"))
            hi = (
                len(t.labels)
                if label.stop is None
                else int(np.searchsorted(t.labels, label.stop, "right"))
            )
            return slice(int(t.starts[lo]), int(t.starts[max(lo, hi)]))
        if np.ndim(label) == 0:
            rows = t.rows_of(label.item() if isinstance(label, np.generic) else label)
            return None if rows is None else slice(*rows)
        if np.ndim(label) == 1:
            wanted = np.asarray(label).tolist()
            spans = [t.rows_of(x) for x in wanted]
            missing = [x for x, s in zip(wanted, spans) if s is None]
            if missing:  # (as xarray's own indexes say it)
                raise KeyError(f"not all values found in index {NAME!r}: {missing}")
            parts = [np.arange(*s) for s in spans if s is not None]
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return None

    def _repr_inline_(self, max_width: int) -> str:
        return f"SubrunIndex ({len(self.transform.labels)} subruns)"

    def __repr__(self) -> str:
        return (
            f"SubrunIndex({len(self.transform.labels)} subruns, {self.transform.size} rows, "
            f"dim={self.dim!r})"
        )

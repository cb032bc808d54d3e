"""Windows over stored chunks (dastrax.core.windows): every row the SEMANTICS.md rule keeps, and
only those, with each cut chunk's time/end columns read once and whole chunks not at all."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_context, make_runs

import dastrax
from dastrax.core.windows import check_ranges, intersect, select_all, select_rows, union
from dastrax.errors import SuperrunDefinitionError


class Group:
    """One stored group in memory: rows sorted by time, a chunk table, a counting reader."""

    def __init__(self, time, endtime, bounds):
        self.time, self.endtime = np.asarray(time, np.int64), np.asarray(endtime, np.int64)
        rows = []
        for s, e in zip(bounds[:-1], bounds[1:]):
            lo = int(np.searchsorted(self.time, s, "left"))
            hi = int(np.searchsorted(self.time, e, "left"))
            rows.append((s, e, lo, hi - lo))
        self.chunks = [
            {
                "chunk_i": i,
                "start": s,
                "end": e,
                "row_start": lo,
                "n": n,
                "first_time": int(self.time[lo]) if n else None,
                "last_endtime": int(self.endtime[lo : lo + n].max()) if n else None,
            }
            for i, (s, e, lo, n) in enumerate(rows)
        ]
        self.reads = []

    def read(self, lo, hi):
        self.reads.append((lo, hi))
        return self.time[lo:hi], self.endtime[lo:hi]

    def rows(self, windows):
        """Global row numbers that select_rows keeps, checking each selection's fields."""
        out = []
        for sel in select_rows(self.chunks, windows, self.read):
            chunk = self.chunks[sel.chunk_i]
            assert chunk["row_start"] <= sel.lo < sel.hi <= chunk["row_start"] + chunk["n"]
            assert chunk["start"] <= sel.start <= sel.end <= chunk["end"]
            idx = np.arange(sel.lo, sel.hi) if sel.index is None else sel.lo + sel.index
            assert len(idx) == sel.n > 0
            out.append(idx)
        return np.concatenate(out) if out else np.empty(0, np.int64)


def brute(time, endtime, windows):
    """Rows with window_start <= time and endtime <= window_end for some window."""
    w = np.asarray(windows, np.int64).reshape(-1, 2)
    inside = (w[None, :, 0] <= time[:, None]) & (endtime[:, None] <= w[None, :, 1])
    return np.flatnonzero(inside.any(axis=1))


def regular_group(n_chunks=5, rows=10, length=1):
    """Rows at every ns of [0, n_chunks * rows), chunks of ``rows`` ns."""
    time = np.arange(n_chunks * rows)
    return Group(time, time + length, list(range(0, n_chunks * rows + 1, rows)))


# -- range algebra -------------------------------------------------------------------
def test_union_merges_overlapping_and_touching():
    got = union(np.array([10, 0, 3, 20, 25]), np.array([12, 3, 5, 30, 26]))
    assert got.tolist() == [[0, 5], [10, 12], [20, 30]]
    assert union(np.array([], np.int64), np.array([], np.int64)).shape == (0, 2)


@pytest.mark.parametrize("seed", range(5))
def test_union_and_intersect_against_a_grid(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 200, 40)
    e = s + rng.integers(1, 15, 40)
    grid_a = np.zeros(220, bool)
    for a, b in zip(s, e):
        grid_a[a:b] = True
    u = union(s, e)
    grid_u = np.zeros(220, bool)
    for a, b in u:
        grid_u[a:b] = True
    assert np.array_equal(grid_u, grid_a)
    assert np.all(u[1:, 0] > u[:-1, 1])  # disjoint, not touching
    s2 = rng.integers(0, 200, 30)
    v = union(s2, s2 + rng.integers(1, 20, 30))
    grid_v = np.zeros(220, bool)
    for a, b in v:
        grid_v[a:b] = True
    cut = intersect(u, v)
    grid_c = np.zeros(220, bool)
    for a, b in cut:
        grid_c[a:b] = True
    assert np.array_equal(grid_c, grid_u & grid_v)
    assert np.all(cut[:, 1] > cut[:, 0]) and np.all(cut[1:, 0] >= cut[:-1, 1])


def test_check_ranges_refuses_overlap_and_empty_ranges():
    assert check_ranges(np.array([[5, 6], [0, 2]]), "1").tolist() == [[0, 2], [5, 6]]
    with pytest.raises(SuperrunDefinitionError, match=r"\(0, 4\) and \(3, 6\) overlap"):
        check_ranges(np.array([[0, 4], [3, 6]]), "1")
    with pytest.raises(SuperrunDefinitionError, match=r"\(4, 4\) ends before"):
        check_ranges(np.array([[4, 4]]), "1")
    with pytest.raises(SuperrunDefinitionError, match="no time ranges"):
        check_ranges(np.empty((0, 2), np.int64), "1")


# -- select_rows -----------------------------------------------------------------------
def test_windows_at_chunk_edges():
    g = regular_group()
    w = np.array([[9, 11], [20, 30], [39, 40]])  # rows 9, 10; chunk 2 whole; row 39 only
    assert g.rows(w).tolist() == [9, 10, *range(20, 30), 39]
    sels = select_rows(g.chunks, w, g.read)
    assert [s.chunk_i for s in sels] == [0, 1, 2, 3]
    whole = sels[2]
    assert (whole.lo, whole.hi, whole.index, whole.start, whole.end) == (20, 30, None, 20, 30)
    assert (20, 30) not in g.reads  # a chunk wholly inside a window is not read
    assert (sels[0].start, sels[0].end, sels[1].start, sels[1].end) == (9, 10, 10, 11)


def test_adjacent_windows_each_read_once():
    g = regular_group()
    w = np.array([[2, 4], [4, 6], [7, 9]])  # adjacent windows and a gap in one chunk
    assert g.rows(w).tolist() == [2, 3, 4, 5, 7, 8]
    assert g.reads == [(0, 10)]  # one read for the chunk, whatever the number of windows
    (sel,) = select_rows(g.chunks, w, g.read)
    assert (sel.lo, sel.hi, sel.n, sel.index.tolist()) == (2, 9, 6, [0, 1, 2, 3, 5, 6])
    assert (sel.start, sel.end) == (2, 9)


def test_row_must_fit_inside_one_window():
    time = np.array([0, 5, 10, 15])
    g = Group(time, time + 6, [0, 30])  # rows [0, 6), [5, 11), [10, 16), [15, 21)
    assert g.rows(np.array([[0, 8], [8, 30]])).tolist() == [0, 2, 3]
    assert g.rows(np.array([[0, 11]])).tolist() == [0, 1]


def test_empty_windows_and_windows_in_gaps():
    time = np.concatenate([np.arange(0, 10), np.arange(50, 60)])
    g = Group(time, time + 1, [0, 10, 50, 60])  # chunk 1 [10, 50) holds no rows
    assert g.rows(np.array([[20, 40]])).tolist() == []
    assert g.reads == []  # no chunk can hold a row of a window in the gap
    assert g.rows(np.empty((0, 2), np.int64)).tolist() == []
    got = g.rows(np.array([[5, 7], [20, 40], [58, 70]]))
    assert got.tolist() == [5, 6, 18, 19]
    # windows between the rows of a chunk, too short for any row: nothing
    time = np.arange(0, 100, 10)
    g2 = Group(time, time + 5, [0, 100])
    assert select_rows(g2.chunks, np.array([[1, 9], [12, 18]]), g2.read) == []


def test_whole_run_load():
    g = regular_group(n_chunks=3)
    g.chunks.append({**g.chunks[-1], "chunk_i": 3, "n": 0, "row_start": 30})
    sels = select_rows(g.chunks, None, g.read)
    assert sels == select_all(g.chunks)
    assert [(s.lo, s.hi, s.n, s.index) for s in sels] == [
        (0, 10, 10, None),
        (10, 20, 10, None),
        (20, 30, 10, None),
    ]
    assert g.reads == []


@pytest.mark.parametrize("seed", range(8))
def test_random_windows_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    time = np.sort(rng.integers(0, 100_000, n))
    endtime = time + rng.integers(0, 60, n)  # rows overlap; some have length 0
    bounds = [0, *np.sort(rng.choice(np.arange(1, 100_000), 12, replace=False)), 200_000]
    # chunk boundaries only where no earlier row crosses them (the storage rule)
    bounds = [b for b in bounds if not np.any((time < b) & (endtime > b))]
    g = Group(time, endtime, bounds)
    k = int(rng.integers(1, 400))
    starts = rng.integers(-100, 100_100, k)
    w = union(starts, starts + rng.integers(1, 800, k))
    got = g.rows(w)
    assert np.array_equal(got, brute(g.time, g.endtime, w))
    touched = {s.chunk_i for s in select_rows(g.chunks, w, g.read)}
    assert len(g.reads) <= 2 * len(touched) + len(g.chunks)  # per chunk, never per window


def test_windows_over_data_stored_by_dastrax(tmp_path):
    st = make_context(tmp_path / "data")
    make_runs(st, ("0",), targets="records", n_chunks=10, recs_per_chunk=7, chunk_ns=10)
    meta = st.get_metadata("0", "records")
    rows = st.get_array("0", "records")
    end = dastrax.endtime(rows)
    row_start = np.cumsum([0] + [c["n"] for c in meta["chunks"]])[:-1]
    table = [{**c, "row_start": int(r)} for c, r in zip(meta["chunks"], row_start)]
    reads = []

    def read(lo, hi):
        reads.append((lo, hi))
        return rows["time"][lo:hi], end[lo:hi]

    w = np.array([[3, 12], [12, 13], [30, 60], [71, 72], [95, 200]])
    sels = select_rows(table, w, read)
    got = np.concatenate(
        [np.arange(s.lo, s.hi) if s.index is None else s.lo + s.index for s in sels]
    )
    want = brute(rows["time"], end, w)
    assert len(want) and np.array_equal(got, want)
    assert len(reads) < len(table)  # chunks [30, 60) are inside one window: not read


def test_filtered_and_array_chunk_tables_keep_chunk_numbers():
    g = regular_group()
    w = np.array([[5, 25], [41, 44]])
    full = select_rows(g.chunks, w, g.read)
    kept = [c for c in g.chunks if c["chunk_i"] != 1]  # e.g. ruled out by a selection
    got = select_rows(kept, w, g.read)
    assert [s.chunk_i for s in got] == [0, 2, 4]
    assert got == [s for s in full if s.chunk_i != 1]
    fields = ["chunk_i", "start", "end", "row_start", "n", "first_time", "last_endtime"]
    table = np.array([tuple(c[f] for f in fields) for c in g.chunks], [(f, "i8") for f in fields])
    assert select_rows(table, w, g.read) == full
    assert select_rows({f: table[f] for f in fields}, w, g.read) == full

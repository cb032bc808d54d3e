"""Minimum-bias definitions (issue 10): define_run from 10^6 rows is vectorised, gives the
union of the rows' intervals and the right livetime, stores big specs compactly, and
expand_spec gives the full spec back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import dastrax
from dastrax.core.windows import intersect
from dastrax.errors import SuperrunDefinitionError
from dastrax.runs import superruns as S

RUN_NS = 10**9


@pytest.fixture(scope="module")
def hundred_runs(tmp_path_factory):
    """A context whose storage holds run documents of 100 runs "0".."99", 1 s each."""
    path = tmp_path_factory.mktemp("mb") / "data"
    st = dastrax.Context(storage=[dastrax.ZarrDirectory(str(path))], progress=False)
    for i in range(100):
        st.write_run_metadata(str(i), {"start": i * RUN_NS, "end": (i + 1) * RUN_NS})
    return st


def random_rows(rng, n, runs=100, max_len=3000):
    run = rng.integers(0, runs, n)
    time = run * RUN_NS + rng.integers(0, RUN_NS - max_len, n)
    end = time + rng.integers(1, max_len, n)
    return pd.DataFrame({"time": time, "endtime": end, "run_id": run.astype(str)})


def loop_union(time, end):
    """The union of intervals the slow, obvious way."""
    out = []
    for s, e in sorted(zip(time.tolist(), end.tolist())):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def test_union_of_rows_against_a_loop():
    rng = np.random.default_rng(5)
    rows = random_rows(rng, 20_000, runs=3, max_len=200_000)
    spec = S.normalize_spec(rows)
    assert list(spec) == list(dict.fromkeys(rows["run_id"]))  # first appearance
    for run, windows in spec.items():
        part = rows[rows["run_id"] == run]
        assert windows.tolist() == loop_union(part["time"].to_numpy(), part["endtime"].to_numpy())
    assert sum(len(w) for w in spec.values()) < 20_000  # overlapping rows merged


def test_define_from_a_million_rows(hundred_runs):
    st = hundred_runs
    rng = np.random.default_rng(7)
    rows = random_rows(rng, 1_000_000)
    spec = S.normalize_spec(rows)
    S.require_docs(spec, st.run_metadata, "_mb")
    flat = S.flatten_arrays(spec, st.run_metadata, ("_mb",))
    doc, attachments = S.superrun_document("_mb", spec, flat, st.run_metadata)

    # the union: sorted, disjoint, not touching; every row inside a window; no window
    # without rows at its edges
    time, end = rows["time"].to_numpy(), rows["endtime"].to_numpy()
    for run, w in flat[:5] + flat[-5:]:
        assert np.all(w[1:, 0] > w[:-1, 1]) and np.all(w[:, 1] > w[:, 0])
        mine = (rows["run_id"] == run).to_numpy()
        t, e = time[mine], end[mine]
        j = np.searchsorted(w[:, 0], t, side="right") - 1
        assert np.all(j >= 0) and np.all(e <= w[j, 1])
        assert np.isin(w[:, 0], t).all() and np.isin(w[:, 1], e).all()
    assert [r for r, _ in flat] == [str(i) for i in range(100)]  # ordered by start
    total = sum(len(w) for _, w in flat)
    livetime_ns = sum(int((w[:, 1] - w[:, 0]).sum()) for _, w in flat)
    assert doc["livetime"] == livetime_ns / 1e9
    assert (doc["start"], doc["end"]) == (int(flat[0][1][0, 0]), int(flat[-1][1][-1, 1]))

    # compact: one attachment, the document small
    assert len(json.dumps(doc)) < 30_000
    (name, array) = next(iter(attachments.items()))
    assert len(attachments) == 1 and array.shape == (total, 2) and array.dtype == np.int64
    refs = doc["sub_run_spec"]
    assert list(refs) == [str(i) for i in range(100)]
    assert sum(r["n"] for r in refs.values()) == total
    assert sum(r["livetime_ns"] for r in refs.values()) == livetime_ns
    assert refs["3"]["hull"] == [int(spec["3"][0, 0]), int(spec["3"][-1, 1])]

    # expand_spec round trip; nested use resolves the attachment too
    store = {("_mb", name): array}
    reads = []

    def read_attachment(run_id, key):
        reads.append(key)
        return store[(run_id, key)]

    full = S.expand_spec(doc, read_attachment)
    assert reads == [name]  # read once for all subruns
    assert all(np.array_equal(full[r], spec[r]) for r in spec)
    again = S.flatten_arrays(doc["sub_run_spec"], st.run_metadata, ("_mb",), read_attachment)
    assert all(a == b and np.array_equal(x, y) for (a, x), (b, y) in zip(again, flat))

    # the same spec gives the same attachment name (a redefinition is a no-op)
    doc2, att2 = S.superrun_document("_mb", S.normalize_spec(rows), flat, st.run_metadata)
    assert list(att2) == [name] and S.same_spec(doc2["sub_run_spec"], refs)
    summary = S.spec_summary(doc)
    assert summary["subruns"] == 100 and summary["windows"] == total


def test_nested_superrun_of_a_compact_one(hundred_runs):
    st = hundred_runs
    rng = np.random.default_rng(8)
    rows = random_rows(rng, 5000, runs=4)
    spec = S.normalize_spec(rows)
    flat = S.flatten_arrays(spec, st.run_metadata, ("_inner",))
    doc, att = S.superrun_document("_inner", spec, flat, st.run_metadata, compact_above=10)
    (key, array) = next(iter(att.items()))
    docs = {"_inner": doc}

    def run_doc(r):
        return docs[r] if r in docs else st.run_metadata(r)

    cut = [[RUN_NS // 2, 2 * RUN_NS + RUN_NS // 3]]
    outer = S.flatten_arrays(
        {"_inner": cut},
        run_doc,
        ("_outer",),
        lambda run, name: {("_inner", key): array}[(run, name)],
    )
    assert [r for r, _ in outer] == ["0", "1", "2"]
    for run, w in outer:
        want = intersect(spec[run], np.array(cut))
        assert np.array_equal(w, want)
    with pytest.raises(SuperrunDefinitionError, match="cannot be read here"):
        S.flatten_arrays({"_inner": "all"}, run_doc, ("_outer",))


def test_define_run_through_the_context(hundred_runs, tmp_path):
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(str(tmp_path / "own")), *hundred_runs.storage],
        progress=False,
    )
    rng = np.random.default_rng(9)
    rows = random_rows(rng, 3000, runs=5, max_len=2 * 10**6)
    doc = st.define_run("_mbctx", rows)
    got = st.run_metadata("_mbctx")["sub_run_spec"]
    assert list(got) == ["0", "1", "2", "3", "4"]
    want_live = 0
    for run, windows in got.items():
        part = rows[rows["run_id"] == run]
        ref = loop_union(part["time"].to_numpy(), part["endtime"].to_numpy())
        want_live += sum(e - s for s, e in ref)
        assert (
            S.expand_spec({"name": "_mbctx", "sub_run_spec": {run: windows}}, None)[run].tolist()
            == ref
        )
    assert doc["livetime"] == pytest.approx(want_live / 1e9)
    # a record array and from_run= work too; the same rows again are a no-op
    rec = rows[rows["run_id"] == "2"][["time", "endtime"]].to_records(index=False)
    doc2 = st.define_run("_mb2", rec, from_run="2")
    assert np.asarray(doc2["sub_run_spec"]["2"]).tolist() == np.asarray(got["2"]).tolist()
    assert S.same_spec(st.define_run("_mbctx", rows)["sub_run_spec"], got)


@pytest.mark.parametrize(
    "column,values,match",
    [
        ("time", [0.0, np.nan, 5.0], r"'time' are NaN or infinite \(the first at row 1"),
        ("time", [0.0, np.inf, 5.0], "NaN or infinite"),
        ("endtime", [10.0, 10.5, 20.0], r"fractional \(the first at row 1: 10.5\)"),
        ("time", [0, 2.0**64, 5], "beyond int64"),
        ("endtime", [10, 0, 20], r"endtime > time; 1 row\(s\) do not \(the first: row 1"),
        ("run_id", ["0", None, "1"], "no run_id"),
    ],
)
def test_bad_rows_refused_and_nothing_written(hundred_runs, tmp_path, column, values, match):
    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(str(tmp_path / "own")), *hundred_runs.storage],
        progress=False,
    )
    rows = pd.DataFrame({"time": [0, 1, 5], "endtime": [10, 11, 20], "run_id": ["0", "0", "1"]})
    rows[column] = pd.Series(values, dtype=object if column == "run_id" else None)
    with pytest.raises(SuperrunDefinitionError, match=match) as info:
        st.define_run("_bad", rows)
    assert "-9223372036854775808" not in str(info.value)
    assert "_bad" not in st.list_runs()
    assert not (tmp_path / "own").exists() or not any((tmp_path / "own").rglob("*_bad*"))


def test_length_dt_rows_and_overflow():
    rows = np.zeros(3, [("time", "i8"), ("length", "i4"), ("dt", "i2")])
    rows["time"], rows["length"], rows["dt"] = [0, 5, 100], [10, 2, 5], [1, 2, 10]
    assert S.normalize_spec(rows, from_run="0")["0"].tolist() == [[0, 10], [100, 150]]
    rows["time"][2] = 2**63 - 10
    rows["length"][2], rows["dt"][2] = 1000, 1000
    with pytest.raises(SuperrunDefinitionError, match="beyond int64"):
        S.normalize_spec(rows, from_run="0")


def test_fingerprint_keeps_small_keys_and_compacts_big_ones():
    small = [("0", "all"), ("1", np.array([[22, 26]]))]
    assert S.flat_fingerprint(small) == [["0", "all"], ["1", [[22, 26]]]]
    big = [("1", np.stack([np.arange(0, 4000, 2), np.arange(1, 4001, 2)], axis=1))]
    fp = S.flat_fingerprint(big)
    assert fp[0][1]["n"] == 2000 and len(fp[0][1]["sha256"]) == 64
    moved = [("1", big[0][1] + 1)]
    assert S.flat_fingerprint(moved) != fp and S.flat_fingerprint(big) == fp


def test_dict_specs_with_arrays_checked_vectorised(hundred_runs):
    arr = np.stack([np.arange(0, 10**6, 100), np.arange(50, 10**6 + 50, 100)], axis=1)
    spec = S.normalize_spec({"0": arr, "1": [(RUN_NS + 5, RUN_NS + 9)]})
    assert spec["0"].shape == (10_000, 2)
    bad = arr.copy()
    bad[500, 1] = bad[501, 0] + 1
    with pytest.raises(SuperrunDefinitionError, match="overlap"):
        S.normalize_spec({"0": bad})
    outside = arr + RUN_NS - 10**6 + 100  # the last range ends 50 ns after the run
    with pytest.raises(SuperrunDefinitionError, match="lies outside the run"):
        S.flatten_arrays({"0": outside}, hundred_runs.run_metadata, ("_x",))

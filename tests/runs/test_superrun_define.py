"""Defining superruns (SEMANTICS.md "define_run"): every form of definition gives exactly
the rows it names, nested superruns flatten, run documents are right, and every refusal
writes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_context, make_runs, stored_files
from dastrax.testutils import PeakClassification, Peaks, Records
from superrun_util import assert_rows, expected

import dastrax


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Runs "0", "1", "2" (peaks made; [0, 10), [20, 30), [40, 50)), shared read-only."""
    path = tmp_path_factory.mktemp("define") / "data"
    make_runs(make_context(path))
    return path


def reading(runs_dir, own):
    """A context writing (run documents, data) to ``own``, reading the shared runs too."""
    return dastrax.Context(
        storage=[
            dastrax.ZarrDirectory(str(own)),
            dastrax.ZarrDirectory(str(runs_dir), readonly=True),
        ],
        register=[Records, Peaks, PeakClassification],
        progress=False,
    )


@pytest.fixture
def own(tmp_path):
    return tmp_path / "own"


@pytest.fixture
def st(runs_dir, own):
    return reading(runs_dir, own)


# -- definitions and their rows ------------------------------------------------------
def test_time_range_definition(st):
    doc = st.define_run("_mid", {"1": [(22, 26)]})
    assert (doc["start"], doc["end"]) == (22, 26)
    assert doc["livetime"] == pytest.approx(4e-9)
    assert doc["sub_run_spec"] == {"1": [[22, 26]]}
    rows = st.get_array("_mid", "peaks")
    want = expected({"1": [(22, 26)]})
    assert len(want) == 40  # times 22..25, 10 records each
    assert_rows(rows, want, area=1)
    assert "run_id" not in rows.dtype.names


def test_time_ranges_of_several_runs(st):
    spec = {"2": [(45, 50)], "0": [(1, 3), (7, 10)]}
    doc = st.define_run("_ranges", spec)
    assert (doc["start"], doc["end"]) == (1, 50)
    assert doc["livetime"] == pytest.approx((2 + 3 + 5) * 1e-9)
    rows = st.get_array("_ranges", "peaks")
    assert_rows(rows, expected({"0": [(1, 3), (7, 10)], "2": [(45, 50)]}))
    ds = st.get_dataset("_ranges", "peaks")
    assert ds.attrs["subruns"] == ["0", "2"]  # ordered by start
    np.testing.assert_array_equal(ds.subrun.values, [0] * 50 + [1] * 50)


def test_whole_runs_are_ordered_by_start(st):
    doc = st.define_run("_rev", ["2", "0", "1"])
    assert sorted(doc["sub_run_spec"]) == ["0", "1", "2"]
    assert list(doc["sub_run_spec"]) == ["0", "1", "2"]
    rows = st.get_array("_rev", "peaks")
    assert_rows(rows, expected({"0": "all", "1": "all", "2": "all"}))
    assert st.get_dataset("_rev", "peaks").attrs["subruns"] == ["0", "1", "2"]


def _events(kind: str, with_run_id: bool):
    """Three events: [1, 3) and [2, 5) in run 0 (union [1, 5)), [44, 46) in run 2."""
    time = np.array([1, 2, 44], np.int64)
    end = np.array([3, 5, 46], np.int64)
    cols = {"time": time}
    if kind == "endtime":
        cols["endtime"] = end
    else:  # length and dt
        cols["length"] = ((end - time) // 2).astype(np.int32)
        cols["dt"] = np.full(3, 2, np.int16)
        cols["length"][1] = 3
        cols["dt"][1] = 1  # 2 + 3 * 1 = 5
    if with_run_id:
        cols["run_id"] = np.array(["0", "0", "2"])
    return cols


@pytest.mark.parametrize("container", ["records", "dataframe"])
@pytest.mark.parametrize("kind", ["endtime", "length_dt"])
def test_event_based_definition_with_run_id_column(st, container, kind):
    cols = _events(kind, with_run_id=True)
    if container == "records":
        data = np.zeros(3, [(n, v.dtype) for n, v in cols.items()])
        for n, v in cols.items():
            data[n] = v
    else:
        data = pd.DataFrame(cols)
    doc = st.define_run("_events", data)
    assert doc["sub_run_spec"] == {"0": [[1, 5]], "2": [[44, 46]]}
    assert (doc["start"], doc["end"]) == (1, 46)
    assert doc["livetime"] == pytest.approx(6e-9)
    assert_rows(st.get_array("_events", "peaks"), expected({"0": [(1, 5)], "2": [(44, 46)]}))


@pytest.mark.parametrize("container", ["records", "dataframe"])
@pytest.mark.parametrize("kind", ["endtime", "length_dt"])
def test_event_based_definition_from_run(st, container, kind):
    cols = _events(kind, with_run_id=False)
    cols["time"] = cols["time"] + 20  # events of run 1: [21, 25) and [44, 46) -> [64, 66)
    cols = {n: v[:2] for n, v in cols.items()}
    if container == "records":
        data = np.zeros(2, [(n, v.dtype) for n, v in cols.items()])
        for n, v in cols.items():
            data[n] = v
        if kind == "endtime":
            data["endtime"] += 20
    else:
        data = pd.DataFrame(cols)
        if kind == "endtime":
            data["endtime"] += 20
    doc = st.define_run("_minbias", data, from_run="1")
    assert doc["sub_run_spec"] == {"1": [[21, 25]]}
    assert_rows(st.get_array("_minbias", "peaks"), expected({"1": [(21, 25)]}))


def test_event_based_definition_needs_a_run(st, own):
    data = pd.DataFrame({"time": [1], "endtime": [2]})
    before = stored_files(own)
    with pytest.raises(dastrax.SuperrunDefinitionError, match="run_id.*from_run"):
        st.define_run("_nowhere", data)
    assert stored_files(own) == before


def test_superrun_of_superruns_flattens_and_intersects(st):
    st.define_run("_a", {"0": "all", "1": [(20, 25)]})
    doc = st.define_run("_b", {"_a": [(5, 22)], "2": [(41, 43), (45, 50)]})
    assert doc["sub_run_spec"] == {"_a": [[5, 22]], "2": [[41, 43], [45, 50]]}
    assert (doc["start"], doc["end"]) == (5, 50)
    # flattened: 0 in [5, 10), 1 in [20, 22), 2 in [41, 43) and [45, 50)
    assert doc["livetime"] == pytest.approx((5 + 2 + 2 + 5) * 1e-9)
    flat = {"0": [(5, 10)], "1": [(20, 22)], "2": [(41, 43), (45, 50)]}
    rows = st.get_array("_b", "peaks")
    assert_rows(rows, expected(flat))
    ds = st.get_dataset("_b", "peaks")
    assert ds.attrs["subruns"] == ["0", "1", "2"]
    # a third level: whole _b plus a range of nothing else
    doc = st.define_run("_c", {"_b": [(8, 46)]})
    assert (doc["start"], doc["end"]) == (8, 46)
    flat = {"0": [(8, 10)], "1": [(20, 22)], "2": [(41, 43), (45, 46)]}
    assert_rows(st.get_array("_c", "peaks"), expected(flat))
    # a superrun and a regular run side by side
    st.define_run("_d", ["_a", "2"])
    assert_rows(st.get_array("_d", "peaks"), expected({"0": "all", "1": [(20, 25)], "2": "all"}))


def test_run_document_fields(st):
    st.write_run_metadata(
        "0",
        {
            "start": 0,
            "end": 10,
            "mode": "kr83m",
            "source": "none",
            "tags": ["a", "b"],
            "comments": ["first"],
            "livetime": 4e-9,
        },
    )
    st.write_run_metadata(
        "1",
        {
            "start": 20,
            "end": 30,
            "mode": ["bg", "kr83m"],
            "source": "kr83m",
            "tags": ["b", "c"],
            "comments": [{"comment": "second"}],
        },
    )
    st.write_run_metadata("2", {"start": 40, "end": 50})
    doc = st.define_run("_docs", {"0": "all", "1": "all", "2": [(42, 45)]})
    again = st.run_metadata("_docs")
    for d in (doc, again):
        assert d["name"] == "_docs"
        assert d["mode"] == ["bg", "kr83m"]  # sorted unique
        assert d["source"] == ["kr83m", "none"]
        assert set(d["tags"]) == {"a", "b", "c"} and len(d["tags"]) == 3  # union
        assert d["comments"] == ["first", {"comment": "second"}]  # each once
        # livetime: run 0's own livetime (4 ns), run 1's end - start (10 ns), 3 ns of run 2
        assert d["livetime"] == pytest.approx(17e-9)
        assert (d["start"], d["end"]) == (0, 45)  # from the flattened ranges
        assert d["sub_run_spec"] == {"0": "all", "1": "all", "2": [[42, 45]]}
    table = st.select_runs().set_index("name")
    assert table.loc["_docs", "mode"] == "bg,kr83m"
    assert np.isnan(table.loc["_docs", "number"])
    assert table.loc["_docs", "livetime"] == pd.Timedelta(17, unit="ns")
    assert table.loc["_docs", "end"] == pd.Timestamp(45, unit="ns", tz="UTC")


def test_livetime_is_the_sum_not_end_minus_start(st):
    doc = st.define_run("_sum", ["0", "1", "2"])
    assert (doc["start"], doc["end"]) == (0, 50)
    assert doc["livetime"] == 3e-8  # summed in ns: exact


# -- refusals: each raises and writes nothing ----------------------------------------
REFUSALS = [
    ("nounderscore", ["0"], dastrax.InvalidRunName, "must start with '_'"),
    ("_bad-name", ["0"], dastrax.InvalidRunName, "_bad-name"),
    ("_missing", ["0", "7"], dastrax.RunMetadataNotAvailable, "'7'"),
    ("_missing2", {"0": "all", "_undefined": "all"}, dastrax.RunMetadataNotAvailable, "_undefined"),
    ("_within", {"0": [(1, 5), (4, 6)]}, dastrax.SuperrunDefinitionError, r"'0'.*\[4, 5\)"),
    ("_across", {"0": [(1, 5)], "_a": [(3, 4)]}, dastrax.SuperrunDefinitionError, r"'0'.*\[3, 4\)"),
    ("_whole_twice", ["_a", "1"], dastrax.SuperrunDefinitionError, r"'1'.*\[20, 30\)"),
    ("_nested_twice", ["_a", "_b"], dastrax.SuperrunDefinitionError, "'0'"),
    (
        "_nested_ranges",
        {"_a": [(0, 4)], "_b": [(2, 8)]},
        dastrax.SuperrunDefinitionError,
        r"'0'.*\[2, 4\)",
    ),
    ("_outside", {"0": [(5, 12)]}, dastrax.SuperrunDefinitionError, r"\(5, 12\).*\[0, 10\)"),
    ("_before", {"1": [(15, 22)]}, dastrax.SuperrunDefinitionError, "outside"),
    ("_outside_nested", {"_a": [(25, 35)]}, dastrax.SuperrunDefinitionError, "outside"),
    ("_empty_nested", {"_a": [(12, 18)]}, dastrax.SuperrunDefinitionError, "no data"),
    ("_backwards", {"0": [(5, 3)]}, dastrax.SuperrunDefinitionError, "ends before"),
    ("_empty", [], dastrax.SuperrunDefinitionError, "at least one"),
    ("_dup", ["0", "0"], dastrax.SuperrunDefinitionError, "more than once"),
    ("_self", ["_self"], dastrax.SuperrunDefinitionError, "itself"),
    ("_self2", {"0": "all", "_self2": [(0, 5)]}, dastrax.SuperrunDefinitionError, "itself"),
    ("_a", ["2"], dastrax.SuperrunDefinitionError, "overwrite=True"),
]


@pytest.fixture(scope="module")
def refusal_st(runs_dir, tmp_path_factory):
    """Superruns _a (0 and 1 whole, peaks persisted) and _b (0 as a range) defined."""
    own = tmp_path_factory.mktemp("refusals") / "own"
    st = reading(runs_dir, own)
    st.define_run("_a", {"0": "all", "1": "all"})  # [0, 10) and [20, 30)
    st.define_run("_b", {"0": [(0, 10)]})
    st.persist_superrun("_a", "peaks")
    return st, own


@pytest.mark.parametrize(
    ("name", "spec", "error", "match"),
    REFUSALS,
    ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)],
)
def test_refusals_write_nothing(refusal_st, name, spec, error, match):
    st, own = refusal_st
    before = stored_files(own)
    doc_a = st.run_metadata("_a")
    with pytest.raises(error, match=match):
        st.define_run(name, spec)
    assert stored_files(own) == before
    assert not [p for p in own.iterdir() if p.name.startswith(".tmp-")]
    assert st.run_metadata("_a") == doc_a
    assert st.is_stored("_a", "peaks")


def test_cycle_through_redefinition_is_refused(st, own):
    st.define_run("_x", ["0"])
    st.define_run("_y", ["_x", "1"])
    st.define_run("_z", ["_y"])
    before = stored_files(own)
    for spec in (["_z"], ["_y"], {"_z": [(0, 5)]}):
        with pytest.raises(dastrax.SuperrunDefinitionError, match=r"_x -> .*_x"):
            st.define_run("_x", spec, overwrite=True)
        assert stored_files(own) == before
    assert st.run_metadata("_x")["sub_run_spec"] == {"0": "all"}


def test_same_spec_again_is_a_no_op(st, own):
    doc = st.define_run("_same", ["0", "1"])
    st.persist_superrun("_same", "peaks")
    key = st.key_for("_same", "peaks")
    before = {p: (own / p).stat().st_mtime_ns for p in stored_files(own)}
    assert st.define_run("_same", ["1", "0"]) == doc
    assert st.define_run("_same", {"0": "all", "1": "all"}, overwrite=True) == doc
    assert {p: (own / p).stat().st_mtime_ns for p in stored_files(own)} == before
    assert st.key_for("_same", "peaks") == key and st.is_stored("_same", "peaks")


def test_redefinition_needs_overwrite_and_deletes_old_data(st, own):
    st.define_run("_re", ["0", "1"])
    st.define_run("_other", ["2"])
    st.persist_superrun("_re", ["peaks"])
    st.persist_superrun("_other", ["peaks"])
    old_key = st.key_for("_re", "peaks")
    assert (own / str(old_key)).is_dir()
    before = stored_files(own)
    with pytest.raises(dastrax.SuperrunDefinitionError, match="_re.*overwrite=True"):
        st.define_run("_re", ["0"])
    assert stored_files(own) == before

    doc = st.define_run("_re", {"0": [(2, 8)]}, overwrite=True)
    assert doc["sub_run_spec"] == {"0": [[2, 8]]}
    new_key = st.key_for("_re", "peaks")
    assert new_key.lineage_hash != old_key.lineage_hash  # the hash covers the spec
    assert new_key.lineage == old_key.lineage  # same plugins
    assert not (own / str(old_key)).exists()  # the old data is gone
    assert not [p for p in stored_files(own) if p.startswith("_re-")]
    assert not [p for p in own.iterdir() if p.name.startswith(".tmp-")]
    assert st.is_stored("_other", "peaks")  # other superruns keep theirs
    assert not st.is_stored("_re", "peaks")
    assert_rows(st.get_array("_re", "peaks"), expected({"0": [(2, 8)]}))


@pytest.mark.parametrize(
    "call",
    [
        lambda st: st.run_metadata("_nope"),
        lambda st: st.key_for("_nope", "peaks"),
        lambda st: st.is_stored("_nope", "peaks"),
        lambda st: st.get_metadata("_nope", "peaks"),
        lambda st: st.get_array("_nope", "peaks"),
        lambda st: st.get_array(["0", "_nope"], "peaks"),
        lambda st: st.get_dataset("_nope", "peaks"),
        lambda st: list(st.get_iter("_nope", "peaks")),
        lambda st: st.make("_nope", "peaks"),
        lambda st: st.persist_superrun("_nope", "peaks"),
        lambda st: st.define_run("_x", ["_nope"]),
    ],
)
def test_calls_on_an_undefined_superrun(st, own, call):
    before = stored_files(own)
    with pytest.raises(dastrax.RunMetadataNotAvailable, match="superrun _nope is not defined"):
        call(st)
    assert stored_files(own) == before

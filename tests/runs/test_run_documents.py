"""Run documents as users and strax have them (issue 12) and malformed ones (issue 13, item 4):
validated in one place (``dastrax.runs``), with errors naming the file.

Documents are written as real files into a ``ZarrDirectory``'s ``runs/`` folder and read back
through the public API.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_context, stored_files

import dastrax
from dastrax.errors import CorruptData, DastraxError, InvalidRequest
from dastrax.runs import documents as runs

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
ISO0 = "2026-01-01T00:00:00+00:00"


def write_raw(storage_dir, run_id: str, text: str):
    folder = storage_dir / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    path.write_text(text)
    return path


# -- as users and strax write them --------------------------------------------------------
STRAX_LIKE = {
    "bson $date ms": ({"$date": T0 // 1_000_000}, {"$date": T0 // 1_000_000 + 10_000}),
    "bson $date ISO": ({"$date": "2026-01-01T00:00:00Z"}, {"$date": "2026-01-01T00:00:10Z"}),
    "bson $numberLong": (
        {"$date": {"$numberLong": str(T0 // 1_000_000)}},
        {"$date": {"$numberLong": str(T0 // 1_000_000 + 10_000)}},
    ),
    "ISO strings": (ISO0, "2026-01-01T00:00:10+00:00"),
    "naive ISO strings (UTC)": ("2026-01-01T00:00:00", "2026-01-01T00:00:10"),
    "aware ISO, other zone": ("2026-01-01T01:00:00+01:00", "2026-01-01T01:00:10+01:00"),
    "ints": (T0, T0 + 10_000_000_000),
}


@pytest.mark.parametrize("case", list(STRAX_LIKE))
def test_stored_documents_as_strax_writes_them_are_read(st, storage_dir, case):
    start, end = STRAX_LIKE[case]
    write_raw(storage_dir, "7", json.dumps({"start": start, "end": end, "mode": "tpc_kr83m"}))
    doc = st.run_metadata("7")
    assert doc["start"] == T0
    assert doc["end"] == T0 + 10_000_000_000
    assert doc["livetime"] == pytest.approx(10.0)  # no livetime: end - start
    table = st.select_runs()
    assert table["start"].tolist() == [pd.Timestamp(T0, unit="ns", tz="UTC")]
    assert table["mode"].tolist() == ["tpc_kr83m"]


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 1),  # naive: UTC
        dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        pd.Timestamp("2026-01-01", tz="UTC"),
        np.datetime64("2026-01-01T00:00:00"),
        {"$date": T0 // 1_000_000},
        ISO0,
        np.int64(T0),
        float(T0),
    ],
    ids=["naive", "aware", "Timestamp", "datetime64", "bson", "ISO", "np.int64", "float"],
)
def test_written_documents_accept_every_form_of_time(st, value):
    st.write_run_metadata("5", {"start": value, "end": T0 + 5})
    doc = st.run_metadata("5")
    assert (doc["start"], doc["end"], doc["name"]) == (T0, T0 + 5, "5")


def test_document_without_name_gets_the_run_id():
    assert runs.read_document("77", {"start": 0, "end": 10}, "runs/77.json")["name"] == "77"
    assert runs.complete_document({"start": 0, "end": 10}, "77")["name"] == "77"


def test_document_written_by_the_frontend_itself_is_listed_by_name(st, storage_dir):
    """ZarrDirectory.write_run_metadata's docstring example writes no name (issue 12)."""
    dastrax.ZarrDirectory(str(storage_dir)).write_run_metadata("77", {"start": 0, "end": 10})
    assert st.run_metadata("77")["livetime"] == pytest.approx(1e-8)
    assert st.select_runs()["name"].tolist() == ["77"]


def test_select_table_takes_documents_without_name_or_livetime():
    table = runs.select_table(
        {"3": {"start": 0, "end": 2_000_000_000}, "_sr": {"start": 5, "end": 6}}
    )
    assert table["name"].tolist() == ["3", "_sr"]
    assert table["number"].iloc[0] == 3 and np.isnan(table["number"].iloc[1])
    assert table["livetime"].iloc[0] == pd.Timedelta(2, unit="s")
    # a list of documents without names: no KeyError
    assert len(runs.select_table([{"start": 0, "end": 1}])) == 1


# -- malformed stored documents -----------------------------------------------------------
MALFORMED = {
    "a list": "[1, 2, 3]",
    "a number": "3",
    "no start": '{"name": "0"}',
    "no end": '{"start": 0}',
    "start soon": '{"start": "soon", "end": 10}',
    "start as a bad bson": '{"start": {"$date": [1]}, "end": 10}',
    "fractional start": '{"start": 1.5, "end": 10}',
    "start true": '{"start": true, "end": 10}',
    "ends before it starts": '{"start": 10, "end": 5}',
    "livetime a string": '{"start": 0, "end": 10, "livetime": "long"}',
    "start null": '{"start": null, "end": 10}',
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_stored_document_raises_corrupt_data(storage_dir, case):
    st = make_context(storage_dir)
    write_raw(storage_dir, "0", MALFORMED[case])
    with pytest.raises(CorruptData):
        st.run_metadata("0")
    with pytest.raises(CorruptData):
        st.select_runs()


@pytest.mark.parametrize("case", list(MALFORMED))
def test_read_document_names_the_file(case):
    where = "/data/runs/0.json"
    with pytest.raises(CorruptData, match="/data/runs/0.json"):
        runs.read_document("0", json.loads(MALFORMED[case]), where)


def test_malformed_stored_document_error_names_the_file(st, storage_dir):
    path = write_raw(storage_dir, "0", "[1, 2, 3]")
    with pytest.raises(CorruptData, match=str(path)):
        st.run_metadata("0")


def test_define_run_over_a_malformed_subrun_document_is_refused(st, storage_dir):
    write_raw(storage_dir, "0", '{"name": "0"}')
    before = stored_files(storage_dir)
    with pytest.raises(CorruptData):
        st.define_run("_sr", ["0"])
    assert stored_files(storage_dir) == before


def test_define_run_over_strax_documents(st, storage_dir):
    write_raw(storage_dir, "0", json.dumps({"start": {"$date": 0}, "end": {"$date": 1}}))
    write_raw(storage_dir, "1", json.dumps({"start": {"$date": 2}, "end": {"$date": 3}}))
    doc = st.define_run("_sr", ["0", "1"])
    assert (doc["start"], doc["end"]) == (0, 3_000_000)
    assert doc["livetime"] == pytest.approx(2e-3)


# -- malformed documents given to write_run_metadata -----------------------------------
BAD_TO_WRITE = {
    "a list": ([1, 2, 3], "dict"),
    "no start": ({"end": 10}, "'start'"),
    "start soon": ({"start": "soon", "end": 10}, "soon"),
    "inf end": ({"start": 0, "end": float("inf")}, "finite"),
    "nan start": ({"start": float("nan"), "end": 10}, "finite"),
    "fractional start": ({"start": 0.5, "end": 10}, "whole"),
    "an object field": ({"start": 0, "end": 10, "detector": object()}, "'detector'"),
    "a set field": ({"start": 0, "end": 10, "tags": {"a", "b"}}, "'tags'"),
    "a nested NaN": ({"start": 0, "end": 10, "cal": {"gain": [1.0, float("nan")]}}, "cal.gain"),
    "bytes": ({"start": 0, "end": 10, "blob": b"\x00"}, "'blob'"),
    "livetime inf": ({"start": 0, "end": 10, "livetime": float("inf")}, "livetime"),
}


@pytest.mark.parametrize("case", list(BAD_TO_WRITE))
def test_bad_document_to_write_is_refused_naming_the_field(st, storage_dir, case):
    doc, named = BAD_TO_WRITE[case]
    with pytest.raises(InvalidRequest, match=named.replace("[", r"\[").replace(".", r"\.")):
        st.write_run_metadata("3", doc)
    assert not (storage_dir / "runs" / "3.json").exists()


def test_written_document_is_plain_json(st, storage_dir):
    st.write_run_metadata(
        "4",
        {
            "start": dt.datetime(2026, 1, 1),
            "end": pd.Timestamp("2026-01-01T00:00:01Z"),
            "gains": np.array([1.5, 2.5], np.float32),
            "n": np.int32(3),
            "pair": (1, 2),
            "nested": {"when": np.datetime64("2026-01-01T00:00:00")},
        },
    )
    stored = json.loads((storage_dir / "runs" / "4.json").read_text())
    assert stored["start"] == T0 and stored["end"] == T0 + 1_000_000_000
    assert stored["gains"] == [1.5, 2.5] and stored["n"] == 3 and stored["pair"] == [1, 2]
    assert stored["nested"]["when"] == T0


def test_every_refusal_is_a_dastrax_error():
    for doc in ([1], None, "x", {"start": [], "end": 1}, {"start": {}, "end": 1}):
        with pytest.raises(DastraxError):
            runs.normalize_document("1", doc)
        with pytest.raises(CorruptData):
            runs.read_document("1", doc, "f.json")

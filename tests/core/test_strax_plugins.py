"""Plugins written exactly as strax's documentation writes them (``depends_on`` a
string, ``compute(self, records)``), a two-output plugin, and a superrun computed over
the join (``allow_superrun``) stored by ``make`` with ``write_superruns``: made,
stored, loaded and persisted, with real zarr stores on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dastrax.testutils import Records

import dastrax
from dastrax.errors import ConfigError, CorruptData, PluginError


class AreaPerRecord(dastrax.Plugin):
    """As strax's docs write a plugin: no data_kind, one string dependency, no start/end."""

    depends_on = "records"
    provides = "record_area"
    dtype = [
        ("time", np.int64, "Start time since unix epoch [ns]"),
        ("endtime", np.int64, "Exclusive end time since unix epoch [ns]"),
        ("area", np.float32, "Twice the channel"),
    ]

    def compute(self, records):
        out = np.zeros(len(records), self.dtype)
        out["time"] = records["time"]
        out["endtime"] = dastrax.endtime(records)
        out["area"] = 2 * records["channel"]
        return out


class SplitByChannel(dastrax.Plugin):
    """Two outputs of two data kinds; compute returns a dict, one output as fields."""

    depends_on = ("records",)
    provides = ("low_records", "chunk_counts")
    data_kind = dict(low_records="low_records", chunk_counts="chunk_counts")
    dtype = dict(
        low_records=Records.dtype,
        chunk_counts=[("time", np.int64), ("endtime", np.int64), ("n", np.int32)],
    )

    def compute(self, records, start, end, chunk_i):
        return {
            "low_records": records[records["channel"] < 5],
            "chunk_counts": {"time": [start], "endtime": [end], "n": [len(records)]},
        }


def runs(st, n=3):
    for i in range(n):
        st.set_config({"time_offset": 20 * i})
        st.make(str(i), "records")
        st.write_run_metadata(str(i), {"start": 20 * i, "end": 20 * i + 10})
    st.set_config({"time_offset": 0})
    st.define_run("_sr", [str(i) for i in range(n)])


def test_a_plugin_as_strax_documents_it(tmp_path):
    st = dastrax.Context(storage=str(tmp_path), register=[Records, AreaPerRecord], progress=False)
    runs(st)
    assert AreaPerRecord.depends_on == ("records",)
    # strax's default data kind: the first dependency's
    assert st.get_metadata("0", "records")["data_kind"] == "records"
    st.make("0", "record_area")
    assert st.get_metadata("0", "record_area")["data_kind"] == "records"
    both = st.get_array("0", ["records", "record_area"])  # one kind: merged column-wise
    np.testing.assert_array_equal(both["area"], 2 * both["channel"])
    assert st.data_info("record_area")["Comment"].tolist()[2] == "Twice the channel"
    # a superrun: made, stored, loaded, persisted
    sr = st.get_array("_sr", "record_area")
    want = np.concatenate([st.get_array(r, "record_area") for r in "012"])
    np.testing.assert_array_equal(sr, want)
    st.persist_superrun("_sr", "record_area")
    assert st.is_stored("_sr", "record_area")
    np.testing.assert_array_equal(st.get_array("_sr", "record_area"), want)


def test_a_two_output_plugin(tmp_path):
    st = dastrax.Context(storage=str(tmp_path), register=[Records, SplitByChannel], progress=False)
    runs(st)
    st.make("0", "chunk_counts")  # asking for one makes both
    assert st.is_stored("0", "chunk_counts") and st.is_stored("0", "low_records")
    k_low, k_count = st.key_for("0", "low_records"), st.key_for("0", "chunk_counts")
    assert k_low.lineage_hash != k_count.lineage_hash
    assert set(k_low.lineage) == {"low_records", "records"}
    assert k_low.lineage["low_records"][0] == "SplitByChannel"
    counts = st.get_array("0", "chunk_counts")
    np.testing.assert_array_equal(counts["n"], 10)
    np.testing.assert_array_equal(counts["time"], np.arange(10))
    low = st.get_array("0", "low_records")
    assert len(low) == 50 and (low["channel"] < 5).all()
    # persist_superrun of one output stores that output for a superrun, with its subruns
    st.define_run("_p", ["0", "1", "2"])
    st.persist_superrun("_p", "chunk_counts")
    assert st.is_stored("_p", "chunk_counts") and not st.is_stored("_p", "low_records")
    np.testing.assert_array_equal(
        st.get_array("_p", "chunk_counts"),
        st.get_array(["0", "1", "2"], "chunk_counts", add_run_id_field=False),
    )
    assert set(st.get_metadata("_p", "chunk_counts")["chunks"][0]["subruns"]) == {"0", "1", "2"}
    # for the superrun: subruns made (both outputs), loaded, persisted one kind at a time
    st.set_context_config({"write_superruns": True})
    st.make("_sr", ["low_records", "chunk_counts"])
    for r in "012":
        assert st.is_stored(r, "low_records") and st.is_stored(r, "chunk_counts")
    assert st.is_stored("_sr", "low_records") and st.is_stored("_sr", "chunk_counts")
    sr_counts = st.get_array("_sr", "chunk_counts")
    assert len(sr_counts) == 30
    np.testing.assert_array_equal(
        st.get_array("_sr", "low_records"),
        st.get_array(["0", "1", "2"], "low_records", add_run_id_field=False),
    )
    assert st.get_metadata("_sr", "chunk_counts")["data_kind"] == "chunk_counts"


def test_multi_output_errors(tmp_path):
    class Missing(SplitByChannel):
        provides = ("a_records", "b_counts")
        data_kind = dict(a_records="records", b_counts="b_counts")
        dtype = dict(a_records=Records.dtype, b_counts=SplitByChannel.dtype["chunk_counts"])

        def compute(self, records):
            return {"a_records": records}

    class HalfSignature(AreaPerRecord):
        def compute(self, records, start):
            return records

    st = dastrax.Context(storage=str(tmp_path), register=[Records, Missing], progress=False)
    with pytest.raises(PluginError, match="b_counts"):
        st.make("0", "b_counts")
    assert not st.is_stored("0", "a_records")
    with pytest.raises(ConfigError, match="start and end"):
        st.register(HalfSignature)


def test_write_superruns_of_a_join_stores_chunks_of_the_target_size(tmp_path):
    """make with write_superruns of an allow_superrun type: one stored chunk per
    chunk_target_size_mb, not one per join chunk; rows unchanged."""

    class Doubled(AreaPerRecord):
        provides = "doubled"
        allow_superrun = True

    st = dastrax.Context(storage=str(tmp_path), register=[Records, Doubled], progress=False)
    st.set_config({"recs_per_chunk": 1000})
    runs(st)  # 3 subruns x 10 chunks x 1000 rows of 20 bytes: 30 join chunks, 0.6 MB
    joined = st.get_array("_sr", "doubled")
    assert len(joined) == 30_000
    st.set_context_config({"write_superruns": True, "chunk_target_size_mb": 0.14})
    st.make("_sr", "doubled")
    meta = st.get_metadata("_sr", "doubled")
    assert meta["computed_over"] == "joined subruns"
    chunks = meta["chunks"]
    # 0.6 MB in 0.14 MB chunks of 7000 rows (boundaries only between the 1 ns groups)
    assert [c["n"] for c in chunks] == [7000, 7000, 7000, 7000, 2000]
    assert chunks[0]["start"] == 0 and chunks[-1]["end"] == 50
    for a, b in zip(chunks, chunks[1:]):
        assert a["end"] == b["start"] == b["first_time"]
    # rows 7000..13999: the end of subrun 0 and the start of subrun 1
    assert (chunks[1]["start"], chunks[1]["end"]) == (7, 24)
    assert chunks[1]["subruns"] == {"0": {"start": 7, "end": 10}, "1": {"start": 20, "end": 24}}
    stored = st.get_array("_sr", "doubled")
    np.testing.assert_array_equal(stored, joined)
    assert [len(c) for c in st.get_iter("_sr", "doubled")] == [7000] * 4 + [2000]


def test_compute_gets_what_its_signature_names(tmp_path):
    """strax introspects compute: inputs by data kind, and ``start, end`` or ``chunk_i``
    only where named, in any order."""

    class ChunkNumbers(dastrax.Plugin):
        depends_on = "records"
        provides = "chunk_numbers"
        data_kind = "chunk_numbers"
        dtype = [("time", np.int64), ("endtime", np.int64), ("i", np.int32), ("n", np.int32)]

        def compute(self, chunk_i, end, records, start):
            return {"time": [start], "endtime": [end], "i": [chunk_i], "n": [len(records)]}

    st = dastrax.Context(storage=str(tmp_path), register=[Records, ChunkNumbers], progress=False)
    got = st.get_array("0", "chunk_numbers")
    np.testing.assert_array_equal(got["i"], np.arange(10))
    np.testing.assert_array_equal(got["time"], np.arange(10))
    np.testing.assert_array_equal(got["endtime"], np.arange(1, 11))
    np.testing.assert_array_equal(got["n"], 10)


def _damage(st, tmp_path, run_id, data_type, field):
    key = str(st.key_for(run_id, data_type))
    path = tmp_path / key / "zarr.json"
    doc = json.loads(path.read_text())
    for c in doc["attributes"]["dastrax"]["chunks"]:
        del c[field]
    path.write_text(json.dumps(doc))
    return key


LOADS = {
    "get_array": lambda st: st.get_array("0", "records"),
    "time_range": lambda st: st.get_array("0", "records", time_range=(2, 5)),
    "get_iter": lambda st: list(st.get_iter("0", "records")),
    "make a dependent": lambda st: st.make("0", "record_area"),
    "a superrun": lambda st: st.get_array("_sr", "records"),
}


@pytest.mark.parametrize("field", ["row_start", "n", "start", "end"])
@pytest.mark.parametrize("call", list(LOADS))
def test_a_chunk_table_missing_a_field_is_corrupt_data(tmp_path, field, call):
    """A stored chunk table without a field is CorruptData naming the group and the field,
    for every way its rows are read: never a bare KeyError, never rows read from row 0."""
    st = dastrax.Context(storage=str(tmp_path), register=[Records, AreaPerRecord], progress=False)
    st.make("0", "records")
    st.write_run_metadata("0", {"start": 0, "end": 10})
    st.define_run("_sr", ["0"])
    key = _damage(st, tmp_path, "0", "records", field)
    with pytest.raises(CorruptData, match=rf"{key}.*KeyError\('{field}'\)"):
        LOADS[call](st)
    assert not st.is_stored("0", "record_area")

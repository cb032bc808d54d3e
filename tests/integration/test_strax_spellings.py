"""strax's spellings (API.md, "Added in the third loop", table "strax's spellings") that
``tests/strax_suite/`` does not assert in every form the table names: each call as a
strax user types it, with real zarr stores on disk."""

from __future__ import annotations

import numpy as np
import pytest
from dastrax.testutils import Peaks, Records, SuperrunPeaks

import dastrax
from dastrax.errors import DataNotAvailable, InvalidRequest


@pytest.fixture
def st(tmp_path):
    st = dastrax.Context(storage=str(tmp_path), register=[Records, Peaks], progress=False)
    for i, run in enumerate("01"):
        st.set_config({"time_offset": 20 * i})
        st.make(run, "peaks")
        st.write_run_metadata(run, {"start": 20 * i, "end": 20 * i + 10, "mode": f"m{run}"})
    st.set_config({"time_offset": 0})
    return st


def test_every_load_takes_run_id_and_targets_as_keywords(st):
    want = st.get_array("0", "peaks")
    np.testing.assert_array_equal(st.get_array(run_id="0", targets="peaks"), want)
    df = st.get_df(run_id="0", targets="peaks")
    np.testing.assert_array_equal(df["time"].to_numpy(), want["time"])
    chunks = list(st.get_iter(run_id="0", targets="peaks"))
    np.testing.assert_array_equal(np.concatenate([c.data for c in chunks]), want)
    ds = st.get_dataset(run_id="0", targets="peaks")
    np.testing.assert_array_equal(ds["time"].values, want["time"])
    st.make(run_id="2", targets="peaks")
    assert st.is_stored("2", "peaks")


def test_add_run_id_field_of_get_array_and_get_df(st):
    both = st.get_array(["0", "1"], "peaks")
    assert both["run_id"].tolist() == ["0"] * 100 + ["1"] * 100
    bare = st.get_array(["0", "1"], "peaks", add_run_id_field=False)
    assert "run_id" not in bare.dtype.names
    np.testing.assert_array_equal(bare["area"], both["area"])
    df = st.get_df(["0", "1"], "peaks")
    assert df["run_id"].tolist() == ["0"] * 100 + ["1"] * 100
    df = st.get_df(["0", "1"], "peaks", add_run_id_field=False)
    assert "run_id" not in df.columns
    assert len(df) == 200


def test_run_ids_as_bytes_in_every_call(st):
    np.testing.assert_array_equal(
        st.get_array([b"0", b"1"], "peaks"), st.get_array(["0", "1"], "peaks")
    )
    assert len(st.get_df(b"0", "peaks")) == 100
    assert sum(len(c) for c in st.get_iter(b"0", "peaks")) == 100
    assert st.get_dataset(b"0", "peaks").sizes["peaks"] == 100
    st.make(b"2", "peaks")
    assert st.is_stored("2", "peaks")
    assert st.get_metadata(b"2", "peaks")["data_type"] == "peaks"


def test_run_metadata_projection_and_select_runs_run_id(st):
    assert st.run_metadata("0", projection=["name", "mode"]) == {"name": "0", "mode": "m0"}
    assert st.run_metadata("1", projection="mode") == {"mode": "m1"}
    assert st.select_runs(run_id="0")["name"].tolist() == ["0"]
    assert st.select_runs(run_id="*")["name"].tolist() == ["0", "1"]
    assert st.select_runs(run_id=["1"])["name"].tolist() == ["1"]


def test_combining_false_is_the_default_and_true_is_refused_for_a_regular_run(st):
    assert st.is_stored("0", "peaks", combining=False)
    assert str(st.key_for("0", "peaks", combining=False)) == str(st.key_for("0", "peaks"))
    calls = {
        "get_array": lambda: st.get_array("0", "peaks", combining=True),
        "get_iter": lambda: list(st.get_iter("0", "peaks", combining=True)),
        "make": lambda: st.make("0", "peaks", combining=True),
        "is_stored": lambda: st.is_stored("0", "peaks", combining=True),
        "key_for": lambda: st.key_for("0", "peaks", combining=True),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidRequest, match="regular run") as info:
            call()
        assert isinstance(info.value, ValueError), name


def test_combining_keys_of_a_superrun(st):
    """For a type computed over the join (allow_superrun), combining=True is the key and
    rows of the concatenation; for other types the two are one (SEMANTICS.md, "Plugins
    that allow superruns")."""
    st.define_run("_sr", ["0", "1"])
    assert str(st.key_for("_sr", "peaks")) == str(st.key_for("_sr", "peaks", combining=True))
    st.register(SuperrunPeaks)
    joined, combined = st.key_for("_sr", "peaks"), st.key_for("_sr", "peaks", combining=True)
    assert str(joined) != str(combined)
    assert str(joined) == str(st.key_for("_sr", "peaks", combining=False))
    st.set_context_config({"write_superruns": True})
    st.make("_sr", "peaks")
    assert st.is_stored("_sr", "peaks") and not st.is_stored("_sr", "peaks", combining=True)
    # the concatenation of the subruns' peaks (per-row peaks: the same rows as the join)
    concatenated = st.get_array("_sr", "peaks", combining=True)
    np.testing.assert_array_equal(
        concatenated, st.get_array(["0", "1"], "peaks", add_run_id_field=False)
    )
    np.testing.assert_array_equal(concatenated, st.get_array("_sr", "peaks"))
    assert not st.is_stored("_sr", "peaks", combining=True)  # loads never store superruns


def test_forbid_creation_of_refuses_make_too(st):
    st.set_context_config({"forbid_creation_of": ("peaks",)})
    with pytest.raises(DataNotAvailable, match="forbid_creation_of"):
        st.make("2", "peaks")
    assert not st.is_stored("2", "peaks")
    assert len(st.get_array("0", "peaks")) == 100  # stored: still loads
    st.set_context_config({"forbid_creation_of": "*"})
    with pytest.raises(DataNotAvailable, match="records"):
        st.make("2", "records")
    assert not st.is_stored("2", "records")


def test_storage_is_assignable(st, tmp_path):
    other = dastrax.DataDirectory(str(tmp_path / "other"))
    st.storage = [other]
    assert st.storage == [other]
    assert not st.is_stored("0", "peaks")
    st.make("0", "records")
    assert any(p.name.startswith("0-records-") for p in (tmp_path / "other").iterdir())


def test_scan_runs_and_list_available_from_documents_and_stored_data(st):
    st.make("2", "records")  # stored data without a run document
    assert sorted(st.scan_runs()["name"]) == ["0", "1", "2"]
    assert st.list_available("peaks") == ["0", "1"]
    assert st.list_available("records") == ["0", "1", "2"]


def test_target_is_strax_s_name_of_the_data_type(tmp_path):
    st = dastrax.Context(storage=str(tmp_path), register=[Records, Peaks], progress=False)
    st.make("0", "peaks")
    assert st.key_for("0", target="peaks") == st.key_for("0", "peaks")
    assert st.is_stored("0", target="peaks")
    assert st.get_metadata("0", target="peaks")["data_type"] == "peaks"
    with pytest.raises(dastrax.InvalidRequest, match="given both"):
        st.key_for("0", data_type="peaks", target="records")

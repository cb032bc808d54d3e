"""Every error message names what is wrong — the run, data type, key or file — and, where
there is something to do, what to do."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_context

import dastrax


class Exploding(dastrax.Plugin):
    provides = "exploding"
    depends_on = ("records",)
    dtype = [("time", np.int64), ("endtime", np.int64)]

    def compute(self, records, start, end):
        if start == 4:
            raise ZeroDivisionError("gain calibration missing")
        return np.zeros(0, self.dtype)


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Runs 0 and 1 at [0, 10) and [20, 30) (records, peaks); the superrun _sr of both; a
    copy of run 0's peaks with another lineage written into its metadata (run 2)."""
    root = tmp_path_factory.mktemp("messages") / "data"
    st = make_context(root)
    for i, run_id in enumerate(["0", "1", "2"]):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": 20 * i, "end": 20 * i + 10})
    st.define_run("_sr", ["0", "1"])
    doc = root / str(st.key_for("2", "peaks")) / "zarr.json"
    meta = json.loads(doc.read_text())
    meta["attributes"]["dastrax"]["lineage"]["peaks"][2]["bonus_area"] = 7
    doc.write_text(json.dumps(meta))
    return root


def key(st, run_id, data_type):
    return str(st.key_for(run_id, data_type))


# (id, call, error class, fragments the message must contain: strings, or st -> string)
CASES = [
    ("data not stored", lambda st: st.get_metadata("0", "peak_classification"),
     dastrax.DataNotAvailable,
     ["peak_classification", "'0'", lambda st: key(st, "0", "peak_classification"), "st.make"]),
    ("unknown data type", lambda st: st.get_array("0", "hits"), dastrax.DataNotAvailable,
     ["'hits'", "register"]),
    ("no run document", lambda st: st.run_metadata("9"), dastrax.RunMetadataNotAvailable,
     ["'9'", lambda st: st.storage[0].url, "write_run_metadata"]),
    ("undefined superrun", lambda st: st.get_df("_kr", "peaks"), dastrax.RunMetadataNotAvailable,
     ["_kr", "define_run"]),
    ("subrun without run document", lambda st: st.define_run("_x", ["0", "5"]),
     dastrax.RunMetadataNotAvailable, ["'5'", "write_run_metadata"]),
    ("bad run id", lambda st: st.get_array("a-b", "peaks"), dastrax.InvalidRunName,
     ["'a-b'", "letters, digits"]),
    ("superrun name", lambda st: st.define_run("kr", ["0"]), dastrax.InvalidRunName,
     ["'kr'", "'_kr'"]),
    ("overlap", lambda st: st.define_run("_x", {"0": "all", "_sr": "all"}),
     dastrax.SuperrunDefinitionError, ["'0'", "[0, 10)", "twice"]),
    ("range outside a run", lambda st: st.define_run("_x", {"1": [(25, 35)]}),
     dastrax.SuperrunDefinitionError, ["'1'", "(25, 35)", "[20, 30)"]),
    ("redefinition", lambda st: st.define_run("_sr", ["1"]), dastrax.SuperrunDefinitionError,
     ["'_sr'", "overwrite=True"]),
    ("lineage mismatch", lambda st: st.get_array("2", "peaks"), dastrax.LineageMismatch,
     ["peaks", "'2'", lambda st: key(st, "2", "peaks"), lambda st: st.key_for("2", "peaks")
      .lineage_hash, "check_lineage=False"]),
    ("plugin raising", lambda st: st.make("0", "exploding"), dastrax.PluginError,
     ["Exploding", "run '0'", "chunk 4 [4, 5)", "ZeroDivisionError", "gain calibration"]),
    ("unknown columns", lambda st: st.get_array("0", "peaks", columns=["aera"]),
     dastrax.InvalidRequest, ["'aera'", "peaks", "'area'"]),
    ("different kinds", lambda st: st.get_dataset("0", ["records", "peaks"]),
     dastrax.InvalidRequest, ["'records'", "'peaks'"]),
    ("time range", lambda st: st.get_array("0", "peaks", time_range=(5, 1)),
     dastrax.InvalidRequest, ["(5, 1)", "ends before it starts"]),
    ("chunk size", lambda st: st.persist_superrun("_sr", "peaks", chunk_target_size_mb=-2),
     dastrax.InvalidRequest, ["chunk_target_size_mb", "-2"]),
    ("read-only storage", lambda st: dastrax.ZarrDirectory(st.storage[0].url, readonly=True)
     .write_run_metadata("3", {}), dastrax.InvalidRequest, [lambda st: st.storage[0].url]),
    ("unknown context option", lambda st: st.set_context_config({"progres": False}),
     dastrax.ConfigError, ["'progres'", "'progress'"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "call, error, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_message_names_what_is_wrong(storage, call, error, fragments):
    st = make_context(storage)
    st.register(Exploding)
    with pytest.raises(error) as info:
        call(st)
    message = str(info.value)
    for fragment in fragments:
        fragment = str(fragment(st) if callable(fragment) else fragment)
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_corrupt_data_names_the_file(storage, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(storage, root)
    st = make_context(root)
    doc = root / "runs" / "1.json"
    doc.write_text("{")
    with pytest.raises(dastrax.CorruptData) as info:
        st.run_metadata("1")
    assert str(doc) in str(info.value)
    chunk = root / key(st, "0", "peaks") / "channel" / "c" / "0"
    chunk.write_bytes(b"\0" * 16)
    with pytest.raises(dastrax.CorruptData) as info:
        st.get_array("0", "peaks")
    assert str(chunk) in str(info.value) and "make the data again" in str(info.value)

"""A read-only frontend is never written to: not by loads, makes, persists, run documents,
failures or sweeps (checked by listing every file and folder with its size and mtime)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from _crash_scripts.helpers import snapshot, temp_entries
from conftest import make_context
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax


class Failing(dastrax.Plugin):
    provides = "failing"
    depends_on = ("peaks",)
    dtype = [("time", np.int64), ("endtime", np.int64)]

    def compute(self, peaks, start, end):
        raise RuntimeError("no")


@pytest.fixture(scope="module")
def readonly_dir(tmp_path_factory):
    """Runs 0 and 1 (records, peaks), their run documents, the superrun _sr persisted, and
    what a dead writer left: a temporary group and a run document's temporary file."""
    root = tmp_path_factory.mktemp("ro") / "data"
    st = make_context(root)
    for i, run_id in enumerate(["0", "1"]):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks")
        st.write_run_metadata(run_id, {"start": 20 * i, "end": 20 * i + 10})
    st.define_run("_sr", ["0", "1"])
    st.persist_superrun("_sr", "peaks")
    dead = 2**22 + 12345  # above the default pid_max: no such process
    host = socket.gethostname()
    left = root / f".tmp-{st.key_for('0', 'peak_classification')}-{'0' * 32}"
    (left / "group").mkdir(parents=True)
    (left / "dastrax-writer.json").write_text(json.dumps({"host": host, "pid": dead}))
    (root / "runs" / f"9.json.tmp-{dead}-{'0' * 32}-{host}").write_text("{")
    return root


def context(readonly_dir, *more):
    return dastrax.Context(
        storage=[dastrax.ZarrDirectory(str(readonly_dir), readonly=True), *more],
        register=[Records, Peaks, PeakClassification, Failing],
        progress=False,
    )


def test_loads_makes_and_persists_write_only_to_the_writable_frontend(readonly_dir, tmp_path):
    before = snapshot(readonly_dir)
    rw = tmp_path / "rw"
    st = context(readonly_dir, dastrax.ZarrDirectory(str(rw)))

    # loads, all from the read-only frontend
    assert st.is_stored("0", "peaks") and st.is_stored("_sr", "peaks")
    assert len(st.get_array(["0", "1"], "peaks")) == 200
    assert len(st.get_df("0", "peaks")) == 100
    assert len(list(st.get_iter("_sr", "peaks"))) >= 1
    assert st.get_dataset("_sr", "peaks").area.sum().compute() == 200
    assert len(st.get_array("_sr", "peaks", time_range=(5, 25))) == 100
    assert st.get_metadata("_sr", "peaks")["run_id"] == "_sr"
    assert list(st.select_runs(available=("peaks",))["peaks_available"]) == [True] * 3
    assert st.run_metadata("_sr")["sub_run_spec"] == {"0": "all", "1": "all"}
    assert not rw.exists()

    # makes, persists, run documents and failures: in the writable frontend only
    st.make("0", "peak_classification")  # its input, peaks, read from the read-only one
    st.set_config({"time_offset": 40})
    st.make("2", "peaks")
    st.write_run_metadata("2", {"start": 40, "end": 50})
    st.define_run("_sr2", ["1", "2"])
    st.persist_superrun("_sr2", "peaks")
    with pytest.raises(dastrax.PluginError, match="Failing"):
        st.make("0", "failing")
    st.define_run("_sr", ["0", "1"])  # the same spec again: nothing to do
    # a document that the read-only frontend would hide is refused, not silently ignored
    with pytest.raises(
        dastrax.InvalidRequest, match=f"'_sr' is in read-only storage {readonly_dir}"
    ):
        st.define_run("_sr", ["1"], overwrite=True)
    with pytest.raises(dastrax.InvalidRequest, match="'0' is in read-only storage"):
        st.write_run_metadata("0", {"start": 0, "end": 11})
    assert st.run_metadata("_sr")["sub_run_spec"] == {"0": "all", "1": "all"}
    assert st.run_metadata("0")["end"] == 10

    assert snapshot(readonly_dir) == before  # not a byte, not an mtime changed
    written = sorted(p.name for p in rw.iterdir() if p.is_dir() and p.name != "runs")
    assert written == sorted(
        str(st.key_for(r, t))
        for r, t in [("0", "peak_classification"), ("2", "records"), ("2", "peaks")]
        + [("_sr2", "peaks")]
    )
    assert sorted(os.listdir(rw / "runs")) == ["2.json", "_sr2.json"]
    assert temp_entries(rw) == []
    assert len(st.get_array("_sr2", "peaks")) == 200


def test_a_context_with_only_readonly_storage_refuses_every_write(readonly_dir, tmp_path):
    before = snapshot(readonly_dir)
    st = context(readonly_dir)
    frontend = st.storage[0]
    st.make("0", "peaks")  # stored: nothing to do
    for call in [
        lambda: st.make("2", "peaks"),
        lambda: st.make("0", "peak_classification"),
        lambda: st.write_run_metadata("2", {"start": 40, "end": 50}),
        lambda: st.define_run("_sr3", ["0"]),
        lambda: frontend.write_run_metadata("2", {"start": 40, "end": 50}),
        lambda: frontend.delete_run_metadata("0"),
        lambda: frontend.delete(str(st.key_for("0", "peaks"))),
        lambda: frontend.writer("2-peaks-x", np.dtype([("time", np.int64)])),
        lambda: frontend.sweep(),
    ]:
        with pytest.raises(dastrax.InvalidRequest, match="writable|read-only"):
            call()
    assert snapshot(readonly_dir) == before
    assert len(frontend.temporary_paths()) == 2  # what the dead writer left stays there

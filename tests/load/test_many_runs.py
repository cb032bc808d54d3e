"""Many small runs made in one call: each group written at once (small local groups by
the private fast writer) holds exactly what zarr itself writes — the same arrays, array
documents, metadata and consolidated metadata — for every compressor."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

import dastrax
from dastrax.bench import setup as bench
from dastrax.storage.zarr import writer as zarr_writer

COMPRESSORS = {
    "blosc-lz4": {"name": "blosc", "cname": "lz4", "clevel": 5, "shuffle": "shuffle"},
    "blosc-zstd": {"name": "blosc", "cname": "zstd", "clevel": 3, "shuffle": "bitshuffle"},
    "zstd": {"name": "zstd", "level": 3},
    "none": {"name": "none"},
}
N_RUNS = 6


def _make(root, compressor):
    params = {
        "storage": str(root),
        "subruns": N_RUNS,
        "chunks": 2,
        "rows_per_chunk": 100,
        "plugin_options": {"waveform_length": 20, "n_channels": 3},
        "context_config": {"compressor": compressor},
    }
    st = bench.context(params)
    st.make([str(i) for i in range(N_RUNS)], bench.TARGET)
    return st


def _groups(root):
    return sorted(p for p in os.listdir(root) if "-" in p and not p.startswith("."))


def _doc(path):
    with open(os.path.join(path, "zarr.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("compressor", sorted(COMPRESSORS))
def test_fast_written_groups_equal_zarr_written_ones(tmp_path, monkeypatch, compressor):
    fast = _make(tmp_path / "fast", COMPRESSORS[compressor])
    monkeypatch.setattr(zarr_writer, "FASTWRITE", False)
    _make(tmp_path / "zarr", COMPRESSORS[compressor])
    names = _groups(tmp_path / "fast")
    assert names == _groups(tmp_path / "zarr") and len(names) == 2 * N_RUNS
    for name in names:
        a, b = tmp_path / "fast" / name, tmp_path / "zarr" / name
        doc_a, doc_b = _doc(a), _doc(b)
        assert doc_a["attributes"] == doc_b["attributes"]
        assert doc_a["consolidated_metadata"] == doc_b["consolidated_metadata"]
        fields = sorted(doc_b["consolidated_metadata"]["metadata"])
        assert fields and sorted(x for x in os.listdir(a) if x != "zarr.json") == fields
        for field in fields:
            assert _doc(a / field) == _doc(b / field)
            got = zarr.open_array(str(a / field), mode="r")[:]
            want = zarr.open_array(str(b / field), mode="r")[:]
            assert got.shape[0] == 200
            np.testing.assert_array_equal(got, want)
        ds = xr.open_zarr(str(a))
        assert ds.sizes[doc_b["attributes"]["dastrax"]["data_kind"]] == 200
    # and dastrax reads them back as it made them
    rows = fast.get_array("3", bench.TARGET)
    assert len(rows) == 200 and np.all(np.diff(rows["time"]) > 0)


def test_an_empty_run_is_written_and_reads_empty(tmp_path):
    st = _make(tmp_path / "data", COMPRESSORS["blosc-lz4"])
    params = {"storage": str(tmp_path / "data"), "subruns": 1, "chunks": 2, "rows_per_chunk": 0}
    empty = bench.context(params)
    empty.make("7", bench.TARGET)
    rows = empty.get_array("7", bench.TARGET)
    assert len(rows) == 0 and rows.dtype.names == st.get_array("0", bench.TARGET).dtype.names
    (key,) = [g for g in _groups(tmp_path / "data") if g.startswith("7-peaks")]
    assert zarr.open_array(str(tmp_path / "data" / key / "data"), mode="r").shape == (0, 200)


class _CountingDirectory(dastrax.ZarrDirectory):
    """A ZarrDirectory that counts the listings of its top folder."""

    listings = 0

    def _listdir(self, path):
        if path == self._fs_root:
            type(self).listings += 1
        return super()._listdir(path)


def _listings_of_make(root, run_ids, st=None):
    if st is None:
        root.mkdir()
        params = {
            "storage": _CountingDirectory(str(root)),
            "chunks": 2,
            "rows_per_chunk": 5,
            "plugin_options": {"waveform_length": 20, "n_channels": 3},
        }
        st = bench.context(params)
    before = _CountingDirectory.listings
    st.make(list(run_ids), bench.TARGET)
    return _CountingDirectory.listings - before, st


def test_a_make_lists_the_storage_as_often_for_many_runs_as_for_few(tmp_path):
    """Starting the writers of N runs lists the storage directory a fixed number of
    times, not once a run (each listing holds every group and temporary folder there: N
    listings made a make of N runs grow as N squared)."""
    few, _ = _listings_of_make(tmp_path / "few", ["0", "1"])
    many, st = _listings_of_make(tmp_path / "many", [str(i) for i in range(12)])
    assert few == many >= 1
    # a second make with the same storage sweeps what a dead writer left of its keys,
    # from one listing too
    key = str(st.key_for("20", bench.TARGET))
    dead = tmp_path / "many" / f".tmp-{key}-{'0' * 32}"
    (dead / "group").mkdir(parents=True)
    (dead / "dastrax-writer.json").write_text(
        json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "time": 0})
    )
    again, _ = _listings_of_make(tmp_path / "many", [str(i) for i in range(20, 32)], st)
    assert again == 1
    assert not dead.exists()
    assert not [p for p in os.listdir(tmp_path / "many") if p.startswith(".")]
    assert len(st.get_array("31", bench.TARGET)) == 10


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid

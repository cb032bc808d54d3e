"""The private fast local read path (dastrax/storage/_fastread.py) against zarr's own:
for every codec configuration dastrax can write, every column read both ways (whole,
cut, with a row index, into a strided field) gives the same values; a layout the fast
path does not know falls back to zarr."""

from __future__ import annotations

import numpy as np
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax
from dastrax.storage.zarr import _fastread

COMPRESSORS = [
    "blosc-lz4",
    "blosc-zstd",
    "zstd",
    "none",
    {"name": "blosc", "cname": "lz4", "clevel": 9, "shuffle": "bitshuffle"},
    {"name": "blosc", "cname": "zstd", "clevel": 1, "shuffle": "noshuffle"},
    {"name": "zstd", "level": 10},
]


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=str)
def test_fast_path_reads_what_zarr_reads(tmp_path, compressor):
    st = dastrax.Context(
        storage=str(tmp_path),
        register=[Records, Peaks, PeakClassification],
        config={"n_chunks": 3, "recs_per_chunk": 700},
        compressor=compressor,
        progress=False,
    )
    st.make("0", ["peaks", "peak_classification"])
    for t in ("peaks", "peak_classification"):
        group = st.storage[0].find(str(st.key_for("0", t)))
        n = sum(c["n"] for c in group.chunks)
        for field in group.dtype.names:
            lay = _fastread.layout(group.root, f"{group.key}/{field}")
            assert lay is not None, f"{compressor}: the fast path does not know {field}"
            for lo, hi in [(0, n), (5, n - 3), (700, 1400), (n - 1, n)]:
                fast = group.read(field, lo, hi)
                slow = group._zarr_read(field, lo, hi)
                np.testing.assert_array_equal(fast, slow, err_msg=f"{field}[{lo}:{hi}]")
            index = np.array([0, 3, 699, 700, n - 1])
            np.testing.assert_array_equal(
                group.read(field, 0, n, index), group._zarr_read(field, 0, n, index)
            )
        # into a strided destination: a field of a structured array
        out = np.zeros(n, group.dtype)
        for field in group.dtype.names:
            group.read(field, 0, n, out=out[field])
        for field in group.dtype.names:
            np.testing.assert_array_equal(out[field], group._zarr_read(field, 0, n))


def test_an_unknown_layout_falls_back_to_zarr(tmp_path):
    st = dastrax.Context(storage=str(tmp_path), register=[Records], progress=False)
    st.make("0", "records")
    group = st.storage[0].find(str(st.key_for("0", "records")))
    assert _fastread._parse("x", {"zarr_format": 2}) is None
    assert _fastread._parse("x", {"zarr_format": 3, "node_type": "group"}) is None
    assert _fastread.layout("memory://nowhere", f"{group.key}/time") is None
    np.testing.assert_array_equal(group.read("time", 0, 100), st.get_array("0", "records")["time"])

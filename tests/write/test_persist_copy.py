"""Persisting copies the subruns' compressed zarr chunk files where they line up with the
persisted grid: the store still reads, through plain zarr and xarray, exactly the rows of
the unstored load, with valid checksums — aligned, cut by time ranges, other codecs."""

from __future__ import annotations

import os

import google_crc32c
import numpy as np
import pytest
import xarray as xr
import zarr

from dastrax.bench import setup as bench

COMPRESSORS = {
    "blosc-lz4": {"name": "blosc", "cname": "lz4", "clevel": 5, "shuffle": "shuffle"},
    "blosc-zstd": {"name": "blosc", "cname": "zstd", "clevel": 3, "shuffle": "shuffle"},
    "zstd": {"name": "zstd", "level": 3},
    "none": {"name": "none"},
}
#: 3 subruns x 2 chunks x 200 rows of 6 kB waveforms: zarr chunks of 200 rows (1.2 MB)
ROWS = 200
SPAN = 2 * ROWS * bench.ROW_NS
SPACING = SPAN + bench.GAP_NS
#: superruns: whole subruns (aligned), the first cut (all later rows shifted), the last cut
SPECS = {
    "_whole": {"0": "all", "1": "all", "2": "all"},
    "_cut_first": {"0": [(150, SPAN)], "1": "all", "2": "all"},
    "_cut_last": {"0": "all", "1": "all", "2": [(2 * SPACING, 2 * SPACING + SPAN - 75)]},
}


def _params(root, compressor):
    return {
        "storage": str(root),
        "subruns": 3,
        "chunks": 2,
        "rows_per_chunk": ROWS,
        "plugin_options": {"waveform_length": 1500, "n_channels": 4},
        "context_config": {"compressor": compressor, "chunk_target_size_mb": 3},
    }


@pytest.fixture(scope="module", params=sorted(COMPRESSORS))
def made(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"copy-{request.param}")
    params = _params(root, COMPRESSORS[request.param])
    bench.make_data(params)
    st = bench.context(params)
    for name, spec in SPECS.items():
        st.define_run(name, spec)
    return params


def _group(st, run_id):
    return os.path.join(st.storage[0].url, str(st.key_for(run_id, bench.TARGET)))


def _chunk_files(group, field):
    base = os.path.join(group, field, "c")
    return sorted(os.path.join(d, f) for d, _dirs, files in os.walk(base) for f in files)


def _assert_checksums(group, fields):
    for field in fields:
        for path in _chunk_files(group, field):
            with open(path, "rb") as f:
                raw = f.read()
            assert google_crc32c.value(raw[:-4]) == int.from_bytes(raw[-4:], "little"), path


def _assert_plain_zarr_rows(group, want):
    ds = xr.open_zarr(group, consolidated=False)
    for name in want.dtype.names:
        np.testing.assert_array_equal(ds[name].values, want[name], err_msg=name)
        arr = zarr.open_array(os.path.join(group, name), mode="r")
        np.testing.assert_array_equal(arr[:], want[name], err_msg=name)


def _copied(st, group, field):
    """How many of the persisted chunk files of ``field`` are byte for byte a subrun's."""
    sub = set()
    for run_id in ("0", "1", "2"):
        for path in _chunk_files(_group(st, run_id), field):
            with open(path, "rb") as f:
                sub.add(f.read())
    same = 0
    for path in _chunk_files(group, field):
        with open(path, "rb") as f:
            same += f.read() in sub
    return same


@pytest.mark.parametrize("name", sorted(SPECS))
def test_persisted_store_reads_the_unstored_rows_through_plain_zarr(made, name):
    st = bench.context(made)
    want = st.get_array(name, bench.TARGET)
    st.persist_superrun(name, bench.TARGET)
    group = _group(st, name)
    _assert_plain_zarr_rows(group, want)
    _assert_checksums(group, [*want.dtype.names, "subrun"])
    got = st.get_array(name, bench.TARGET)
    for field in want.dtype.names:
        np.testing.assert_array_equal(got[field], want[field])
    n_files = len(_chunk_files(group, "data"))
    copied = _copied(st, group, "data")
    if name == "_whole":
        # the same grid as the subruns, every chunk file copied
        assert zarr.open_array(os.path.join(group, "data"), mode="r").chunks[0] == ROWS
        assert copied == n_files == 6
        chunks = st.storage[0].find(str(st.key_for(name, bench.TARGET))).meta["chunks"]
        assert len(chunks) > 1 and all(c["row_start"] % ROWS == 0 for c in chunks)
    elif name == "_cut_last":
        # the cut chunk is written anew (no rows past the cut in its padding)
        assert copied == 5 and n_files == 6
    else:
        assert n_files == 6 and copied == 0  # every row shifted: nothing lines up


def test_other_codecs_are_recompressed(made):
    mine = made["context_config"]["compressor"]
    other = COMPRESSORS["zstd" if mine != COMPRESSORS["zstd"] else "blosc-lz4"]
    st2 = bench.context(dict(made, context_config={"compressor": other}))
    want = st2.get_array("_whole", bench.TARGET)
    st2.persist_superrun("_whole", bench.TARGET, overwrite=True)
    group = _group(st2, "_whole")
    _assert_plain_zarr_rows(group, want)
    assert _copied(st2, group, "data") == 0
    stored = zarr.open_array(os.path.join(group, "data"), mode="r")
    assert stored.compressors[0].to_dict()["name"] == other["name"]

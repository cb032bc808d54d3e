"""strax 2.2.3's tests/test_multi_output.py (class TestMultiOutputs), translated to
dastrax's spellings; scenario and assertions kept. Multi-output plugins: each output is
a data type of its own (own key, lineage, storage), and making one makes them all."""

from __future__ import annotations

import numpy as np
import pytest

import dastrax

from .plugins import (
    RUN_ID,
    EvenOddSplit,
    EvenRecsClassified,
    FunnyPeaks,
    Records,
    ZipRecords,
    ZipRecordsAdditionalDependency,
)


@pytest.fixture
def mystrax(tmp_path):
    st = dastrax.Context(
        storage=dastrax.DataDirectory(str(tmp_path)),
        register=[
            Records,
            EvenOddSplit,
            ZipRecords,
            FunnyPeaks,
            EvenRecsClassified,
            ZipRecordsAdditionalDependency,
        ],
        progress=False,
    )
    assert not st.is_stored(RUN_ID, "records")
    assert not st.is_stored(RUN_ID, "rec_count")
    return st


def test_save_when_per_provide_same_save_when(mystrax):
    """TestMultiOutputs.test_save_when_per_provide_same_save_when: making one output
    stores all three (strax's default SaveWhen.ALWAYS; dastrax has no save_when and
    always stores what it makes)."""
    for dt in ("even_recs", "odd_recs", "rec_count"):
        assert not mystrax.is_stored("0", dt)
    mystrax.make("0", "even_recs")
    for dt in ("even_recs", "odd_recs", "rec_count"):
        assert mystrax.is_stored("0", dt)
    # each output has its own key and lineage
    keys = {str(mystrax.key_for("0", dt)) for dt in ("even_recs", "odd_recs", "rec_count")}
    assert len(keys) == 3


def test_multi_output(mystrax):
    """TestMultiOutputs.test_multi_output (strax's max_workers 1 and 2 are one dask
    graph here)."""
    funny_ps = mystrax.get_array(run_id=RUN_ID, targets="peaks")
    assert mystrax.is_stored(RUN_ID, "peaks")
    assert mystrax.is_stored(RUN_ID, "even_recs")
    n_chunks, recs_per_chunk = Records.n_chunks.default, Records.recs_per_chunk.default

    assert np.all(funny_ps["time"] % 2 == 0)
    assert len(funny_ps) == n_chunks * recs_per_chunk / 2

    # unnecessary things also got stored
    assert mystrax.is_stored(RUN_ID, "rec_count")
    assert mystrax.is_stored(RUN_ID, "odd_recs")

    rec_count = mystrax.get_array(RUN_ID, "rec_count")
    assert len(rec_count) == n_chunks
    np.testing.assert_array_equal(rec_count["n_records"], recs_per_chunk)

    r_even = mystrax.get_array(RUN_ID, "even_recs")
    r_odd = mystrax.get_array(RUN_ID, "odd_recs")
    assert np.all(r_even["time"] % 2 == 0)
    assert np.all(r_odd["time"] % 2 == 1)
    assert len(r_even) == n_chunks * recs_per_chunk / 2
    assert len(r_even) == len(r_odd)
    assert mystrax.get_metadata(RUN_ID, "rec_count")["data_kind"] == "chunk_bonus_data"


def _double_dependency(st, make_data_type="zipped_records"):
    assert not st.is_stored(RUN_ID, "even_recs")
    assert not st.is_stored(RUN_ID, "odd_recs")
    st.make(RUN_ID, "records")
    zipped_records = st.get_array(RUN_ID, make_data_type)
    records = st.get_array(RUN_ID, "records")
    assert np.all(zipped_records == records)
    assert st.is_stored(RUN_ID, "even_recs")
    assert st.is_stored(RUN_ID, "odd_recs")
    assert st.is_stored(RUN_ID, make_data_type)


def test_double_dependency(mystrax):
    """TestMultiOutputs.test_double_dependency (and its _notlazy and _multiprocess
    variants, which differ only in strax's processor settings)."""
    _double_dependency(mystrax)


def test_double_dependency_inline_plugins(mystrax):
    """TestMultiOutputs.test_double_dependency_inline_plugins: a plugin depending on two
    outputs and on a type of one output's data kind (merged with it, strax's default
    data kind)."""
    _double_dependency(mystrax, make_data_type="zipped_records_classified")
    assert mystrax.is_stored(RUN_ID, "even_recs_classified")

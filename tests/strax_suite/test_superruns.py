"""strax 2.2.3's tests/test_superruns.py (class TestSuperRuns), translated to dastrax's
spellings; scenario and assertions kept. Where dastrax deliberately differs a comment
says so and cites SEMANTICS.md (/work/shared/SEMANTICS.md in the project)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dastrax
from dastrax.errors import InvalidRequest

from .plugins import (
    PeakClassification,
    Peaks,
    PeaksExtension,
    PeaksExtensionCopy,
    Ranges,
    Records,
    RecordsExtension,
    Sum,
)

SUPERRUN = "_superrun_test"
OFFSET_BETWEEN_SUBRUNS = 9  # records are 1 ns long
MODES = ["mode_a", "mode_b"]
PLUGINS = [
    Records,
    RecordsExtension,
    Peaks,
    PeakClassification,
    PeaksExtension,
    PeaksExtensionCopy,
    Ranges,
    Sum,
]


def new_context(path, plugins=PLUGINS) -> dastrax.Context:
    st = dastrax.Context(
        storage=[dastrax.DataDirectory(str(path), provide_run_metadata=True, readonly=False)],
        register=plugins,
        config={"secret_time_offset": 0, "bonus_area": 42, "n_chunks": 1},
        progress=False,
    )
    st.set_context_config({"write_superruns": True, "use_per_run_defaults": False})
    return st


def create_subruns(st, n_subruns=3) -> list[str]:
    """strax's _create_subruns: records and ranges of runs 0, 1, 2, 10 ns apart, and
    their run documents (dastrax: written with ``write_run_metadata``, in ns)."""
    subrun_ids = [str(r) for r in range(n_subruns)]
    st.set_config({"secret_time_offset": 0})
    for run_id in subrun_ids:
        assert not st.is_stored(run_id, "records")
        assert not st.is_stored(run_id, "ranges")
        # dastrax: a load of a run id that has neither a run document nor data, in a
        # storage that keeps other runs' documents, is refused as a likely typo
        # (SEMANTICS.md, "Loads that make, and run ids nothing knows"); make it first
        st.make(run_id, ["records", "ranges"])
        rr = st.get_array(run_id, "records")
        rg = st.get_array(run_id, "ranges")
        assert np.min(rr["time"]) == np.min(rg["time"])
        assert np.max(dastrax.endtime(rr)) == np.max(dastrax.endtime(rg))
        time, endtime = int(np.min(rg["time"])), int(np.max(dastrax.endtime(rg)))
        st.set_config({"secret_time_offset": endtime + OFFSET_BETWEEN_SUBRUNS})
        write_run_doc(st, run_id, time, endtime)
        assert st.is_stored(run_id, "records")
        assert st.is_stored(run_id, "ranges")
    return subrun_ids


def write_run_doc(st, run_id, start, end) -> None:
    st.write_run_metadata(
        str(run_id),
        {
            "name": str(run_id),
            "start": start,
            "end": end,
            "mode": MODES[int(run_id) % 2],
            "source": "test",
        },
    )


@pytest.fixture
def sr(tmp_path):
    st = new_context(tmp_path / "one")
    subruns = create_subruns(st)
    st.define_run(SUPERRUN, subruns)
    return st, subruns


def test_run_meta_data(sr):
    """TestSuperRuns.test_run_meta_data: the superrun's start, end and livetime (the sum
    of the subruns'), subruns sorted by start."""
    st, subruns = sr
    superrun_meta = st.run_metadata(SUPERRUN)
    subrun_meta = [st.run_metadata(r) for r in subruns]
    assert superrun_meta["start"] == subrun_meta[0]["start"]
    assert superrun_meta["end"] == subrun_meta[-1]["end"]
    livetime = sum((m["end"] - m["start"]) / 1e9 for m in subrun_meta)  # ns documents
    assert superrun_meta["livetime"] == pytest.approx(livetime)
    prev_start = -1
    for subrun_id in superrun_meta["sub_run_spec"]:
        start = st.run_metadata(subrun_id)["start"]
        assert start > prev_start, "Subruns should be sorted by run starts"
        prev_start = start


def test_create_and_load_superruns(sr):
    """TestSuperRuns.test_create_and_load_superruns, with ``add_run_id_field``."""
    st, subruns = sr
    subrun_data = st.get_array(subruns, "peaks", progress_bar=False, add_run_id_field=False)
    assert "run_id" not in subrun_data.dtype.names
    st.make(SUPERRUN, "peaks")
    superrun_data = st.get_array(SUPERRUN, "peaks")
    assert st.is_stored(SUPERRUN, "peaks")
    assert np.all(subrun_data == superrun_data)

    chunks = st.get_metadata(SUPERRUN, "peaks")["chunks"]
    assert len(chunks) == 1  # rechunked: the stored join too
    chunk = chunks[0]
    assert chunk["run_id"] == SUPERRUN
    assert chunk["first_time"] == subrun_data["time"].min()
    assert chunk["last_endtime"] == np.max(dastrax.endtime(subrun_data))

    subrun_data = st.get_array(subruns, "peaks", progress_bar=False)
    superrun_data = st.get_array(SUPERRUN, "peaks")
    assert np.all(subrun_data["time"] == superrun_data["time"])


def test_select_runs_with_superruns(sr):
    """TestSuperRuns.test_select_runs_with_superruns."""
    st, _subruns = sr
    df = st.select_runs()
    mask_superrun = df["name"] == SUPERRUN
    assert pd.api.types.is_string_dtype(df["mode"])
    modes = df.loc[mask_superrun, "mode"].values[0].split(",")
    assert set(modes) == set(MODES)
    assert pd.api.types.is_string_dtype(df["tags"])
    assert pd.api.types.is_string_dtype(df["source"])
    assert df.loc[mask_superrun, "source"].values[0] == "test"
    assert pd.api.types.is_timedelta64_dtype(df["livetime"])

    st.make(SUPERRUN, "peaks")
    df = st.select_runs(available=("peaks",))
    assert SUPERRUN in df["name"].values
    assert df.loc[df["name"] == SUPERRUN, "peaks_available"].all()


def test_superrun_chunk_properties(sr):
    """TestSuperRuns.test_superrun_chunk_properties: Chunk.is_superrun, first_subrun,
    last_subrun."""
    st, subruns = sr
    st.make(SUPERRUN, "peaks")
    for chunk in st.get_iter(subruns[0], "peaks"):
        assert not chunk.is_superrun
        assert not chunk.first_subrun
        assert not chunk.last_subrun
    n = 0
    for chunk in st.get_iter(SUPERRUN, "peaks"):
        n += 1
        assert chunk.is_superrun
        subruns_of_chunk = chunk.subruns
        run_ids = list(subruns_of_chunk.keys())
        first_subrun, last_subrun = chunk.first_subrun, chunk.last_subrun
        assert first_subrun["run_id"] == run_ids[0]
        assert last_subrun["run_id"] == run_ids[-1]
        for ind, sub in zip([0, -1], [first_subrun, last_subrun]):
            assert sub["start"] == subruns_of_chunk[run_ids[ind]]["start"]
            assert sub["end"] == subruns_of_chunk[run_ids[ind]]["end"]
    assert n


def test_superrun_definition(sr):
    """TestSuperRuns.test_superrun_definition: a redefined superrun has another key."""
    st, subruns = sr
    st.make(SUPERRUN, "peaks")  # strax stores it from get_array; dastrax loads never persist
    assert st.is_stored(SUPERRUN, "peaks")
    # dastrax: redefining with another spec needs overwrite=True (SEMANTICS.md, define_run)
    st.define_run(SUPERRUN, subruns[:-1], overwrite=True)
    assert not st.is_stored(SUPERRUN, "peaks")
    st.define_run(SUPERRUN, subruns, overwrite=True)


def test_superrun_chunk_and_meta(sr):
    """TestSuperRuns.test_superrun_chunk_and_meta: the stored chunk names its subruns."""
    st, _subruns = sr
    st.make(SUPERRUN, "peaks")
    meta = st.get_metadata(SUPERRUN, "peaks")
    chunks = list(st.get_iter(SUPERRUN, "peaks"))
    assert len(meta["chunks"]) == len(chunks) == 1
    superrun_chunk = chunks[-1]
    assert superrun_chunk.subruns is not None
    assert meta["chunks"][0]["subruns"] == superrun_chunk.subruns
    for subrun_id, start_and_end in superrun_chunk.subruns.items():
        rr = st.get_array(subrun_id, "peaks")
        assert rr["time"].min() == start_and_end["start"], subrun_id
        assert np.max(dastrax.endtime(rr)) == start_and_end["end"], subrun_id


def test_rechunking_and_loading(sr):
    """TestSuperRuns.test_rechnunking_and_loading: subruns of very different sizes."""
    st, subruns = sr
    st.set_config({"recs_per_chunk": 500})
    rr = st.get_array(subruns, "peaks")
    endtime = np.max(dastrax.endtime(rr))
    for run_id in range(int(subruns[-1]) + 1, int(subruns[-1]) + 3):
        st.set_config({"secret_time_offset": int(endtime + OFFSET_BETWEEN_SUBRUNS)})
        st.make(str(run_id), "records")  # see create_subruns
        rr = st.get_array(str(run_id), "records")
        write_run_doc(st, run_id, int(rr["time"].min()), int(np.max(dastrax.endtime(rr))))
        endtime = np.max(dastrax.endtime(rr))
        subruns.append(str(run_id))
    name = "_superrun_test_rechunking"
    st.define_run(name, subruns)
    st.make(name, "peaks")
    assert st.is_stored(name, "peaks")
    rr_superrun = st.get_array(name, "peaks")
    rr_subruns = st.get_array(subruns, "peaks")
    assert np.all(rr_superrun["time"] == rr_subruns["time"])


def test_superrun_triggers_subrun_processing(sr):
    """TestSuperRuns.test_superrun_triggers_subrun_processing, with a non-allowing peaks
    (strax flips the registered class's flag; here a subclass is registered)."""
    st, subruns = sr

    class PeaksPerSubrun(Peaks):
        allow_superrun = False

    st.register(PeaksPerSubrun)
    assert not st.is_stored(SUPERRUN, "peaks_extension_copy")
    assert not st.is_stored(subruns[0], "peaks_extension")
    st.make(SUPERRUN, "peaks_extension_copy")
    assert st.is_stored(SUPERRUN, "peaks_extension_copy")
    assert not st.is_stored(subruns[0], "peaks_extension")
    assert st.is_stored(subruns[0], "peaks")


def test_storing_with_second_sf(sr, tmp_path):
    """TestSuperRuns.test_storing_with_second_sf: with the subruns in a read-only
    frontend, only the superrun is written, to the second one."""
    st, _subruns = sr
    st.storage[0].readonly = True
    st.storage.append(dastrax.DataDirectory(str(tmp_path / "two"), provide_run_metadata=True))
    st.make(SUPERRUN, "peaks")
    superrun_sf = st.storage.pop(1)
    assert not st.is_stored(SUPERRUN, "peaks")

    st.storage = [superrun_sf]
    st.storage[0].readonly = False
    subruns = create_subruns(st)
    st.define_run(SUPERRUN, subruns)
    assert st.is_stored(SUPERRUN, "peaks")


def test_superrun_chunk_number(sr):
    """TestSuperRuns.test_superrun_chunk_number: ``chunk_number`` is refused (dastrax
    has no per-chunk storage at all: an unknown keyword, InvalidRequest, a ValueError)."""
    st, _subruns = sr
    with pytest.raises(ValueError):
        st.get_array(SUPERRUN, "peaks", chunk_number={"raw_records": [0]})


def test_bare_combining_subruns(sr):
    """TestSuperRuns.test_bare_combining_subruns: combining=True for a regular run."""
    st, subruns = sr
    with pytest.raises(ValueError):
        st.get_array(subruns[0], "peaks", combining=True)
    with pytest.raises(InvalidRequest, match="regular run"):
        st.make(subruns[0], "peaks", combining=True)


def test_only_combining_superruns(sr):
    """TestSuperRuns.test_only_combining_superruns: over the join, ``sum`` sees every
    subrun at once; with combining=True each subrun alone."""
    st, _subruns = sr
    assert st.check_superrun() == []
    # strax: get_array(..., save="sum"); dastrax loads never store (SEMANTICS.md, "Stored
    # superruns"): make with write_superruns stores it
    st.make(SUPERRUN, "sum")
    sum_super = st.get_array(SUPERRUN, "sum")
    assert st.is_stored(SUPERRUN, "sum")
    assert not st.is_stored(SUPERRUN, "sum", combining=True)
    _sum_super = st.get_array(SUPERRUN, "sum", combining=True)
    assert np.unique(sum_super["sum"]).size == 1
    assert np.unique(_sum_super["sum"]).size != 1


def test_loaders_and_savers(sr):
    """TestSuperRuns.test_loaders_and_savers, by what is stored (strax's
    ``get_components`` is processor internals): peak_classification of the superrun is
    computed from the subruns' records, and peaks, peak_classification and lone_hits (the
    other output of its plugin) are all saved for the superrun; the subruns' peaks made
    before are not what the join reads."""
    st, subruns = sr
    st.make(subruns, "peaks")
    assert len(PeakClassification.depends_on) == 1
    assert all(st.is_stored(r, "peaks") for r in subruns)
    st.make(SUPERRUN, "peak_classification")
    for dt in ("peaks", "peak_classification", "lone_hits"):
        assert st.is_stored(SUPERRUN, dt), dt
    # the join's lineage starts at records, not at the subruns' stored peaks
    lineage = st.key_for(SUPERRUN, "peak_classification").lineage
    assert {"records", "peaks", "peak_classification"} <= set(lineage)
    lone = st.get_array(SUPERRUN, "lone_hits")
    peaks = st.get_array(SUPERRUN, "peaks")
    np.testing.assert_array_equal(lone["time"], peaks["time"])
    assert st.get_metadata(SUPERRUN, "lone_hits")["data_kind"] == "lone_hits"
    # combining: each subrun's peak_classification, concatenated, under another key
    combined = st.get_array(SUPERRUN, "peak_classification", combining=True)
    assert len(combined) == len(peaks)
    assert str(st.key_for(SUPERRUN, "peak_classification", combining=True)) != str(
        st.key_for(SUPERRUN, "peak_classification")
    )

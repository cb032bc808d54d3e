"""strax's superrun tutorial, cell by cell, in dastrax.

The cells are strax's (same steps, same order); only what the README's "From strax" table
lists is changed: ``strax`` -> ``dastrax`` (``straxen`` is not needed), the test plugins'
``secret_time_offset`` -> ``time_offset``, the run documents written with
``st.write_run_metadata`` instead of ``json.dump`` into ``_run_meta_path``,
``strax.endtime`` -> ``dastrax.endtime``, and ``make=True`` where a load makes data for a run
id that has no run document yet (dastrax refuses that in a load by default: it is how a typo
looks). Each cell asserts what it shows.

Usage::

    python examples/superrun_tutorial.py [STORAGE_DIR]

``STORAGE_DIR`` defaults to a fresh temporary directory (removed afterwards).
"""

from __future__ import annotations

import datetime
import shutil
import sys
import tempfile
import warnings

import numpy as np

# In [1]: strax's tutorial imports strax and straxen; dastrax is all that is needed
import dastrax
from dastrax.testing.plugins import PeakClassification, Peaks, Records


def to_ns(when: datetime.datetime) -> int:
    """A naive datetime (taken as UTC, as dastrax reads run documents) in ns since the epoch."""
    epoch = datetime.datetime(1970, 1, 1)
    return (when - epoch) // datetime.timedelta(microseconds=1) * 1000


def main(storage_dir: str) -> None:
    # In [2]: a context with one storage directory and the dummy plugins. strax's keyword
    # arguments of DataDirectory are accepted; deep_scan has no meaning here and warns once.
    superrun_name = "_superrun_test"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = dastrax.Context(
            storage=[
                dastrax.DataDirectory(
                    storage_dir, provide_run_metadata=True, readonly=False, deep_scan=True
                )
            ],
            register=[Records, Peaks, PeakClassification],
            config={"bonus_area": 42},
        )
    assert any("deep_scan" in str(w.message) for w in caught), [str(w.message) for w in caught]
    st.set_context_config({"use_per_run_defaults": False})

    # In [3]: three subruns, each followed by a gap, and a run document for each (start and
    # end as datetimes, the rows' times taken as seconds after now, as strax's tutorial does)
    offset_between_subruns = 10
    now = datetime.datetime.now()
    subrun_ids = [str(r) for r in range(3)]
    docs = {}
    for run_id in subrun_ids:
        rr = st.get_array(run_id, "peaks", make=True)  # a new run id: make it
        time = np.min(rr["time"])
        endtime = np.max(dastrax.endtime(rr))
        docs[run_id] = {
            "name": run_id,
            "start": now + datetime.timedelta(0, int(time)),
            "end": now + datetime.timedelta(0, int(endtime)),
        }
        st.write_run_metadata(run_id, docs[run_id])
        st.set_config({"time_offset": endtime + offset_between_subruns})  # untracked option
        assert st.is_stored(run_id, "peaks")
    assert [int(np.min(st.get_array(r, "peaks")["time"])) for r in subrun_ids] == [0, 20, 40]

    # In [4]: the key and lineage of a subrun's data look like those of any run
    key = st.key_for("2", "peaks")
    print(key)
    assert str(key) == f"2-peaks-{key.lineage_hash}"
    lineage = key.lineage
    print(lineage)
    assert lineage["peaks"][0] == "Peaks" and lineage["peaks"][2]["bonus_area"] == 42
    assert set(lineage) == {"peaks", "records"}

    # In [5]: the stored metadata of one subrun: 10 chunks of 10 rows
    md = st.get_metadata("2", "peaks")
    print({k: md[k] for k in ("data_type", "data_kind", "compressor", "chunk_target_size_mb")})
    assert md["data_type"] == "peaks" and len(md["chunks"]) == 10
    assert sum(c["n"] for c in md["chunks"]) == 100
    assert md["chunks"][0]["run_id"] == "2" and md["chunks"][0]["subruns"] is None

    # In [6]: define the superrun (its name starts with an underscore). strax's tutorial
    # writes run documents in seconds after now while its rows count ns from 0; dastrax
    # notices and warns, once per subrun: shown here as one line, not as warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st.define_run(superrun_name, subrun_ids)
    outside = sorted({str(w.message).split("-")[0].split()[-1] for w in caught})
    assert outside == subrun_ids, [str(w.message) for w in caught]
    print(f"(dastrax notes: the rows of subruns {outside} lie outside their run documents)")
    print("superrun_name: ", superrun_name, "\nsubrun_ids: ", subrun_ids)

    # In [7]: its run document: start and end of all subruns, and a livetime that is the
    # sum of theirs (30 s), not end - start (50 s)
    doc = st.run_metadata(superrun_name)
    print(doc)
    assert doc["name"] == superrun_name
    assert doc["sub_run_spec"] == {"0": "all", "1": "all", "2": "all"}
    assert doc["start"] == to_ns(docs["0"]["start"]) and doc["end"] == to_ns(docs["2"]["end"])
    assert np.isclose(doc["livetime"], 30.0), doc["livetime"]
    assert np.isclose((doc["end"] - doc["start"]) / 1e9, 50.0)

    # In [8]: the superrun is listed like any other run
    runs = st.select_runs()
    print(runs)
    assert list(runs["name"]) == [*subrun_ids, superrun_name]
    assert np.isnan(runs.set_index("name").loc[superrun_name, "number"])

    # In [9]: loading the subruns one by one and loading the superrun give the same rows
    sub_runs = st.get_array(subrun_ids, "peaks")
    superrun = st.get_array(superrun_name, "peaks")
    assert np.all(sub_runs["time"] == superrun["time"])
    assert len(superrun) == 300

    # In [10]: skipping the per-subrun lineage check
    sub_runs = st.get_array(subrun_ids, "peaks")
    superrun = st.get_array(superrun_name, "peaks", _check_lineage_per_run_id=False)
    assert np.all(sub_runs["time"] == superrun["time"])

    # In [11]: writing superruns
    st.set_context_config({"write_superruns": True})

    # In [12]: not written yet (dastrax loads it from its subruns until then)
    print(st.is_stored(superrun_name, "peaks"))
    assert not st.is_stored(superrun_name, "peaks")

    # In [13]: make writes it, rechunked, as a run of its own
    st.make(superrun_name, "peaks")
    print(st.is_stored(superrun_name, "peaks"))
    assert st.is_stored(superrun_name, "peaks")

    # In [14]: the same rows
    sub_runs = st.get_array(subrun_ids, "peaks")
    superrun = st.get_array(superrun_name, "peaks", _check_lineage_per_run_id=False)
    assert np.all(sub_runs["time"] == superrun["time"])
    assert len(superrun) == 300

    # In [15]: and it shows as available
    available = st.select_runs(available=("peaks",))
    print(available)
    assert available.set_index("name")["peaks_available"].to_dict() == dict.fromkeys(
        [*subrun_ids, superrun_name], True
    )

    # In [16]: peak_classification is not made yet
    print(st.is_stored(subrun_ids[0], "peak_classification"))
    assert not st.is_stored(subrun_ids[0], "peak_classification")

    # In [17]: making it for the superrun makes it for the subruns too (and, with
    # write_superruns, writes the superrun's)
    st.make(superrun_name, "peak_classification")
    print(st.is_stored(subrun_ids[0], "peak_classification"))
    assert all(st.is_stored(r, "peak_classification") for r in subrun_ids)
    assert st.is_stored(superrun_name, "peak_classification")

    # In [18]
    peaks = st.get_array(superrun_name, "peak_classification")
    assert len(peaks) == 300
    np.testing.assert_array_equal(peaks["time"], sub_runs["time"])

    # In [19]: every chunk of a stored superrun knows the subruns it is made of
    for chunk in st.get_iter(superrun_name, "peaks"):
        chunk  # noqa: B018 - as in the tutorial: the last chunk is looked at below
    print(chunk.subruns, chunk.run_id)
    assert chunk.run_id == superrun_name
    assert list(chunk.subruns) == subrun_ids, chunk.subruns
    assert all(s["start"] < s["end"] for s in chunk.subruns.values()), chunk.subruns

    # In [20]: and so does the metadata
    chunks = st.get_metadata(superrun_name, "peaks")["chunks"]
    print(chunks)
    assert len(chunks) == 1 and chunks[0]["n"] == 300
    assert chunks[0]["run_id"] == superrun_name and chunks[0]["subruns"] == chunk.subruns
    print("superrun tutorial: all assertions passed")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        tmp = tempfile.mkdtemp(prefix="dastrax-tutorial-")
        try:
            main(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

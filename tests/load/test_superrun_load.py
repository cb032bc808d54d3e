"""Loading superruns (SEMANTICS.md "Loading a superrun"): exact rows with time ranges and
columns, ranges cutting inside chunks, reading only what is needed, per-run defaults and
lineage checks."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest
from conftest import make_context, make_runs, stored_files
from superrun_util import (
    assert_rows,
    chunk_files,
    cut,
    expected,
    expected_chunk_table,
    read_files,
    records_rows,
    set_atimes_old,
)

import dastrax
from dastrax.core.lineage import canonical, deterministic_hash

SPEC = {"0": [(3, 10)], "1": "all", "2": [(41, 44), (46, 50)]}  # [3, 50), 7 + 10 + 7 ns


def fresh(storage_dir, **config):
    """A new context (empty caches) on ``storage_dir`` with the runs' config."""
    st = make_context(storage_dir)
    st.set_config({"bonus_area": 2, **config})
    return st


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Runs 0, 1, 2 with peaks (bonus_area 2) made, once for the module."""
    path = tmp_path_factory.mktemp("load") / "data"
    make_runs(make_context(path), bonus_area=2)
    return path


@pytest.fixture
def runs(template, storage_dir):
    """A context on a copy of the template runs, with superrun ``_s`` defined."""
    shutil.copytree(template, storage_dir, dirs_exist_ok=True)
    st = fresh(storage_dir)
    st.define_run("_s", SPEC)
    return st


# -- rows, time ranges, columns ------------------------------------------------------
@pytest.mark.parametrize("stored", [False, True], ids=["unstored", "stored"])
def test_time_range_and_columns(runs, stored):
    st = runs
    if stored:
        st.persist_superrun("_s", "peaks", chunk_target_size_mb=0.05)
        assert len(st.get_metadata("_s", "peaks")["chunks"]) > 3
    assert st.is_stored("_s", "peaks") == stored
    assert_rows(st.get_array("_s", "peaks"), expected(SPEC), area=3)

    for tr in [(0, 100), (5, 8), (8, 25), (9, 42), (12, 18), (25, 47), (43, 47), (49, 50)]:
        want = cut(expected(SPEC), [tr])
        got = st.get_array("_s", "peaks", time_range=tr)
        assert_rows(got, want, area=3)
        ds = st.get_dataset("_s", "peaks", time_range=tr)
        assert ds.sizes["peaks"] == len(want)  # known before computing
        np.testing.assert_array_equal(ds.time.values, want["time"])
    assert len(st.get_array("_s", "peaks", time_range=(11, 19))) == 0
    assert len(st.get_array("_s", "peaks", time_range=(100, 200))) == 0

    arr = st.get_array("_s", "peaks", columns=["area"])
    assert set(arr.dtype.names) == {"area", "time", "length", "dt"}
    assert_rows(arr, expected(SPEC), area=3)
    arr = st.get_array("_s", "peaks", columns=["channel"], time_range=(25, 47))
    assert set(arr.dtype.names) == {"channel", "time", "length", "dt"}
    assert_rows(arr, cut(expected(SPEC), [(25, 47)]))
    ds = st.get_dataset("_s", "peaks", columns=["data"], time_range=(8, 25))
    assert set(ds.data_vars) == {"data", "time", "length", "dt"}
    assert ds.data.shape == (len(cut(expected(SPEC), [(8, 25)])), 200)
    df = st.get_df("_s", "peaks", columns=["channel"], time_range=(8, 25))
    assert list(df.columns) == ["time", "length", "dt", "channel"]
    np.testing.assert_array_equal(df["channel"], cut(expected(SPEC), [(8, 25)])["channel"])
    with pytest.raises(dastrax.InvalidRequest, match="aera"):
        st.get_array("_s", "peaks", columns=["aera"])
    with pytest.raises(dastrax.InvalidRequest, match="ends before"):
        st.get_array("_s", "peaks", time_range=(10, 5))


def test_superrun_in_a_list_of_runs(runs):
    arr = runs.get_array(["_s", "0"], "peaks")
    want = np.concatenate([expected(SPEC), records_rows(0)])
    assert_rows(arr, want)
    n = len(expected(SPEC))
    assert list(arr["run_id"]) == ["_s"] * n + ["0"] * 100


def test_get_iter_of_an_unstored_superrun_yields_subrun_chunks(runs):
    chunks = list(runs.get_iter("_s", "peaks"))
    # run 0: its chunks [3, 4) ... [9, 10); run 1: all 10; run 2: [41, 44) and [46, 50)
    bounds = (
        [(t, t + 1, "0") for t in range(3, 10)]
        + [(t, t + 1, "1") for t in range(20, 30)]
        + [(t, t + 1, "2") for t in [41, 42, 43, 46, 47, 48, 49]]
    )
    assert [(c.start, c.end) for c in chunks] == [(s, e) for s, e, _ in bounds]
    for c, (s, e, sub) in zip(chunks, bounds):
        assert c.run_id == "_s"
        assert c.subruns == {sub: {"start": s, "end": e}}
        assert c.data_type == "peaks"
        assert len(c) == 10 and np.all(c.data["time"] == s)
    # a regular run's chunks are not superrun chunks
    assert all(c.subruns is None and c.run_id == "1" for c in runs.get_iter("1", "peaks"))


def test_get_metadata_of_an_unstored_superrun_makes_nothing(runs, storage_dir):
    runs.define_run("_new", ["0"])
    runs.set_config({"bonus_area": 5})  # peaks of the subrun not made for this lineage
    before = stored_files(storage_dir)
    with pytest.raises(dastrax.DataNotAvailable, match="_new"):
        runs.get_metadata("_new", "peaks")
    assert stored_files(storage_dir) == before


# -- reading only what is needed -----------------------------------------------------
def test_loads_read_only_the_files_they_need(runs, storage_dir):
    st = runs
    keys = {r: str(st.key_for(r, "peaks")) for r in ("0", "1", "2")}
    set_atimes_old(storage_dir)
    # the technique works: reading a file updates its access time (relatime)
    (storage_dir / keys["0"] / "zarr.json").read_bytes()
    assert read_files(storage_dir) == [f"{keys['0']}/zarr.json"]

    # columns: only the arrays of those fields (plus time and end fields)
    set_atimes_old(storage_dir)
    fresh(storage_dir).get_array("_s", "peaks", columns=["area"])
    arrays = {p.split("/")[1] for p in chunk_files(read_files(storage_dir))}
    assert arrays == {"area", "time", "length", "dt"}

    # a time range inside run 1 reads no chunk of runs 0 and 2
    set_atimes_old(storage_dir)
    fresh(storage_dir).get_array("_s", "peaks", time_range=(21, 29))
    stores = {p.split("/")[0] for p in chunk_files(read_files(storage_dir))}
    assert stores == {keys["1"]}

    # opening reads metadata only, plus time/end of the edge chunks ranges cut
    set_atimes_old(storage_dir)
    ds = fresh(storage_dir).get_dataset("_s", "peaks")
    assert ds.sizes["peaks"] == len(expected(SPEC))
    # SPEC's ranges fall on chunk edges of the stored runs: nothing to cut
    assert chunk_files(read_files(storage_dir)) == []
    set_atimes_old(storage_dir)
    ds = fresh(storage_dir).get_dataset("_s", "peaks", time_range=(5, 8))
    assert ds.sizes["peaks"] == 30
    assert chunk_files(read_files(storage_dir)) == []  # still on chunk edges

    # a stored superrun is read from its own store alone
    st.persist_superrun("_s", "peaks")
    sr_key = str(st.key_for("_s", "peaks"))
    set_atimes_old(storage_dir)
    arr = fresh(storage_dir).get_array("_s", "peaks", columns=["channel"])
    assert_rows(arr, expected(SPEC))
    read = read_files(storage_dir)
    assert {p.split("/")[0] for p in read} <= {sr_key, "runs"}, read
    assert {p.split("/")[1] for p in chunk_files(read)} == {"channel", "time", "length", "dt"}


# -- ranges cutting inside stored chunks ---------------------------------------------
CUT_CONFIG = {"chunk_ns": 4}  # Records: 10 chunks of 4 ns, rows at +0,0,0,1,1,2,2,2,3,3


@pytest.fixture
def cut_runs(st):
    st.set_config(CUT_CONFIG)
    st.make("c", "records")
    st.write_run_metadata("c", {"start": 0, "end": 40})
    return st


def test_ranges_cutting_inside_chunks(cut_runs, storage_dir):
    st = cut_runs
    rows = records_rows(0, chunk_ns=4)
    ranges = {"_c1": [(2, 6)], "_c2": [(2, 6), (9, 14), (17, 18), (39, 40)]}
    for name, rr in ranges.items():
        st.define_run(name, {"c": rr})
        want = cut(rows, rr)
        assert_rows(st.get_array(name, "records"), want)
        key = str(st.key_for("c", "records"))
        set_atimes_old(storage_dir)
        ds = fresh(storage_dir, **CUT_CONFIG).get_dataset(name, "records")
        # sizes are exact at open: the edge chunks' time/end columns were read for it
        assert sum(ds.time.data.chunks[0]) == ds.sizes["records"] == len(want)
        read = {p.split("/")[1] for p in chunk_files(read_files(storage_dir))}
        assert read <= {"time", "length", "dt"}, read
        assert all(p.startswith(key) for p in chunk_files(read_files(storage_dir)))
        np.testing.assert_array_equal(ds.time.values, want["time"])
        np.testing.assert_array_equal(ds.channel.values, want["channel"])
        np.testing.assert_array_equal(ds.subrun.values, np.zeros(len(want)))
    # _c1: (2, 6) cuts chunks [0, 4) and [4, 8): rows 2,2,2,3,3 | 4,4,4,5,5
    assert st.get_dataset("_c1", "records", chunks="stored").time.data.chunks == ((5, 5),)
    assert st.get_dataset("_c1", "records").time.data.chunks == ((10,),)

    for name, rr in ranges.items():
        st.persist_superrun(name, "records")
        assert st.is_stored(name, "records")
        want = cut(rows, rr)
        assert_rows(st.get_array(name, "records"), want)
        ds = st.get_dataset(name, "records")
        assert sum(ds.time.data.chunks[0]) == len(want)
        np.testing.assert_array_equal(ds.time.values, want["time"])
        meta = st.get_metadata(name, "records")
        assert meta["chunks"][0]["start"] == rr[0][0] and meta["chunks"][-1]["end"] == rr[-1][1]
        # and a time range cutting inside the stored superrun's chunk
        assert_rows(st.get_array(name, "records", time_range=(3, 5)), cut(want, [(3, 5)]))


def test_time_range_cutting_inside_chunks_of_an_unstored_superrun(cut_runs):
    st = cut_runs
    st.define_run("_whole", ["c"])
    rows = records_rows(0, chunk_ns=4)
    for tr in [(2, 6), (1, 39), (5, 7), (6, 7)]:
        want = cut(rows, [tr])
        assert_rows(st.get_array("_whole", "records", time_range=tr), want)
        ds = st.get_dataset("_whole", "records", time_range=tr)
        assert sum(ds.time.data.chunks[0]) == len(want)
        np.testing.assert_array_equal(ds.time.values, want["time"])


# -- per-run defaults ----------------------------------------------------------------
class Gained(dastrax.Plugin):
    """Records with a per-run ``gain``: 7 before run 1, 10 from run 1, 20 from run 2."""

    provides = "gained"
    depends_on = ("records",)
    data_kind = "records"
    __version__ = "0.1.0"
    dtype = [("time", np.int64), ("endtime", np.int64), ("gain", np.int32)]
    gain = dastrax.Option(default=7, default_per_run=[("1", 10), ("2", 20)], type=int)

    def compute(self, records, start, end):
        out = np.zeros(len(records), self.dtype)
        out["time"] = records["time"]
        out["endtime"] = dastrax.endtime(records)
        out["gain"] = self.gain
        return out


def test_per_run_defaults_load_together_but_do_not_persist(storage_dir):
    st = make_context(storage_dir, use_per_run_defaults=True)
    st.register(Gained)
    make_runs(st, targets="records")
    st.define_run("_pr", ["0", "1", "2"])
    lineages = {r: st.key_for(r, "gained").lineage["gained"][2] for r in "012"}
    assert lineages == {"0": {"gain": 7}, "1": {"gain": 10}, "2": {"gain": 20}}

    arr = st.get_array("_pr", "gained")
    want = expected({"0": "all", "1": "all", "2": "all"})
    assert_rows(arr, want)
    np.testing.assert_array_equal(arr["gain"], [7] * 100 + [10] * 100 + [20] * 100)
    ds = st.get_dataset("_pr", "gained")
    np.testing.assert_array_equal(ds.gain.values, arr["gain"])

    with pytest.raises(dastrax.LineageMismatch, match="_pr"):
        st.key_for("_pr", "gained")
    assert not st.is_stored("_pr", "gained")
    before = stored_files(storage_dir)
    with pytest.raises(dastrax.LineageMismatch, match=r"_pr.*different lineages.*gained"):
        st.persist_superrun("_pr", "gained")
    assert stored_files(storage_dir) == before
    assert not [p for p in storage_dir.iterdir() if p.name.startswith(".tmp-")]
    st.set_context_config({"write_superruns": True})
    with pytest.raises(dastrax.LineageMismatch):
        st.make("_pr", "gained")
    assert stored_files(storage_dir) == before

    # records do not depend on the option: one lineage, so they persist
    st.persist_superrun("_pr", "records")
    assert st.is_stored("_pr", "records")
    assert_rows(st.get_array("_pr", "records"), want)
    # without per-run defaults every run takes the default
    st.set_context_config({"use_per_run_defaults": False})
    assert np.all(st.get_array("_pr", "gained")["gain"] == 7)


# -- lineage checks ------------------------------------------------------------------
def test_check_lineage_against_a_tampered_store(runs, storage_dir):
    st = runs
    st.define_run("_all", ["0", "1", "2"])
    key = st.key_for("1", "peaks")
    path = storage_dir / str(key) / "zarr.json"
    doc = json.loads(path.read_text())
    lineage = doc["attributes"]["dastrax"]["lineage"]
    lineage["peaks"][2]["bonus_area"] = 1000
    path.write_text(json.dumps(doc))
    stored_hash = deterministic_hash(canonical(lineage))
    assert stored_hash != key.lineage_hash

    st = fresh(storage_dir)
    before = stored_files(storage_dir)
    for call in (st.get_array, st.get_dataset, st.get_df):
        with pytest.raises(dastrax.LineageMismatch) as err:
            call("_all", "peaks")
        msg = str(err.value)
        assert "'1'" in msg and str(key) in msg, msg
        assert stored_hash in msg and key.lineage_hash in msg, msg
    with pytest.raises(dastrax.LineageMismatch):
        list(st.get_iter("_all", "peaks"))
    with pytest.raises(dastrax.LineageMismatch):
        st.persist_superrun("_all", "peaks")
    assert stored_files(storage_dir) == before

    want = expected({"0": "all", "1": "all", "2": "all"})
    assert_rows(st.get_array("_all", "peaks", check_lineage=False), want, area=3)
    assert_rows(st.get_array("_all", "peaks", _check_lineage_per_run_id=False), want, area=3)
    ds = st.get_dataset("_all", "peaks", check_lineage=False)
    np.testing.assert_array_equal(ds.time.values, want["time"])
    # untouched runs load with the check on
    assert_rows(st.get_array("_s", "peaks", time_range=(40, 50)), cut(want, [(41, 44), (46, 50)]))


# -- a superrun of 1000 subruns ------------------------------------------------------
N_BIG = 1000


class Ticks(dastrax.Plugin):
    """A tiny source: a run is 2 rows at ``time_offset``, each 1 ns long."""

    provides = "ticks"
    depends_on = ()
    __version__ = "0.1.0"
    dtype = [("time", np.int64), ("endtime", np.int64)]
    time_offset = dastrax.Option(default=0, type=int, track=False)

    def chunk_intervals(self, run_id):
        return [(self.time_offset, self.time_offset + 1)]

    def compute(self, start, end):
        out = np.zeros(2, self.dtype)
        out["time"] = start
        out["endtime"] = start + 1
        return out


def _encode_chunk(array_meta: dict, values) -> bytes:
    """The bytes of zarr chunk 0 of an array in dastrax's default layout (DESIGN.md:
    bytes -> blosc -> crc32c), holding ``values`` then the fill value 0."""
    import google_crc32c
    from numcodecs import Blosc, blosc

    codecs = array_meta["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "blosc", "crc32c"], codecs
    cfg = codecs[1]["configuration"]
    (rows,) = array_meta["chunk_grid"]["configuration"]["chunk_shape"]
    full = np.zeros(rows, np.dtype(array_meta["data_type"]).newbyteorder("<"))
    full[: len(values)] = values
    threads, blosc.use_threads = blosc.use_threads, False  # many tiny calls: no pool
    try:
        packed = Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=Blosc.SHUFFLE).encode(full)
    finally:
        blosc.use_threads = threads
    return bytes(packed) + np.uint32(google_crc32c.value(bytes(packed))).tobytes()


def _clone_runs(st, root, n):
    """Ticks of runs "0" ... "n-1" at [10 i, 10 i + 1): run 0 made by dastrax, the others
    cloned from its store (run id, times and the chunks of ``time`` and ``endtime``
    changed), because making 1000 stores through st.make costs about a minute on this
    machine (zarr writes ~15 files a store), while this test is about opening and
    persisting them. The test checks that clones load exactly like runs st.make made."""
    st.make("0", "ticks")
    key0 = st.key_for("0", "ticks")
    src = root / str(key0)
    files = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    dirs = sorted({rel.parent for rel in files})
    array_meta = {f: json.loads((src / f / "zarr.json").read_text()) for f in ("time", "endtime")}
    group_text = (src / "zarr.json").read_text()
    for i in range(1, n):
        run, t = str(i), 10 * i
        dst = root / f"{run}-ticks-{key0.lineage_hash}"
        doc = json.loads(group_text)
        meta = doc["attributes"]["dastrax"]
        meta["run_id"] = run
        (chunk,) = meta["chunks"]
        chunk.update(run_id=run, start=t, end=t + 1, first_time=t, last_endtime=t + 1)
        chunk["stats"] = {"time": [t, t], "endtime": [t + 1, t + 1]}
        changed = {
            pathlib.Path("zarr.json"): json.dumps(doc).encode(),
            pathlib.Path("time/c/0"): _encode_chunk(array_meta["time"], [t, t]),
            pathlib.Path("endtime/c/0"): _encode_chunk(array_meta["endtime"], [t + 1, t + 1]),
        }
        assert set(changed) <= set(files)
        for rel in dirs:
            (dst / rel).mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            (dst / rel).write_bytes(changed.get(rel, data))
    for i in range(n):
        st.write_run_metadata(str(i), {"start": 10 * i, "end": 10 * i + 1})


def _ticks_context(path):
    st = make_context(path)
    st.register(Ticks)
    return st


def test_superrun_of_1000_subruns_opens_from_metadata_and_persists(storage_dir, tmp_path):
    st = _ticks_context(storage_dir)
    _clone_runs(st, storage_dir, N_BIG)
    # the clones are what dastrax makes: compare two with runs made in another directory
    check = _ticks_context(tmp_path / "check")
    for i in (7, N_BIG - 1):
        check.set_config({"time_offset": 10 * i})
        check.make(str(i), "ticks")
        assert check.key_for(str(i), "ticks") == st.key_for(str(i), "ticks")
        made, cloned = check.get_array(str(i), "ticks"), st.get_array(str(i), "ticks")
        assert made.tolist() == cloned.tolist() == [(10 * i, 10 * i + 1)] * 2
        assert (
            check.get_metadata(str(i), "ticks")["chunks"]
            == st.get_metadata(str(i), "ticks")["chunks"]
        )

    ids = [str(i) for i in range(N_BIG)]
    doc = st.define_run("_big", ids[::-1])
    assert (doc["start"], doc["end"]) == (0, 10 * (N_BIG - 1) + 1)
    assert doc["livetime"] == pytest.approx(N_BIG * 1e-9)
    want = np.zeros(2 * N_BIG, [("time", np.int64), ("endtime", np.int64)])
    want["time"] = np.repeat(10 * np.arange(N_BIG), 2)
    want["endtime"] = want["time"] + 1

    # opening reads metadata documents only: no chunk file's access time changes
    st = _ticks_context(storage_dir)
    set_atimes_old(storage_dir)
    key = str(st.key_for("500", "ticks"))
    (storage_dir / key / "time" / "c" / "0").read_bytes()  # the technique works
    assert chunk_files(read_files(storage_dir)) == [f"{key}/time/c/0"]
    set_atimes_old(storage_dir)
    ds = st.get_dataset("_big", "ticks", chunks="stored")
    assert chunk_files(read_files(storage_dir)) == []
    assert ds.sizes["ticks"] == 2 * N_BIG
    assert ds.time.data.numblocks == (N_BIG,)
    assert ds.time.data.chunks == ((2,) * N_BIG,)
    assert ds.attrs["subruns"] == ids  # ordered by start, not as given or as strings
    np.testing.assert_array_equal(ds.time[1997:].values, want["time"][1997:])  # now it reads
    assert sorted(chunk_files(read_files(storage_dir))) == [
        f"{str(st.key_for('998', 'ticks'))}/time/c/0",
        f"{str(st.key_for('999', 'ticks'))}/time/c/0",
    ]

    # persisting: the right rows, chunk table per SEMANTICS.md
    st.persist_superrun("_big", "ticks", chunk_target_size_mb=0.004)  # 250 rows of 16 B
    assert st.is_stored("_big", "ticks")
    got = st.get_array("_big", "ticks")
    assert got.tolist() == want.tolist()
    chunks = st.get_metadata("_big", "ticks")["chunks"]
    row_subrun = [str(i) for i in range(N_BIG) for _ in range(2)]
    table = expected_chunk_table(
        want["time"],
        want["endtime"],
        got.dtype.itemsize,
        0.004,
        0,
        10 * (N_BIG - 1) + 1,
        row_subrun,
        {str(i): (10 * i, 10 * i + 1) for i in range(N_BIG)},
    )
    assert len(table) == 8
    assert [{k: c[k] for k in ("start", "end", "n", "subruns")} for c in chunks] == table
    ds = st.get_dataset("_big", "ticks")
    np.testing.assert_array_equal(ds.subrun.values, np.repeat(np.arange(N_BIG), 2))


def test_loading_makes_missing_subrun_data_of_the_touched_subruns_only(st, storage_dir):
    make_runs(st, targets="records")
    st.define_run("_m", SPEC)
    assert not any(st.is_stored(r, "peaks") for r in "012")
    got = st.get_array("_m", "peaks", time_range=(20, 30))
    assert_rows(got, records_rows(20), area=1)
    assert [st.is_stored(r, "peaks") for r in "012"] == [False, True, False]
    ds = st.get_dataset("_m", "peaks")  # makes the others, before opening
    assert all(st.is_stored(r, "peaks") for r in "012")
    np.testing.assert_array_equal(ds.time.values, expected(SPEC)["time"])
    assert not [p for p in storage_dir.iterdir() if p.name.startswith(".tmp-")]

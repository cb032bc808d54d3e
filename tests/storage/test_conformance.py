"""The conformance suite: one set of tests, run against every storage frontend.

Like zarr-python's ``StoreTests``: each test goes through the public :class:`dastrax.Context`
API with the testutils plugins, on a fresh storage location of each frontend:

- ``local``: ``ZarrDirectory(tmp_path)``;
- ``memory``: ``MemoryDirectory("memory://<unique>")``;
- ``s3``: ``ZarrDirectory("s3://<bucket>/<unique>/dastrax", storage_options=...)`` on the
  session's moto server (tests/s3server.py);
- ``icechunk``: ``IcechunkRepository(tmp_path / "repo.icechunk")``;
- ``icechunk-s3``: ``IcechunkRepository("s3://<bucket>/<unique>/repo", storage_options=...)``.

Tests that only read share one seeded location per frontend (module scope, written once);
tests that write get a fresh one. Cases a frontend cannot run are skipped with the reason:

- a killed writer of ``memory://``: the data lives in the writer's process, which dies;
- damaged chunks: every frontend here exposes its bytes (files, objects), so all run.

Expected rows come from the formulas of the testutils plugins (API.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import fsspec
import numpy as np
import pytest
import s3server
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax
from dastrax.errors import CorruptData, InvalidRequest, RunMetadataNotAvailable
from dastrax.storage import IcechunkRepository
from dastrax.storage.zarr.memory import MemoryDirectory

KINDS = ["local", "memory", "s3", "icechunk", "icechunk-s3"]
PLUGINS = [Records, Peaks, PeakClassification]
#: run id -> time offset; each run spans 10 ns
OFFSETS = {"0": 0, "1": 20}
#: 2 chunks of 50 records a run (few chunks: each stored chunk read is a request to S3)
CONFIG = {"n_chunks": 2, "recs_per_chunk": 50, "chunk_ns": 5}
REPO_ROOT = Path(dastrax.__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------
# frontends
# --------------------------------------------------------------------------------------
class Where:
    """One frontend kind and where its locations go; ``fresh()`` a new empty location."""

    def __init__(self, kind: str, tmp: Path, bucket: str | None, s3_server):
        self.kind = kind
        self.tmp = tmp
        self.bucket = bucket
        self.s3_server = s3_server

    @property
    def options(self) -> dict | None:
        return self.s3_server.storage_options if self.s3_server is not None else None

    def fresh(self) -> Location:
        tag = uuid.uuid4().hex[:10]
        if self.kind == "local":
            return Location(self.kind, str(self.tmp / tag / "data"), None)
        if self.kind == "memory":
            return Location(self.kind, f"memory://conf-{tag}", None)
        if self.kind == "s3":
            return Location(self.kind, f"{self.bucket}/{tag}/dastrax", self.options)
        if self.kind == "icechunk":
            return Location(self.kind, str(self.tmp / tag / "repo.icechunk"), None)
        return Location(self.kind, f"{self.bucket}/{tag}/repo", self.options)


class Location:
    """A storage location of one frontend kind; opens frontends and contexts on it, and
    reaches its raw bytes (for damaging them and listing what is there)."""

    def __init__(self, kind: str, url: str, options: dict | None):
        self.kind, self.url, self.options = kind, url, options

    def open(self, readonly: bool = False) -> dastrax.StorageFrontend:
        if self.kind == "memory":
            return MemoryDirectory(self.url, readonly=readonly)
        if self.kind.startswith("icechunk"):
            return IcechunkRepository(self.url, storage_options=self.options, readonly=readonly)
        return dastrax.ZarrDirectory(self.url, readonly=readonly, storage_options=self.options)

    def context(self, readonly: bool = False, **config) -> dastrax.Context:
        st = dastrax.Context(storage=[self.open(readonly)], register=PLUGINS, progress=False)
        st.set_config({**CONFIG, **config})
        return st

    def spec(self) -> dict:
        return {"kind": self.kind, "url": self.url, "options": self.options}

    # raw bytes -------------------------------------------------------------------------
    def fs(self):
        if self.kind in ("s3", "icechunk-s3"):
            import s3fs

            return s3fs.S3FileSystem(skip_instance_cache=True, **self.options)
        return fsspec.filesystem("memory" if self.kind == "memory" else "file")

    def _root(self) -> str:
        if self.kind == "memory":
            return "/" + self.url.split("://", 1)[1]
        return self.url.split("://", 1)[1] if "://" in self.url else self.url

    def files(self) -> dict[str, bytes]:
        """Every stored file/object below the location, with its bytes."""
        fs, root = self.fs(), self._root()
        fs.invalidate_cache()
        if not fs.exists(root):
            return {}
        return {p: fs.cat_file(p) for p in sorted(fs.find(root))}

    def overwrite(self, path: str, data: bytes) -> None:
        self.fs().pipe_file(path, data)


@pytest.fixture(scope="module", params=KINDS)
def where(request, tmp_path_factory) -> Where:
    kind = request.param
    server = bucket = None
    if kind in ("s3", "icechunk-s3"):
        server = request.getfixturevalue("s3_server")
        bucket = f"dastrax-conf-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=s3server.REGION,
            aws_access_key_id=s3server.ACCESS_KEY,
            aws_secret_access_key=s3server.SECRET_KEY,
        ).create_bucket(Bucket=bucket)
        bucket = f"s3://{bucket}"
    return Where(kind, tmp_path_factory.mktemp(f"conf-{kind}"), bucket, server)


@pytest.fixture
def location(where) -> Location:
    """A fresh, empty location of the frontend under test."""
    return where.fresh()


@pytest.fixture
def frontend(location) -> dastrax.StorageFrontend:
    """A fresh storage frontend of each kind."""
    return location.open()


@pytest.fixture(scope="module")
def seeded(where) -> Location:
    """Runs 0 and 1 (records, peaks, peak_classification) and their run documents; shared
    by the tests that only read (or write superruns of their own names)."""
    loc = where.fresh()
    seed(loc.context())
    return loc


def seed(st: dastrax.Context, targets=("peaks", "peak_classification")) -> None:
    for run_id, offset in OFFSETS.items():
        st.set_config({"time_offset": offset})
        st.make(run_id, list(targets))
        st.write_run_metadata(run_id, {"start": offset, "end": offset + 10, "mode": f"m{run_id}"})
    st.set_config({"time_offset": 0})


# --------------------------------------------------------------------------------------
# expected rows (API.md: the testutils formulas)
# --------------------------------------------------------------------------------------
def expected(run_id: str = "0", **config) -> dict[str, np.ndarray]:
    """Columns of run ``run_id``'s records/peaks/peak_classification (API.md)."""
    config = {**CONFIG, **config}
    n_chunks, per, chunk_ns = config["n_chunks"], config["recs_per_chunk"], config["chunk_ns"]
    i, j = np.divmod(np.arange(n_chunks * per), per)
    return {
        "time": OFFSETS[run_id] + i * chunk_ns + (j * chunk_ns) // per,
        "channel": j,
        "length": np.ones(n_chunks * per),
        "area": np.ones(n_chunks * per),
        "type": 1 + j % 2,
    }


def check(arr: np.ndarray, want: dict, fields=None) -> None:
    for name in fields or [f for f in want if f in arr.dtype.names]:
        np.testing.assert_array_equal(arr[name], want[name], err_msg=name)


def both(*run_ids) -> dict[str, np.ndarray]:
    parts = [expected(r) for r in run_ids]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype.names == b.dtype.names
    assert len(a) == len(b)
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# --------------------------------------------------------------------------------------
# make, load, columns, time ranges
# --------------------------------------------------------------------------------------
def test_make_stores_and_a_new_context_finds_it(location):
    st = location.context()
    assert not st.is_stored("0", "peaks")
    st.make("0", "peaks")
    assert st.is_stored("0", "peaks") and st.is_stored("0", "records")
    again = location.context()  # a new frontend object on the same location
    assert again.is_stored("0", "peaks")
    assert not again.is_stored("0", "peak_classification")
    meta = again.get_metadata("0", "peaks")
    assert [c["n"] for c in meta["chunks"]] == [50, 50]
    assert meta["chunks"][1]["start"] == 5 and meta["chunks"][1]["end"] == 10
    check(again.get_array("0", "peaks"), expected("0"))
    assert str(again.key_for("0", "peaks")) in location.open().keys("0-peaks-")


def test_load_every_form(seeded):
    st = seeded.context()
    arr = st.get_array("0", "peaks")
    assert len(arr) == 100 and arr["data"].shape == (100, 200)
    check(arr, expected("0"))
    df = st.get_df("0", "peaks")
    assert "data" not in df.columns
    np.testing.assert_array_equal(df["time"].to_numpy(), arr["time"])
    chunks = list(st.get_iter("0", "peaks"))
    assert all(isinstance(c, dastrax.Chunk) for c in chunks)
    assert_same(np.concatenate([c.data for c in chunks]), arr)
    assert chunks[0].start == 0 and chunks[-1].end == 10
    ds = st.get_dataset("0", "peaks")
    assert ds["area"].chunks is not None  # lazy: dask-backed
    assert ds.sizes["peaks"] == 100
    np.testing.assert_array_equal(ds["time"].values, arr["time"])
    np.testing.assert_array_equal(ds["data"].values, arr["data"])
    two = st.get_array(["0", "1"], "peaks")
    check(two, both("0", "1"))
    assert list(np.unique(two["run_id"])) == ["0", "1"]


def test_columns_and_merged_targets(seeded):
    st = seeded.context()
    arr = st.get_array("1", "peaks", columns=["time", "area"])
    assert arr.dtype.names == ("time", "length", "dt", "area")  # plus the end fields
    check(arr, expected("1"))
    merged = st.get_array("1", ["peaks", "peak_classification"], columns=["time", "type"])
    assert set(merged.dtype.names) == {"time", "length", "dt", "type"}
    check(merged, expected("1"))
    full = st.get_array("1", ["peaks", "peak_classification"])
    assert {"area", "type", "data"} <= set(full.dtype.names)
    check(full, expected("1"))


def test_time_ranges(seeded):
    st = seeded.context()
    arr = st.get_array("0", "peaks", time_range=(3, 7))
    want = expected("0")
    keep = (want["time"] >= 3) & (want["time"] + 1 <= 7)
    np.testing.assert_array_equal(arr["time"], want["time"][keep])
    assert len(arr) == 40
    chunks = list(st.get_iter("1", "peaks", time_range=(25, 27)))
    assert sum(len(c.data) for c in chunks) == 20
    assert len(st.get_array("0", "peaks", time_range=(100, 200))) == 0


# --------------------------------------------------------------------------------------
# define, run documents
# --------------------------------------------------------------------------------------
def test_define_from_list_ranges_and_rows(seeded):
    st = seeded.context()
    tag = uuid.uuid4().hex[:6]
    doc = st.define_run(f"_list{tag}", ["0", "1"])
    assert doc["start"] == 0 and doc["end"] == 30
    check(st.get_array(f"_list{tag}", "peaks"), both("0", "1"))

    st.define_run(f"_rng{tag}", {"0": [(2, 4)], "1": [(25, 26)]})
    got = st.get_array(f"_rng{tag}", "peaks")
    np.testing.assert_array_equal(got["time"], np.repeat([2, 3, 25], 10))

    rows = st.get_array("1", "peaks", time_range=(21, 23))
    st.define_run(f"_rows{tag}", rows[["time", "length", "dt"]], from_run="1")
    got = st.get_array(f"_rows{tag}", "peaks")
    np.testing.assert_array_equal(got["time"], rows["time"])

    other = seeded.context()
    assert {f"_list{tag}", f"_rng{tag}", f"_rows{tag}"} <= set(other.list_runs())
    assert "sub_run_spec" in other.run_metadata(f"_rng{tag}")
    table = other.select_runs(available=["peaks"])
    row = table[table["name"] == f"_list{tag}"]
    assert len(row) == 1 and not bool(row["peaks_available"].iloc[0])
    assert bool(table[table["name"] == "0"]["peaks_available"].iloc[0])


def test_run_documents(location):
    st = location.context()
    st.write_run_metadata("7", {"start": 100, "end": 200, "mode": "kr", "tags": ["a"]})
    st.write_run_metadata("8", {"start": 300, "end": 450, "mode": "bg", "tags": ["b"]})
    other = location.context()
    assert other.list_runs() == ["7", "8"]
    doc = other.run_metadata("8")
    assert (doc["start"], doc["end"], doc["mode"]) == (300, 450, "bg")
    assert doc["livetime"] == pytest.approx(150e-9)
    assert list(other.select_runs(run_mode="kr")["name"]) == ["7"]
    assert list(other.select_runs(include_tags="b")["name"]) == ["8"]
    st.write_run_metadata("7", {"start": 100, "end": 260, "mode": "kr"})
    assert other.run_metadata("7")["end"] == 260  # replaced, seen at once
    with pytest.raises(RunMetadataNotAvailable, match="'9'"):
        other.run_metadata("9")


def test_create_run_metadata_is_exclusive(frontend):
    assert frontend.create_run_metadata("5", {"name": "5", "start": 0, "end": 1}) is True
    assert frontend.create_run_metadata("5", {"name": "5", "start": 0, "end": 2}) is False
    assert frontend.run_metadata("5")["end"] == 1
    results = []

    def race(i):
        results.append((i, frontend.create_run_metadata("6", {"start": 0, "end": i})))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, ok in results if ok]
    assert len(winners) == 1
    assert frontend.run_metadata("6")["end"] == winners[0]


def test_minimum_bias_superrun_is_stored_as_an_attachment(location):
    config = {"chunk_ns": 10_000}  # runs of 20 us; rows every 200 ns
    st = location.context(**config)
    st.make("0", "peaks")
    st.write_run_metadata("0", {"start": 0, "end": 20_000})
    k = np.arange(1200)
    windows = np.zeros(1200, [("time", np.int64), ("endtime", np.int64)])
    windows["time"] = 16 * k
    windows["endtime"] = 16 * k + 8
    st.define_run("_mb", windows, from_run="0")
    frontend = location.open()
    ref = frontend.run_metadata("_mb")["sub_run_spec"]["0"]
    assert isinstance(ref, dict) and "windows" in ref  # the spec lives in an attachment
    stored = frontend.run_attachment("_mb", ref["windows"])
    assert stored.shape == (1200, 2)
    t = expected("0", **config)["time"]
    inside = np.isin(t // 16, k) & (t % 16 + 1 <= 8)
    # on S3 only a time range is loaded: the loader reads the time columns of a stored
    # chunk once per window (1200 requests a column; about 50 s against moto)
    span = (0, 800) if "s3" in location.kind else (0, 20_000)
    got = location.context(**config).get_array("_mb", "peaks", time_range=span)
    keep = inside & (t >= span[0]) & (t + 1 <= span[1])
    assert keep.sum() > 0
    np.testing.assert_array_equal(got["time"], t[keep])


# --------------------------------------------------------------------------------------
# persist
# --------------------------------------------------------------------------------------
def test_persist_and_reload(seeded):
    st = seeded.context()
    name = f"_p{uuid.uuid4().hex[:6]}"
    st.define_run(name, ["0", "1"])
    unstored = st.get_array(name, ["peaks", "peak_classification"])
    keys = st.persist_superrun(name, ["peaks", "peak_classification"])
    assert [k.data_type for k in keys] == ["peaks", "peak_classification"]
    other = seeded.context()
    assert other.is_stored(name, "peaks") and other.is_stored(name, "peak_classification")
    assert_same(other.get_array(name, ["peaks", "peak_classification"]), unstored)
    check(unstored, both("0", "1"))
    meta = other.get_metadata(name, "peaks")
    assert sum(c["n"] for c in meta["chunks"]) == 200


def test_persist_overwrite_rechunks(seeded):
    st = seeded.context()
    name = f"_o{uuid.uuid4().hex[:6]}"
    st.define_run(name, ["0", "1"])
    st.persist_superrun(name, "peaks")
    assert len(st.get_metadata(name, "peaks")["chunks"]) == 1
    before = st.get_array(name, "peaks")
    st.persist_superrun(name, "peaks", chunk_target_size_mb=0.03, overwrite=True)
    other = seeded.context()
    chunks = other.get_metadata(name, "peaks")["chunks"]
    assert len(chunks) > 1 and sum(c["n"] for c in chunks) == 200
    assert_same(other.get_array(name, "peaks"), before)


def test_readers_during_a_persist(seeded):
    st = seeded.context()
    name = f"_r{uuid.uuid4().hex[:6]}"
    st.define_run(name, ["0", "1"])
    want = st.get_array(name, "peaks")
    check(want, both("0", "1"))
    errors = []

    def persist():
        try:
            seeded.context().persist_superrun(name, "peaks", chunk_target_size_mb=0.02)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    writer = threading.Thread(target=persist)
    writer.start()
    reader = seeded.context()
    loads = 0
    while writer.is_alive() or loads < 2:
        assert_same(reader.get_array(name, "peaks"), want)
        loads += 1
    writer.join()
    assert not errors, errors
    assert reader.is_stored(name, "peaks")
    assert_same(reader.get_array(name, "peaks"), want)


# --------------------------------------------------------------------------------------
# a killed writer
# --------------------------------------------------------------------------------------
KILLED = """
import json, os, sys, time
spec = json.loads(sys.argv[1])
import dastrax
from dastrax import testutils
from dastrax.storage import IcechunkRepository

def hold(*args, **kwargs):
    with open(spec["signal"] + ".part", "w") as f:
        f.write(str(os.getpid()))
    os.replace(spec["signal"] + ".part", spec["signal"])
    while True:
        time.sleep(1)

if spec["action"] == "make":
    original = testutils.Peaks.compute

    def compute(self, *args, start, end, **kwargs):
        if start == 5:
            hold()
        return original(self, *args, start=start, end=end, **kwargs)

    testutils.Peaks.compute = compute
    frontend = (IcechunkRepository(spec["url"], storage_options=spec["options"])
                if spec["kind"].startswith("icechunk")
                else dastrax.ZarrDirectory(spec["url"], storage_options=spec["options"]))
else:  # persist: every row written, killed at the commit
    from dastrax.storage.icechunk import IcechunkWriter
    from dastrax.storage.zarr.writer import ZarrGroupWriter
    ZarrGroupWriter.commit = ZarrGroupWriter.prepare = hold  # (a persist prepares, then
    IcechunkWriter.commit = IcechunkWriter.prepare = hold  # commits all its groups at once)
    frontend = (IcechunkRepository(spec["url"], storage_options=spec["options"])
                if spec["kind"].startswith("icechunk")
                else dastrax.ZarrDirectory(spec["url"], storage_options=spec["options"]))
st = dastrax.Context(storage=[frontend], progress=False,
                     register=[testutils.Records, testutils.Peaks, testutils.PeakClassification])
st.set_config(spec["config"])
if spec["action"] == "make":
    st.make("0", "peaks")
else:
    st.persist_superrun("_sr", "peaks", chunk_target_size_mb=0.03)
print("finished")
"""


@pytest.mark.parametrize("action", ["make", "persist"])
def test_a_killed_writer_leaves_nothing_stored(location, action, tmp_path):
    if location.kind == "memory":
        pytest.skip("memory:// data lives in the writer's process, which a kill ends")
    if action == "persist":
        st = location.context()
        seed(st, ["peaks"])
        st.define_run("_sr", ["0", "1"])
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    signal_file = tmp_path / "held"
    spec = {**location.spec(), "action": action, "signal": str(signal_file), "config": CONFIG}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"writer exited ({proc.returncode}):\n{out}\n{err[-3000:]}")
            assert time.monotonic() < deadline, "the writer never reached its hold point"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    st = location.context()
    run, target = ("0", "peaks") if action == "make" else ("_sr", "peaks")
    assert not st.is_stored(run, target)
    stored_keys = location.open().keys(f"{run}-{target}-")
    assert str(st.key_for(run, target)) not in stored_keys
    if action == "persist":
        check(st.get_array("_sr", "peaks"), both("0", "1"))  # from the subruns
        st.persist_superrun("_sr", "peaks", chunk_target_size_mb=0.03)
        assert location.context().is_stored("_sr", "peaks")
        check(location.context().get_array("_sr", "peaks"), both("0", "1"))
    else:
        st.make("0", "peaks")
        again = location.context()
        assert again.is_stored("0", "peaks")
        check(again.get_array("0", "peaks"), expected("0"))


# --------------------------------------------------------------------------------------
# damaged chunks
# --------------------------------------------------------------------------------------
def test_a_damaged_chunk_is_corrupt_data_naming_it(location):
    st = location.context()
    st.make("0", "peaks")
    key = str(st.key_for("0", "peaks"))
    files = location.files()
    if location.kind.startswith("icechunk"):
        # chunk objects are content-addressed: damage every one (small ones are inlined
        # in manifests, so read a wide column)
        targets = [p for p in files if "/chunks/" in p]
        column, named = "data", f"{key}/data"
    else:
        targets = [p for p in files if p.endswith(f"{key}/data/c/0/0")]
        column, named = "data", f"{key}/data/c/0/0"
    assert targets, sorted(files)[:20]
    rng = np.random.default_rng(1)
    for path in targets:
        location.overwrite(path, rng.bytes(len(files[path])))
    with pytest.raises(CorruptData) as info:
        location.context().get_array("0", "peaks", columns=["time", column])
    assert named in str(info.value)
    # the undamaged column still reads
    if not location.kind.startswith("icechunk"):
        check(location.context().get_array("0", "peaks", columns=["time"]), expected("0"))


# --------------------------------------------------------------------------------------
# a read-only frontend
# --------------------------------------------------------------------------------------
def test_a_read_only_frontend_refuses_every_write(location):
    st = location.context()
    seed(st, ["peaks"])
    before = location.files()
    ro = location.context(readonly=True)
    frontend = ro.storage[0]
    key = str(ro.key_for("0", "peaks"))
    check(ro.get_array("0", "peaks"), expected("0"))  # reads work
    refused = {
        "make": lambda: ro.make("0", "peak_classification"),
        "load making": lambda: ro.get_array("0", "peak_classification"),
        "write_run_metadata": lambda: ro.write_run_metadata("3", {"start": 0, "end": 1}),
        "define_run": lambda: ro.define_run("_ro", ["0", "1"]),
        "frontend.delete": lambda: frontend.delete(key),
        "frontend.writer": lambda: frontend.writer("9-peaks-abcdefghij", np.dtype("i8")),
        "frontend.write_run_metadata": lambda: frontend.write_run_metadata("3", {}),
        "frontend.create_run_metadata": lambda: frontend.create_run_metadata("3", {}),
        "frontend.write_run_attachment": lambda: frontend.write_run_attachment(
            "0", "w", np.zeros(3)
        ),
        "frontend.delete_run_metadata": lambda: frontend.delete_run_metadata("0"),
    }
    for what, call in refused.items():
        with pytest.raises(InvalidRequest, match="read-only|writable"):
            call()
            pytest.fail(f"{what} was not refused")
    assert location.files() == before, "a read-only frontend wrote something"
    st.define_run("_sr", ["0", "1"])
    before = location.files()
    with pytest.raises(InvalidRequest):
        ro.persist_superrun("_sr", "peaks")
    assert location.files() == before, "a read-only frontend wrote something"
    assert ro.is_stored("0", "peaks") and not ro.is_stored("0", "peak_classification")

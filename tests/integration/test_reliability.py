"""Hostile inputs of issue 13 at the level of the modules that validate them, and through the
public API where it routes there: schedulers (item 2), times (item 5), run id lengths (item
6), compressors (item 7). Run documents (item 4): tests/runs/test_run_documents.py.
"""

from __future__ import annotations

import datetime as dt
import fractions
import socket
import threading

import dask
import numpy as np
import pandas as pd
import pytest
from conftest import make_context, make_runs, stored_files
from dastrax.testutils import Peaks

import dastrax
from dastrax.core import times
from dastrax.core.names import MAX_RUN_ID_LENGTH
from dastrax.core.scheduling import Scheduler, validate_scheduler
from dastrax.errors import (
    ConfigError,
    DastraxError,
    InvalidRequest,
    InvalidRunName,
    SuperrunDefinitionError,
)
from dastrax.storage.codecs import DEFAULT_COMPRESSOR, make_codecs, normalize_compressor

# -- times (item 5) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, ns",
    [
        (4, 4),
        (np.int64(4), 4),
        (np.uint16(4), 4),
        (4.0, 4),
        (np.float32(4.0), 4),
        (np.float64(-3.0), -3),
        (fractions.Fraction(8, 2), 4),
        (dt.datetime(1970, 1, 1, 0, 0, 1), 1_000_000_000),
        (dt.datetime(1970, 1, 1, 1, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), 10**9),
        (pd.Timestamp(5, unit="ns"), 5),
        (np.datetime64(7, "ns"), 7),
    ],
)
def test_to_ns_accepts(value, ns):
    assert times.to_ns(value) == ns
    assert type(times.to_ns(value)) is int


@pytest.mark.parametrize(
    "value, named",
    [
        (1.5, "whole"),
        (np.float64(0.25), "whole"),
        (fractions.Fraction(3, 2), "whole"),
        (float("inf"), "finite"),
        (-np.inf, "finite"),
        (float("nan"), "finite"),
        (True, "boolean"),
        (np.bool_(False), "boolean"),
        ("09", "'09'"),
        ("2026-01-01", "str"),  # ISO strings only in run documents
        ({"$date": 1}, "dict"),  # bson only in run documents
        (2**63, "int64"),
        (1e30, "int64"),
        (np.datetime64("NaT"), "NaT"),
        (pd.NaT, "NaT"),
        (dt.date(2026, 1, 1), "date"),
        (None, "None"),
        ([1], "list"),
    ],
)
def test_to_ns_refuses_with_the_given_error_naming_what(value, named):
    with pytest.raises(InvalidRequest, match="my time") as err:
        times.to_ns(value, "my time")
    assert named in str(err.value)
    with pytest.raises(SuperrunDefinitionError):
        times.to_ns(value, "t", SuperrunDefinitionError)


def test_to_ns_document_forms():
    assert times.to_ns({"$date": 1000}, document=True) == 10**9
    assert times.to_ns({"$date": "1970-01-01T00:00:01Z"}, document=True) == 10**9
    assert times.to_ns("1970-01-01T00:00:01", document=True) == 10**9  # naive: UTC
    for bad in ("soon", "09x", {"$date": 1.5}, {"$date": None}, {"$date": 1, "x": 2}):
        with pytest.raises(InvalidRequest):
            times.to_ns(bad, document=True)


def test_to_ns_array():
    assert times.to_ns_array(np.array([1.0, 2.0])).tolist() == [1, 2]
    assert times.to_ns_array(np.array([3], np.uint8)).dtype == np.int64
    for bad, named in (([1.0, np.nan], "position 1"), ([np.inf], "position 0"), ([0.5], "0.5")):
        with pytest.raises(InvalidRequest, match=named):
            times.to_ns_array(np.array(bad), "time of rows")
    with pytest.raises(InvalidRequest, match="NaT"):
        times.to_ns_array(np.array(["NaT"], "datetime64[ns]"))


@pytest.mark.parametrize(
    "value", ["09", (1.5, 4), (0, float("inf")), (5, 4), (1, 2, 3), 7, None, {"a": 1}, ("0", "9")]
)
def test_time_range_refused(value):
    with pytest.raises(InvalidRequest, match="time_range"):
        times.time_range(value)


def test_time_range_accepted():
    assert times.time_range((0, 4.0)) == (0, 4)
    assert times.time_range(np.array([2, 2])) == (2, 2)
    assert times.time_range([np.int32(1), np.float64(9)]) == (1, 9)


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), True, "10", None])
def test_chunk_size_refused(value):
    with pytest.raises(InvalidRequest, match="chunk_target_size_mb"):
        times.chunk_size_mb(value)


def test_chunk_size_accepted():
    assert times.chunk_size_mb(np.float64(2.5)) == 2.5 and times.chunk_size_mb(np.int64(3)) == 3


def test_runs_to_ns_still_importable():
    from dastrax.runs.documents import to_ns

    assert to_ns({"$date": 1}) == 1_000_000
    with pytest.raises(InvalidRequest):
        to_ns(1.5)


@pytest.fixture
def three_runs(st):
    return st, make_runs(st)  # runs 0, 1, 2 at [0, 10), [20, 30), [40, 50)


@pytest.mark.parametrize(
    "ranges, named",
    [
        ([(1.5, 4)], "1.5"),
        ([(1, float("inf"))], "finite"),
        ([(float("nan"), 4)], "finite"),
        ([("1", 4)], "'1'"),
        ([(True, 4)], "boolean"),
        (["09"], "pairs"),
        ([(1, 2, 3)], "pairs"),
    ],
)
def test_define_run_refuses_bad_times(three_runs, storage_dir, ranges, named):
    st, _ = three_runs
    before = stored_files(storage_dir)
    with pytest.raises(SuperrunDefinitionError, match=named):
        st.define_run("_bad", {"0": ranges})
    assert stored_files(storage_dir) == before


def test_define_run_keeps_integral_floats_and_numpy_times(three_runs):
    st, _ = three_runs
    doc = st.define_run("_ok", {"0": [(np.float64(2.0), np.int32(4))], "1": [(22.0, 24)]})
    assert doc["sub_run_spec"] == {"0": [[2, 4]], "1": [[22, 24]]}
    rows = st.get_array("_ok", "peaks")
    assert rows["time"].min() >= 2 and rows["time"].max() < 24


@pytest.mark.parametrize("value", [(1.5, 4), "09", (0, float("inf"))])
def test_get_array_refuses_bad_time_range(three_runs, value):
    st, _ = three_runs
    with pytest.raises(InvalidRequest, match="time_range"):
        st.get_array("0", "peaks", time_range=value)


def test_infinite_chunk_size_refused(st):
    with pytest.raises(InvalidRequest, match="finite"):
        st.set_context_config({"chunk_target_size_mb": float("inf")})


# -- run id length (item 6) ----------------------------------------------------------------


def test_longest_run_id_makes_and_loads(st, storage_dir):
    run_id = "r" * MAX_RUN_ID_LENGTH
    st.set_config({"n_chunks": 2})
    st.make(run_id, "peak_classification")
    st.write_run_metadata(run_id, {"start": 0, "end": 2})
    assert len(st.get_array(run_id, "peak_classification")) == 20
    assert st.run_metadata(run_id)["name"] == run_id
    name = "_" + "s" * (MAX_RUN_ID_LENGTH - 1)
    st.define_run(name, [run_id])
    st.persist_superrun(name, "peak_classification")
    assert st.is_stored(name, "peak_classification")


@pytest.mark.parametrize("length", [MAX_RUN_ID_LENGTH + 1, 300, 5000])
def test_too_long_run_ids_are_refused_everywhere(st, storage_dir, length):
    long_id = "1" * length
    calls = [
        lambda: st.make(long_id, "peaks"),
        lambda: st.get_array(long_id, "peaks"),
        lambda: st.is_stored(long_id, "peaks"),
        lambda: st.write_run_metadata(long_id, {"start": 0, "end": 1}),
        lambda: st.run_metadata(long_id),
        lambda: st.define_run("_" + long_id, ["0"]),
        lambda: dastrax.ZarrDirectory(str(storage_dir)).run_metadata(long_id),
    ]
    for call in calls:
        with pytest.raises(InvalidRunName, match=str(MAX_RUN_ID_LENGTH)):
            call()
    assert stored_files(storage_dir) == [] if storage_dir.exists() else True


# -- compressors (item 7) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, named",
    [
        ({"name": "blosc", "cname": "lz5"}, "'cname'"),
        ("blosc-lz5", "'cname'"),
        ({"clevel": 12}, "'clevel'"),
        ({"clevel": "high"}, "'clevel'"),
        ({"clevel": 2.5}, "'clevel'"),
        ({"clevel": True}, "'clevel'"),
        ({"shuffle": "yes"}, "'shuffle'"),
        ({"shuffle": 1}, "'shuffle'"),
        ({"cname": "lz4", "level": 3}, "'level'"),  # zstd's key on blosc
        ({"name": "zstd", "level": 99}, "'level'"),
        ({"name": "zstd", "level": "max"}, "'level'"),
        ({"name": "zstd", "clevel": 3}, "'clevel'"),
        ({"name": "none", "level": 1}, "'level'"),
        ({"name": "lzma"}, "'lzma'"),
        ("zstd-9", "zstd-9"),
        (3, "3"),
    ],
)
def test_bad_compressor_refused_when_set(st, storage_dir, spec, named):
    with pytest.raises(InvalidRequest, match=named) as err:
        st.set_context_config({"compressor": spec})
    assert "allowed" in str(err.value) or "use" in str(err.value)
    with pytest.raises(InvalidRequest):
        normalize_compressor(spec)
    st.make("0", "records")  # the context kept its good compressor
    assert st.is_stored("0", "records")


def test_good_compressors_unchanged():
    assert normalize_compressor(None) == DEFAULT_COMPRESSOR
    assert normalize_compressor("blosc-zstd") == {**DEFAULT_COMPRESSOR, "cname": "zstd"}
    assert normalize_compressor({"name": "zstd"}) == {"name": "zstd"}
    assert normalize_compressor({"clevel": np.int64(3)})["clevel"] == 3
    blosc, crc = make_codecs(DEFAULT_COMPRESSOR)
    got = (getattr(blosc.cname, "value", blosc.cname), blosc.clevel)
    assert got == ("lz4", 5) and getattr(blosc.shuffle, "value", blosc.shuffle) == "shuffle"
    assert type(crc).__name__ == "Crc32cCodec"
    assert [type(c).__name__ for c in make_codecs("zstd")] == ["ZstdCodec", "Crc32cCodec"]
    assert [type(c).__name__ for c in make_codecs("none")] == ["Crc32cCodec"]


@pytest.mark.parametrize("spec", ["blosc-zstd", {"name": "zstd", "level": 1}, "none"])
def test_good_compressor_makes_data(storage_dir, spec):
    st = make_context(storage_dir, compressor=spec)
    st.set_config({"n_chunks": 2})
    st.make("0", "peaks")
    assert len(st.get_array("0", "peaks")) == 20


# -- schedulers (item 2) -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_default_client() -> bool:
    import distributed

    try:
        distributed.default_client()
    except ValueError:
        return True
    return False


@pytest.mark.parametrize(
    "spec",
    ["no_such_scheduler", "tcp://", "threds", "local cluster", "host:port", "", 3, ["threads"]],
)
def test_unknown_scheduler_is_a_config_error_naming_it(spec):
    with pytest.raises(ConfigError, match="local-cluster") as err:
        Scheduler(spec)
    assert repr(spec) in str(err.value)


@pytest.mark.parametrize(
    "spec",
    ["threads", "sync", "synchronous", "processes", "local-cluster", "auto", None,
     "tcp://10.0.0.1:8786", "scheduler.example.org:8786", "inproc://10.0.0.1/123/1",
     "tls://host:8786", "[::1]:8786"],
)  # fmt: skip
def test_known_scheduler_specs(spec):
    assert validate_scheduler(spec) == (spec or "auto")


def test_no_such_scheduler_through_the_context_leaves_no_client(storage_dir):
    st = make_context(storage_dir)
    with pytest.raises(ConfigError, match="no_such_scheduler"):
        st.set_context_config({"scheduler": "no_such_scheduler"})
    with pytest.raises(ConfigError, match="no_such_scheduler"):
        make_context(storage_dir, scheduler="no_such_scheduler")
    assert not storage_dir.exists() or stored_files(storage_dir) == []
    fresh = make_context(storage_dir)
    assert fresh.client is None and "threads" in repr(fresh._scheduler)
    fresh.make("0", "records")
    assert fresh.is_stored("0", "records")


def test_unreachable_address_raises_naming_it_and_leaves_no_default_client(storage_dir):
    import distributed  # noqa: F401 - before setting its config (else the set drops it)

    address = f"tcp://127.0.0.1:{_free_port()}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ConfigError, match=address):
            Scheduler(address)
        st = make_context(storage_dir, scheduler=address)
        with pytest.raises(DastraxError, match=address):
            st.make("0", "records")
    assert _no_default_client()
    assert dask.config.get("scheduler", None) is None
    threaded = Scheduler("threads")
    assert threaded.client is None and repr(threaded) == "<Scheduler threads>"
    assert Scheduler().client is None and threaded.dashboard_link is None


def test_failed_start_that_registered_a_client_is_cleaned_up():
    """distributed registers a client as the default before it connects; a half-built one
    (here from an address distributed itself refuses) must not stay behind."""
    sched = Scheduler.__new__(Scheduler)
    sched._owned = None
    with pytest.raises(ConfigError, match="bad_address"):
        sched._start_client("bad_address", None)  # past validation: distributed refuses it
    assert _no_default_client()
    assert dask.config.get("scheduler", None) is None


class RecordingPeaks(Peaks):
    """Peaks that record the thread each chunk is computed in."""

    threads: list[int] = []

    def compute(self, records, start, end):
        RecordingPeaks.threads.append(threading.get_ident())
        return super().compute(records, start, end)


def _threads_used(storage_dir, run_id, **context_config):
    st = make_context(storage_dir, **context_config)
    st.register(RecordingPeaks)
    st.set_config({"n_chunks": 4})
    RecordingPeaks.threads = []
    st.make(run_id, "peaks")
    return set(RecordingPeaks.threads)


def test_auto_follows_dask_config_sync(storage_dir):
    main = threading.get_ident()
    with dask.config.set(scheduler="sync"):
        assert _threads_used(storage_dir, "0", scheduler=None) == {main}
    assert main not in _threads_used(storage_dir, "1", scheduler=None)  # threads again


def test_auto_order_at_module_level():
    s = Scheduler()
    assert s.scheduler == "auto" and s.client is None and s.in_process
    with dask.config.set(scheduler="processes"):
        assert not s.in_process and repr(s) == "<Scheduler processes>"
    with dask.config.set(scheduler="single-threaded"):
        ident = s.compute(dask.delayed(threading.get_ident)())[0]
        assert ident == threading.get_ident()
    with dask.config.set(scheduler="nonsense"), pytest.raises(ConfigError, match="nonsense"):
        s.compute(dask.delayed(int)())
    explicit = Scheduler("threads")
    with dask.config.set(scheduler="sync"):  # an explicit name wins over dask's config
        assert explicit.compute(dask.delayed(threading.get_ident)())[0] != threading.get_ident()


def test_auto_uses_an_active_default_client_and_prints_dashboard(capsys):
    import distributed

    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster) as client:
            auto = Scheduler()
            assert auto.client is client and not auto.in_process
            assert auto.dashboard_link == client.dashboard_link
            assert Scheduler("threads").client is None
            from_address = Scheduler(cluster.scheduler_address)
            assert from_address.compute(dask.delayed(sum)([1, 2]))[0] == 3
            assert from_address.dashboard_link
            from_address.close()
            assert client.status == "running"  # closing another scheduler's client: not ours
        assert "dastrax: dashboard at http" in capsys.readouterr().err
    assert _no_default_client()
    assert Scheduler().client is None

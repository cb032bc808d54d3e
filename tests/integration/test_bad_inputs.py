"""Every bad input raises its own error class, and writes nothing.

One table: each row is a call on a context over a real storage directory, the error it
must raise, a pattern its message must match, and — for every row — a check that the
storage directory holds exactly the same files (names, sizes, mtimes) afterwards.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_context

import dastrax
from dastrax.errors import (
    ConfigError,
    DataNotAvailable,
    InvalidRequest,
    InvalidRunName,
    PluginError,
    RunMetadataNotAvailable,
    SuperrunDefinitionError,
)


class WrongDtype(dastrax.Plugin):
    """Declares an endtime field but returns rows without it."""

    provides = "wrong"
    depends_on = ("records",)
    dtype = [("time", np.int64), ("endtime", np.int64)]

    def compute(self, records, start, end):
        return np.zeros(len(records), [("time", np.int64)])


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Runs 0, 1, 2 at [0, 10), [20, 30), [40, 50) with records and peaks and run
    documents; records of run 3 without a run document; superruns _sr = 0 + 1, _a = 2 and
    _b = _a."""
    root = tmp_path_factory.mktemp("bad") / "data"
    st = make_context(root)
    for i, run_id in enumerate(["0", "1", "2", "3"]):
        st.set_config({"time_offset": 20 * i})
        st.make(run_id, "peaks" if run_id != "3" else "records")
        if run_id != "3":
            st.write_run_metadata(run_id, {"start": 20 * i, "end": 20 * i + 10})
    st.define_run("_sr", ["0", "1"])
    st.define_run("_a", ["2"])
    st.define_run("_b", ["_a"])
    return root


def files(root) -> dict:
    """Every file below ``root`` with its size and mtime, and every folder."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else ()
        for p in root.rglob("*")
    }


EVENTS = np.zeros(2, [("time", np.int64), ("endtime", np.int64)])
EVENTS["time"], EVENTS["endtime"] = [1, 5], [3, 7]
NO_TIME = np.zeros(2, [("endtime", np.int64), ("run_id", "U1")])

CASES = [
    # (id, call, error class, message pattern)
    ("superrun name without _", lambda st: st.define_run("kr", ["0"]), InvalidRunName,
     r"superrun names must start with '_': got 'kr' \(try '_kr'\)"),
    ("superrun name with -", lambda st: st.define_run("_kr-1", ["0"]), InvalidRunName, "'_kr-1'"),
    ("superrun name with /", lambda st: st.define_run("_a/b", ["0"]), InvalidRunName, "'_a/b'"),
    ("superrun name _ alone", lambda st: st.define_run("_", ["0"]), InvalidRunName, "'_'"),
    ("run id ..", lambda st: st.get_array("..", "peaks"), InvalidRunName, r"'\.\.'"),
    ("run id ../0", lambda st: st.make("../0", "records"), InvalidRunName, r"'\.\./0'"),
    ("run id with /", lambda st: st.get_metadata("a/b", "peaks"), InvalidRunName, "'a/b'"),
    ("run id with -", lambda st: st.write_run_metadata("1-2", {"start": 0, "end": 1}),
     InvalidRunName, "'1-2'"),
    ("empty run id", lambda st: st.get_array("", "peaks"), InvalidRunName, "empty"),
    ("run id with a space", lambda st: st.is_stored("a b", "peaks"), InvalidRunName, "'a b'"),
    ("not a string", lambda st: st.get_array(["0", 1.5], "peaks"), InvalidRunName, "1.5"),
    ("write_run_metadata of a _ id", lambda st: st.write_run_metadata("_x", {"start": 0}),
     InvalidRunName, "'_x' starts with '_'.*define_run"),
    ("subrun id with /", lambda st: st.define_run("_x", ["0", "../1"]), InvalidRunName,
     r"'\.\./1'"),
    ("from_run with /", lambda st: st.define_run("_x", EVENTS, from_run="a/b"), InvalidRunName,
     "'a/b'"),
    ("unknown data type", lambda st: st.get_array("0", "hits"), DataNotAvailable, "'hits'"),
    ("unknown data type to make", lambda st: st.make("0", "hits"), DataNotAvailable, "'hits'"),
    ("unknown run in define_run", lambda st: st.define_run("_x", ["0", "3"]),
     RunMetadataNotAvailable, "'3'"),
    ("missing run in define_run", lambda st: st.define_run("_x", {"9": [(0, 1)]}),
     RunMetadataNotAvailable, "'9'"),
    ("undefined superrun", lambda st: st.get_array("_x", "peaks"), RunMetadataNotAvailable,
     "superrun _x is not defined"),
    ("undefined superrun to make", lambda st: st.make("_x", "peaks"), RunMetadataNotAvailable,
     "_x"),
    ("undefined superrun to persist", lambda st: st.persist_superrun("_x", "peaks"),
     RunMetadataNotAvailable, "_x"),
    ("overlapping ranges", lambda st: st.define_run("_x", {"0": [(0, 5), (4, 8)]}),
     SuperrunDefinitionError, r"\(0, 5\) and \(4, 8\) overlap"),
    ("overlapping subruns", lambda st: st.define_run("_x", ["1", "_sr"]),
     SuperrunDefinitionError, "'1'"),
    ("range outside its run", lambda st: st.define_run("_x", {"0": [(5, 15)]}),
     SuperrunDefinitionError, r"\(5, 15\).*'0'.*outside"),
    ("range ending before it starts", lambda st: st.define_run("_x", {"0": [(5, 2)]}),
     SuperrunDefinitionError, r"\(5, 2\)"),
    ("cycle", lambda st: st.define_run("_a", ["_b"], overwrite=True), SuperrunDefinitionError,
     "_a.*_b.*_a"),
    ("redefinition without overwrite", lambda st: st.define_run("_sr", ["0"]),
     SuperrunDefinitionError, "'_sr' is already defined.*overwrite=True"),
    ("empty superrun", lambda st: st.define_run("_x", []), SuperrunDefinitionError,
     "at least one"),
    ("events without run_id or from_run", lambda st: st.define_run("_x", EVENTS),
     SuperrunDefinitionError, "from_run"),
    ("events in a DataFrame without run_id", lambda st: st.define_run("_x", pd.DataFrame(EVENTS)),
     SuperrunDefinitionError, "from_run"),
    ("record array without time", lambda st: st.define_run("_x", NO_TIME),
     SuperrunDefinitionError, "'time'"),
    ("targets of different kinds", lambda st: st.get_array("0", ["records", "peaks"]),
     InvalidRequest, "records.*peaks"),
    ("persist targets of different kinds",
     lambda st: st.persist_superrun("_sr", ["records", "peaks"]), InvalidRequest, "records.*peaks"),
    ("time_range ending before it starts", lambda st: st.get_array("0", "peaks", time_range=(9, 2)),
     InvalidRequest, r"\(9, 2\) ends before it starts"),
    ("time_range not a pair", lambda st: st.get_dataset("0", "peaks", time_range=5),
     InvalidRequest, "time_range"),
    ("negative chunk_target_size_mb",
     lambda st: st.persist_superrun("_sr", "peaks", chunk_target_size_mb=-1), InvalidRequest,
     "chunk_target_size_mb.*-1"),
    ("zero chunk_target_size_mb", lambda st: st.set_context_config({"chunk_target_size_mb": 0}),
     InvalidRequest, "chunk_target_size_mb.*0"),
    ("wrong plugin dtype", lambda st: st.make("0", "wrong"), PluginError,
     r"WrongDtype returned the wrong dtype on run '0', chunk \d+ \["),
    ("unknown columns", lambda st: st.get_array("0", "peaks", columns=["aera"]),
     InvalidRequest, "'aera'"),
    ("unknown columns of data not made yet",
     lambda st: st.get_array("2", "peak_classification", columns=["tpye"]), InvalidRequest,
     "'tpye'"),
    ("unknown context option", lambda st: st.set_context_config({"write_superrun": True}),
     ConfigError, "write_superrun"),
    ("unknown compressor", lambda st: st.set_context_config({"compressor": "gzip9"}),
     InvalidRequest, "gzip9"),
]  # fmt: skip


def test_the_table_is_long_enough():
    assert len(CASES) >= 15
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(storage, call, error, match):
    st = make_context(storage)
    st.register(WrongDtype)
    before = files(storage)
    with pytest.raises(error, match=match) as info:
        call(st)
    assert isinstance(info.value, dastrax.DastraxError)
    assert files(storage) == before

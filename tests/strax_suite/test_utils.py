"""strax 2.2.3's tests/test_utils.py: the tests of ``strax.apply_selection`` that
dastrax's loads claim (selection strings, time ranges, kept columns), run through
``get_array`` on stored data instead of on an array (dastrax has no public
``apply_selection``), with a few fixed data sets instead of hypothesis' draws."""

from __future__ import annotations

import numpy as np
import pytest

import dastrax
from dastrax import Option

DTYPE = [("time", np.int64), ("endtime", np.int64), ("data", np.float64)]


class Dummy(dastrax.Plugin):
    """get_dummy_data: ``n`` rows at random times in [0, max_time], ``dt`` long."""

    provides = "dummy"
    depends_on = ()
    dtype = DTYPE
    n = Option(default=10, type=int)
    dt = Option(default=3, type=int)
    max_time = Option(default=20, type=int)
    seed = Option(default=0, type=int)

    def chunk_intervals(self, run_id):
        return [(0, self.config["max_time"] + self.config["dt"] + 1)]

    def compute(self):
        rng = np.random.default_rng(self.config["seed"])
        d = np.zeros(self.config["n"], self.dtype)
        d["time"] = np.sort(rng.integers(0, self.config["max_time"] + 1, len(d)))
        d["endtime"] = d["time"] + self.config["dt"]
        d["data"] = rng.random(len(d))
        return d


@pytest.fixture(
    scope="module", params=[(0, 10, 3), (1, 1, 1), (2, 7, 10)], ids=["seed0", "one", "long"]
)
def data(request, tmp_path_factory):
    seed, n, dt = request.param
    st = dastrax.Context(
        storage=str(tmp_path_factory.mktemp("utils")),
        register=[Dummy],
        config=dict(seed=seed, n=n, dt=dt),
        progress=False,
    )
    return st, st.get_array("0", "dummy")


@pytest.mark.parametrize(("second_time", "second_dt"), [(0, 5), (4, 10), (15, 1)])
def test_time_selection(data, second_time, second_dt):
    """test_time_selection, 'fully_contained': rows inside the time range (strax's
    'touching' selection has no dastrax counterpart)."""
    st, d = data
    selected = st.get_array("0", "dummy", time_range=(second_time, second_time + second_dt))
    inside = (d["time"] >= second_time) & (d["endtime"] <= second_time + second_dt)
    assert np.all(selected == d[inside])


def test_selection_str(data):
    """test_selection_str: a list of selection strings, AND-ed."""
    st, d = data
    mean_data, max_data = np.mean(d["data"]), np.max(d["data"])
    mask = (d["data"] > mean_data) & (d["data"] < max_data)
    selected = st.get_array(
        "0", "dummy", selection_str=[f"data > {mean_data}", f"data < {max_data}"]
    )
    assert np.all(selected == d[mask])


def test_keep_drop_columns(data):
    """test_keep_drop_columns (keep_columns; strax's drop_columns has no dastrax
    counterpart). dastrax keeps time and the end fields with any columns (SEMANTICS.md,
    "Data kinds and columns")."""
    st, d = data
    columns = list(d.dtype.names)
    selected = st.get_array("0", "dummy", keep_columns=columns[2:])
    assert columns == list(d.dtype.names)
    for c in columns[2:]:
        assert np.all(selected[c] == d[c])
    assert set(selected.dtype.names) == set(columns)  # time, endtime kept as well
    only = st.get_array("0", "dummy", keep_columns=["endtime"])
    assert "data" not in only.dtype.names

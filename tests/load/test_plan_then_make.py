"""Making missing data is a step of the façade (plan → make what is missing → plan
again), not a callback from the plan into the context: planning alone never writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import make_context, make_runs

from dastrax.load.resolver import MissingData


def _files(root) -> list[str]:
    return sorted(os.path.join(b, f) for b, _d, fs in os.walk(root) for f in fs)


def test_a_plan_names_what_is_missing_and_writes_nothing(storage_dir):
    st = make_context(storage_dir)
    make_runs(st, targets="records")
    st.define_run("_s", ["0", "1", "2"])
    before = _files(storage_dir)
    with pytest.raises(MissingData) as missing:
        st._resolver.resolve("_s", ["peaks"])
    assert missing.value.requests == [("0", ["peaks"]), ("1", ["peaks"]), ("2", ["peaks"])]
    assert _files(storage_dir) == before  # planning made nothing
    assert not hasattr(st._resolver, "make")


def test_the_facade_makes_then_plans_again(storage_dir):
    st = make_context(storage_dir)
    make_runs(st, targets="records")
    st.define_run("_s", ["0", "1", "2"])
    got = st.get_array("_s", "peaks")  # made here, by the façade's step
    assert all(st.is_stored(r, "peaks") for r in "012")
    want = np.concatenate([st.get_array(r, "peaks") for r in "012"])
    assert np.array_equal(got["time"], want["time"])
    assert np.array_equal(got["area"], want["area"])
    st._resolver.resolve("_s", ["peaks"])  # all stored now: the plan is the load


def test_make_false_still_refuses_without_making(storage_dir):
    st = make_context(storage_dir)
    make_runs(st, targets="records")
    from dastrax.errors import DataNotAvailable

    with pytest.raises(DataNotAvailable):
        st.get_array("0", "peaks", make=False)
    assert not st.is_stored("0", "peaks")

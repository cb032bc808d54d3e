"""Shared fixtures: a fresh storage directory and contexts with the testutils plugins."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

pytest_plugins = ("s3server",)

# open indexes of the tests' superruns (and of the CLI subprocesses) go to a folder of
# their own, not to the user's cache
os.environ.setdefault("DASTRAX_OPEN_INDEX", tempfile.mkdtemp(prefix="dastrax-open-index-"))


# --------------------------------------------------------------------------------------
# Tests that run alone. The suite runs in two processes (pytest-xdist, ``-n 2``); a test that
# measures throughput (the soak tests count operations in a fixed time) runs while no other
# test runs, so the other process's work does not starve it. Mark such a test
# ``@pytest.mark.alone``; every test of the files below is marked here.
# --------------------------------------------------------------------------------------
ALONE_FILES = ("test_soak.py",)
_WAIT_AT_MOST = 900.0  # s; past this a test runs anyway (with a warning) rather than hang


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "alone: run while no other test runs (a throughput or timing measure)"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in ALONE_FILES:
            item.add_marker(pytest.mark.alone)


def _lock(f, mode: int) -> bool:
    """Take a POSIX record lock on ``f`` (not inherited by forked children, unlike flock),
    polling; False if it was not had within ``_WAIT_AT_MOST``."""
    deadline = time.monotonic() + _WAIT_AT_MOST
    while True:
        try:
            fcntl.lockf(f, mode | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


@contextlib.contextmanager
def _turn(item):
    """A readers-writer lock shared by the test processes of one run, writers first: every
    test holds it shared, an ``alone`` test exclusively. An ``alone`` test first closes the
    gate (no test starts), then waits for the running test to end."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process: every test runs alone
        yield
        return
    base = Path(tempfile.gettempdir()) / f"dastrax-tests-{run}"
    alone = item.get_closest_marker("alone") is not None
    with open(f"{base}.gate", "a+") as gate, open(f"{base}.lock", "a+") as lock:
        if alone:
            had = _lock(gate, fcntl.LOCK_EX) and _lock(lock, fcntl.LOCK_EX)
        else:
            if _lock(gate, fcntl.LOCK_SH):  # pass the gate: no alone test is waiting
                fcntl.lockf(gate, fcntl.LOCK_UN)
            had = _lock(lock, fcntl.LOCK_SH)
        if not had:
            warnings.warn(
                f"{item.nodeid} ran without its turn (waited {_WAIT_AT_MOST} s)", stacklevel=1
            )
        try:
            yield
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)
            fcntl.lockf(gate, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with _turn(item):
        return (yield)


def make_context(path, **context_config):
    context_config.setdefault("progress", False)
    return dastrax.Context(
        storage=[dastrax.ZarrDirectory(str(path))],
        register=[Records, Peaks, PeakClassification],
        **context_config,
    )


@pytest.fixture
def storage_dir(tmp_path):
    """An empty storage directory (reads refuse one that does not exist)."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def st(storage_dir):
    """A context on an empty local directory, on dask's threaded scheduler."""
    return make_context(storage_dir)


def make_runs(st, run_ids=("0", "1", "2"), spacing=20, targets="peaks", **config):
    """Make ``targets`` for runs at offsets ``i * spacing`` and write their run documents.

    With the default ``Records`` (10 chunks of 1 ns) each run spans 10 ns.
    """
    st.set_config(config)
    for i, run_id in enumerate(run_ids):
        st.set_config({"time_offset": i * spacing})
        st.make(run_id, targets)
        arr = st.get_array(run_id, "records")
        st.write_run_metadata(
            run_id,
            {
                "start": i * spacing,
                "end": int(dastrax.endtime(arr).max()) if len(arr) else i * spacing,
            },
        )
    st.set_config({"time_offset": 0})
    return list(run_ids)


def stored_files(path):
    """Every file below ``path``, relative, sorted."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def assert_same_rows(a: np.ndarray, b: np.ndarray):
    names = [n for n in a.dtype.names if n != "run_id"]
    assert len(a) == len(b)
    for n in names:
        np.testing.assert_array_equal(a[n], b[n], err_msg=n)

"""Shared fixtures: a fresh storage directory and contexts with the testutils plugins."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from dastrax.testutils import PeakClassification, Peaks, Records

import dastrax

pytest_plugins = ("s3server",)

# open indexes of the tests' superruns (and of the CLI subprocesses) go to a folder of
# their own, not to the user's cache
os.environ.setdefault("DASTRAX_OPEN_INDEX", tempfile.mkdtemp(prefix="dastrax-open-index-"))


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

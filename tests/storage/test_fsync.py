"""Durable commits (``DASTRAX_FSYNC=1``; off by default, see the README): commits flush every
file and folder of a group before the rename that makes it visible — by one syncfs of the
filesystem, or (``DASTRAX_FSYNC_METHOD=fsync``) each file in parallel threads — and run
documents before theirs; the results are the same."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import dastrax, numpy as np
from dastrax.storage import zarr_writer
from dastrax.testutils import Records, Peaks
assert zarr_writer.FSYNC and zarr_writer.FSYNC_METHOD == {method!r}
st = dastrax.Context(storage={path!r}, register=[Records, Peaks], progress=False)
st.make(["0"], "peaks")
st.write_run_metadata("0", {{"start": 0, "end": 10}})
st.define_run("_f", ["0"])
st.persist_superrun("_f", "peaks")
a, b = st.get_array("_f", "peaks"), st.get_array("0", "peaks")
assert np.array_equal(a["data"], b["data"]) and len(a) == 100
print("ok")
"""


@pytest.mark.parametrize("method", ["syncfs", "fsync"])
def test_fsync_commits_give_the_same_data(tmp_path, method):
    env = dict(os.environ, DASTRAX_FSYNC="1", DASTRAX_FSYNC_METHOD=method)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(path=str(tmp_path / "data"), method=method)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"

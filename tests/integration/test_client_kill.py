"""A client process killed with SIGKILL in the middle of a make or a persist on its own
``LocalCluster`` (issue 13): nothing incomplete is reported stored, a rerun from a fresh
process succeeds with the right rows, and what the workers were writing is swept by the next
writer.

The client is this file run as a script (``python test_client_kill.py client ...``) in a
process group of its own: it starts a ``LocalCluster`` (2 worker processes) and makes or
persists tens of MB of ``Peaks``; the test kills the whole group once the first chunk files of
the target appear in a temporary folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

#: 16 chunks of 800 rows (about 1.2 kB each): about 15 MB of peaks a run
CONFIG = {"n_chunks": 16, "recs_per_chunk": 800, "chunk_ns": 1000}
SPAN = CONFIG["n_chunks"] * CONFIG["chunk_ns"]
OFFSETS = {"0": 0, "1": 100_000}


def _context(storage: str, client=None, run_id: str = "0"):
    from dastrax.testutils import PeakClassification, Peaks, Records

    import dastrax

    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(storage)],
        register=[Records, Peaks, PeakClassification],
        client=client,
        progress=False,
        chunk_target_size_mb=1,
    )
    st.set_config({**CONFIG, "time_offset": OFFSETS[run_id]})
    return st


def _run(storage: str, action: str, cluster: bool) -> None:
    """What the client (or the rerun) process does."""
    client = None
    if cluster:
        import distributed

        cluster_ = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = distributed.Client(cluster_)
    st = _context(storage, client)
    if action == "make":
        st.make("0", "peaks")
    else:
        st.persist_superrun("_sr", "peaks")
    print("done", flush=True)


def _expected_times(run_id: str) -> np.ndarray:
    n, width = CONFIG["recs_per_chunk"], CONFIG["chunk_ns"]
    starts = OFFSETS[run_id] + width * np.arange(CONFIG["n_chunks"])
    return (starts[:, None] + (np.arange(n)[None, :] * width) // n).ravel()


def _check_rows(rows: np.ndarray, run_ids) -> None:
    want = np.concatenate([_expected_times(r) for r in run_ids])
    np.testing.assert_array_equal(rows["time"], want)
    n = CONFIG["recs_per_chunk"]
    np.testing.assert_array_equal(rows["channel"], np.tile(np.arange(n), len(want) // n))
    assert np.all(rows["area"] == 1) and np.all(rows["length"] == 1)


def _spawn(storage: Path, action: str, cluster: bool) -> subprocess.Popen:
    root = str(Path(__file__).parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, *sys.path]), PYTHONUNBUFFERED="1")
    args = [sys.executable, __file__, "client", str(storage), action, str(int(cluster))]
    return subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the cluster's processes with it
    )


def _writing(storage: Path, key_prefix: str) -> bool:
    """Whether chunk files of ``key_prefix`` are being written in a temporary folder."""
    for folder in storage.glob(f".tmp-{key_prefix}*"):
        if any(p.is_file() for p in folder.rglob("c/*")):
            return True
    return False


def _seed(storage: Path, action: str) -> None:
    if action == "persist":
        for run_id in OFFSETS:
            st = _context(str(storage), run_id=run_id)
            st.make(run_id, "peaks")
            st.write_run_metadata(run_id, {"start": OFFSETS[run_id], "end": OFFSETS[run_id] + SPAN})
        st.define_run("_sr", list(OFFSETS))


@pytest.mark.parametrize("action", ["make", "persist"])
def test_client_killed_mid_write_on_a_local_cluster(tmp_path, action):
    import dastrax

    storage = tmp_path / "data"
    _seed(storage, action)
    key_prefix = "0-peaks-" if action == "make" else "_sr-peaks-"
    proc = _spawn(storage, action, cluster=True)
    deadline = time.time() + 60
    while not _writing(storage, key_prefix):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the client finished before it could be killed: {out}\n{err[-3000:]}")
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the client never started writing chunks")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # let the group's last processes die

    # nothing incomplete is reported stored
    run_id, runs = ("0", ["0"]) if action == "make" else ("_sr", list(OFFSETS))
    st = _context(str(storage))
    if st.is_stored(run_id, "peaks"):
        _check_rows(st.get_array(run_id, "peaks"), runs)
    assert dastrax.ZarrDirectory(str(storage)).temporary_paths(), "nothing was being written"

    # a rerun from a fresh process succeeds, gives the right rows and sweeps what was left
    rerun = _spawn(storage, action, cluster=False)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0 and "done" in out, err[-3000:]
    st = _context(str(storage))
    assert st.is_stored(run_id, "peaks")
    _check_rows(st.get_array(run_id, "peaks"), runs)
    assert dastrax.ZarrDirectory(str(storage)).temporary_paths() == []
    assert not list(storage.glob(".tmp-*"))


if __name__ == "__main__" and sys.argv[1:2] == ["client"]:
    _run(sys.argv[2], sys.argv[3], sys.argv[4] == "1")

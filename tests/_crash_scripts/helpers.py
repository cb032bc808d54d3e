"""Helpers of the crash and concurrency tests: seed a storage directory, start
``writer.py`` in its own process, wait until it reaches its pause point, kill it; list
files of a storage directory; compare rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import make_context

import dastrax

WRITER = Path(__file__).with_name("writer.py")
TIMEOUT = 60
OFFSETS = {"0": 0, "1": 100_000}
TARGETS = ["peaks", "peak_classification"]


def context(path, config: dict, run_id: str = "0") -> dastrax.Context:
    """A context on ``path`` with the testutils plugins, ``config`` and run ``run_id``'s
    time offset."""
    st = make_context(path)
    st.set_config({**config, "time_offset": OFFSETS[run_id]})
    return st


def seed(root, config: dict) -> dict:
    """Make runs 0 and 1 (records, peaks, peak_classification) in ``root``, write their run
    documents and define the superrun ``_sr`` of both. Returns the rows of each
    ``(run, data type)`` as loaded from there (for ``_sr``: the two runs' rows)."""
    rows = {}
    span = config["n_chunks"] * config["chunk_ns"]
    for run_id in ["0", "1"]:
        st = context(root, config, run_id)
        st.make(run_id, TARGETS)
        for t in ["records", *TARGETS]:
            rows[run_id, t] = st.get_array(run_id, t)
        start = OFFSETS[run_id]
        st.write_run_metadata(run_id, {"start": start, "end": start + span})
    st.define_run("_sr", ["0", "1"])
    for t in TARGETS:
        rows["_sr", t] = np.concatenate([rows["0", t], rows["1", t]])
    assert not any(st.is_stored("_sr", t) for t in TARGETS)
    return rows


def assert_rows(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype.names == want.dtype.names
    assert len(got) == len(want)
    for name in want.dtype.names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def assert_no_temporaries(storage) -> None:
    frontend = dastrax.ZarrDirectory(str(storage))
    left = frontend.temporary_paths()
    assert left == [], left
    entries = temp_entries(storage)
    assert entries == [], entries


def start_writer(args: dict) -> subprocess.Popen:
    """Start ``writer.py`` with ``args`` (its stdout and stderr are captured)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(WRITER), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition, proc: subprocess.Popen | None = None, what: str = "", timeout=TIMEOUT):
    """Poll ``condition()`` until true; fail if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"writer exited ({proc.returncode}) before {what}:\n{out}\n{err[-4000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the writer and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen) -> str:
    """Wait for the writer to finish; fail with its stderr if it did not succeed."""
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, f"writer failed ({proc.returncode}):\n{out}\n{err[-4000:]}"
    assert "done" in out
    return out


def temp_entries(root: Path) -> list[Path]:
    """Every ``.tmp-*`` file or folder anywhere below ``root``."""
    return sorted(p for p in root.rglob(".tmp-*")) + sorted(
        p for p in root.rglob("*.tmp-*") if not p.name.startswith(".tmp-")
    )


def chunk_files(root: Path, column: str) -> list[Path]:
    """Zarr chunk files of ``column`` inside temporary groups below ``root``."""
    return [p for p in root.glob(f".tmp-*/group/{column}/c/**/*") if p.is_file()]


def snapshot(root: Path) -> dict[str, tuple]:
    """``root`` and every file and folder below it: size and modification time (ns)."""
    if not root.exists():
        return {}
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.stat()
        out[str(p.relative_to(root))] = (
            p.is_dir(),
            0 if p.is_dir() else st.st_size,
            st.st_mtime_ns,
        )
    return out

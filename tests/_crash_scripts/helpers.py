"""Helpers of the crash and concurrency tests: start ``writer.py`` in its own process,
wait until it reaches its pause point, kill it; list files of a storage directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WRITER = Path(__file__).with_name("writer.py")
TIMEOUT = 60


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
    """Every file and folder below ``root``: size and modification time (ns)."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = (
            p.is_dir(),
            0 if p.is_dir() else st.st_size,
            st.st_mtime_ns,
        )
    return out

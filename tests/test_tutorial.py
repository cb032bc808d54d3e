"""The strax superrun tutorial, run as a script (examples/superrun_tutorial.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "superrun_tutorial.py"


def test_superrun_tutorial_script(tmp_path):
    storage = tmp_path / "tutorial_data"
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(storage)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all assertions passed" in proc.stdout
    # it wrote into the directory it was given, and left no temporary folders
    names = {p.name for p in storage.iterdir()}
    assert "runs" in names
    assert any(n.startswith("_superrun_test-peaks-") for n in names), names
    assert any(n.startswith("_superrun_test-peak_classification-") for n in names), names
    assert not [n for n in names if n.startswith(".tmp-")]
    assert (storage / "runs" / "_superrun_test.json").exists()

"""strax's superrun tutorial, run as a script (examples/superrun_tutorial.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "superrun_tutorial.py"


def test_superrun_tutorial_script(tmp_path):
    storage = tmp_path / "tutorial_data"
    env = {k: v for k, v in os.environ.items() if k not in ("DASTRAX_CONFIG", "DASTRAX_DEBUG")}
    env["PYTHONPATH"] = str(SCRIPT.parents[1])
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(storage)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all assertions passed" in proc.stdout
    assert "Traceback" not in proc.stderr
    # cell 4 prints the key of run 2's peaks, cell 6 the superrun's name and subruns
    assert re.search(r"^2-peaks-[0-9a-z]{10}$", proc.stdout, re.M), proc.stdout
    assert "superrun_name:  _superrun_test" in proc.stdout
    # it wrote into the directory it was given, and left no temporary folders
    names = {p.name for p in storage.iterdir()}
    assert "runs" in names
    assert any(n.startswith("_superrun_test-peaks-") for n in names), names
    assert any(n.startswith("_superrun_test-peak_classification-") for n in names), names
    assert not [n for n in names if n.startswith(".tmp-")]
    assert (storage / "runs" / "_superrun_test.json").exists()
    assert {f"{r}.json" for r in "012"} <= {p.name for p in (storage / "runs").iterdir()}


def test_the_tutorial_follows_strax_cell_by_cell():
    """Every cell of strax's tutorial (In [1] ... In [20]) is there, in order."""
    text = SCRIPT.read_text()
    cells = [int(n) for n in re.findall(r"# In \[(\d+)\]", text)]
    assert cells == list(range(1, 21)), cells
    # strax's names that the README's "From strax" table replaces are not used in the code
    body = text.split('"""', 2)[2]  # after the module docstring
    code = "\n".join(line.split("#")[0] for line in body.splitlines())
    for pattern in (
        r"\bimport strax\b",
        r"(?<![a-z])strax\.",
        "secret_time_offset",
        "_run_meta_path",
    ):
        assert not re.search(pattern, code), pattern
    assert "dastrax.DataDirectory(" in code and "st.write_run_metadata(" in code

"""`dastrax bench --small`: a smoke test of the benchmark (no timing thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys

from dastrax.bench import STEPS, TINY_CHUNKS


def _run(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dastrax.bench", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _positive(step: dict, name: str) -> None:
    for field in ("seconds", "peak_rss_mb", "bytes"):
        assert step[field] > 0, f"{name}: {field} = {step[field]}"


def test_bench_small_reports_every_step(tmp_path):
    report_file = tmp_path / "bench.json"
    storage = tmp_path / "data"
    proc = _run(["--small", "--storage", str(storage), "--json", str(report_file)], tmp_path)
    report = json.loads(report_file.read_text())
    assert set(report["steps"]) == set(STEPS) - {"open_indexed"}  # (a --scaling step)
    for name, step in report["steps"].items():
        _positive(step, name)
        assert step["samples"] and all(s > 0 for s in step["samples"])
        assert step["cpu_seconds"] >= 0
    # the loads return the superrun's rows; the two-column load is narrower
    steps = report["steps"]
    assert steps["load_stored"]["rows"] == steps["load_unstored"]["rows"] == 3 * 4 * 2_000
    assert steps["load_two_columns"]["bytes"] < steps["load_stored"]["bytes"]
    assert steps["open_unstored"]["blocks"] == 3 * 4
    assert {t["target"] for t in report["targets"]} >= {"load stored", "persist"}
    for t in report["targets"]:
        assert "met" in t
    # the table names every step, with a ratio to its limit
    assert "load stored superrun (get_array)" in proc.stdout
    assert "× fromzarr_stored" in proc.stdout and "× load_unstored" in proc.stdout
    # the data stays where it was asked to go
    assert any(p.name.startswith("_bench-peaks-") for p in storage.iterdir())


def test_bench_scaling_small(tmp_path):
    report_file = tmp_path / "scaling.json"
    proc = _run(
        ["--scaling", "--scaling-sizes", "3,6", "--json", str(report_file)],
        tmp_path,
    )
    # the targets are named, unmeasured at these sizes
    assert "make of 1000 tiny runs" in proc.stdout and "not measured" in proc.stdout
    assert "open (get_dataset, from the open index) of 10000 tiny runs" in proc.stdout
    scaling = json.loads(report_file.read_text())["scaling"]
    assert set(scaling) == {"3", "6"}
    for n, row in scaling.items():
        assert row["subruns"] == int(n)
        for name in ("open_unstored", "open_indexed", "persist", "open_stored", "load_stored"):
            _positive(row[name], f"{n}: {name}")
        assert row["open_unstored"]["blocks"] == TINY_CHUNKS * int(n)
        assert row["open_indexed"]["blocks"] == TINY_CHUNKS * int(n)
        assert row["make_seconds"] > 0
        assert row["persist_per_subrun_ms"] > 0
